//! Cost–quality metrics of routers over any number of models (definitions from RouteLLM and
//! RouterBench, generalised from two models to N).
//!
//! Two **reference models** anchor the normalised metrics, both chosen from data on
//! training and validation prompts only (see [`References::choose`]): the *best single*
//! model (highest quality) and the *cheapest* model (lowest mean cost). With two models
//! they are RouteLLM's "strong" and "weak".
//!
//! * Cost share x = (C − C_cheap) / (C_best − C_cheap), where C is the mean over prompts of
//!   the chosen model's mean cost per call on the evaluated prompts. With two models, x is
//!   exactly the share of calls to the strong model (RouteLLM's axis); with N it weighs each
//!   choice by its model's price.
//! * PGR(q) = (q − q_cheap) / (q_best − q_cheap). PGR > 1 means better than the best single
//!   model; PGR < 0 worse than the cheapest.
//! * APGR = ∫₀¹ PGR(x) dx over the piecewise-linear curve through the router's operating
//!   points with x in [0, 1], anchored at "always cheapest" (0, 0) and "always best"
//!   (1, 1) — mixing two operating points at random reaches every point between them.
//!   Undefined (`None`) when the best single model is also the cheapest (no cost to trade)
//!   or the two have the same quality (no gap to recover).
//! * CPT(p) = the smallest cost share at which PGR reaches p.
//! * AIQ = area under the upper convex hull of (cost, quality) points over the normalised
//!   cost range [cheapest model's cost, most expensive model's cost].

use crate::policy::{choose_index, Policy};
use serde::{Deserialize, Serialize};

/// One operating point of a routing policy on a set of prompts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    /// The policy knob (λ, τ, …) that produced this point.
    pub param: f64,
    pub quality: f64,
    /// Mean cost per prompt (USD).
    pub cost: f64,
    /// Share of prompts sent to the best single model (the reference).
    pub strong_share: f64,
    /// Cost share (see the module docs); `None` when the cost axis is degenerate.
    #[serde(default)]
    pub cost_share: Option<f64>,
    /// Mean measured latency per prompt (ms); `None` unless every chosen answer has one.
    #[serde(default)]
    pub latency_ms: Option<f64>,
    /// Standard error of (quality − the best single model's quality), paired by prompt: how
    /// far apart the two really are, beyond which prompts happened to be drawn.
    #[serde(default)]
    pub diff_se: Option<f64>,
}

/// The two models the normalised metrics are anchored to (indices into the catalogue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct References {
    /// Highest mean quality; ties → lower mean cost → earlier in the catalogue.
    pub best: usize,
    /// Lowest mean cost; ties → higher mean quality → earlier in the catalogue.
    pub cheapest: usize,
}

impl References {
    /// The tie-breaking rule, as printed in reports.
    pub const RULE: &'static str = "best single = highest mean quality on training and validation prompts \
        (ties: lower mean cost, then catalogue order); cheapest = lowest mean cost (ties: higher quality, then catalogue order)";

    /// Chooses both references from the given prompts' realised scores and costs (pass
    /// training and validation prompts only, never test prompts).
    pub fn choose(scores: &[Vec<f64>], costs: &[Vec<f64>]) -> References {
        let m = scores.first().map_or(0, Vec::len);
        let q = column_means(scores, m);
        let c = column_means(costs, m);
        let eq = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0);
        let mut best = 0;
        let mut cheapest = 0;
        for j in 1..m {
            let better = q[j] > q[best] && !eq(q[j], q[best]);
            if better || (eq(q[j], q[best]) && c[j] < c[best] && !eq(c[j], c[best])) {
                best = j;
            }
            let cheaper = c[j] < c[cheapest] && !eq(c[j], c[cheapest]);
            if cheaper || (eq(c[j], c[cheapest]) && q[j] > q[cheapest] && !eq(q[j], q[cheapest])) {
                cheapest = j;
            }
        }
        References { best, cheapest }
    }
}

fn column_means(rows: &[Vec<f64>], m: usize) -> Vec<f64> {
    let n = rows.len().max(1) as f64;
    (0..m).map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n).collect()
}

