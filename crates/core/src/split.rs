//! Prompt-level splits with a fixed seed. Splitting by prompt (never by record) keeps every
//! model's outcome on a test prompt out of training.

use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Row indices of each part.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    idx
}

/// Shuffles `n` prompts with `seed` and cuts them into train / validation / test by the
/// given fractions (test gets the remainder).
pub fn train_val_test(n: usize, val_frac: f64, test_frac: f64, seed: u64) -> Split {
    let idx = shuffled(n, seed);
    let n_test = ((n as f64) * test_frac).round() as usize;
    let n_val = ((n as f64) * val_frac).round() as usize;
    let test = idx[..n_test].to_vec();
    let val = idx[n_test..(n_test + n_val).min(n)].to_vec();
    let train = idx[(n_test + n_val).min(n)..].to_vec();
    Split { train, val, test }
}

/// k-fold cross-validation: fold `f` tests on its own prompts and splits the others into
/// train and validation (validation = `val_frac` of them, for calibration and
/// hyper-parameters). Every prompt is tested exactly once.
pub fn k_fold(n: usize, k: usize, val_frac: f64, seed: u64) -> Vec<Split> {
    let idx = shuffled(n, seed);
    let k = k.clamp(2, n.max(2));
    (0..k)
        .map(|f| {
            let test: Vec<usize> = idx.iter().enumerate().filter(|(i, _)| i % k == f).map(|(_, &v)| v).collect();
            let rest: Vec<usize> = idx.iter().enumerate().filter(|(i, _)| i % k != f).map(|(_, &v)| v).collect();
            let n_val = ((rest.len() as f64) * val_frac).round() as usize;
            Split { val: rest[..n_val].to_vec(), train: rest[n_val..].to_vec(), test }
        })
        .collect()
}

/// Positions of `keys` in sorted key order: splitting these instead of `0..n` makes a split
/// depend on which prompts there are, not on the order the records came in.
fn sorted_positions<K: Ord>(keys: &[K]) -> Vec<usize> {
    let mut pos: Vec<usize> = (0..keys.len()).collect();
    pos.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
    pos
}

fn relabel(s: Split, pos: &[usize]) -> Split {
    let map = |v: Vec<usize>| v.into_iter().map(|i| pos[i]).collect();
    Split { train: map(s.train), val: map(s.val), test: map(s.test) }
}

/// [`train_val_test`] keyed by prompt id: the same prompts land in the same parts whatever
/// the row order.
pub fn train_val_test_by_key<K: Ord>(keys: &[K], val_frac: f64, test_frac: f64, seed: u64) -> Split {
    let pos = sorted_positions(keys);
    relabel(train_val_test(keys.len(), val_frac, test_frac, seed), &pos)
}

/// [`k_fold`] keyed by prompt id: every command that cross-validates the same prompts with
/// the same seed cuts the same folds (`lab eval` and `lab report` included).
pub fn k_fold_by_key<K: Ord>(keys: &[K], k: usize, val_frac: f64, seed: u64) -> Vec<Split> {
    let pos = sorted_positions(keys);
    k_fold(keys.len(), k, val_frac, seed).into_iter().map(|s| relabel(s, &pos)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disjoint_complete_and_reproducible() {
        let s = train_val_test(100, 0.2, 0.2, 42);
        assert_eq!((s.train.len(), s.val.len(), s.test.len()), (60, 20, 20));
        let mut all: Vec<usize> = s.train.iter().chain(&s.val).chain(&s.test).copied().collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(s, train_val_test(100, 0.2, 0.2, 42));
        assert_ne!(s, train_val_test(100, 0.2, 0.2, 43));
    }

    #[test]
    fn k_fold_tests_each_prompt_once() {
        let folds = k_fold(23, 5, 0.25, 1);
        let mut tested: Vec<usize> = folds.iter().flat_map(|f| f.test.clone()).collect();
        tested.sort();
        assert_eq!(tested, (0..23).collect::<Vec<_>>());
        for f in &folds {
            assert_eq!(f.train.len() + f.val.len() + f.test.len(), 23);
            assert!(f.test.iter().all(|t| !f.train.contains(t) && !f.val.contains(t)));
        }
    }

    #[test]
    fn keyed_folds_ignore_row_order() {
        let keys = ["q3", "q1", "q7", "q2", "q9", "q4", "q5", "q8", "q6", "q0"];
        let mut reversed = keys;
        reversed.reverse();
        let by_id = |keys: &[&str], s: &Split| {
            let mut t: Vec<String> = s.test.iter().map(|&i| keys[i].to_string()).collect();
            t.sort();
            t
        };
        let a = k_fold_by_key(&keys, 3, 0.25, 7);
        let b = k_fold_by_key(&reversed, 3, 0.25, 7);
        for (fa, fb) in a.iter().zip(&b) {
            assert_eq!(by_id(&keys, fa), by_id(&reversed, fb));
        }
        let a = train_val_test_by_key(&keys, 0.2, 0.2, 1);
        let b = train_val_test_by_key(&reversed, 0.2, 0.2, 1);
        assert_eq!(by_id(&keys, &a), by_id(&reversed, &b));
    }
}
