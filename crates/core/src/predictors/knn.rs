//! k-nearest-neighbours over cosine similarity, distance-weighted (the seed's MIT-IBM
//! method): a prompt is likely solved by a model if similar prompts were. It is also the
//! online memory: [`Knn::insert`] adds an outcome without refitting anything.

use super::{column_means, Predictor, Targets};
use crate::features::SparseVec;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Values of k tried on the validation split.
pub const K_GRID: [usize; 8] = [5, 10, 20, 40, 80, 160, 320, 640];

/// Above this many stored prompts, similarity search is split across threads.
const PARALLEL_ABOVE: usize = 8192;
/// Two-stage search for hashed n-grams: a coarse pass over copies of the stored vectors
/// pruned to their this-many largest weights (the rare, distinctive n-grams carry the
/// similarity), then exact cosine on the best candidates. Keeps a 100k-prompt memory
/// within the latency budget at the accuracy of exhaustive search.
pub const STORED_NNZ: usize = 96;
/// Candidates re-scored exactly: this many per neighbour wanted, at least `MIN_RERANK`.
const RERANK_PER_K: usize = 8;
const MIN_RERANK: usize = 512;
/// Feature spaces wider than this are hashed n-grams (sparse); narrower ones are dense
/// embeddings, which are stored whole.
const SPARSE_DIM: usize = 4096;