/// Ground truth of an evaluation set: realised scores and costs, prompts × models.
pub struct Outcomes<'a> {
    pub scores: &'a [Vec<f64>],
    pub costs: &'a [Vec<f64>],
    pub refs: References,
    /// Measured latencies, prompts × models; may be empty (RouteLLM data has none).
    pub latencies: &'a [Vec<Option<f64>>],
    /// Each model's mean cost per call on these prompts (the cost-share axis).
    mean_cost: Vec<f64>,
}

impl<'a> Outcomes<'a> {
    pub fn new(
        scores: &'a [Vec<f64>],
        costs: &'a [Vec<f64>],
        refs: References,
        latencies: &'a [Vec<Option<f64>>],
    ) -> Outcomes<'a> {
        let m = scores.first().map_or(0, Vec::len);
        Outcomes { scores, costs, refs, latencies, mean_cost: column_means(costs, m) }
    }

    /// Maps a mean of per-model mean costs onto the cost-share axis; `None` when the best
    /// single model is not dearer than the cheapest.
    fn cost_share(&self, mean_flat_cost: f64) -> Option<f64> {
        let (lo, hi) = (self.mean_cost.get(self.refs.cheapest)?, self.mean_cost.get(self.refs.best)?);
        (hi - lo > 1e-15 * hi.abs().max(1e-300)).then(|| (mean_flat_cost - lo) / (hi - lo))
    }

    /// Quality, cost and shares of a routing (one model index per prompt).
    pub fn evaluate(&self, choices: &[usize], param: f64) -> OperatingPoint {
        let n = choices.len().max(1) as f64;
        let best = self.refs.best;
        let mut q = 0.0;
        let mut c = 0.0;
        let mut flat = 0.0;
        let mut s = 0.0;
        let mut lat = Some(0.0);
        let (mut d1, mut d2) = (0.0, 0.0);
        for (i, &m) in choices.iter().enumerate() {
            q += self.scores[i][m];
            c += self.costs[i][m];
            flat += self.mean_cost[m];
            s += (m == best) as u8 as f64;
            lat = lat.zip(self.latency(i, m)).map(|(a, b)| a + b);
            let d = self.scores[i][m] - self.scores[i][best];
            d1 += d;
            d2 += d * d;
        }
        // Sample variance of the paired differences (n − 1), then the SE of their mean.
        let var = if choices.len() > 1 { (d2 - d1 * d1 / n) / (n - 1.0) } else { 0.0 };
        let diff_se = (!choices.is_empty()).then(|| (var.max(0.0) / n).sqrt());
        OperatingPoint {
            param,
            quality: q / n,
            cost: c / n,
            strong_share: s / n,
            cost_share: self.cost_share(flat / n),
            latency_ms: lat.map(|l| l / n),
            diff_se,
        }
    }

    fn latency(&self, prompt: usize, model: usize) -> Option<f64> {
        self.latencies.get(prompt).and_then(|r| r.get(model).copied().flatten())
    }

    /// Always the same model.
    pub fn single(&self, model: usize) -> OperatingPoint {
        self.evaluate(&vec![model; self.scores.len()], f64::NAN)
    }

    /// Best realised score per prompt, cheapest among ties.
    pub fn oracle(&self) -> OperatingPoint {
        let choices: Vec<usize> = self
            .scores
            .iter()
            .zip(self.costs)
            .map(|(s, c)| (0..s.len()).min_by(|&a, &b| s[b].total_cmp(&s[a]).then(c[a].total_cmp(&c[b]))).unwrap_or(0))
            .collect();
        self.evaluate(&choices, f64::NAN)
    }

    /// Uniformly random routing over all models (its expectation).
    pub fn random_uniform(&self) -> OperatingPoint {
        let m = self.scores.first().map_or(1, |r| r.len()) as f64;
        let n = self.scores.len().max(1) as f64;
        let q = self.scores.iter().flatten().sum::<f64>() / (n * m);
        let c = self.costs.iter().flatten().sum::<f64>() / (n * m);
        let lat: Option<f64> = (0..self.scores.len())
            .flat_map(|i| (0..m as usize).map(move |j| (i, j)))
            .map(|(i, j)| self.latency(i, j))
            .sum();
        OperatingPoint {
            param: f64::NAN,
            quality: q,
            cost: c,
            strong_share: 1.0 / m,
            cost_share: self.cost_share(self.mean_cost.iter().sum::<f64>() / m),
            latency_ms: lat.map(|l| l / (n * m)),
            diff_se: None,
        }
    }
}

