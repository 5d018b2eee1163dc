//! Thresholds with a finite-sample promise (Learn-then-Test, fixed-sequence testing).
//!
//! A confidence threshold τ is chosen on validation prompts so that a stated risk stays
//! below a target on *new* prompts with probability at least 1 − δ:
//!
//! * [`selective_threshold`]: among accepted answers (confidence ≥ τ), the share that is
//!   wrong — the selective error — is at most α;
//! * [`rate_threshold`]: the share of all requests scoring below τ (e.g. those escalated
//!   to the largest model) is at most β.
//!
//! Each candidate threshold is a hypothesis test: "the risk at τ exceeds the target",
//! rejected with an exact binomial p-value; a threshold is promised only if its test
//! rejects, with the family of tests controlled at δ (Angelopoulos et al., "Learn then
//! Test") by testing in a fixed order, strictest threshold first, and stopping at the
//! first failure — no multiple-testing correction is needed then. The guarantee assumes
//! validation and new prompts come from the same distribution.

use serde::Serialize;

/// A chosen threshold and what it did on the validation prompts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Threshold {
    pub tau: f64,
    /// Share of validation prompts the risk is measured on: the accepted answers for the
    /// selective error, all of them for a rate.
    pub coverage: f64,
    /// The risk measured on validation prompts at τ.
    pub risk: f64,
    /// The p-value of the last test passed (≤ δ).
    pub p_value: f64,
}

/// P(X ≤ k) for X ~ Binomial(n, p), summed in log space (stable for n in the tens of
/// thousands).
pub fn binomial_cdf(k: usize, n: usize, p: f64) -> f64 {
    if k >= n {
        return 1.0;
    }
    if p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return 0.0;
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let mut log_pmf = n as f64 * lq;
    let mut terms = Vec::with_capacity(k + 1);
    terms.push(log_pmf);
    for i in 0..k {
        log_pmf += ((n - i) as f64 / (i + 1) as f64).ln() + lp - lq;
        terms.push(log_pmf);
    }
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()).exp().min(1.0)
}

/// Learn-then-Test by fixed-sequence testing. `candidates` are thresholds in a fixed order,
/// safest first; `counts(τ)` gives (bad outcomes, trials) at τ, and H0 "the risk at τ
/// exceeds `target`" is rejected when P(Binomial(trials, target) ≤ bad) ≤ δ. Returns the
/// last candidate rejected before the first that is not (none if the first is not).
pub fn fixed_sequence(
    candidates: &[f64],
    target: f64,
    delta: f64,
    mut counts: impl FnMut(f64) -> (usize, usize),
    population: usize,
) -> Option<Threshold> {
    let mut best = None;
    for &tau in candidates {
        let (bad, trials) = counts(tau);
        let p = binomial_cdf(bad, trials, target);
        if trials == 0 || p > delta {
            break;
        }
        best = Some(Threshold {
            tau,
            coverage: trials as f64 / population.max(1) as f64,
            risk: bad as f64 / trials as f64,
            p_value: p,
        });
    }
    best
}

/// Coverage levels tested for the selective error: 5%, 10%, …, 100% of the prompts.
pub const COVERAGE_LEVELS: usize = 20;

/// The lowest confidence threshold (most answers accepted) whose selective error is at most
/// `alpha` with probability ≥ 1 − `delta`. None when not even the most confident answers
/// pass: then no answer can be promised at that error.
///
/// Thresholds accepting the top 5%, 10%, … of the prompts (by confidence alone, so the
/// sequence is fixed before any outcome is looked at) are tested in that order. Steps of
/// 5% rather than one answer at a time: a handful of answers cannot show a 10% error rate,
/// so a sequence starting at the single most confident answer would stop at once. For the
/// same reason levels accepting too few answers for even a flawless record to pass
/// ((1 − α)ⁿ > δ) are not tested at all: which levels those are depends on the number of
/// answers only, not on any outcome, so leaving them out keeps the sequence fixed in advance.
pub fn selective_threshold(confidence: &[f64], correct: &[bool], alpha: f64, delta: f64) -> Option<Threshold> {
    let n = confidence.len().min(correct.len());
    let mut sorted: Vec<f64> = confidence[..n].iter().copied().filter(|c| c.is_finite()).collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    if sorted.is_empty() {
        return None;
    }
    let mut levels: Vec<f64> =
        (1..=COVERAGE_LEVELS).map(|g| sorted[(g * sorted.len()).div_ceil(COVERAGE_LEVELS).max(1) - 1]).collect();
    levels.dedup();
    let accepted_at = |tau: f64| confidence[..n].iter().filter(|c| **c >= tau).count();
    levels.retain(|&tau| binomial_cdf(0, accepted_at(tau), alpha) <= delta);
    // Accepted: confidence ≥ τ (ties at τ together); bad: accepted and wrong.
    let counts = |tau: f64| {
        let accepted = (0..n).filter(|&i| confidence[i] >= tau);
        accepted.fold((0, 0), |(bad, all), i| (bad + usize::from(!correct[i]), all + 1))
    };
    fixed_sequence(&levels, alpha, delta, counts, n)
}

