//! Matrix factorisation of prompts × models (as in RouteLLM / EmbedLLM): every model is a
//! learned vector v_m, every prompt is projected to the same latent space by a learned
//! map P from its features, and success is σ(b_m + v_m · P x). Models that fail on the
//! same prompts end up with similar vectors, which is what lets the method scale to many
//! models with few outcomes each.

use super::{logreg::logit, sigmoid, Predictor, Targets};
use crate::features::SparseVec;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Latent ranks tried on the validation split.
pub const RANK_GRID: [usize; 2] = [8, 32];
const EPOCHS: usize = 12;
const LEARNING_RATE: f32 = 0.05;
const L2: f32 = 1e-5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mf {
    pub rank: usize,
    /// Projection, stored slot-major: `proj[slot * rank + r]`.
    pub proj: Vec<f32>,
    /// Model vectors, `models[m * rank + r]`.
    pub models: Vec<f32>,
    pub bias: Vec<f64>,
}

impl Mf {
    pub fn fit(x: &[SparseVec], y: &Targets, dim: usize, n_models: usize, rank: usize, seed: u64) -> Mf {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let scale = 0.1 / (rank as f32).sqrt();
        let mut mf = Mf {
            rank,
            proj: (0..dim * rank).map(|_| rng.gen_range(-scale..scale)).collect(),
            models: (0..n_models * rank).map(|_| rng.gen_range(-1.0..1.0f32)).collect(),
            bias: super::column_means(y, n_models).iter().map(|&m| logit(m.clamp(0.02, 0.98))).collect(),
        };
        let mut cells: Vec<(usize, usize)> =
            (0..x.len()).flat_map(|i| (0..n_models).filter(move |&j| y[i][j].is_some()).map(move |j| (i, j))).collect();
        // AdaGrad accumulators.
        let mut gp = vec![1e-8f32; mf.proj.len()];
        let mut gm = vec![1e-8f32; mf.models.len()];
        let mut z = vec![0f32; rank];
        for _ in 0..EPOCHS {
            cells.shuffle(&mut rng);
            for &(i, j) in &cells {
                let Some(t) = y[i][j] else { continue };
                let xi = &x[i];
                mf.project_into(xi, &mut z);
                let v = &mf.models[j * rank..(j + 1) * rank];
                let s: f32 = z.iter().zip(v).map(|(a, b)| a * b).sum();
                let g = (sigmoid(mf.bias[j] + s as f64) - t) as f32;
                mf.bias[j] -= 0.05 * g as f64;
                // Gradients: d/dv = g z; d/dP[slot] = g x_slot v.
                let v_old: Vec<f32> = v.to_vec();
                for (r, &zr) in z.iter().enumerate() {
                    let k = j * rank + r;
                    let gr = g * zr + L2 * mf.models[k];
                    gm[k] += gr * gr;
                    mf.models[k] -= LEARNING_RATE * gr / gm[k].sqrt();
                }
                for (&slot, &xv) in xi.idx.iter().zip(&xi.val) {
                    let base = slot as usize * rank;
                    if base + rank > mf.proj.len() {
                        continue;
                    }
                    for (r, &vr) in v_old.iter().enumerate() {
                        let k = base + r;
                        let gr = g * xv * vr + L2 * mf.proj[k];
                        gp[k] += gr * gr;
                        mf.proj[k] -= LEARNING_RATE * gr / gp[k].sqrt();
                    }
                }
            }
        }
        mf
    }

    /// z = P x.
    fn project_into(&self, x: &SparseVec, z: &mut [f32]) {
        z.iter_mut().for_each(|v| *v = 0.0);
        for (&slot, &xv) in x.idx.iter().zip(&x.val) {
            let base = slot as usize * self.rank;
            if let Some(row) = self.proj.get(base..base + self.rank) {
                for (zr, p) in z.iter_mut().zip(row) {
                    *zr += xv * p;
                }
            }
        }
    }
}

impl Predictor for Mf {
    fn predict(&self, x: &SparseVec) -> Vec<f64> {
        let mut z = vec![0f32; self.rank];
        self.project_into(x, &mut z);
        self.bias
            .iter()
            .enumerate()
            .map(|(j, b)| {
                let v = &self.models[j * self.rank..(j + 1) * self.rank];
                sigmoid(b + z.iter().zip(v).map(|(a, c)| a * c).sum::<f32>() as f64)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predictors::tests::{check_learns, toy};

    #[test]
    fn learns_toy_problem() {
        let (x, y, dim) = toy();
        check_learns(&Mf::fit(&x[..80], &y[..80], dim, 2, 8, 3), &x);
    }
}
