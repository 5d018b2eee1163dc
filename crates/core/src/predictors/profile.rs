//! Adding a model to a trained predictor from a few dozen labels, without retraining.
//!
//! The trained predictor already knows, for every prompt, how each existing model fares;
//! a new model's success is read off that *response profile*: p_new = σ(b + w · logit(p)),
//! a logistic regression over the existing models' predicted logits (item-response style:
//! the new model is placed among the ones it resembles). The existing predictor stays
//! frozen. With K labels and N existing models there are N + 1 weights; an L2 pull towards
//! "the average existing model" (w = 1/N) keeps them sensible when K is small, and its
//! strength is chosen by cross-validation on the K labels.

use super::logreg::logit;
use super::{sigmoid, AnyPredictor, Predictor};
use crate::features::SparseVec;
use serde::{Deserialize, Serialize};

/// L2 strengths tried by cross-validation on the new model's labels.
const L2_GRID: [f64; 5] = [0.03, 0.1, 0.3, 1.0, 3.0];
const FOLDS: usize = 5;
const ITERATIONS: usize = 300;

/// One added model: a logistic regression over the base predictor's logits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileHead {
    pub bias: f64,
    pub weights: Vec<f64>,
    /// The chosen L2 strength (for reports).
    pub l2: f64,
}

fn logits(p: &[f64]) -> Vec<f64> {
    p.iter().map(|&v| logit(v.clamp(1e-4, 1.0 - 1e-4))).collect()
}

impl ProfileHead {
    /// Fits on (base predictions, outcome) pairs, L2 chosen by cross-validated log-loss.
    pub fn fit(profiles: &[Vec<f64>], y: &[f64]) -> ProfileHead {
        ProfileHead::fit_weighted(profiles, y, &vec![1.0; y.len()])
    }

    /// [`ProfileHead::fit`] with a weight per label (how many prompts each stands for, as
    /// [`informative`] returns them), so that labels picked for coverage do not bias the
    /// new model's base rate.
    pub fn fit_weighted(profiles: &[Vec<f64>], y: &[f64], w: &[f64]) -> ProfileHead {
        let z: Vec<Vec<f64>> = profiles.iter().map(|p| logits(p)).collect();
        let n = z.len();
        let folds = FOLDS.min(n);
        let mut best = (f64::INFINITY, L2_GRID[2]);
        if folds >= 2 {
            for &l2 in &L2_GRID {
                let mut loss = 0.0;
                for f in 0..folds {
                    let (tr, te): (Vec<usize>, Vec<usize>) = (0..n).partition(|i| i % folds != f);
                    let h = fit_l2(&pick(&z, &tr), &pick(y, &tr), &pick(w, &tr), l2);
                    loss += te.iter().map(|&i| w[i] * log_loss(h.predict_logits(&z[i]), y[i])).sum::<f64>();
                }
                if loss < best.0 {
                    best = (loss, l2);
                }
            }
        }
        fit_l2(&z, y, w, best.1)
    }

    fn predict_logits(&self, z: &[f64]) -> f64 {
        sigmoid(self.bias + self.weights.iter().zip(z).map(|(w, v)| w * v).sum::<f64>())
    }

    /// The new model's success given the base predictor's output for a prompt.
    pub fn predict(&self, base: &[f64]) -> f64 {
        self.predict_logits(&logits(base))
    }
}

fn pick<T: Clone>(v: &[T], idx: &[usize]) -> Vec<T> {
    idx.iter().map(|&i| v[i].clone()).collect()
}

fn log_loss(p: f64, y: f64) -> f64 {
    -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
}

