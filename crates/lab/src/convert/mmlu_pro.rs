//! MMLU-Pro with 28 models (`data/mmlu_pro`): `questions.jsonl`, `outcomes.csv` (1 = the
//! model's extracted letter was right) and `completion_chars.csv` (length of each answer).
//!
//! Token counts are estimates, since the release holds no tokenizer output:
//! * completion tokens = the answer's characters / 4 (rounded up, at least 1);
//! * prompt tokens = the question's tokens plus the 5-shot prefix the models saw. The prefix
//!   is five worked examples of the question's category (question, options and a chain of
//!   thought), which the release does not include; each example is estimated as one mean
//!   question of that category plus one typical answer of that category (the median over
//!   models of their median answer length), so prefix = 5 × (both) / 4 tokens.
//!
//! Prices come from `catalog/mmlu_pro.toml`, which cites its sources.

use super::Converted;
use conductor_core::records::Record;
use conductor_core::tokens::estimate_tokens;
use std::collections::HashMap;
use std::path::Path;

/// Worked examples before each question (MMLU-Pro's evaluation protocol).
pub const SHOTS: usize = 5;

#[derive(serde::Deserialize)]
struct Question {
    question_id: u64,
    category: String,
    prompt: String,
}

/// Converts the folder (`data/mmlu_pro`) into one record per (question, model).
pub fn convert(dir: &Path) -> anyhow::Result<Converted> {
    let questions: Vec<Question> = conductor_core::jsonl::read(&dir.join("questions.jsonl"))?;
    let (models, outcomes) = read_matrix(&dir.join("outcomes.csv"))?;
    let (len_models, chars) = read_matrix(&dir.join("completion_chars.csv"))?;
    anyhow::ensure!(
        models == len_models,
        "{} and {} name different models",
        dir.join("outcomes.csv").display(),
        dir.join("completion_chars.csv").display()
    );
    let prefix = prefix_tokens(&questions, &chars);
    let mut out = Converted { dataset: "mmlu_pro", records: Vec::new(), prompts: 0, dropped_contaminated: 0 };
    for q in &questions {
        let (Some(scores), Some(lengths)) = (outcomes.get(&q.question_id), chars.get(&q.question_id)) else {
            anyhow::bail!(
                "question {} of questions.jsonl has no row in outcomes.csv or completion_chars.csv",
                q.question_id
            );
        };
        let prompt_tokens = estimate_tokens(&q.prompt) + prefix.get(&q.category).copied().unwrap_or(0);
        for (j, model) in models.iter().enumerate() {
            let score = scores[j];
            anyhow::ensure!(
                score == 0.0 || score == 1.0,
                "outcomes.csv: question {} model `{model}` holds {score}, expected 0 or 1",
                q.question_id
            );
            out.records.push(Record {
                prompt_id: format!("mmlu_pro/{}", q.question_id),
                dataset: "mmlu_pro".into(),
                prompt: q.prompt.clone(),
                model: model.clone(),
                score,
                prompt_tokens: Some(prompt_tokens),
                completion_tokens: Some((lengths[j] as usize).div_ceil(4).max(1)),
                ..Default::default()
            });
        }
        out.prompts += 1;
    }
    Ok(out)
}

/// Model names (column order) and one row of numbers per question id.
type Matrix = (Vec<String>, HashMap<u64, Vec<f64>>);

/// `question_id, <model>...` CSV → model names and a row of numbers per question.
fn read_matrix(path: &Path) -> anyhow::Result<Matrix> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let headers = rdr.headers().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?.clone();
    anyhow::ensure!(
        headers.get(0) == Some("question_id") && headers.len() > 2,
        "{}: expected `question_id` and at least two model columns",
        path.display()
    );
    let models: Vec<String> = headers.iter().skip(1).map(str::to_string).collect();
    let mut rows = HashMap::new();
    for (i, row) in rdr.records().enumerate() {
        let row = row.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let line = row.position().map_or(i as u64 + 2, |p| p.line());
        let num = |k: usize| -> anyhow::Result<f64> {
            let cell = row.get(k).unwrap_or_default().trim();
            cell.parse::<f64>().map_err(|_| {
                anyhow::anyhow!("{}:{line}: column `{}` holds `{cell}`, expected a number", path.display(), &headers[k])
            })
        };
        let id = num(0)? as u64;
        let values = (1..headers.len()).map(num).collect::<anyhow::Result<Vec<f64>>>()?;
        rows.insert(id, values);
    }
    Ok((models, rows))
}

/// Estimated 5-shot prefix length per category (see the module docs).
fn prefix_tokens(questions: &[Question], chars: &HashMap<u64, Vec<f64>>) -> HashMap<String, usize> {
    let mut by_cat: HashMap<&str, Vec<&Question>> = HashMap::new();
    for q in questions {
        by_cat.entry(q.category.as_str()).or_default().push(q);
    }
    by_cat
        .into_iter()
        .map(|(cat, qs)| {
            let question = qs.iter().map(|q| q.prompt.chars().count() as f64).sum::<f64>() / qs.len() as f64;
            let models = chars.values().next().map_or(0, Vec::len);
            let mut per_model: Vec<f64> = (0..models)
                .map(|j| median(qs.iter().filter_map(|q| chars.get(&q.question_id).map(|r| r[j])).collect()))
                .collect();
            per_model.retain(|v| v.is_finite());
            let answer = median(per_model);
            let answer = if answer.is_finite() { answer } else { 0.0 };
            (cat.to_string(), ((SHOTS as f64 * (question + answer)) / 4.0).ceil() as usize)
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> std::path::PathBuf {
        std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/mmlu_pro"))
    }

    #[test]
    fn converts_the_real_release_with_every_model_priced() {
        let c = convert(&root()).unwrap();
        assert_eq!(c.prompts, 5991);
        assert_eq!(c.records.len(), 5991 * 28);
        let catalog = conductor_core::catalog::Catalog::load(&std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../catalog/mmlu_pro.toml"
        )))
        .unwrap();
        for r in c.records.iter().take(28) {
            catalog.get(&r.model).unwrap();
            // The prefix makes the prompt several times longer than the question alone.
            assert!(r.prompt_tokens.unwrap() > 3 * estimate_tokens(&r.prompt), "{:?}", r.prompt_tokens);
        }
        // The README's figure: gemini-1.5-pro-002 is the best single model at 70.3%.
        let pro: Vec<f64> = c.records.iter().filter(|r| r.model == "gemini-1.5-pro-002").map(|r| r.score).collect();
        let acc = pro.iter().sum::<f64>() / pro.len() as f64;
        assert!((acc - 0.703).abs() < 0.001, "{acc}");
    }

    #[test]
    fn a_bad_cell_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.csv"), "question_id,a,b\n1,1,0\n2,1,yes\n").unwrap();
        let e = read_matrix(&dir.path().join("m.csv")).unwrap_err().to_string();
        assert!(e.contains("m.csv:3") && e.contains("column `b` holds `yes`"), "{e}");
    }
}
