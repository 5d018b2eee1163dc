//! GSM8K test questions (`routellm/gsm8k/test.jsonl`); the gold answer follows `####`.
//! Questions RouteLLM marked as contaminated are dropped.

use std::io::BufRead;
use std::path::Path;

use anyhow::Context;
use conductor_lab::convert::contamination;

use super::{Check, Task};
use crate::score::number::parse_number;

#[derive(serde::Deserialize)]
struct Row {
    question: String,
    answer: String,
}

pub fn load(data_dir: &Path) -> anyhow::Result<Vec<Task>> {
    let dir = data_dir.join("routellm/gsm8k");
    let path = dir.join("test.jsonl");
    let contaminated = contamination::load(&dir.join("contaminated_prompts.jsonl"))?;
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(&line).with_context(|| format!("{}:{}", path.display(), i + 1))?;
        if contaminated.contains(&contamination::normalise(&row.question)) {
            continue;
        }
        let gold = row
            .answer
            .rsplit("####")
            .next()
            .and_then(parse_number)
            .with_context(|| format!("{}:{}: no number after ####", path.display(), i + 1))?;
        out.push(Task {
            id: format!("gsm8k/{i}"),
            dataset: "gsm8k".into(),
            question: row.question,
            check: Check::Number(gold),
        });
    }
    Ok(out)
}