/// Every λ at which some prompt's choice can change (pairwise indifference points), thinned
/// to at most `max_points` quantiles, plus 0 and `f64::MAX` (all cheapest; unlike +∞ it
/// keeps 0 · λ finite for free models).
pub fn lambda_grid(pred_p: &[Vec<f64>], pred_cost: &[Vec<f64>], max_points: usize) -> Vec<f64> {
    let mut l: Vec<f64> = Vec::new();
    for (p, c) in pred_p.iter().zip(pred_cost) {
        for a in 0..p.len() {
            for b in 0..p.len() {
                if c[b] > c[a] && p[b] > p[a] {
                    l.push((p[b] - p[a]) / (c[b] - c[a]));
                }
            }
        }
    }
    l.sort_by(f64::total_cmp);
    let mut grid = vec![0.0];
    if !l.is_empty() {
        let step = (l.len() as f64 / max_points.max(1) as f64).max(1.0);
        let mut i = 0.0;
        while (i as usize) < l.len() {
            grid.push(l[i as usize]);
            i += step;
        }
        grid.push(*l.last().unwrap_or(&0.0));
    }
    grid.push(f64::MAX);
    grid.dedup();
    grid
}

/// The operating point of one policy applied to every prompt's predictions.
pub fn policy_point(pred_p: &[Vec<f64>], pred_cost: &[Vec<f64>], truth: &Outcomes, policy: &Policy) -> OperatingPoint {
    let choices: Vec<usize> = pred_p.iter().zip(pred_cost).map(|(p, c)| choose_index(p, c, policy)).collect();
    let param = match policy {
        Policy::MaxQuality => 0.0,
        Policy::CostTradeoff { lambda } => *lambda,
        Policy::Threshold { tau } => *tau,
    };
    truth.evaluate(&choices, param)
}

/// Operating points of the cost-trade-off policy over a λ sweep.
pub fn lambda_sweep(
    pred_p: &[Vec<f64>],
    pred_cost: &[Vec<f64>],
    truth: &Outcomes,
    max_points: usize,
) -> Vec<OperatingPoint> {
    lambda_grid(pred_p, pred_cost, max_points)
        .into_iter()
        .map(|lambda| policy_point(pred_p, pred_cost, truth, &Policy::CostTradeoff { lambda }))
        .collect()
}

pub fn pgr(q: f64, q_cheap: f64, q_best: f64) -> f64 {
    let gap = q_best - q_cheap;
    if gap.abs() < 1e-12 {
        0.0
    } else {
        (q - q_cheap) / gap
    }
}

/// PGR as a function of cost share: points with a cost share in [0, 1] sorted by it (best
/// PGR kept where shares coincide), anchored at (0, 0) and (1, 1). Empty when the cost axis
/// or the quality gap is degenerate (APGR undefined).
pub fn pgr_curve(points: &[OperatingPoint], q_cheap: f64, q_best: f64) -> Vec<(f64, f64)> {
    if (q_best - q_cheap).abs() < 1e-12 || (!points.is_empty() && points.iter().all(|p| p.cost_share.is_none())) {
        return Vec::new();
    }
    let mut c: Vec<(f64, f64)> = vec![(0.0, 0.0), (1.0, 1.0)];
    c.extend(
        points
            .iter()
            .filter_map(|p| p.cost_share.map(|x| (x, pgr(p.quality, q_cheap, q_best))))
            .filter(|(x, _)| (-1e-9..=1.0 + 1e-9).contains(x))
            .map(|(x, y)| (x.clamp(0.0, 1.0), y)),
    );
    c.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    c.dedup_by(|b, a| (a.0 - b.0).abs() < 1e-12);
    c
}

