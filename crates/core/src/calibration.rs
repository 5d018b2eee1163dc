//! Turning raw predictor scores into probabilities one can act on ("p = 0.8" should mean
//! 80% of such answers are good), plus the numbers that say how well that worked:
//! ECE (15 equal-width bins), Brier score and AUROC.
//!
//! Which map is used (none, Platt scaling, isotonic regression) is decided by
//! cross-validation on the validation split itself: isotonic wins on large splits, Platt
//! or nothing on small ones (MT-Bench has ~15 validation prompts per fold).

use serde::{Deserialize, Serialize};

/// Validation pairs needed before isotonic regression is even considered.
pub const ISOTONIC_MIN_POINTS: usize = 100;
/// Number of equal-width bins for ECE.
pub const ECE_BINS: usize = 15;

/// A calibration method: fits a map on (raw score, outcome) pairs.
type FitFn<'a> = &'a dyn Fn(&[f64], &[f64]) -> Calibrator;

/// A monotone map from raw score to calibrated probability.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Calibrator {
    Identity,
    /// p = σ(a·logit(s) + b).
    Platt {
        a: f64,
        b: f64,
    },
    /// Piecewise-linear through the pooled-adjacent-violators block centres.
    Isotonic {
        xs: Vec<f64>,
        ys: Vec<f64>,
    },
}

impl Calibrator {
    /// Fits on (raw score, observed outcome) pairs. The method (none, Platt, isotonic) is
    /// chosen by two-fold cross-validation inside the given pairs, so that a free-form
    /// isotonic map is only used when it generalises (on small validation splits it
    /// memorises noise and makes calibration worse than the raw scores).
    pub fn fit(raw: &[f64], y: &[f64]) -> Calibrator {
        if raw.len() < 4 {
            return Calibrator::Identity;
        }
        let half = |parity: usize| -> (Vec<f64>, Vec<f64>) {
            (0..raw.len()).filter(|i| i % 2 == parity).map(|i| (raw[i], y[i])).unzip()
        };
        let (a, b) = (half(0), half(1));
        let held_out = |fit: FitFn| -> f64 {
            let err = |c: Calibrator, (r, t): &(Vec<f64>, Vec<f64>)| {
                brier(&r.iter().map(|&s| c.apply(s)).collect::<Vec<_>>(), t)
            };
            err(fit(&a.0, &a.1), &b) + err(fit(&b.0, &b.1), &a)
        };
        let methods: [(FitFn, bool); 3] = [
            (&|_, _| Calibrator::Identity, true),
            (&fit_platt, true),
            (&fit_isotonic, raw.len() >= ISOTONIC_MIN_POINTS),
        ];
        let mut best: Option<(f64, usize)> = None;
        for (i, (fit, allowed)) in methods.iter().enumerate() {
            if *allowed {
                let e = held_out(*fit);
                if best.is_none_or(|(b, _)| e < b) {
                    best = Some((e, i));
                }
            }
        }
        let chosen = best.map_or(0, |b| b.1);
        (methods[chosen].0)(raw, y)
    }

