//! Predictors: given prompt features, the (raw, uncalibrated) probability that each model
//! answers well. All of them sit behind [`Predictor`] and serialise inside the router
//! artifact through [`AnyPredictor`].
//!
//! Hyper-parameters (k for kNN, L2 strength for logistic regression, rank for matrix
//! factorisation) are chosen on the validation split, never on test prompts.

pub mod baselines;
pub mod knn;
pub mod logreg;
pub mod mf;
pub mod profile;

use crate::features::SparseVec;
use serde::{Deserialize, Serialize};

/// Training targets: one row per prompt, one (possibly missing) score in [0, 1] per model.
pub type Targets = [Vec<Option<f64>>];

/// The interface every predictor implements.
pub trait Predictor {
    /// Raw success score per model, each in [0, 1].
    fn predict(&self, x: &SparseVec) -> Vec<f64>;
}

/// Which learning method to use (the CLI's `--predictor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PredictorKind {
    Knn,
    LogReg,
    Mf,
    /// Whichever of the three fits the validation prompts best (lowest Brier score).
    Auto,
}

impl PredictorKind {
    /// The concrete methods `Auto` chooses between.
    pub const CONCRETE: [PredictorKind; 3] = [PredictorKind::Knn, PredictorKind::LogReg, PredictorKind::Mf];
    /// Every accepted name (what `--help` lists).
    pub const NAMES: [&'static str; 4] = ["knn", "logreg", "mf", "auto"];
}

impl std::str::FromStr for PredictorKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "knn" => Ok(PredictorKind::Knn),
            "logreg" | "lr" | "logistic" => Ok(PredictorKind::LogReg),
            "mf" | "matrix-factorization" | "matrix-factorisation" => Ok(PredictorKind::Mf),
            "auto" => Ok(PredictorKind::Auto),
            other => anyhow::bail!("unknown predictor `{other}` (expected knn, logreg, mf or auto)"),
        }
    }
}

impl std::fmt::Display for PredictorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PredictorKind::Knn => "knn",
            PredictorKind::LogReg => "logreg",
            PredictorKind::Mf => "mf",
            PredictorKind::Auto => "auto",
        })
    }
}

/// A fitted predictor of any kind (what the router artifact stores).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum AnyPredictor {
    Knn(knn::Knn),
    LogReg(logreg::LogReg),
    Mf(mf::Mf),
    Mean(baselines::MeanPredictor),
    /// A trained predictor plus models added from few labels ([`profile`]).
    Extended(Box<profile::Extended>),
}

impl Predictor for AnyPredictor {
    fn predict(&self, x: &SparseVec) -> Vec<f64> {
        match self {
            AnyPredictor::Knn(p) => p.predict(x),
            AnyPredictor::LogReg(p) => p.predict(x),
            AnyPredictor::Mf(p) => p.predict(x),
            AnyPredictor::Mean(p) => p.predict(x),
            AnyPredictor::Extended(p) => p.predict(x),
        }
    }
}

/// Per-model mean of observed targets (0.5 where nothing is observed): the prior that
/// every predictor falls back on.
pub fn column_means(y: &Targets, n_models: usize) -> Vec<f64> {
    (0..n_models)
        .map(|j| {
            let (s, n) = y.iter().filter_map(|r| r[j]).fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
            if n == 0 {
                0.5
            } else {
                s / n as f64
            }
        })
        .collect()
}

/// Mean squared error of predictions against observed targets (missing skipped).
pub fn brier(pred: &[Vec<f64>], y: &Targets) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for (p, t) in pred.iter().zip(y) {
        for (pj, tj) in p.iter().zip(t) {
            if let Some(v) = tj {
                s += (pj - v).powi(2);
                n += 1;
            }
        }
    }
    if n == 0 {
        0.0
    } else {
        s / n as f64
    }
}

/// What a predictor is fitted on: training prompts to learn from, validation prompts to
/// choose hyper-parameters (and, for `Auto`, the method) on.
pub struct FitData<'a> {
    pub x_train: &'a [SparseVec],
    pub y_train: &'a Targets,
    pub x_val: &'a [SparseVec],
    pub y_val: &'a Targets,
    pub dim: usize,
    pub n_models: usize,
    pub seed: u64,
}

/// Fits `kind` on the training split, choosing its hyper-parameter (and, for `Auto`, the
/// method itself) by Brier score on the validation split. Returns the chosen predictor and
/// a description of the choice.
pub fn fit_with_validation(kind: PredictorKind, d: &FitData) -> anyhow::Result<(AnyPredictor, String)> {
    let kinds: &[PredictorKind] =
        if kind == PredictorKind::Auto { &PredictorKind::CONCRETE } else { std::slice::from_ref(&kind) };
    let mut best: Option<(f64, AnyPredictor, String)> = None;
    for &k in kinds {
        let (b, p, desc) = fit_one(k, d)?;
        if best.as_ref().is_none_or(|(bb, _, _)| b < *bb) {
            best = Some((b, p, desc));
        }
    }
    let (_, p, d) = best.ok_or_else(|| anyhow::anyhow!("no predictor kind to fit"))?;
    if kind == PredictorKind::Auto {
        let chosen = match &p {
            AnyPredictor::Knn(_) => "knn",
            AnyPredictor::LogReg(_) => "logreg",
            AnyPredictor::Mf(_) => "mf",
            AnyPredictor::Mean(_) => "mean",
            AnyPredictor::Extended(_) => "extended",
        };
        return Ok((p, format!("auto → {chosen} {d}")));
    }
    Ok((p, d))
}