/// Area under a piecewise-linear curve over x ∈ [0, 1] (trapezoids).
pub fn area(curve: &[(f64, f64)]) -> f64 {
    curve.windows(2).map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0).sum()
}

/// APGR: mean PGR over cost share 0 → 1; `None` for an empty (undefined) curve.
pub fn apgr(curve: &[(f64, f64)]) -> Option<f64> {
    (!curve.is_empty()).then(|| area(curve))
}

/// CPT(p): smallest cost share at which the curve reaches PGR `p` (linear within segments).
pub fn cpt(curve: &[(f64, f64)], p: f64) -> Option<f64> {
    if let Some(first) = curve.first().filter(|f| f.1 >= p) {
        return Some(first.0);
    }
    curve.windows(2).find(|w| w[1].1 >= p).map(|w| {
        let (x0, y0, x1, y1) = (w[0].0, w[0].1, w[1].0, w[1].1);
        if (y1 - y0).abs() < 1e-12 {
            x1
        } else {
            x0 + (p - y0) * (x1 - x0) / (y1 - y0)
        }
    })
}

/// Upper convex hull of (cost, quality) points, made non-decreasing: the best quality
/// reachable at each budget by mixing operating points.
pub fn upper_hull(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut p: Vec<(f64, f64)> = points.iter().copied().filter(|(c, q)| c.is_finite() && q.is_finite()).collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut hull: Vec<(f64, f64)> = Vec::new();
    for pt in p {
        if hull.last().is_some_and(|l| pt.1 <= l.1) {
            continue; // costs more, not better: never on a non-decreasing frontier
        }
        while hull.len() >= 2 {
            let (a, b) = (hull[hull.len() - 2], hull[hull.len() - 1]);
            let cross = (b.0 - a.0) * (pt.1 - a.1) - (b.1 - a.1) * (pt.0 - a.0);
            if cross >= 0.0 {
                hull.pop();
            } else {
                break;
            }
        }
        hull.push(pt);
    }
    hull
}

/// AIQ: mean hull quality over the cost range [c_min, c_max], normalised to [0, 1]; the
/// hull is flat beyond its last point and starts at its first point's quality.
pub fn aiq(hull: &[(f64, f64)], c_min: f64, c_max: f64) -> f64 {
    if hull.is_empty() || c_max <= c_min {
        return f64::NAN;
    }
    let norm = |c: f64| ((c - c_min) / (c_max - c_min)).clamp(0.0, 1.0);
    let mut curve: Vec<(f64, f64)> = vec![(0.0, hull[0].1)];
    curve.extend(hull.iter().map(|&(c, q)| (norm(c), q)));
    curve.push((1.0, hull[hull.len() - 1].1));
    area(&curve)
}

/// Risk–coverage when the router may abstain: answering only the most confident share of
/// prompts, risk = 1 − mean score of those answered. Returns the curve and its area (AURC).
pub fn risk_coverage(confidence: &[f64], score: &[f64]) -> (Vec<(f64, f64)>, f64) {
    let mut idx: Vec<usize> = (0..confidence.len()).collect();
    idx.sort_by(|&a, &b| confidence[b].total_cmp(&confidence[a]));
    let n = idx.len() as f64;
    let mut curve = Vec::with_capacity(idx.len());
    let mut sum = 0.0;
    for (k, &i) in idx.iter().enumerate() {
        sum += score[i];
        curve.push(((k + 1) as f64 / n, 1.0 - sum / (k + 1) as f64));
    }
    let aurc = if curve.is_empty() { 0.0 } else { curve.iter().map(|c| c.1).sum::<f64>() / n };
    (curve, aurc)
}