/// Gradient descent on weighted mean log-loss + l2/2 · |w − 1/N|² (bias unpenalised).
fn fit_l2(z: &[Vec<f64>], y: &[f64], weight: &[f64], l2: f64) -> ProfileHead {
    let m = z.first().map_or(0, Vec::len);
    let prior = if m == 0 { 0.0 } else { 1.0 / m as f64 };
    let total: f64 = weight.iter().sum::<f64>().max(1e-12);
    let mean_y = (y.iter().zip(weight).map(|(a, b)| a * b).sum::<f64>() / total).clamp(0.02, 0.98);
    let mut h = ProfileHead { bias: 0.0, weights: vec![prior; m], l2 };
    // Start the bias where the prior weights meet the observed success rate.
    let mean_z: f64 = z.iter().zip(weight).map(|(r, wi)| wi * r.iter().sum::<f64>() * prior).sum::<f64>() / total;
    h.bias = logit(mean_y) - mean_z;
    // Step size from the features' scale (logits span a few units).
    let scale: f64 = z.iter().zip(weight).map(|(r, wi)| wi * r.iter().map(|v| v * v).sum::<f64>()).sum::<f64>() / total;
    let lr = 1.0 / (1.0 + scale + l2);
    for _ in 0..ITERATIONS {
        let mut gb = 0.0;
        let mut gw = vec![0.0; m];
        for ((zi, &yi), &wi) in z.iter().zip(y).zip(weight) {
            let g = wi * (h.predict_logits(zi) - yi);
            gb += g;
            for (a, v) in gw.iter_mut().zip(zi) {
                *a += g * v;
            }
        }
        h.bias -= lr * gb / total;
        for (j, w) in h.weights.iter_mut().enumerate() {
            *w -= lr * (gw[j] / total + l2 * (*w - prior));
        }
    }
    h
}

/// A trained predictor with models added from few labels; the base stays frozen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Extended {
    pub base: AnyPredictor,
    pub heads: Vec<ProfileHead>,
}

impl Predictor for Extended {
    fn predict(&self, x: &SparseVec) -> Vec<f64> {
        let mut p = self.base.predict(x);
        let added: Vec<f64> = self.heads.iter().map(|h| h.predict(&p)).collect();
        p.extend(added);
        p
    }
}

