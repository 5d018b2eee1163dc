//! The `contaminated_prompts.jsonl` lists: each line has the `eval_prompt` to drop.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;

/// Normalises whitespace so that trailing newlines or doubled spaces do not hide a match.
pub fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The set of (normalised) evaluation prompts to drop; a missing file means none.
pub fn load(path: &Path) -> anyhow::Result<HashSet<String>> {
    let mut set = HashSet::new();
    let Ok(f) = std::fs::File::open(path) else { return Ok(set) };
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| anyhow::anyhow!("{}:{}: not JSON: {e}", path.display(), i + 1))?;
        let p = v["eval_prompt"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("{}:{}: no `eval_prompt` string", path.display(), i + 1))?;
        set.insert(normalise(p));
    }
    Ok(set)
}