    pub fn apply(&self, s: f64) -> f64 {
        match self {
            Calibrator::Identity => s.clamp(0.0, 1.0),
            Calibrator::Platt { a, b } => sigmoid(a * logit(s) + b),
            Calibrator::Isotonic { xs, ys } => interpolate(xs, ys, s),
        }
    }
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Pool-adjacent-violators on points sorted by raw score; each block contributes its mean
/// (x, y), and predictions interpolate linearly between block means.
pub fn fit_isotonic(raw: &[f64], y: &[f64]) -> Calibrator {
    let mut pts: Vec<(f64, f64)> = raw.iter().copied().zip(y.iter().copied()).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Tied raw scores first become one weighted point, so their order cannot matter.
    let mut tied: Vec<(f64, f64, f64)> = Vec::new();
    let mut last_x = f64::NAN;
    for (x, t) in pts {
        let same = x == last_x;
        last_x = x;
        match tied.last_mut() {
            Some(last) if same => {
                last.0 += x;
                last.1 += t;
                last.2 += 1.0;
            }
            _ => tied.push((x, t, 1.0)),
        }
    }
    // Blocks: (sum x, sum y, count).
    let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
    for b in tied {
        blocks.push(b);
        while blocks.len() >= 2 {
            let (a, b) = (blocks[blocks.len() - 2], blocks[blocks.len() - 1]);
            if a.1 / a.2 >= b.1 / b.2 {
                blocks.pop();
                let last = blocks.len() - 1;
                blocks[last] = (a.0 + b.0, a.1 + b.1, a.2 + b.2);
            } else {
                break;
            }
        }
    }
    let xs = blocks.iter().map(|b| b.0 / b.2).collect();
    let ys = blocks.iter().map(|b| b.1 / b.2).collect();
    Calibrator::Isotonic { xs, ys }
}

fn interpolate(xs: &[f64], ys: &[f64], s: f64) -> f64 {
    match xs.iter().position(|&x| x >= s) {
        None => *ys.last().unwrap_or(&s),
        Some(0) => ys[0],
        Some(i) => {
            let (x0, x1, y0, y1) = (xs[i - 1], xs[i], ys[i - 1], ys[i]);
            if x1 - x0 < 1e-12 {
                y1
            } else {
                y0 + (y1 - y0) * (s - x0) / (x1 - x0)
            }
        }
    }
}

/// Platt scaling by damped Newton on the log-loss, with the usual target smoothing
/// ((n₊+1)/(n₊+2)) so that perfectly separable small samples do not diverge.
pub fn fit_platt(raw: &[f64], y: &[f64]) -> Calibrator {
    let npos: f64 = y.iter().sum();
    let nneg = y.len() as f64 - npos;
    let hi = (npos + 1.0) / (npos + 2.0);
    let lo = 1.0 / (nneg + 2.0);
    let t: Vec<f64> = y.iter().map(|&v| lo + v * (hi - lo)).collect();
    let z: Vec<f64> = raw.iter().map(|&s| logit(s)).collect();
    // Ridge-regularised log-loss (the ridge keeps it strictly convex when scores barely vary).
    let ridge = 1e-3;
    let loss = |a: f64, b: f64| -> f64 {
        let l: f64 = z
            .iter()
            .zip(&t)
            .map(|(zi, ti)| {
                let p = sigmoid(a * zi + b).clamp(1e-12, 1.0 - 1e-12);
                -(ti * p.ln() + (1.0 - ti) * (1.0 - p).ln())
            })
            .sum();
        l + ridge / 2.0 * ((a - 1.0).powi(2) + b * b)
    };
    let (mut a, mut b) = (1.0, 0.0);
    let mut current = loss(a, b);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (ridge * (a - 1.0), ridge * b, ridge, 0.0, ridge);
        for (zi, ti) in z.iter().zip(&t) {
            let p = sigmoid(a * zi + b);
            let w = p * (1.0 - p);
            ga += (p - ti) * zi;
            gb += p - ti;
            haa += w * zi * zi;
            hab += w * zi;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-300 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        // Newton step with backtracking: never accept a step that increases the loss.
        let mut step = 1.0;
        while step > 1e-6 && loss(a - step * da, b - step * db) > current {
            step /= 2.0;
        }
        if step <= 1e-6 {
            break;
        }
        a -= step * da;
        b -= step * db;
        let next = loss(a, b);
        let done = current - next < 1e-10;
        current = next;
        if done {
            break;
        }
    }
    Calibrator::Platt { a, b }
}

/// Calibration quality of predicted probabilities `p` against outcomes `y` in [0, 1].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct CalibrationReport {
    pub ece: f64,
    pub brier: f64,
    /// Area under the ROC curve with outcomes ≥ 0.5 counted as successes; NaN when only
    /// one class occurs.
    pub auroc: f64,
    pub n: usize,
}

pub fn report(p: &[f64], y: &[f64]) -> CalibrationReport {
    CalibrationReport { ece: ece(p, y, ECE_BINS), brier: brier(p, y), auroc: auroc(p, y), n: p.len() }
}

/// Expected calibration error: Σ_b |B_b|/n · |mean p − mean y| over equal-width bins.
pub fn ece(p: &[f64], y: &[f64], bins: usize) -> f64 {
    if p.is_empty() {
        return 0.0;
    }
    let mut acc = vec![(0.0, 0.0, 0usize); bins];
    for (&pi, &yi) in p.iter().zip(y) {
        let b = ((pi * bins as f64) as usize).min(bins - 1);
        acc[b].0 += pi;
        acc[b].1 += yi;
        acc[b].2 += 1;
    }
    acc.iter().filter(|a| a.2 > 0).map(|a| (a.0 - a.1).abs()).sum::<f64>() / p.len() as f64
}