/// Hallucination rate when abstaining below `threshold`: wrong answers / (wrong + abstained),
/// with scores < 0.5 counted as wrong.
pub fn hallucination_rate(confidence: &[f64], score: &[f64], threshold: f64) -> f64 {
    let abstained = confidence.iter().filter(|&&c| c < threshold).count();
    let wrong = confidence.iter().zip(score).filter(|(&c, &s)| c >= threshold && s < 0.5).count();
    if wrong + abstained == 0 {
        0.0
    } else {
        wrong as f64 / (wrong + abstained) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFS: References = References { best: 1, cheapest: 0 };

    fn outcomes() -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        // 4 prompts × (weak, strong). Weak solves 0 and 1, strong solves 0, 2, 3.
        let s = vec![vec![1.0, 1.0], vec![1.0, 0.0], vec![0.0, 1.0], vec![0.0, 1.0]];
        let c = vec![vec![1.0, 10.0]; 4];
        (s, c)
    }

    #[test]
    fn singles_oracle_random_hand_computed() {
        let (s, c) = outcomes();
        let t = Outcomes::new(&s, &c, REFS, &[]);
        assert_eq!(t.single(0).quality, 0.5);
        assert_eq!(t.single(1).quality, 0.75);
        let o = t.oracle();
        assert_eq!((o.quality, o.cost, o.strong_share), (1.0, 5.5, 0.5));
        // Paired differences to the strong model: 0, +1, 0, 0 → mean 0.25, sd 0.5, SE 0.25.
        assert!((o.diff_se.unwrap() - 0.25).abs() < 1e-12);
        assert_eq!(t.single(1).diff_se, Some(0.0));
        let r = t.random_uniform();
        assert_eq!((r.quality, r.cost, r.strong_share), (0.625, 5.5, 0.5));
        assert_eq!(r.latency_ms, None, "no latencies given");
    }

    #[test]
    fn latency_is_the_mean_of_chosen_answers_and_unknown_if_any_is_missing() {
        let (s, c) = outcomes();
        let l = vec![vec![Some(100.0), Some(400.0)]; 4];
        let t = Outcomes::new(&s, &c, REFS, &l);
        assert_eq!(t.single(0).latency_ms, Some(100.0));
        assert_eq!(t.evaluate(&[0, 1, 1, 1], 0.0).latency_ms, Some(325.0));
        assert_eq!(t.random_uniform().latency_ms, Some(250.0));
        let mut gap = l.clone();
        gap[2][1] = None;
        let t = Outcomes::new(&s, &c, REFS, &gap);
        assert_eq!(t.single(1).latency_ms, None);
        assert_eq!(t.single(0).latency_ms, Some(100.0));
    }

    #[test]
    fn apgr_and_cpt_hand_computed() {
        // Perfect ranking: send prompts 2, 3 first (each +0.25 quality), then 0 (no change), then 1 (−0.25).
        let (s, c) = outcomes();
        let t = Outcomes::new(&s, &c, REFS, &[]);
        let p = vec![vec![0.9, 0.9], vec![0.9, 0.1], vec![0.1, 0.9], vec![0.2, 0.9]];
        let pts = lambda_sweep(&p, &c, &t, 100);
        let curve = pgr_curve(&pts, 0.5, 0.75);
        // Shares 0, .25, .5, .75(prompt 0 tie → cheaper weak, so never sent), 1 with PGR 0, 1, 2, ·, 1.
        assert_eq!(curve, vec![(0.0, 0.0), (0.25, 1.0), (0.5, 2.0), (1.0, 1.0)]);
        // Area: 0.125 + 0.375 + 0.75 = 1.25.
        assert!((apgr(&curve).unwrap() - 1.25).abs() < 1e-12);
        assert!((cpt(&curve, 0.5).unwrap() - 0.125).abs() < 1e-12);
        assert!((cpt(&curve, 0.8).unwrap() - 0.2).abs() < 1e-12);
        // Random mixing of weak/strong is the diagonal: APGR 0.5, CPT(80%) 0.8.
        let diag = pgr_curve(&[], 0.5, 0.75);
        assert_eq!(apgr(&diag), Some(0.5));
        assert!((cpt(&diag, 0.8).unwrap() - 0.8).abs() < 1e-12);
        assert_eq!(cpt(&[(0.0, 0.0), (1.0, 0.5)], 0.8), None);
    }

    #[test]
    fn references_come_from_data_not_price_and_ties_follow_the_rule() {
        // Model 2 is dearest but worst; model 1 is best; 0 and 3 tie on cost, 3 is better.
        let s = vec![vec![0.0, 1.0, 0.0, 1.0], vec![0.0, 1.0, 0.0, 0.0]];
        let c = vec![vec![1.0, 5.0, 50.0, 1.0]; 2];
        assert_eq!(References::choose(&s, &c), References { best: 1, cheapest: 3 });
        // Equal quality: the cheaper wins; equal quality and cost: catalogue order.
        let s = vec![vec![1.0, 1.0, 1.0]];
        assert_eq!(References::choose(&s, &[vec![3.0, 2.0, 2.0]]), References { best: 1, cheapest: 1 });
        assert_eq!(References::choose(&s, &[vec![2.0, 2.0, 2.0]]), References { best: 0, cheapest: 0 });
    }

    #[test]
    fn n_models_cost_share_weighs_each_choice_by_its_models_price() {
        // Three models: cheap (1), mid (4), best (10); mid solves everything.
        let s = vec![vec![0.0, 1.0, 1.0], vec![0.0, 1.0, 0.0]];
        let c = vec![vec![1.0, 4.0, 10.0]; 2];
        let t = Outcomes::new(&s, &c, References { best: 2, cheapest: 0 }, &[]);
        let mid = t.single(1);
        assert!((mid.cost_share.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(mid.strong_share, 0.0);
        // Mid beats the best single model: PGR 2, explained as "above the best single model".
        assert!((pgr(mid.quality, 0.0, 0.5) - 2.0).abs() < 1e-12);
        let curve = pgr_curve(&[mid], 0.0, 0.5);
        assert_eq!(curve, vec![(0.0, 0.0), (1.0 / 3.0, 2.0), (1.0, 1.0)]);
        // A point dearer than the best single model is outside the axis and left out.
        let t2 = Outcomes::new(&s, &c, References { best: 1, cheapest: 0 }, &[]);
        assert_eq!(pgr_curve(&[t2.single(2)], 0.0, 1.0), vec![(0.0, 0.0), (1.0, 1.0)]);
    }

    #[test]
    fn degenerate_references_give_no_apgr_instead_of_a_wild_number() {
        // The best single model is also the cheapest: nothing to trade.
        let s = vec![vec![1.0, 0.0], vec![1.0, 1.0]];
        let c = vec![vec![1.0, 5.0]; 2];
        let t = Outcomes::new(&s, &c, References { best: 0, cheapest: 0 }, &[]);
        let p = t.single(1);
        assert_eq!(p.cost_share, None);
        assert_eq!(apgr(&pgr_curve(&[p], 1.0, 1.0)), None);
        // Equal quality of the references: no gap to recover.
        assert_eq!(apgr(&pgr_curve(&[p], 0.5, 0.5)), None);
    }

    #[test]
    fn hull_and_aiq_hand_computed() {
        let pts = [(0.0, 0.5), (0.5, 0.6), (0.4, 0.9), (1.0, 0.8), (1.0, 1.0)];
        let h = upper_hull(&pts);
        assert_eq!(h, vec![(0.0, 0.5), (0.4, 0.9), (1.0, 1.0)]);
        // Trapezoids: 0.4·(0.5+0.9)/2 + 0.6·(0.9+1.0)/2 = 0.28 + 0.57.
        assert!((aiq(&h, 0.0, 1.0) - 0.85).abs() < 1e-12);
        // A flat hull at q has AIQ q.
        assert!((aiq(&[(0.2, 0.7)], 0.0, 1.0) - 0.7).abs() < 1e-12);
    }

    #[test]
    fn risk_coverage_and_hallucination() {
        let (curve, aurc) = risk_coverage(&[0.9, 0.1, 0.5], &[1.0, 0.0, 0.0]);
        assert_eq!(curve[0], (1.0 / 3.0, 0.0));
        assert!((curve[1].1 - 0.5).abs() < 1e-12);
        assert!((aurc - (0.0 + 0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        // Threshold 0.3: answers 0 (right) and 2 (wrong), abstains on 1 → 1 / (1 + 1).
        assert_eq!(hallucination_rate(&[0.9, 0.1, 0.5], &[1.0, 0.0, 0.0], 0.3), 0.5);
    }
}
