//! GSM8K test questions (`routellm/gsm8k/test.jsonl`); the gold answer follows `####`.
//! Questions RouteLLM marked as contaminated are dropped.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;

use anyhow::Context;

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
    let contaminated = contaminated(&dir.join("contaminated_prompts.jsonl"))?;
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(&line).with_context(|| format!("{}:{}", path.display(), i + 1))?;
        if contaminated.contains(row.question.trim()) {
            continue;
        }
        let gold = row
            .answer
            .rsplit("####")
            .next()
            .and_then(parse_number)
            .with_context(|| format!("{}:{}: no number after ####", path.display(), i + 1))?;
        out.push(Task { id: format!("gsm8k/{i}"), dataset: "gsm8k".into(), question: row.question, check: Check::Number(gold) });
    }
    Ok(out)
}

/// Evaluation prompts listed in a RouteLLM `contaminated_prompts.jsonl` (`eval_prompt` field).
fn contaminated(path: &Path) -> anyhow::Result<HashSet<String>> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(HashSet::new()) };
    let mut set = HashSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("parsing {}", path.display()))?;
        let s = match &v {
            serde_json::Value::String(s) => s.clone(),
            other => other.get("eval_prompt").or_else(|| other.get("prompt")).and_then(|p| p.as_str()).unwrap_or_default().to_string(),
        };
        set.insert(s.trim().to_string());
    }
    Ok(set)
}
