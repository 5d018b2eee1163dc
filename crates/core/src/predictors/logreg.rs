//! Per-model logistic regression on the prompt features: a linear read-out of "which
//! words make this model fail". Trained with AdaGrad over sparse examples (cheap on
//! 32k-slot n-gram vectors) with L2 regularisation; soft targets allow graded scores.

use super::{sigmoid, Predictor, Targets};
use crate::features::SparseVec;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

/// L2 strengths tried on the validation split.
pub const L2_GRID: [f64; 3] = [1e-5, 1e-4, 1e-3];
const EPOCHS: usize = 12;
const LEARNING_RATE: f64 = 0.5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogReg {
    /// One weight vector (dense over feature slots) and bias per model.
    pub weights: Vec<Vec<f32>>,
    pub bias: Vec<f64>,
}

impl LogReg {
    pub fn fit(x: &[SparseVec], y: &Targets, dim: usize, n_models: usize, l2: f64, seed: u64) -> LogReg {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut weights = vec![vec![0f32; dim]; n_models];
        let mut bias = vec![0f64; n_models];
        for j in 0..n_models {
            let rows: Vec<usize> = (0..x.len()).filter(|&i| y[i][j].is_some()).collect();
            let mean = rows.iter().filter_map(|&i| y[i][j]).sum::<f64>() / rows.len().max(1) as f64;
            bias[j] = logit(mean.clamp(0.02, 0.98));
            let w = &mut weights[j];
            let mut g2 = vec![1e-8f32; dim];
            let mut gb2 = 1e-8f64;
            let mut order = rows.clone();
            for _ in 0..EPOCHS {
                order.shuffle(&mut rng);
                for &i in &order {
                    let Some(t) = y[i][j] else { continue };
                    let xi = &x[i];
                    let p = sigmoid(bias[j] + xi.dot_dense(w) as f64);
                    let g = p - t;
                    gb2 += g * g;
                    bias[j] -= LEARNING_RATE * g / gb2.sqrt();
                    for (&k, &v) in xi.idx.iter().zip(&xi.val) {
                        let k = k as usize;
                        if k >= dim {
                            continue;
                        }
                        // L2 applied lazily, on the slots this example touches.
                        let gk = (g * v as f64 + l2 * w[k] as f64) as f32;
                        g2[k] += gk * gk;
                        w[k] -= (LEARNING_RATE as f32) * gk / g2[k].sqrt();
                    }
                }
            }
        }
        LogReg { weights, bias }
    }
}

pub(crate) fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

impl Predictor for LogReg {
    fn predict(&self, x: &SparseVec) -> Vec<f64> {
        self.weights.iter().zip(&self.bias).map(|(w, b)| sigmoid(b + x.dot_dense(w) as f64)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predictors::tests::{check_learns, toy};

    #[test]
    fn learns_toy_problem() {
        let (x, y, dim) = toy();
        check_learns(&LogReg::fit(&x[..80], &y[..80], dim, 2, 1e-4, 7), &x);
    }
}