pub fn brier(p: &[f64], y: &[f64]) -> f64 {
    if p.is_empty() {
        return 0.0;
    }
    p.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / p.len() as f64
}

/// Mann–Whitney AUROC with average ranks for ties.
pub fn auroc(p: &[f64], y: &[f64]) -> f64 {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut ranks = vec![0.0; p.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && p[idx[j + 1]] == p[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    let pos: Vec<usize> = (0..p.len()).filter(|&k| y[k] >= 0.5).collect();
    let (np, nn) = (pos.len() as f64, (p.len() - pos.len()) as f64);
    if np == 0.0 || nn == 0.0 {
        return f64::NAN;
    }
    let rsum: f64 = pos.iter().map(|&k| ranks[k]).sum();
    (rsum - np * (np + 1.0) / 2.0) / (np * nn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ece_hand_computed() {
        // Bin of 0.2s: mean p 0.2 vs mean y 0.5 → 0.3 gap, weight 1/2; bin of 0.9s: gap 0.1, weight 1/2.
        let p = [0.2, 0.2, 0.9, 0.9];
        let y = [0.0, 1.0, 1.0, 1.0];
        assert!((ece(&p, &y, 15) - 0.2).abs() < 1e-12);
        assert!((brier(&p, &y) - (0.04 + 0.64 + 0.01 + 0.01) / 4.0).abs() < 1e-12);
    }

    #[test]
    fn auroc_hand_computed() {
        assert_eq!(auroc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]), 0.75);
        assert_eq!(auroc(&[0.5, 0.5], &[0.0, 1.0]), 0.5);
        assert!(auroc(&[0.5], &[1.0]).is_nan());
    }

    #[test]
    fn isotonic_is_monotone_and_fixes_overconfidence() {
        // Raw scores are overconfident: true rate is 0.5 whatever the score.
        let raw: Vec<f64> = (0..400).map(|i| (i % 100) as f64 / 100.0).collect();
        let y: Vec<f64> = (0..400).map(|i| (i / 100 % 2) as f64).collect();
        let c = Calibrator::fit(&raw, &y);
        assert!(!matches!(c, Calibrator::Identity), "{c:?}");
        let before = ece(&raw, &y, 15);
        let cal: Vec<f64> = raw.iter().map(|&s| c.apply(s)).collect();
        assert!(ece(&cal, &y, 15) < 0.05 && before > 0.2, "{before}");
        assert!(c.apply(0.2) <= c.apply(0.8));
    }

    #[test]
    fn cross_validation_picks_isotonic_for_a_staircase() {
        // True success rate jumps from 0.2 to 0.9 at raw 0.7: no sigmoid of logit(raw) fits.
        let raw: Vec<f64> = (0..1000).map(|i| (i % 500) as f64 / 500.0).collect();
        let y: Vec<f64> = (0..1000)
            .map(|i| if raw[i] < 0.7 { (i % 5 == 0) as u8 as f64 } else { (i % 10 != 0) as u8 as f64 })
            .collect();
        let c = Calibrator::fit(&raw, &y);
        assert!(matches!(c, Calibrator::Isotonic { .. }), "{c:?}");
        assert!((c.apply(0.3) - 0.2).abs() < 0.05 && (c.apply(0.9) - 0.9).abs() < 0.05);
    }

    #[test]
    fn pav_pools_violators() {
        let Calibrator::Isotonic { xs, ys } = fit_isotonic(&[0.1, 0.2, 0.3], &[1.0, 0.0, 1.0]) else { panic!() };
        assert_eq!(ys, vec![0.5, 1.0]);
        assert!((xs[0] - 0.15).abs() < 1e-12);
    }

    #[test]
    fn platt_on_small_samples() {
        // Overconfident scores: Platt must soften them.
        let raw = [0.01, 0.02, 0.03, 0.97, 0.98, 0.99];
        let y = [0.0, 0.0, 1.0, 0.0, 1.0, 1.0];
        let c = Calibrator::fit(&raw, &y);
        assert!(matches!(c, Calibrator::Platt { .. }));
        assert!(c.apply(0.9) > c.apply(0.1));
        assert!(c.apply(0.99) < 0.95 && c.apply(0.01) > 0.05, "{c:?}");
        // Constant labels: nothing to learn, identity is kept.
        assert_eq!(Calibrator::fit(&[0.9, 0.95, 0.97], &[1.0, 1.0, 1.0]), Calibrator::Identity);
    }
}
