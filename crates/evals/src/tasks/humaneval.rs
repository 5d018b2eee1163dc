//! HumanEval (`humaneval/HumanEval.jsonl.gz`, MIT): complete a Python function; pass@1 by
//! running the problem's own tests.

use std::path::Path;

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
    let rows: Vec<Row> = conductor_core::jsonl::read(&path)?;
    Ok(rows
        .into_iter()
        .map(|row| Task {
            id: format!("humaneval/{}", row.task_id.trim_start_matches("HumanEval/")),
            dataset: "humaneval".into(),
            question: row.prompt.clone(),
            check: Check::Python { prompt: row.prompt, test: row.test, entry_point: row.entry_point },
        })
        .collect())
}
