//! The records format: one JSON object per line, one line per (prompt, model) outcome.
//! Every part of conductor (lab, router training, gateway feedback) reads and writes it.

use crate::jsonl::{self, JsonlError};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One observed outcome of sending `prompt` to `model`. Unknown fields are refused, so a
/// misspelt field is an error naming the file and line rather than a silently lost value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub prompt_id: String,
    pub dataset: String,
    pub prompt: String,
    pub model: String,
    /// In [0, 1]: 1 = correct / best; graded judge scores are scaled into this range.
    pub score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Audit fields written by the collector: why generation ended (`stop`, `length`),
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// why the scorer decided as it did,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// and the full answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// What the answering model's token probabilities said about its answer, when the
    /// provider reports them (the local library and OpenAI-compatible upstreams that
    /// return `logprobs`; never Anthropic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signals: Option<crate::signals::AnswerSignals>,
    /// A judge model's P("yes") that the answer is correct, from its first token's
    /// log-probabilities (`conductor signals --judge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_p_yes: Option<f64>,
    /// Code answers: 1 if the answer passes every `>>>` example of the prompt's docstring,
    /// else 0 (`conductor signals --examples`; none when the prompt has no examples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub examples_pass: Option<f64>,
}

/// Why a records file could not be read; carries the file and 1-based line number.
pub type RecordsError = JsonlError;

/// Reads a JSONL records file. Blank lines are skipped; anything else that is not a valid
/// record (bad JSON, missing or unknown field, score outside [0, 1]) is an error naming
/// file and line.
pub fn read_jsonl(path: &Path) -> Result<Vec<Record>, RecordsError> {
    let mut out = Vec::new();
    jsonl::for_each(path, |line, r: Record| {
        if !(0.0..=1.0).contains(&r.score) {
            return Err(JsonlError::at(path, line, format!("score {} is outside [0, 1]", r.score)));
        }
        out.push(r);
        Ok(())
    })?;
    Ok(out)
}

/// Keeps only the records of prompts that have an outcome for every one of `models`, so
/// that evaluations over different subsets of the models see the same prompts.
pub fn retain_complete(records: &mut Vec<Record>, models: &[String]) {
    let mut seen: std::collections::HashMap<&str, std::collections::HashSet<&str>> = std::collections::HashMap::new();
    for r in records.iter() {
        if models.contains(&r.model) {
            seen.entry(r.prompt_id.as_str()).or_default().insert(r.model.as_str());
        }
    }
    let complete: std::collections::HashSet<String> =
        seen.into_iter().filter(|(_, m)| m.len() == models.len()).map(|(p, _)| p.to_string()).collect();
    records.retain(|r| complete.contains(&r.prompt_id));
}

/// Keeps the records of `n` prompts: those whose id has the smallest SHA-256, so the same
/// prompts are chosen in every run, on every machine, whatever the file order — for
/// features too slow to compute on every prompt. Fewer prompts than `n`: all are kept.
pub fn sample_prompts(records: &mut Vec<Record>, n: usize) {
    use sha2::{Digest, Sha256};
    let mut ids: Vec<([u8; 32], &str)> =
        records.iter().map(|r| (Sha256::digest(r.prompt_id.as_bytes()).into(), r.prompt_id.as_str())).collect();
    ids.sort_unstable();
    ids.dedup();
    let keep: std::collections::HashSet<String> = ids.into_iter().take(n).map(|(_, id)| id.to_string()).collect();
    records.retain(|r| keep.contains(&r.prompt_id));
}

/// Writes records as JSONL (one object per line).
pub fn write_jsonl(path: &Path, records: &[Record]) -> anyhow::Result<()> {
    jsonl::write(path, records)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, model: &str, score: f64) -> Record {
        Record {
            prompt_id: id.into(),
            dataset: "t".into(),
            prompt: format!("prompt {id}"),
            model: model.into(),
            score,
            prompt_tokens: None,
            completion_tokens: Some(3),
            ..Default::default()
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        let rs = vec![rec("a", "m", 1.0), rec("b", "m", 0.25)];
        write_jsonl(&p, &rs).unwrap();
        assert_eq!(read_jsonl(&p).unwrap(), rs);
    }

    #[test]
    fn retain_complete_drops_prompts_missing_a_model() {
        let mut rs =
            vec![rec("a", "x", 1.0), rec("a", "y", 0.0), rec("b", "x", 1.0), rec("c", "y", 1.0), rec("c", "x", 0.0)];
        retain_complete(&mut rs, &["x".to_string(), "y".to_string()]);
        let ids: Vec<&str> = rs.iter().map(|r| r.prompt_id.as_str()).collect();
        assert_eq!(ids, ["a", "a", "c", "c"]);
    }

    #[test]
    fn malformed_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        let good = serde_json::to_string(&rec("a", "m", 1.0)).unwrap();
        std::fs::write(&p, format!("{good}\n\n{{\"prompt_id\": 3\n")).unwrap();
        let e = read_jsonl(&p).unwrap_err().to_string();
        assert!(e.contains("r.jsonl:3:"), "{e}");
        std::fs::write(&p, good.replace("1.0", "1.5")).unwrap();
        let e = read_jsonl(&p).unwrap_err().to_string();
        assert!(e.contains(":1:") && e.contains("outside"), "{e}");
        std::fs::write(&p, good.replace("\"score\"", "\"scroe\"")).unwrap();
        let e = read_jsonl(&p).unwrap_err().to_string();
        assert!(e.contains(":1:") && e.contains("scroe"), "{e}");
    }

    #[test]
    fn a_sample_is_the_same_prompts_whatever_the_order() {
        let mut a: Vec<Record> =
            (0..50).flat_map(|i| [rec(&format!("p{i}"), "m1", 1.0), rec(&format!("p{i}"), "m2", 0.0)]).collect();
        let mut b: Vec<Record> = a.iter().rev().cloned().collect();
        sample_prompts(&mut a, 10);
        sample_prompts(&mut b, 10);
        assert_eq!(a.len(), 20, "both models' records of ten prompts");
        let ids = |r: &[Record]| r.iter().map(|x| x.prompt_id.clone()).collect::<std::collections::BTreeSet<_>>();
        assert_eq!(ids(&a), ids(&b));
        sample_prompts(&mut a, 1000);
        assert_eq!(a.len(), 20, "asking for more keeps all");
    }
}
