//! A sparse feature vector (sorted indices + values), the one representation that serves
//! both 32k-slot n-gram vectors and dense 384-d embeddings.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SparseVec {
    /// Strictly increasing slot indices.
    pub idx: Vec<u32>,
    pub val: Vec<f32>,
}

impl SparseVec {
    /// Keeps the non-zero entries of a dense vector.
    pub fn from_dense(v: &[f32]) -> SparseVec {
        let mut s = SparseVec::default();
        for (i, &x) in v.iter().enumerate() {
            if x != 0.0 {
                s.idx.push(i as u32);
                s.val.push(x);
            }
        }
        s
    }

    pub fn to_dense(&self, dim: usize) -> Vec<f32> {
        let mut v = vec![0f32; dim];
        for (&i, &x) in self.idx.iter().zip(&self.val) {
            if (i as usize) < dim {
                v[i as usize] = x;
            }
        }
        v
    }

    pub fn nnz(&self) -> usize {
        self.idx.len()
    }

    /// Dot product with a dense vector (entries beyond its length count as zero).
    pub fn dot_dense(&self, d: &[f32]) -> f32 {
        self.idx.iter().zip(&self.val).map(|(&i, &x)| d.get(i as usize).map_or(0.0, |y| x * y)).sum()
    }

    pub fn norm(&self) -> f32 {
        self.val.iter().map(|x| x * x).sum::<f32>().sqrt()
    }

    /// Scales to unit L2 norm (zero vectors stay zero).
    pub fn normalized(mut self) -> SparseVec {
        let n = self.norm();
        if n > 0.0 {
            self.val.iter_mut().for_each(|x| *x /= n);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn dense_round_trip_and_dot() {
        let d = vec![0.0, 3.0, 0.0, 4.0];
        let s = SparseVec::from_dense(&d);
        assert_eq!(s.idx, vec![1, 3]);
        assert_eq!(s.to_dense(4), d);
        assert_eq!(s.dot_dense(&[1.0, 1.0, 1.0, 2.0]), 11.0);
        assert!((s.normalized().norm() - 1.0).abs() < 1e-6);
    }
}
