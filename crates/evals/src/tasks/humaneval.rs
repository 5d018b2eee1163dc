//! HumanEval (`humaneval/HumanEval.jsonl.gz`, MIT): complete a Python function; pass@1 by
//! running the problem's own tests.

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::Context;

use super::{Check, Task};

#[derive(serde::Deserialize)]
struct Row {
    task_id: String,
    prompt: String,
    test: String,
    entry_point: String,
}

pub fn load(data_dir: &Path) -> anyhow::Result<Vec<Task>> {
    let path = data_dir.join("humaneval/HumanEval.jsonl.gz");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(flate2::read::GzDecoder::new(file)).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(&line).with_context(|| format!("{}:{}", path.display(), i + 1))?;
        out.push(Task {
            id: format!("humaneval/{}", row.task_id.trim_start_matches("HumanEval/")),
            dataset: "humaneval".into(),
            question: row.prompt.clone(),
            check: Check::Python { prompt: row.prompt, test: row.test, entry_point: row.entry_point },
        });
    }
    Ok(out)
}
