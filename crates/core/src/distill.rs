//! Distillation data: verified answers of larger models to prompts that smaller models
//! failed or were not trusted with, in the chat fine-tuning format (one JSON object per
//! line with a `messages` list) — what a small model needs to learn what the big ones know.
//!
//! Two sources: the books (checked requests whose accepted answer came after a cheaper
//! model's answer was rejected; see the gateway) and collected records (a prompt some
//! model got wrong and a dearer model got right, by the task's own check). Each row also
//! carries a `metadata` object (decision or prompt id, model, confidence, the models it
//! replaces); fine-tuning services that accept only `messages` need it dropped
//! (`jq -c '{messages}'`).

use crate::records::Record;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DistillMeta {
    /// `books` or `records`.
    pub source: &'static str,
    /// The gateway's decision id (books) or the prompt id (records).
    pub id: String,
    /// The model whose answer is taught.
    pub model: String,
    /// Its verifier's calibrated confidence (books) or its score (records).
    pub confidence: f64,
    /// Cheaper models that got this prompt wrong or were not trusted with it.
    pub replaces: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DistillRow {
    pub messages: Vec<Message>,
    pub metadata: DistillMeta,
}

impl DistillRow {
    pub fn new(prompt: &str, answer: &str, metadata: DistillMeta) -> DistillRow {
        DistillRow {
            messages: vec![
                Message { role: "user", content: prompt.to_string() },
                Message { role: "assistant", content: answer.to_string() },
            ],
            metadata,
        }
    }
}

/// From collected records: for each prompt that some model failed (score < ½), the answer
/// of the cheapest model that is dearer than the cheapest failure and got it right. Models
/// are ordered by their mean recorded cost; records without `response` or cost are skipped.
pub fn from_records(records: &[Record]) -> Vec<DistillRow> {
    let mut cost: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for r in records {
        if let Some(c) = r.cost_usd {
            let e = cost.entry(r.model.as_str()).or_default();
            e.0 += c;
            e.1 += 1;
        }
    }
    let mean = |m: &str| cost.get(m).map(|(s, n)| s / *n as f64);
    let mut by_prompt: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in records.iter().filter(|r| mean(&r.model).is_some()) {
        by_prompt.entry(r.prompt_id.as_str()).or_default().push(r);
    }
    let mut out = Vec::new();
    for (id, mut rs) in by_prompt {
        rs.sort_by(|a, b| mean(&a.model).unwrap_or(0.0).total_cmp(&mean(&b.model).unwrap_or(0.0)));
        let Some(first_fail) = rs.iter().position(|r| r.score < 0.5) else { continue };
        let teacher = rs[first_fail + 1..].iter().find(|r| r.score >= 0.5 && r.response.is_some());
        let Some(t) = teacher else { continue };
        let replaces =
            rs.iter().take_while(|r| r.model != t.model).filter(|r| r.score < 0.5).map(|r| r.model.clone()).collect();
        let meta = DistillMeta {
            source: "records",
            id: id.to_string(),
            model: t.model.clone(),
            confidence: t.score,
            replaces,
        };
        out.push(DistillRow::new(&t.prompt, t.response.as_deref().unwrap_or_default(), meta));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(prompt: &str, model: &str, cost: f64, score: f64) -> Record {
        Record {
            prompt_id: prompt.into(),
            prompt: format!("question {prompt}"),
            model: model.into(),
            score,
            cost_usd: Some(cost),
            response: Some(format!("{model} says {score}")),
            ..Default::default()
        }
    }

    #[test]
    fn teaches_the_cheapest_right_answer_above_a_failure() {
        let rs = vec![
            // small wrong, medium right, large right: medium's answer, replacing small.
            rec("a", "small", 1.0, 0.0),
            rec("a", "medium", 3.0, 1.0),
            rec("a", "large", 9.0, 1.0),
            // everybody right: nothing to teach.
            rec("b", "small", 1.0, 1.0),
            rec("b", "large", 9.0, 1.0),
            // small and medium wrong, large right.
            rec("c", "large", 9.0, 1.0),
            rec("c", "medium", 3.0, 0.0),
            rec("c", "small", 1.0, 0.0),
            // nobody right: no verified answer to teach.
            rec("d", "small", 1.0, 0.0),
            rec("d", "large", 9.0, 0.0),
        ];
        let rows = from_records(&rs);
        let got: Vec<(&str, &str, Vec<String>)> = rows
            .iter()
            .map(|r| (r.metadata.id.as_str(), r.metadata.model.as_str(), r.metadata.replaces.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", "medium", vec!["small".to_string()]),
                ("c", "large", vec!["small".to_string(), "medium".to_string()])
            ]
        );
        assert_eq!(rows[0].messages[0].content, "question a");
        assert_eq!(rows[0].messages[1].content, "medium says 1");
        let line = serde_json::to_value(&rows[0]).unwrap();
        assert_eq!(line["messages"][1]["role"], "assistant");
    }
}
