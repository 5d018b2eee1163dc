//! Converters from the RouteLLM release (`data/routellm`) and the MMLU-Pro release with 28
//! models (`data/mmlu_pro`, see [`mmlu_pro`]) to conductor records.
//!
//! Prompts that RouteLLM listed in `contaminated_prompts.jsonl` (near-duplicates of router
//! training data) are dropped, as RouteLLM did for its evaluation. Token counts are
//! estimated with [`conductor_core::tokens::estimate_tokens`] (4 characters per token);
//! completion lengths per dataset are stated in each converter.

pub mod contamination;
pub mod gsm8k;
pub mod mmlu;
pub mod mmlu_pro;
pub mod mt_bench;

use conductor_core::records::Record;
use std::path::Path;

/// Model ids exactly as RouteLLM names them (and as `catalog/routellm.toml` lists them).
pub const STRONG: &str = "gpt-4-1106-preview";
pub const WEAK: &str = "mistralai/Mixtral-8x7B-Instruct-v0.1";

/// Records of one dataset and how many prompts were dropped as contaminated.
#[derive(Debug)]
pub struct Converted {
    pub dataset: &'static str,
    pub records: Vec<Record>,
    pub prompts: usize,
    pub dropped_contaminated: usize,
}

/// Converts all three datasets under `root` (the `routellm` folder).
pub fn convert_all(root: &Path) -> anyhow::Result<Vec<Converted>> {
    Ok(vec![
        mmlu::convert(&root.join("mmlu"))?,
        gsm8k::convert(&root.join("gsm8k"))?,
        mt_bench::convert(&root.join("mt_bench"))?,
    ])
}

/// Parses RouteLLM's `True`/`False` correctness cells.
pub(crate) fn parse_bool(cell: &str, file: &Path, line: u64, column: &str) -> anyhow::Result<f64> {
    match cell.trim() {
        "True" | "true" | "1" | "1.0" => Ok(1.0),
        "False" | "false" | "0" | "0.0" => Ok(0.0),
        other => anyhow::bail!("{}:{line}: column `{column}` holds `{other}`, expected True or False", file.display()),
    }
}

/// One record with estimated prompt tokens.
pub(crate) fn record(
    prompt_id: String,
    dataset: &str,
    prompt: &str,
    model: &str,
    score: f64,
    completion_tokens: usize,
) -> Record {
    Record {
        prompt_id,
        dataset: dataset.to_string(),
        prompt: prompt.to_string(),
        model: model.to_string(),
        score,
        prompt_tokens: Some(conductor_core::tokens::estimate_tokens(prompt)),
        completion_tokens: Some(completion_tokens),
        ..Default::default()
    }
}

#[cfg(test)]
pub(crate) fn routellm_root() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/routellm"))
}