/// The pruning that suits a feature space of dimension `dim`.
pub fn pruning_for_dim(dim: usize) -> Option<usize> {
    (dim > SPARSE_DIM).then_some(STORED_NNZ)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Knn {
    pub k: usize,
    /// Weight of the per-model prior, in units of one perfectly similar neighbour: keeps
    /// predictions sensible when neighbours are few or far.
    pub prior_weight: f64,
    pub prior: Vec<f64>,
    /// Size of the pruned copies used by the coarse pass (see [`STORED_NNZ`]); `None` =
    /// exhaustive exact search.
    #[serde(default)]
    pub max_stored_nnz: Option<usize>,
    /// Stored prompts (unit-norm) and their per-model outcomes.
    pub x: Vec<SparseVec>,
    pub y: Vec<Vec<Option<f64>>>,
    /// Pruned copies of `x` (empty without pruning).
    #[serde(default)]
    pub coarse: Vec<SparseVec>,
    /// Inverted index of `coarse` (slot → (stored row, weight)), built on first search
    /// and kept up to date by [`Knn::insert`]: the coarse pass then only touches rows
    /// sharing a distinctive n-gram with the query.
    #[serde(skip)]
    postings: std::sync::OnceLock<Vec<Vec<(u32, f32)>>>,
}

fn build_postings(coarse: &[SparseVec]) -> Vec<Vec<(u32, f32)>> {
    let dim = coarse.iter().filter_map(|v| v.idx.last()).max().map_or(0, |&m| m as usize + 1);
    let mut p: Vec<Vec<(u32, f32)>> = vec![Vec::new(); dim];
    for (row, v) in coarse.iter().enumerate() {
        for (&i, &x) in v.idx.iter().zip(&v.val) {
            p[i as usize].push((row as u32, x));
        }
    }
    p
}

impl Knn {
    pub fn fit(x: &[SparseVec], y: &Targets, n_models: usize, k: usize) -> Knn {
        Knn {
            k,
            prior_weight: 1.0,
            prior: column_means(y, n_models),
            max_stored_nnz: None,
            x: x.iter().map(|v| v.clone().normalized()).collect(),
            y: y.to_vec(),
            coarse: Vec::new(),
            postings: Default::default(),
        }
    }

    /// An empty memory that predicts `prior` until outcomes are inserted (cold start).
    pub fn empty(prior: Vec<f64>, k: usize) -> Knn {
        Knn {
            k,
            prior_weight: 1.0,
            prior,
            max_stored_nnz: None,
            x: Vec::new(),
            y: Vec::new(),
            coarse: Vec::new(),
            postings: Default::default(),
        }
    }

    /// Enables (or disables) the two-stage search, building pruned copies of what is stored.
    pub fn with_pruning(mut self, max_stored_nnz: Option<usize>) -> Knn {
        self.max_stored_nnz = max_stored_nnz;
        self.coarse = match max_stored_nnz {
            Some(n) => self.x.iter().map(|v| prune(v.clone(), n)).collect(),
            None => Vec::new(),
        };
        self.postings = Default::default();
        self
    }

    pub fn len(&self) -> usize {
        self.x.len()
    }

    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// Widens the memory by one model (no outcomes stored for it yet).
    pub fn add_model(&mut self, prior: f64) {
        self.prior.push(prior);
        self.y.iter_mut().for_each(|row| row.push(None));
    }

    /// Adds one observed outcome (online feedback): O(1), no refit.
    pub fn insert(&mut self, x: &SparseVec, scores: Vec<Option<f64>>) {
        let v = x.clone().normalized();
        if let Some(n) = self.max_stored_nnz {
            let c = prune(v.clone(), n);
            if let Some(p) = self.postings.get_mut() {
                let row = self.coarse.len() as u32;
                for (&i, &x) in c.idx.iter().zip(&c.val) {
                    if p.len() <= i as usize {
                        p.resize(i as usize + 1, Vec::new());
                    }
                    p[i as usize].push((row, x));
                }
            }
            self.coarse.push(c);
        }
        self.x.push(v);
        self.y.push(scores);
    }

    /// Indices and cosine similarities of the `k` most similar stored prompts.
    pub fn neighbours(&self, query: &SparseVec, k: usize) -> Vec<(usize, f32)> {
        let dim = query.idx.last().map_or(0, |&i| i as usize + 1);
        let q = query.clone().normalized().to_dense(dim);
        let scan = |vs: &[SparseVec]| -> Vec<(usize, f32)> {
            if vs.len() > PARALLEL_ABOVE {
                vs.par_iter().enumerate().map(|(i, v)| (i, v.dot_dense(&q))).collect()
            } else {
                vs.iter().enumerate().map(|(i, v)| (i, v.dot_dense(&q))).collect()
            }
        };
        let rerank = (k * RERANK_PER_K).max(MIN_RERANK);
        if self.coarse.len() != self.x.len() || self.x.len() <= rerank {
            return top_k(scan(&self.x), k);
        }
        let postings = self.postings.get_or_init(|| build_postings(&self.coarse));
        let qn = query.clone().normalized();
        let mut coarse = vec![0f32; self.coarse.len()];
        for (&i, &qv) in qn.idx.iter().zip(&qn.val) {
            for &(row, v) in postings.get(i as usize).map_or(&[][..], |p| p.as_slice()) {
                coarse[row as usize] += qv * v;
            }
        }
        let candidates = top_k(coarse.into_iter().enumerate().collect(), rerank);
        top_k(candidates.into_iter().map(|(i, _)| (i, self.x[i].dot_dense(&q))).collect(), k)
    }
}

/// Keeps the `n` entries of largest magnitude (indices stay sorted).
fn prune(v: SparseVec, n: usize) -> SparseVec {
    if v.nnz() <= n {
        return v;
    }
    let mut order: Vec<usize> = (0..v.nnz()).collect();
    order.select_nth_unstable_by(n - 1, |&a, &b| v.val[b].abs().total_cmp(&v.val[a].abs()));
    order.truncate(n);
    order.sort_unstable();
    SparseVec { idx: order.iter().map(|&i| v.idx[i]).collect(), val: order.iter().map(|&i| v.val[i]).collect() }
}

/// The `k` largest by similarity, best first.
fn top_k(mut sims: Vec<(usize, f32)>, k: usize) -> Vec<(usize, f32)> {
    let k = k.min(sims.len());
    if k == 0 {
        return Vec::new();
    }
    let by_sim = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1);
    sims.select_nth_unstable_by(k - 1, by_sim);
    sims.truncate(k);
    sims.sort_unstable_by(by_sim);
    sims
}

