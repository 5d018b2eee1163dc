//! The user's own prompts: a JSONL file, one object per line —
//! `{"id": "q1", "prompt": "...", "scorer": "number", "reference": "42"}` — where `scorer` is
//! `number` (the answer's final number must equal `reference`), `choice` (the chosen letter
//! must equal `reference`, A–J), `code` (`reference` is `{"test": "...", "entry_point":
//! "..."}` in HumanEval's format: the completed function must pass the tests in the
//! sandbox) or `judge` (`reference` is a reference answer; a judge model named to the
//! collector decides whether the answer agrees with it). `id` is optional (default: the
//! line number). The dataset name is the file stem.

use super::{Check, Task};
use crate::score::number::parse_number;
use conductor_core::jsonl::JsonlError;
use std::path::Path;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    id: Option<String>,
    prompt: String,
    scorer: String,
    reference: serde_json::Value,
}

pub fn load(path: &Path) -> anyhow::Result<Vec<Task>> {
    let dataset = path.file_stem().and_then(|s| s.to_str()).unwrap_or("custom").to_string();
    let mut out = Vec::new();
    conductor_core::jsonl::for_each(path, |line, row: Row| {
        let bad = |msg: String| JsonlError::at(path, line, msg);
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let check = match row.scorer.as_str() {
            "number" => Check::Number(
                parse_number(&text(&row.reference))
                    .ok_or_else(|| bad(format!("`reference` {} is not a number", row.reference)))?,
            ),
            "choice" => {
                let r = text(&row.reference);
                let letter = r.trim().chars().next().filter(|c| ('A'..='J').contains(c) && r.trim().len() == 1);
                Check::Choice(letter.ok_or_else(|| bad(format!("`reference` \"{r}\" is not a letter A–J")))?)
            }
            "code" => {
                let field = |k: &str| {
                    row.reference[k]
                        .as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad(format!("`reference` of a code prompt needs a string `{k}`")))
                };
                Check::Python { prompt: row.prompt.clone(), test: field("test")?, entry_point: field("entry_point")? }
            }
            "judge" => Check::Judge { reference: text(&row.reference) },
            other => return Err(bad(format!("unknown scorer `{other}` (expected number, choice, code or judge)"))),
        };
        let id = row.id.unwrap_or_else(|| line.to_string());
        out.push(Task { id: format!("{dataset}/{id}"), dataset: dataset.clone(), question: row.prompt, check });
        Ok(())
    })?;
    anyhow::ensure!(!out.is_empty(), "{} holds no prompts", path.display());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_scorer_and_names_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mine.jsonl");
        std::fs::write(
            &p,
            concat!(
                r#"{"id":"a","prompt":"2+2?","scorer":"number","reference":4}"#,
                "\n",
                r#"{"prompt":"Pick","scorer":"choice","reference":"C"}"#,
                "\n",
                r#"{"id":"f","prompt":"def f():\n","scorer":"code","reference":{"test":"def check(c): assert c() == 1","entry_point":"f"}}"#,
                "\n"
            ),
        )
        .unwrap();
        let t = load(&p).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].id, "mine/a");
        assert!(matches!(t[0].check, Check::Number(v) if v == 4.0));
        assert!(matches!(t[1].check, Check::Choice('C')));
        assert_eq!(t[1].id, "mine/2");
        assert!(matches!(t[2].check, Check::Python { .. }));
        std::fs::write(&p, r#"{"prompt":"Name a primary colour","scorer":"judge","reference":"red"}"#).unwrap();
        assert!(matches!(&load(&p).unwrap()[0].check, Check::Judge { reference } if reference == "red"));
        std::fs::write(&p, r#"{"prompt":"x","scorer":"vibes","reference":"y"}"#).unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("mine.jsonl:1") && e.contains("unknown scorer `vibes`"), "{e}");
        std::fs::write(&p, r#"{"prompt":"x","scorer":"choice","reference":"Z"}"#).unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("not a letter"));
    }
}
