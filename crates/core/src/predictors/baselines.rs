//! Baselines that every learned router must beat. "Best single model" is the
//! [`MeanPredictor`] (each model's training mean: max-quality always picks the same model);
//! random routing and the oracle need no predictor and live in [`crate::metrics`].

use super::{column_means, Predictor, Targets};
use crate::features::SparseVec;
use serde::{Deserialize, Serialize};

/// Predicts each model's prior success, ignoring the prompt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MeanPredictor {
    pub means: Vec<f64>,
}

impl MeanPredictor {
    pub fn fit(y: &Targets, n_models: usize) -> MeanPredictor {
        MeanPredictor { means: column_means(y, n_models) }
    }
}

impl Predictor for MeanPredictor {
    fn predict(&self, _x: &SparseVec) -> Vec<f64> {
        self.means.clone()
    }
}

/// Cold-start prior success by tier, before any outcome is known: a stated guess that
/// bigger models answer more often (small 0.5, medium 0.65, large 0.8).
pub fn tier_prior(tier_rank: u8) -> f64 {
    match tier_rank {
        0 => 0.5,
        1 => 0.65,
        _ => 0.8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn mean_ignores_prompt() {
        let y = vec![vec![Some(1.0), Some(0.0)], vec![Some(0.0), None]];
        let m = MeanPredictor::fit(&y, 2);
        assert_eq!(m.predict(&SparseVec::default()), vec![0.5, 0.0]);
        assert!(tier_prior(2) > tier_prior(0));
    }
}