/// The highest threshold τ such that the share of requests whose score is *below* τ is at
/// most `beta` with probability ≥ 1 − `delta` — e.g. τ_accept for "at most β of requests
/// escalate" when a request escalates while its confidence is below τ. Thresholds are
/// tried from the lowest score up. None when even the lowest cannot promise it.
pub fn rate_threshold(scores: &[f64], beta: f64, delta: f64) -> Option<Threshold> {
    let n = scores.len();
    let mut candidates: Vec<f64> = scores.iter().copied().filter(|s| s.is_finite()).collect();
    candidates.sort_by(f64::total_cmp);
    candidates.dedup();
    let counts = |tau: f64| (scores.iter().filter(|s| **s < tau).count(), n);
    fixed_sequence(&candidates, beta, delta, counts, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (the tests must not depend on a crate's stream).
    struct SplitMix(u64);
    impl SplitMix {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Calibrated synthetic answers: confidence c ~ U(0, 1), correct with probability c, so
    /// the selective error at τ is (1 − τ) / 2 and the best τ for α = 0.1 is 0.8.
    fn answers(rng: &mut SplitMix, n: usize) -> (Vec<f64>, Vec<bool>) {
        (0..n)
            .map(|_| {
                let c = rng.next();
                (c, rng.next() < c)
            })
            .unzip()
    }

    #[test]
    fn binomial_tail_matches_known_values() {
        assert!((binomial_cdf(0, 3, 0.5) - 0.125).abs() < 1e-12);
        assert!((binomial_cdf(1, 3, 0.5) - 0.5).abs() < 1e-12);
        assert!((binomial_cdf(5, 10, 0.3) - 0.952_651_012_4).abs() < 1e-9);
        assert_eq!(binomial_cdf(3, 3, 0.9), 1.0);
        let far = binomial_cdf(10, 10_000, 0.1);
        assert!(far < 1e-12 && !far.is_nan(), "far in the tail: {far}");
    }

    #[test]
    fn the_selective_error_promise_holds_on_new_data_in_all_but_delta_of_trials() {
        let (alpha, delta) = (0.10, 0.10);
        let mut rng = SplitMix(7);
        let (mut violations, mut taus) = (0, Vec::new());
        let trials = 300;
        for _ in 0..trials {
            let (c, y) = answers(&mut rng, 2000);
            let Some(t) = selective_threshold(&c, &y, alpha, delta) else { continue };
            taus.push(t.tau);
            // The true selective error at τ on unlimited new data: (1 − τ) / 2.
            if (1.0 - t.tau) / 2.0 > alpha {
                violations += 1;
            }
        }
        let rate = violations as f64 / trials as f64;
        assert!(rate <= delta, "promise broken in {rate:.3} of trials (allowed {delta})");
        // Not vacuous: the thresholds stay near the best possible one (0.8).
        let mean = taus.iter().sum::<f64>() / taus.len() as f64;
        assert!(taus.len() >= trials * 9 / 10, "a threshold in {} of {trials} trials", taus.len());
        assert!(mean > 0.8 && mean < 0.9, "mean τ {mean}");
    }

    /// A small validation set: the top 5% (10 answers) cannot show a 10% error rate even when
    /// flawless, so testing starts at the first level that can.
    #[test]
    fn levels_too_small_to_test_are_skipped_not_failed() {
        let n = 200;
        let c: Vec<f64> = (0..n).map(|i| 1.0 - i as f64 / n as f64).collect();
        let y: Vec<bool> = (0..n).map(|i| i < 100 || i % 2 == 0).collect();
        let t = selective_threshold(&c, &y, 0.10, 0.10).expect("the flawless top half passes, and a little more");
        assert!(t.risk <= 0.1 && t.coverage >= 0.5, "{t:?}");
    }

    #[test]
    fn an_unreachable_error_target_gives_no_threshold() {
        let mut rng = SplitMix(3);
        // Every answer is a coin flip: no threshold reaches 10% selective error.
        let c: Vec<f64> = (0..400).map(|_| rng.next()).collect();
        let y: Vec<bool> = (0..400).map(|_| rng.next() < 0.5).collect();
        assert!(selective_threshold(&c, &y, 0.10, 0.10).is_none());
    }

    #[test]
    fn the_escalation_rate_promise_holds() {
        let (beta, delta) = (0.6, 0.1);
        let mut rng = SplitMix(11);
        let mut violations = 0;
        for _ in 0..300 {
            let s: Vec<f64> = (0..300).map(|_| rng.next()).collect();
            let t = rate_threshold(&s, beta, delta).expect("a rate of 60% is reachable");
            // True share of U(0, 1) scores below τ: τ.
            if t.tau > beta {
                violations += 1;
            }
            assert!(t.p_value <= delta);
        }
        assert!(violations as f64 / 300.0 <= delta, "{violations} violations");
    }
}
