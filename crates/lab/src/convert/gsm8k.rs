//! GSM8K: `gsm8k_responses.csv` with both models' correctness and their responses.
//! Completion length: estimated from each model's own response text.

use super::{contamination, parse_bool, record, Converted, STRONG, WEAK};
use conductor_core::tokens::estimate_tokens;
use std::path::Path;

pub fn convert(dir: &Path) -> anyhow::Result<Converted> {
    let drop = contamination::load(&dir.join("contaminated_prompts.jsonl"))?;
    let file = dir.join("gsm8k_responses.csv");
    let mut rdr = csv::Reader::from_path(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let headers = rdr.headers()?.clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| anyhow::anyhow!("{}: no column `{name}`", file.display()))
    };
    let cp = col("prompt")?;
    let cols = [
        (WEAK, col(WEAK)?, col(&format!("{WEAK}_response"))?),
        (STRONG, col(STRONG)?, col(&format!("{STRONG}_response"))?),
    ];
    let mut out = Converted { dataset: "gsm8k", records: Vec::new(), prompts: 0, dropped_contaminated: 0 };
    for (i, row) in rdr.records().enumerate() {
        let row = row.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let line = row.position().map_or(i as u64 + 2, |p| p.line());
        let prompt = row.get(cp).unwrap_or_default();
        if drop.contains(&contamination::normalise(prompt)) {
            out.dropped_contaminated += 1;
            continue;
        }
        for (model, c, cr) in cols {
            let score = parse_bool(row.get(c).unwrap_or_default(), &file, line, model)?;
            let completion = estimate_tokens(row.get(cr).unwrap_or_default());
            out.records.push(record(format!("gsm8k/{i}"), "gsm8k", prompt, model, score, completion));
        }
        out.prompts += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_real_gsm8k_and_drops_contaminated() {
        let c = convert(&super::super::routellm_root().join("gsm8k")).unwrap();
        assert_eq!(c.prompts + c.dropped_contaminated, 1319);
        assert!(c.dropped_contaminated >= 10, "{}", c.dropped_contaminated);
        assert!(c.records.iter().all(|r| r.completion_tokens.unwrap_or(0) > 1));
    }
}