/// Chooses `k` prompts worth labelling out of a pool, with the weight each label should
/// carry: the pool's response profiles (how the existing models are predicted to fare) are
/// clustered into `k` groups (k-means, farthest-point start, so deterministic), and the
/// prompt nearest each centre is labelled, weighted by its group's share of the pool. The
/// labels then cover every kind of prompt the existing models tell apart, in proportion.
/// (Picking the prompts the models disagree on most was tried first: it biases the new
/// model's base rate and routed far worse than random picks — see docs/many-models.md.)
pub fn informative(profiles: &[Vec<f64>], k: usize) -> Vec<(usize, f64)> {
    let n = profiles.len();
    let k = k.min(n);
    if k == 0 {
        return Vec::new();
    }
    let z: Vec<Vec<f64>> = profiles.iter().map(|p| logits(p)).collect();
    let dist = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>();
    let dim = z[0].len();
    let mean: Vec<f64> = (0..dim).map(|j| z.iter().map(|r| r[j]).sum::<f64>() / n as f64).collect();
    // Farthest-point start from the prompt nearest the mean.
    let first = (0..n).min_by(|&a, &b| dist(&z[a], &mean).total_cmp(&dist(&z[b], &mean))).unwrap_or(0);
    let mut centres: Vec<Vec<f64>> = vec![z[first].clone()];
    let mut nearest: Vec<f64> = z.iter().map(|r| dist(r, &z[first])).collect();
    while centres.len() < k {
        let far = (0..n).max_by(|&a, &b| nearest[a].total_cmp(&nearest[b]).then(b.cmp(&a))).unwrap_or(0);
        centres.push(z[far].clone());
        for (i, r) in z.iter().enumerate() {
            nearest[i] = nearest[i].min(dist(r, &z[far]));
        }
    }
    let mut assign = vec![0usize; n];
    for _ in 0..10 {
        for (i, r) in z.iter().enumerate() {
            assign[i] = (0..k).min_by(|&a, &b| dist(r, &centres[a]).total_cmp(&dist(r, &centres[b]))).unwrap_or(0);
        }
        for (c, centre) in centres.iter_mut().enumerate() {
            let members: Vec<&Vec<f64>> = z.iter().zip(&assign).filter(|(_, &a)| a == c).map(|(r, _)| r).collect();
            if !members.is_empty() {
                *centre = (0..dim).map(|j| members.iter().map(|r| r[j]).sum::<f64>() / members.len() as f64).collect();
            }
        }
    }
    let mut chosen: Vec<(usize, f64)> = Vec::with_capacity(k);
    for (c, centre) in centres.iter().enumerate() {
        let size = assign.iter().filter(|&&a| a == c).count();
        if size == 0 {
            continue;
        }
        let medoid = (0..n)
            .filter(|&i| assign[i] == c)
            .min_by(|&a, &b| dist(&z[a], centre).total_cmp(&dist(&z[b], centre)))
            .unwrap_or(0);
        chosen.push((medoid, size as f64 * k as f64 / n as f64));
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_model_like_an_existing_one_is_learnt_from_few_labels() {
        // Base profiles over 3 models; the new model behaves exactly like model 1.
        let mut profiles = Vec::new();
        let mut y = Vec::new();
        for i in 0..40 {
            let a = if i % 2 == 0 { 0.9 } else { 0.2 };
            let b = if i % 3 == 0 { 0.85 } else { 0.1 };
            profiles.push(vec![0.5, b, a]);
            y.push(if i % 3 == 0 { 1.0 } else { 0.0 });
        }
        let h = ProfileHead::fit(&profiles, &y);
        assert!(h.predict(&[0.5, 0.85, 0.2]) > 0.7, "{h:?}");
        assert!(h.predict(&[0.5, 0.1, 0.9]) < 0.3, "{h:?}");
        assert!(h.weights[1] > h.weights[2].abs(), "{h:?}");
    }

    #[test]
    fn informative_prompts_cover_each_kind_in_proportion() {
        // 30 prompts everyone solves, 10 only model 0 solves, 5 only model 1 solves.
        let mut profiles = vec![vec![0.9, 0.9, 0.9]; 30];
        profiles.extend(vec![vec![0.9, 0.1, 0.1]; 10]);
        profiles.extend(vec![vec![0.1, 0.9, 0.1]; 5]);
        let chosen = informative(&profiles, 3);
        assert_eq!(chosen.len(), 3);
        let mut kinds: Vec<(usize, f64)> = chosen
            .iter()
            .map(|&(i, w)| {
                (
                    if i < 30 {
                        0
                    } else if i < 40 {
                        1
                    } else {
                        2
                    },
                    w,
                )
            })
            .collect();
        kinds.sort_by_key(|k| k.0);
        assert_eq!(kinds.iter().map(|k| k.0).collect::<Vec<_>>(), vec![0, 1, 2], "{chosen:?}");
        // Weights: each label stands for its group (30, 10, 5 of 45 prompts, times k = 3).
        assert!((kinds[0].1 - 2.0).abs() < 1e-9 && (kinds[2].1 - 1.0 / 3.0).abs() < 1e-9, "{kinds:?}");
    }

    #[test]
    fn weights_correct_the_base_rate_of_unevenly_picked_labels() {
        // One label from a large group the new model fails, three from a small group it
        // solves: unweighted, it looks 75% good; weighted by group size, 25%.
        // The profiles carry no signal here, so only the base rate is learnt.
        let profiles = vec![vec![0.5, 0.5]; 4];
        let y = [0.0, 1.0, 1.0, 1.0];
        let plain = ProfileHead::fit(&profiles, &y).predict(&profiles[0]);
        let weighted = ProfileHead::fit_weighted(&profiles, &y, &[9.0, 1.0, 1.0, 1.0]).predict(&profiles[0]);
        assert!((plain - 0.75).abs() < 0.05 && (weighted - 0.25).abs() < 0.05, "{plain} vs {weighted}");
    }
}
