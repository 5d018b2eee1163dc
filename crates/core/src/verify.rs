//! Answer-level confidence and the policies that use it: read the *answer*, not only the
//! prompt, to decide whether to accept it, escalate to a larger model, or say "I don't know".
//!
//! * [`AnswerModel`]: P(correct | answer signals) for one model — a logistic regression on
//!   the answering model's token statistics (and whether it ran out of tokens), fitted on
//!   training prompts and calibrated on validation prompts.
//! * [`run_ladder`]: one prompt through `verify` or `cascade` with every attempt paid and
//!   its latency added, ending in an answer or an abstention.
//!
//! Thresholds for these policies come from [`crate::risk`], with a finite-sample promise.

use crate::calibration::Calibrator;
use crate::features::{SparseVec, Standardizer};
use crate::predictors::logreg::LogReg;
use crate::predictors::Predictor;
use crate::records::Record;
use crate::signals::AnswerSignals;
use serde::{Deserialize, Serialize};

/// The numbers an answer is judged by from the answering model's own token probabilities,
/// in vector order.
pub const ANSWER_FEATURES: [&str; 5] = ["logprob_mean", "logprob_min", "tail_mass", "ln_tokens", "truncated"];

/// Which signals beyond the token probabilities an answer model reads. Each adds two
/// numbers: the signal (½ when absent) and whether it is present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalSet {
    /// A judge model's P("yes") (`Record::judge_p_yes`).
    pub judge: bool,
    /// Code answers run on their docstring's examples (`Record::examples_pass`).
    pub examples: bool,
}

impl SignalSet {
    /// Parses a comma-separated list of `logprobs` (always read), `judge`, `examples`, `all`.
    pub fn parse(s: &str) -> anyhow::Result<SignalSet> {
        let mut set = SignalSet::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "logprobs" => {}
                "judge" => set.judge = true,
                "examples" => set.examples = true,
                "all" => set = SignalSet { judge: true, examples: true },
                other => anyhow::bail!("unknown signal `{other}` (logprobs, judge, examples, all)"),
            }
        }
        Ok(set)
    }

    /// In words, for reports.
    pub fn describe(&self) -> String {
        let mut parts = vec!["token log-probabilities"];
        if self.judge {
            parts.push("judge P(yes)");
        }
        if self.examples {
            parts.push("docstring examples");
        }
        parts.join(" + ")
    }
}

/// The features of one recorded answer; none when the record has no token signals.
pub fn answer_features(r: &Record, set: SignalSet) -> Option<Vec<f32>> {
    let mut x = signal_features(&r.signals?, r.finish_reason.as_deref() == Some("length"));
    let mut optional = |v: Option<f64>| {
        x.push(v.map_or(0.5, |v| v as f32));
        x.push(if v.is_some() { 1.0 } else { 0.0 });
    };
    if set.judge {
        optional(r.judge_p_yes);
    }
    if set.examples {
        optional(r.examples_pass);
    }
    Some(x)
}

/// The token-probability features of an answer with these signals, cut off by the token
/// limit or not (the same for recorded answers and for answers a server is checking).
pub fn signal_features(s: &AnswerSignals, truncated: bool) -> Vec<f32> {
    vec![
        s.logprob_mean as f32,
        s.logprob_min as f32,
        s.tail_mass as f32,
        (1.0 + s.tokens as f32).ln(),
        if truncated { 1.0 } else { 0.0 },
    ]
}

/// L2 strengths tried on the validation prompts.
const L2_GRID: [f64; 3] = [1e-4, 1e-3, 1e-2];

/// P(correct | answer) for one model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnswerModel {
    scale: Standardizer,
    fit: LogReg,
    calibrator: Calibrator,
}

impl AnswerModel {
    /// Fits on training answers (features, score in [0, 1]), chooses the L2 strength and
    /// calibrates on validation answers. None without both kinds of outcome in training.
    pub fn fit(train: &[(Vec<f32>, f64)], val: &[(Vec<f32>, f64)], seed: u64) -> Option<AnswerModel> {
        let has = |v: &[(Vec<f32>, f64)], good: bool| v.iter().any(|(_, y)| (*y >= 0.5) == good);
        if !has(train, true) || !has(train, false) {
            return None;
        }
        let dim = train[0].0.len();
        let rows: Vec<&[f32]> = train.iter().map(|(x, _)| x.as_slice()).collect();
        let scale = Standardizer::fit(&rows);
        let encode = |x: &[f32]| SparseVec::from_dense(&scale.z(x));
        let xs: Vec<SparseVec> = train.iter().map(|(x, _)| encode(x)).collect();
        let ys: Vec<Vec<Option<f64>>> = train.iter().map(|(_, y)| vec![Some(*y)]).collect();
        let xv: Vec<SparseVec> = val.iter().map(|(x, _)| encode(x)).collect();
        let yv: Vec<f64> = val.iter().map(|(_, y)| *y).collect();
        let brier = |m: &LogReg| -> f64 {
            xv.iter().zip(&yv).map(|(x, y)| (m.predict(x)[0] - y).powi(2)).sum::<f64>() / yv.len().max(1) as f64
        };
        let fit = L2_GRID
            .iter()
            .map(|&l2| LogReg::fit(&xs, &ys, dim, 1, l2, seed))
            .min_by(|a, b| brier(a).total_cmp(&brier(b)))?;
        let raw: Vec<f64> = xv.iter().map(|x| fit.predict(x)[0]).collect();
        let calibrator = Calibrator::fit(&raw, &yv);
        Some(AnswerModel { scale, fit, calibrator })
    }

    /// Calibrated P(correct) of an answer with these features.
    pub fn confidence(&self, x: &[f32]) -> f64 {
        let raw = self.fit.predict(&SparseVec::from_dense(&self.scale.z(x)))[0];
        self.calibrator.apply(raw)
    }
}

