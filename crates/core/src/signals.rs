//! Answer-level signals: what the answering model's own token probabilities say about an
//! answer, stored with each collected outcome so that the lab can learn P(correct | prompt,
//! answer, signals). A model that hesitates (low-probability tokens) is more often wrong.

use serde::{Deserialize, Serialize};

/// Statistics of the log-probabilities of the generated tokens (natural log).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerSignals {
    /// Tokens the statistics cover.
    pub tokens: usize,
    /// Mean log-probability of the chosen tokens (0 = certain).
    pub logprob_mean: f64,
    /// The least likely chosen token's log-probability.
    pub logprob_min: f64,
    /// Mean probability mass the model put on other tokens, 1 − p(chosen), in [0, 1]:
    /// how much it hesitated on average.
    pub tail_mass: f64,
}

impl AnswerSignals {
    /// From the chosen tokens' log-probabilities; none when there are no tokens or a value
    /// is not a log-probability (NaN or above 0 beyond rounding).
    pub fn from_logprobs(logprobs: &[f32]) -> Option<AnswerSignals> {
        if logprobs.is_empty() || logprobs.iter().any(|l| l.is_nan() || *l > 1e-3) {
            return None;
        }
        let n = logprobs.len() as f64;
        // −∞ (a token the model gave no mass) is clamped so that means stay finite.
        let lp: Vec<f64> = logprobs.iter().map(|l| (*l as f64).clamp(-100.0, 0.0)).collect();
        Some(AnswerSignals {
            tokens: lp.len(),
            logprob_mean: lp.iter().sum::<f64>() / n,
            logprob_min: lp.iter().copied().fold(0.0, f64::min),
            tail_mass: lp.iter().map(|l| 1.0 - l.exp()).sum::<f64>() / n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_of_known_probabilities() {
        let s = AnswerSignals::from_logprobs(&[0.0, 0.5f32.ln(), 0.25f32.ln()]).unwrap();
        assert_eq!(s.tokens, 3);
        assert!((s.logprob_mean - (0.5f64.ln() + 0.25f64.ln()) / 3.0).abs() < 1e-6);
        assert!((s.logprob_min - 0.25f64.ln()).abs() < 1e-6);
        assert!((s.tail_mass - (0.0 + 0.5 + 0.75) / 3.0).abs() < 1e-6);
        assert!(AnswerSignals::from_logprobs(&[]).is_none());
        assert!(AnswerSignals::from_logprobs(&[f32::NAN]).is_none());
        assert!(AnswerSignals::from_logprobs(&[0.7]).is_none(), "not a log-probability");
        let inf = AnswerSignals::from_logprobs(&[f32::NEG_INFINITY, 0.0]).unwrap();
        assert!(inf.logprob_mean.is_finite() && inf.tail_mass == 0.5);
    }
}
