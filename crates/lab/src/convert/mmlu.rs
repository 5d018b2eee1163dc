//! MMLU: 57 subject CSVs `prompt, <weak>, <strong>` with True/False correctness.
//! Completion length: 1 token (RouteLLM asked for the answer letter only).

use super::{contamination, parse_bool, record, Converted, STRONG, WEAK};
use std::path::Path;

pub const COMPLETION_TOKENS: usize = 1;

pub fn convert(dir: &Path) -> anyhow::Result<Converted> {
    convert_subjects(dir, |_| true)
}

/// Converts only the subjects `keep` accepts (e.g. a small real subset for tests).
pub fn convert_subjects(dir: &Path, keep: impl Fn(&str) -> bool) -> anyhow::Result<Converted> {
    let drop = contamination::load(&dir.join("contaminated_prompts.jsonl"))?;
    let mut files: Vec<_> = std::fs::read_dir(dir.join("responses"))
        .map_err(|e| anyhow::anyhow!("cannot list {}: {e}", dir.join("responses").display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no MMLU CSVs under {}", dir.join("responses").display());
    let mut out = Converted { dataset: "mmlu", records: Vec::new(), prompts: 0, dropped_contaminated: 0 };
    for file in files {
        let subject =
            file.file_stem().and_then(|s| s.to_str()).unwrap_or("unknown").trim_start_matches("mmlu_").to_string();
        if !keep(&subject) {
            continue;
        }
        convert_file(&file, &subject, &drop, &mut out)?;
    }
    Ok(out)
}

fn convert_file(
    file: &Path,
    subject: &str,
    drop: &std::collections::HashSet<String>,
    out: &mut Converted,
) -> anyhow::Result<()> {
    let mut rdr = csv::Reader::from_path(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let headers = rdr.headers()?.clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| anyhow::anyhow!("{}: no column `{name}`", file.display()))
    };
    let (cp, cw, cs) = (col("prompt")?, col(WEAK)?, col(STRONG)?);
    for (i, row) in rdr.records().enumerate() {
        let row = row.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let line = row.position().map_or(i as u64 + 2, |p| p.line());
        let prompt = row.get(cp).unwrap_or_default();
        if drop.contains(&contamination::normalise(prompt)) {
            out.dropped_contaminated += 1;
            continue;
        }
        let id = format!("mmlu/{subject}/{i}");
        for (model, c) in [(WEAK, cw), (STRONG, cs)] {
            let score = parse_bool(row.get(c).unwrap_or_default(), file, line, model)?;
            out.records.push(record(id.clone(), "mmlu", prompt, model, score, COMPLETION_TOKENS));
        }
        out.prompts += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_real_mmlu_and_drops_contaminated() {
        let c = convert(&super::super::routellm_root().join("mmlu")).unwrap();
        assert_eq!(c.records.len(), 2 * c.prompts);
        assert!(c.prompts > 14_000, "{}", c.prompts);
        assert!(c.dropped_contaminated >= 1, "the listed contaminated prompts are found and dropped");
        assert!(c.records[0].prompt_id.starts_with("mmlu/abstract_algebra/"));
    }
}