/// One model's answer to one prompt, as the ladder sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attempt {
    pub score: f64,
    pub cost: f64,
    pub latency_ms: f64,
    /// Calibrated P(correct) of this answer.
    pub confidence: f64,
}

/// What happened to one prompt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LadderOutcome {
    /// The model whose answer was kept (the last one tried).
    pub model: usize,
    /// Models tried, in order (1 = the first answer was accepted).
    pub attempts: usize,
    /// The kept answer's score, 0 when abstained.
    pub score: f64,
    /// Every attempt's cost, summed.
    pub cost: f64,
    /// Every attempt's latency, summed (attempts run one after another).
    pub latency_ms: f64,
    /// "I don't know" instead of the last answer.
    pub abstained: bool,
    /// The kept answer was wrong (score < 0.5) — abstained answers are not errors.
    pub error: bool,
}

/// Runs one prompt up `ladder` (model indices, cheapest first) from position `start`:
/// accept an answer whose confidence is at least `tau_accept`, else try the next model; the
/// last rung's answer is kept whatever its confidence. Then, if the kept answer's
/// confidence is below `tau_abstain`, abstain.
pub fn run_ladder(
    attempts: &[Attempt],
    ladder: &[usize],
    start: usize,
    tau_accept: f64,
    tau_abstain: f64,
) -> LadderOutcome {
    let mut cost = 0.0;
    let mut latency_ms = 0.0;
    let mut pos = start.min(ladder.len().saturating_sub(1));
    let mut tried = 0;
    loop {
        let a = attempts[ladder[pos]];
        cost += a.cost;
        latency_ms += a.latency_ms;
        tried += 1;
        if a.confidence >= tau_accept || pos + 1 == ladder.len() {
            let abstained = a.confidence < tau_abstain;
            let score = if abstained { 0.0 } else { a.score };
            return LadderOutcome {
                model: ladder[pos],
                attempts: tried,
                score,
                cost,
                latency_ms,
                abstained,
                error: !abstained && a.score < 0.5,
            };
        }
        pos += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(score: f64, cost: f64, confidence: f64) -> Attempt {
        Attempt { score, cost, latency_ms: 10.0 * cost, confidence }
    }

    #[test]
    fn every_attempt_is_paid_and_the_last_rung_answers_unless_abstaining() {
        let a = [attempt(0.0, 1.0, 0.3), attempt(1.0, 3.0, 0.9), attempt(1.0, 10.0, 0.95)];
        let ladder = [0, 1, 2];
        // The small model hesitates, the medium one is trusted: 1 + 3 paid.
        let o = run_ladder(&a, &ladder, 0, 0.8, 0.0);
        assert_eq!((o.model, o.attempts, o.score, o.cost, o.latency_ms), (1, 2, 1.0, 4.0, 40.0));
        assert!(!o.abstained && !o.error);
        // Starting at the medium model (a router's choice) skips the small one.
        assert_eq!(run_ladder(&a, &ladder, 1, 0.8, 0.0).cost, 3.0);
        // Nobody trusted: the largest answers.
        let o = run_ladder(&a, &ladder, 0, 0.99, 0.0);
        assert_eq!((o.model, o.cost), (2, 14.0));
        // ... unless even its confidence is below the abstention threshold.
        let o = run_ladder(&a, &ladder, 0, 0.99, 0.97);
        assert!(o.abstained && !o.error && o.score == 0.0 && o.cost == 14.0);
        // A confident wrong answer is an error.
        let wrong = [attempt(0.0, 1.0, 0.9)];
        assert!(run_ladder(&wrong, &[0], 0, 0.5, 0.0).error);
    }

    fn rec(lp_mean: f64, truncated: bool) -> Record {
        Record {
            signals: Some(AnswerSignals {
                tokens: 40,
                logprob_mean: lp_mean,
                logprob_min: 3.0 * lp_mean,
                tail_mass: -lp_mean / 2.0,
            }),
            finish_reason: Some(if truncated { "length" } else { "stop" }.into()),
            ..Default::default()
        }
    }

    /// Answers whose mean log-probability is high are right more often: the model learns
    /// the direction and ranks a confident answer above a hesitant one.
    #[test]
    fn confidence_follows_the_signals() {
        let mut data = Vec::new();
        for i in 0..400 {
            let lp = -((i % 40) as f64) / 20.0; // 0 … −1.95
            let correct = (i * 7919) % 100 < (100.0 * (1.0 + lp / 2.0)) as usize;
            let x = answer_features(&rec(lp, i % 10 == 0), SignalSet::default()).unwrap();
            data.push((x, if correct { 1.0 } else { 0.0 }));
        }
        let m = AnswerModel::fit(&data[..300], &data[300..], 1).unwrap();
        let sure = m.confidence(&answer_features(&rec(-0.05, false), SignalSet::default()).unwrap());
        let unsure = m.confidence(&answer_features(&rec(-1.9, false), SignalSet::default()).unwrap());
        assert!(sure > unsure + 0.2, "{sure} vs {unsure}");
        assert!(answer_features(&Record::default(), SignalSet::default()).is_none(), "no signals, no features");
        // Optional signals: the value (½ when absent) and whether it is there.
        let with_judge = Record { judge_p_yes: Some(0.9), ..rec(-0.1, false) };
        let all = SignalSet::parse("logprobs,all").unwrap();
        assert_eq!(answer_features(&with_judge, all).unwrap()[5..], [0.9, 1.0, 0.5, 0.0]);
        assert!(SignalSet::parse("vibes").is_err());
        assert!(AnswerModel::fit(&data[..1], &data[300..], 1).is_none(), "one outcome only");
    }
}