impl Predictor for Knn {
    /// Per model: (Σ w·score + prior_weight·prior) / (Σ w + prior_weight) over the k
    /// neighbours that observed that model, with w = max(similarity, 0)².
    fn predict(&self, x: &SparseVec) -> Vec<f64> {
        self.predict_from_neighbours(&self.neighbours(x, self.k))
    }
}

impl Knn {
    /// The prediction from already-found neighbours (best first); lets validation try
    /// every k with one similarity search.
    pub fn predict_from_neighbours(&self, nb: &[(usize, f32)]) -> Vec<f64> {
        self.blend(nb, &self.prior)
    }

    /// Shrinks neighbour outcomes towards a per-query `prior` (another predictor's output
    /// when this memory is the feedback layer on top of it).
    pub fn blend(&self, nb: &[(usize, f32)], prior: &[f64]) -> Vec<f64> {
        let nb = &nb[..nb.len().min(self.k)];
        (0..prior.len())
            .map(|j| {
                let (mut num, mut den) = (self.prior_weight * prior[j], self.prior_weight);
                for &(i, s) in nb {
                    if let Some(v) = self.y[i].get(j).copied().flatten() {
                        let w = (s.max(0.0) as f64).powi(2);
                        num += w * v;
                        den += w;
                    }
                }
                num / den
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
        let (x, y, _) = toy();
        check_learns(&Knn::fit(&x[..80], &y[..80], 2, 10), &x);
    }

    #[test]
    fn insert_changes_prediction_without_refit() {
        let (x, _, _) = toy();
        let mut k = Knn::empty(vec![0.5, 0.5], 5);
        assert_eq!(k.predict(&x[0]), vec![0.5, 0.5]);
        for _ in 0..5 {
            k.insert(&x[0], vec![Some(0.0), None]);
        }
        let p = k.predict(&x[0]);
        assert!(p[0] < 0.2 && (p[1] - 0.5).abs() < 1e-9, "{p:?}");
    }

    #[test]
    fn pruning_keeps_largest_entries_in_order() {
        let v = SparseVec { idx: vec![1, 4, 7, 9], val: vec![0.1, -0.9, 0.5, 0.2] };
        let p = prune(v, 2);
        assert_eq!(p.idx, vec![4, 7]);
        assert_eq!(p.val, vec![-0.9, 0.5]);
        assert_eq!(pruning_for_dim(384), None);
    }

    #[test]
    fn two_stage_search_matches_exhaustive_search() {
        let (x, y, _) = toy();
        let exact = Knn::fit(&x, &y, 2, 5);
        let mut x_big = Vec::new();
        let mut y_big = Vec::new();
        for _ in 0..6 {
            x_big.extend(x.iter().cloned());
            y_big.extend(y.iter().cloned());
        }
        let exact_big = Knn::fit(&x_big, &y_big, 2, 5);
        let fast_big = Knn::fit(&x_big, &y_big, 2, 5).with_pruning(Some(3));
        assert!(fast_big.coarse.iter().all(|v| v.nnz() <= 3));
        let sims = |k: &Knn| k.neighbours(&x[7], 5).iter().map(|n| n.1).collect::<Vec<_>>();
        assert_eq!(sims(&fast_big), sims(&exact_big));
        // Inserting after the index exists keeps it in step with the stored rows.
        let mut grown = fast_big.clone();
        grown.insert(&x[7], vec![Some(0.0), Some(0.0)]);
        // x[7] is stored 6 times already: the 7 best neighbours are those and the new row.
        assert!(grown.neighbours(&x[7], 7).iter().any(|n| n.0 == x_big.len()));
        assert_eq!(exact.predict(&x[7]).len(), 2);
        assert_eq!(pruning_for_dim(1 << 15), Some(STORED_NNZ));
    }

    #[test]
    fn top_k_orders_best_first() {
        let t = top_k(vec![(0, 0.1), (1, 0.9), (2, 0.5), (3, 0.7)], 2);
        assert_eq!(t, vec![(1, 0.9), (3, 0.7)]);
    }
}
