//! MT-Bench: 80 two-turn questions, GPT-4 judge scores 1–10 per model per turn.
//! One record per (question, model): the prompt is both turns joined by a blank line,
//! the score is the mean of the two turns' judge scores mapped 1→0 … 10→1, i.e.
//! (s − 1) / 9. Completion length: estimated from the answers quoted in the judge prompts.

use super::{contamination, record, Converted};
use conductor_core::tokens::estimate_tokens;
use std::collections::BTreeMap;
use std::path::Path;

fn read_jsonl(path: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    Ok(conductor_core::jsonl::read(path)?)
}

/// The assistant's answer quoted in a judge prompt (the last one, for multi-turn judging).
fn quoted_answer(judge_prompt: &str) -> &str {
    if let Some(start) = judge_prompt.find("[The Start of Assistant's Answer]") {
        let rest = &judge_prompt[start + "[The Start of Assistant's Answer]".len()..];
        return rest.split("[The End of Assistant's Answer]").next().unwrap_or(rest);
    }
    if let Some(start) = judge_prompt.rfind("### Assistant A:") {
        let rest = &judge_prompt[start + "### Assistant A:".len()..];
        return rest.split("<|The End of Assistant A's Conversation").next().unwrap_or(rest);
    }
    ""
}

pub fn convert(dir: &Path) -> anyhow::Result<Converted> {
    let drop = contamination::load(&dir.join("contaminated_prompts.jsonl"))?;
    let qpath = dir.join("question.jsonl");
    let mut questions: BTreeMap<i64, (String, String)> = BTreeMap::new(); // id → (first turn, joined)
    for (i, q) in read_jsonl(&qpath)?.iter().enumerate() {
        let id = q["question_id"]
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("{}:{}: no question_id", qpath.display(), i + 1))?;
        let turns: Vec<&str> =
            q["turns"].as_array().map(|t| t.iter().filter_map(|s| s.as_str()).collect()).unwrap_or_default();
        anyhow::ensure!(!turns.is_empty(), "{}:{}: question without turns", qpath.display(), i + 1);
        questions.insert(id, (turns[0].to_string(), turns.join("\n\n")));
    }
    // (question, model) → (sum of scaled scores, turns judged, completion tokens)
    let jpath = dir.join("judgements.jsonl");
    let mut acc: BTreeMap<(i64, String), (f64, usize, usize)> = BTreeMap::new();
    for (i, j) in read_jsonl(&jpath)?.iter().enumerate() {
        let at = || format!("{}:{}", jpath.display(), i + 1);
        let qid = j["question_id"].as_i64().ok_or_else(|| anyhow::anyhow!("{}: no question_id", at()))?;
        let model = j["model"].as_str().ok_or_else(|| anyhow::anyhow!("{}: no model", at()))?;
        let score = j["score"].as_f64().ok_or_else(|| anyhow::anyhow!("{}: no numeric score", at()))?;
        anyhow::ensure!((1.0..=10.0).contains(&score), "{}: judge score {score} outside 1–10", at());
        let e = acc.entry((qid, model.to_string())).or_insert((0.0, 0, 0));
        e.0 += (score - 1.0) / 9.0;
        e.1 += 1;
        e.2 += estimate_tokens(quoted_answer(j["user_prompt"].as_str().unwrap_or_default()));
    }
    let mut out = Converted { dataset: "mt_bench", records: Vec::new(), prompts: 0, dropped_contaminated: 0 };
    for (qid, (first, joined)) in &questions {
        if drop.contains(&contamination::normalise(first)) {
            out.dropped_contaminated += 1;
            continue;
        }
        let mut any = false;
        for ((_, model), (sum, n, ct)) in acc.range((*qid, String::new())..(*qid + 1, String::new())) {
            out.records.push(record(format!("mt_bench/{qid}"), "mt_bench", joined, model, sum / *n as f64, *ct));
            any = true;
        }
        out.prompts += any as usize;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_real_mt_bench_with_scaled_scores() {
        let c = convert(&super::super::routellm_root().join("mt_bench")).unwrap();
        assert_eq!(c.dropped_contaminated, 8);
        assert_eq!(c.prompts, 72);
        assert_eq!(c.records.len(), 144);
        assert!(c.records.iter().all(|r| (0.0..=1.0).contains(&r.score)));
        assert!(c.records.iter().any(|r| r.score < 1.0 && r.score > 0.0));
    }

    #[test]
    fn quoted_answers_are_found() {
        assert_eq!(quoted_answer("x [The Start of Assistant's Answer]\nhi\n[The End of Assistant's Answer]"), "\nhi\n");
        assert_eq!(
            quoted_answer("### Assistant A:\na\n### Assistant A:\nb\n<|The End of Assistant A's Conversation"),
            "\nb\n"
        );
    }
}
