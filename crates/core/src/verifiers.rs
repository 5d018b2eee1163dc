//! The answer checkers a server uses: per model, an [`AnswerModel`] fitted on that model's
//! recorded answers with signals (training prompts), and its calibrated confidences on the
//! validation prompts, which is where acceptance thresholds are set with a finite-sample
//! promise ([`crate::risk::selective_threshold`]). Fitting takes milliseconds, so a server
//! fits its verifiers from a records file at start-up instead of loading an artifact.

use crate::records::Record;
use crate::risk::{selective_threshold, Threshold};
use crate::split;
use crate::verify::{answer_features, AnswerModel, SignalSet};
use std::collections::BTreeMap;

/// Share of each model's prompts kept for calibration and thresholds.
pub const VAL_FRAC: f64 = 0.3;
/// Fewer validation answers than this cannot support any promise worth making.
pub const MIN_VAL: usize = 10;

/// One recorded answer: (prompt id, answer features, score).
type Answer<'a> = (&'a str, Vec<f32>, f64);

/// One model's checker.
#[derive(Debug, Clone)]
pub struct Verifier {
    model: AnswerModel,
    /// Calibrated confidence and correctness of each validation answer.
    val_confidence: Vec<f64>,
    val_correct: Vec<bool>,
    train_answers: usize,
}

impl Verifier {
    /// Calibrated P(correct) of an answer with these features (see
    /// [`crate::verify::signal_features`]).
    pub fn confidence(&self, x: &[f32]) -> f64 {
        self.model.confidence(x)
    }

    /// The lowest confidence at which this model's answers are wrong at most `max_risk` of
    /// the time, with probability ≥ 1 − `delta`; none when no threshold can promise it.
    pub fn threshold(&self, max_risk: f64, delta: f64) -> Option<Threshold> {
        selective_threshold(&self.val_confidence, &self.val_correct, max_risk, delta)
    }

    /// (training answers, validation answers) it was fitted on.
    pub fn answers(&self) -> (usize, usize) {
        (self.train_answers, self.val_confidence.len())
    }
}

/// Every model's checker, and why the others have none.
#[derive(Debug, Clone, Default)]
pub struct VerifierSet {
    by_model: BTreeMap<String, Verifier>,
    missing: BTreeMap<String, String>,
}

impl VerifierSet {
    /// Fits one verifier per model from its records that carry answer signals, splitting
    /// that model's prompts into training and validation by prompt id (seeded).
    pub fn fit(records: &[Record], seed: u64) -> VerifierSet {
        let mut per_model: BTreeMap<&str, Vec<Answer>> = BTreeMap::new();
        for r in records {
            let answers = per_model.entry(r.model.as_str()).or_default();
            // A server checks answers by what it can compute for each: token probabilities.
            if let Some(x) = answer_features(r, SignalSet::default()) {
                answers.push((r.prompt_id.as_str(), x, r.score));
            }
        }
        let mut set = VerifierSet::default();
        for (model, answers) in per_model {
            match fit_one(&answers, seed) {
                Ok(v) => {
                    set.by_model.insert(model.to_string(), v);
                }
                Err(why) => {
                    set.missing.insert(model.to_string(), why);
                }
            }
        }
        set
    }

    pub fn get(&self, model: &str) -> Option<&Verifier> {
        self.by_model.get(model)
    }

    /// Models with a verifier.
    pub fn models(&self) -> impl Iterator<Item = (&str, &Verifier)> {
        self.by_model.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Models the records name but that got no verifier, with the reason.
    pub fn missing(&self) -> impl Iterator<Item = (&str, &str)> {
        self.missing.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn fit_one(answers: &[Answer], seed: u64) -> Result<Verifier, String> {
    if answers.is_empty() {
        return Err("its records carry no answer signals (token log-probabilities)".into());
    }
    let keys: Vec<&str> = answers.iter().map(|a| a.0).collect();
    let s = split::train_val_test_by_key(&keys, VAL_FRAC, 0.0, seed);
    if s.val.len() < MIN_VAL {
        return Err(format!("{} answers with signals: too few to set a threshold on", answers.len()));
    }
    let pick =
        |idx: &[usize]| -> Vec<(Vec<f32>, f64)> { idx.iter().map(|&i| (answers[i].1.clone(), answers[i].2)).collect() };
    let (train, val) = (pick(&s.train), pick(&s.val));
    let model = AnswerModel::fit(&train, &val, seed).ok_or_else(|| {
        let right = answers.iter().filter(|a| a.2 >= 0.5).count();
        format!(
            "its {} recorded answers are all {} (nothing to tell apart)",
            answers.len(),
            if right == 0 { "wrong" } else { "right" }
        )
    })?;
    let val_confidence = val.iter().map(|(x, _)| model.confidence(x)).collect();
    let val_correct = val.iter().map(|(_, y)| *y >= 0.5).collect();
    Ok(Verifier { model, val_confidence, val_correct, train_answers: train.len() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::AnswerSignals;

    /// A model whose right answers are confident and wrong ones hesitant (with some overlap).
    fn records(model: &str, n: usize, accuracy_pct: usize) -> Vec<Record> {
        (0..n)
            .map(|i| {
                let correct = (i * 37) % 100 < accuracy_pct;
                let noise = ((i * 7919) % 13) as f64 / 40.0;
                let lp = if correct { -0.1 - noise } else { -0.6 - noise };
                Record {
                    prompt_id: format!("p{i}"),
                    model: model.into(),
                    score: if correct { 1.0 } else { 0.0 },
                    signals: Some(AnswerSignals {
                        tokens: 50,
                        logprob_mean: lp,
                        logprob_min: 4.0 * lp,
                        tail_mass: -lp / 2.0,
                    }),
                    finish_reason: Some("stop".into()),
                    ..Default::default()
                }
            })
            .collect()
    }

    #[test]
    fn fits_per_model_and_says_why_not() {
        let mut rs = records("small", 200, 50);
        rs.extend(records("hopeless", 100, 0));
        rs.push(Record { prompt_id: "p0".into(), model: "silent".into(), ..Default::default() });
        let set = VerifierSet::fit(&rs, 7);
        let v = set.get("small").expect("small has a verifier");
        assert_eq!(v.answers().0 + v.answers().1, 200);
        let sure = v.confidence(&crate::verify::signal_features(&rs[0].signals.unwrap(), false));
        assert!(sure > 0.8, "{sure}");
        // Half its answers are wrong, yet its confident ones can be promised at 10% error.
        let t = v.threshold(0.1, 0.1).expect("a threshold");
        assert!(t.risk <= 0.1 && t.coverage > 0.2, "{t:?}");
        let missing: BTreeMap<&str, &str> = set.missing().collect();
        assert!(missing["hopeless"].contains("all wrong"), "{missing:?}");
        assert!(missing["silent"].contains("no answer signals"), "{missing:?}");
        assert_eq!(set.models().count(), 1);
    }
}
