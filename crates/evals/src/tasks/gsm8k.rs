//! GSM8K test questions (`routellm/gsm8k/test.jsonl`); the gold answer follows `####`.
//! Questions RouteLLM marked as contaminated are dropped.

use std::path::Path;

use conductor_core::jsonl::JsonlError;
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
    let mut out = Vec::new();
    conductor_core::jsonl::for_each(&path, |line, row: Row| {
        let i = line - 1;
        if contaminated.contains(&contamination::normalise(&row.question)) {
            return Ok(());
        }
        let gold = row
            .answer
            .rsplit("####")
            .next()
            .and_then(parse_number)
            .ok_or_else(|| JsonlError::at(&path, line, "no number after ####"))?;
        out.push(Task {
            id: format!("gsm8k/{i}"),
            dataset: "gsm8k".into(),
            question: row.question,
            check: Check::Number(gold),
        });
        Ok(())
    })?;
    Ok(out)
}
