//! Per-dimension standardisation fitted on training prompts: the mean and deviation of
//! each feature, applied as clipped z-scores. Shared by the structure statistics and the
//! small-model reading.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// One freak prompt must not dominate a distance: z-scores are clipped at ±4.
const CLIP: f32 = 4.0;

impl Standardizer {
    /// Fits on rows of equal length (an empty set fits zero dimensions).
    pub fn fit<R: AsRef<[f32]>>(rows: &[R]) -> Standardizer {
        let dim = rows.first().map_or(0, |r| r.as_ref().len());
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0f64; dim];
        for r in rows {
            for (m, x) in mean.iter_mut().zip(r.as_ref()) {
                *m += *x as f64 / n;
            }
        }
        let mut var = vec![0f64; dim];
        for r in rows {
            for ((v, x), m) in var.iter_mut().zip(r.as_ref()).zip(&mean) {
                *v += (*x as f64 - m).powi(2) / n;
            }
        }
        Standardizer {
            mean: mean.iter().map(|m| *m as f32).collect(),
            // A constant feature carries nothing; 1 keeps it at zero after centring.
            std: var.iter().map(|v| if *v > 1e-12 { v.sqrt() as f32 } else { 1.0 }).collect(),
        }
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Clipped z-scores of one row.
    pub fn z(&self, row: &[f32]) -> Vec<f32> {
        row.iter().zip(&self.mean).zip(&self.std).map(|((x, m), s)| ((x - m) / s).clamp(-CLIP, CLIP)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centres_scales_clips_and_survives_constants() {
        let s = Standardizer::fit(&[vec![1.0, 5.0], vec![3.0, 5.0]]);
        assert_eq!(s.mean, [2.0, 5.0]);
        assert_eq!(s.std, [1.0, 1.0], "the constant second feature keeps deviation 1");
        assert_eq!(s.z(&[3.0, 5.0]), [1.0, 0.0]);
        assert_eq!(s.z(&[100.0, 5.0])[0], CLIP);
        assert_eq!(Standardizer::fit::<Vec<f32>>(&[]).dim(), 0);
    }
}
