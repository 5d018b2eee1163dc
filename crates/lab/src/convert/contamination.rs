//! The `contaminated_prompts.jsonl` lists: each line has the `eval_prompt` to drop.

use conductor_core::jsonl;
use std::collections::HashSet;
use std::path::Path;

/// Normalises whitespace so that trailing newlines or doubled spaces do not hide a match.
pub fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(serde::Deserialize)]
struct Line {
    eval_prompt: String,
}

/// The set of (normalised) evaluation prompts to drop; a missing file means none.
pub fn load(path: &Path) -> anyhow::Result<HashSet<String>> {
    Ok(jsonl::read_optional::<Line>(path)?.into_iter().map(|l| normalise(&l.eval_prompt)).collect())
}