/// One concrete method with its hyper-parameter chosen on validation: (val Brier, predictor, description).
fn fit_one(kind: PredictorKind, d: &FitData) -> anyhow::Result<(f64, AnyPredictor, String)> {
    let FitData { x_train, y_train, dim, n_models, seed, .. } = *d;
    let candidates: Vec<(AnyPredictor, String)> = match kind {
        PredictorKind::Knn => return Ok(fit_knn_with_validation(d)),
        PredictorKind::Auto => unreachable!("fit_with_validation expands auto into concrete kinds"),
        PredictorKind::LogReg => logreg::L2_GRID
            .iter()
            .map(|&l2| {
                (
                    AnyPredictor::LogReg(logreg::LogReg::fit(x_train, y_train, dim, n_models, l2, seed)),
                    format!("l2={l2}"),
                )
            })
            .collect(),
        PredictorKind::Mf => mf::RANK_GRID
            .iter()
            .map(|&r| (AnyPredictor::Mf(mf::Mf::fit(x_train, y_train, dim, n_models, r, seed)), format!("rank={r}")))
            .collect(),
    };
    let mut best: Option<(f64, AnyPredictor, String)> = None;
    for (p, desc) in candidates {
        let preds: Vec<Vec<f64>> = d.x_val.iter().map(|x| p.predict(x)).collect();
        let b = brier(&preds, d.y_val);
        if best.as_ref().is_none_or(|(bb, _, _)| b < *bb) {
            best = Some((b, p, format!("{desc} (val Brier {b:.4})")));
        }
    }
    best.ok_or_else(|| anyhow::anyhow!("{kind}: no hyper-parameter candidates"))
}

/// kNN's k is chosen with a single similarity search per validation prompt.
fn fit_knn_with_validation(d: &FitData) -> (f64, AnyPredictor, String) {
    use rayon::prelude::*;
    let FitData { x_train, y_train, x_val, y_val, dim, n_models, .. } = *d;
    let max_k = *knn::K_GRID.iter().max().unwrap_or(&10);
    let mut model = knn::Knn::fit(x_train, y_train, n_models, max_k).with_pruning(knn::pruning_for_dim(dim));
    let nbs: Vec<Vec<(usize, f32)>> = x_val.par_iter().map(|x| model.neighbours(x, max_k)).collect();
    let mut best = (f64::INFINITY, knn::K_GRID[0]);
    for &k in &knn::K_GRID {
        model.k = k;
        let preds: Vec<Vec<f64>> = nbs.iter().map(|nb| model.predict_from_neighbours(nb)).collect();
        let b = brier(&preds, y_val);
        if b < best.0 {
            best = (b, k);
        }
    }
    model.k = best.1;
    (best.0, AnyPredictor::Knn(model), format!("k={} (val Brier {:.4})", best.1, best.0))
}

/// The logistic function, clamped away from 0 and 1 so log-losses stay finite.
pub(crate) fn sigmoid(z: f64) -> f64 {
    (1.0 / (1.0 + (-z).exp())).clamp(1e-6, 1.0 - 1e-6)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::features::NgramTfidf;

    /// A small learnable problem: "math" prompts are solved only by model 1, "chat"
    /// prompts by both; the predictor must tell them apart from the words alone.
    pub fn toy() -> (Vec<SparseVec>, Vec<Vec<Option<f64>>>, usize) {
        let mut texts = Vec::new();
        let mut y = Vec::new();
        for i in 0..120 {
            if i % 2 == 0 {
                texts.push(format!("solve the integral equation number {i} calculus derivative"));
                y.push(vec![Some(0.0), Some(1.0)]);
            } else {
                texts.push(format!("write a friendly poem about the ocean {i} please"));
                y.push(vec![Some(1.0), Some(1.0)]);
            }
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let f = NgramTfidf::fit(&refs, 12);
        (refs.iter().map(|t| f.transform(t)).collect(), y, f.dim())
    }

    pub fn check_learns(p: &dyn Predictor, x: &[SparseVec]) {
        let math = p.predict(&x[100]);
        let chat = p.predict(&x[101]);
        assert!(math[0] < 0.3 && math[1] > 0.7, "math: {math:?}");
        assert!(chat[0] > 0.7, "chat: {chat:?}");
    }

    fn split<'a>(x: &'a [SparseVec], y: &'a Targets, dim: usize) -> FitData<'a> {
        FitData { x_train: &x[..80], y_train: &y[..80], x_val: &x[80..], y_val: &y[80..], dim, n_models: 2, seed: 1 }
    }

    #[test]
    fn validation_selection_picks_a_candidate() {
        let (x, y, dim) = toy();
        for kind in [PredictorKind::Knn, PredictorKind::LogReg, PredictorKind::Mf] {
            let (p, desc) = fit_with_validation(kind, &split(&x, &y, dim)).unwrap();
            assert!(desc.contains("val Brier"));
            check_learns(&p, &x);
        }
        assert_eq!("LR".parse::<PredictorKind>().unwrap(), PredictorKind::LogReg);
    }

    #[test]
    fn auto_keeps_the_method_with_the_lowest_validation_brier() {
        let (x, y, dim) = toy();
        let (p, desc) = fit_with_validation(PredictorKind::Auto, &split(&x, &y, dim)).unwrap();
        check_learns(&p, &x);
        assert!(desc.starts_with("auto → "), "{desc}");
        let auto_brier = brier(&x[80..].iter().map(|v| p.predict(v)).collect::<Vec<_>>(), &y[80..]);
        for kind in PredictorKind::CONCRETE {
            let (q, _) = fit_with_validation(kind, &split(&x, &y, dim)).unwrap();
            let b = brier(&x[80..].iter().map(|v| q.predict(v)).collect::<Vec<_>>(), &y[80..]);
            assert!(auto_brier <= b + 1e-12, "auto {auto_brier} worse than {kind} {b}");
        }
        assert_eq!("auto".parse::<PredictorKind>().unwrap(), PredictorKind::Auto);
    }
}
