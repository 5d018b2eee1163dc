//! Checking an answer before the client sees it (`auto:verify`, `auto:cascade`).
//!
//! Each answer's token log-probabilities become a calibrated P(correct) through the
//! answering model's verifier (fitted at start-up from recorded answers, see
//! `conductor_core::verifiers`). An answer is *accepted* when that confidence reaches the
//! model's threshold for the request's `max_risk` — the lowest confidence at which, on
//! held-out answers, at most `max_risk` of that model's accepted answers were wrong, with
//! probability ≥ 1 − δ (Learn-then-Test). Otherwise the next model up the ladder answers.
//!
//! An answer that cannot be checked — the model has no verifier, or its provider returned
//! no log-probabilities (Anthropic never does) — is never accepted as verified: the request
//! escalates, and if nothing above it can answer, it goes out marked `verified: false` or,
//! with `abstain`, becomes "I don't know". Every verdict is in the books.

use conductor_core::signals::AnswerSignals;
use conductor_core::verifiers::VerifierSet;
use conductor_core::verify::signal_features;
use conductor_providers::ChatResponse;
use serde::{Deserialize, Serialize};

/// Where the ladder starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// At the model the request's policy chooses; escalate while unconvinced.
    Verify,
    /// At the cheapest model the router predicts adequate (threshold policy); escalate
    /// step by step.
    Cascade,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Verify => "verify",
            Strategy::Cascade => "cascade",
        }
    }

    pub fn parse(s: &str) -> Option<Strategy> {
        match s {
            "verify" => Some(Strategy::Verify),
            "cascade" => Some(Strategy::Cascade),
            _ => None,
        }
    }
}

/// What a request asked of verification.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Check {
    pub strategy: Strategy,
    /// Largest share of accepted answers allowed to be wrong.
    pub max_risk: f64,
    /// Say "I don't know" rather than return an answer that was not accepted.
    pub abstain: bool,
}

/// The verdict on one answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Calibrated P(correct); none when the answer could not be checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// The acceptance threshold for this model at the request's `max_risk`; none when the
    /// model cannot be promised at that risk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau: Option<f64>,
    pub accepted: bool,
    /// In words, for the books and `conductor logs`.
    pub reason: String,
    /// What the confidence was computed from: the answer's token statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signals: Option<AnswerSignals>,
}

/// Checks one answer from `model` (`delta`: the promise's failure probability).
pub fn judge(verifiers: &VerifierSet, model: &str, r: &ChatResponse, check: &Check, delta: f64) -> Verdict {
    let unchecked = |reason: String| Verdict { confidence: None, tau: None, accepted: false, reason, signals: None };
    let Some(v) = verifiers.get(model) else {
        return unchecked(format!("no verifier for {model} (no recorded answers with signals)"));
    };
    let lps: Vec<f32> = r.logprobs.iter().flatten().map(|t| t.logprob).collect();
    let Some(signals) = AnswerSignals::from_logprobs(&lps) else {
        return unchecked(format!("{model} returned no token log-probabilities"));
    };
    let confidence = v.confidence(&signal_features(&signals, r.finish_reason == "length"));
    let tau = v.threshold(check.max_risk, delta).map(|t| t.tau);
    let accepted = tau.is_some_and(|t| confidence >= t);
    let reason = match tau {
        Some(t) if accepted => format!("confidence {confidence:.3} ≥ τ {t:.3} (max_risk {})", check.max_risk),
        Some(t) => format!("confidence {confidence:.3} < τ {t:.3} (max_risk {})", check.max_risk),
        None => format!(
            "confidence {confidence:.3}; no threshold of {model} keeps its error within max_risk {}",
            check.max_risk
        ),
    };
    Verdict { confidence: Some(confidence), tau, accepted, reason, signals: Some(signals) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conductor_core::records::Record;
    use conductor_providers::{TokenLogprob, Usage};

    fn verifiers() -> VerifierSet {
        let records: Vec<Record> = (0..300)
            .map(|i| {
                let correct = i % 2 == 0;
                let lp = if correct { -0.05 - (i % 7) as f64 / 100.0 } else { -1.0 - (i % 5) as f64 / 10.0 };
                Record {
                    prompt_id: format!("p{i}"),
                    model: "m".into(),
                    score: if correct { 1.0 } else { 0.0 },
                    signals: Some(AnswerSignals {
                        tokens: 20,
                        logprob_mean: lp,
                        logprob_min: 3.0 * lp,
                        tail_mass: -lp / 3.0,
                    }),
                    finish_reason: Some("stop".into()),
                    ..Default::default()
                }
            })
            .collect();
        VerifierSet::fit(&records, 1)
    }

    fn answer(p: Option<f32>) -> ChatResponse {
        ChatResponse {
            text: "x".into(),
            finish_reason: "stop".into(),
            usage: Usage::default(),
            tool_calls: vec![],
            logprobs: p.map(|p| {
                (0..20)
                    .map(|_| TokenLogprob { token: "t".into(), logprob: p.ln(), bytes: None, top_logprobs: vec![] })
                    .collect()
            }),
        }
    }

    #[test]
    fn accepts_confident_answers_and_never_unchecked_ones() {
        let (v, check) = (verifiers(), Check { strategy: Strategy::Verify, max_risk: 0.1, abstain: false });
        let sure = judge(&v, "m", &answer(Some(0.95)), &check, 0.1);
        assert!(sure.accepted && sure.confidence.unwrap() > 0.8, "{sure:?}");
        assert_eq!(sure.signals.unwrap().tokens, 20, "the signals are kept with the verdict");
        let unsure = judge(&v, "m", &answer(Some(0.3)), &check, 0.1);
        assert!(!unsure.accepted && unsure.reason.contains('<'), "{unsure:?}");
        let silent = judge(&v, "m", &answer(None), &check, 0.1);
        assert!(!silent.accepted && silent.confidence.is_none() && silent.reason.contains("log-probabilities"));
        let stranger = judge(&v, "other", &answer(Some(0.99)), &check, 0.1);
        assert!(!stranger.accepted && stranger.reason.contains("no verifier"));
    }
}
