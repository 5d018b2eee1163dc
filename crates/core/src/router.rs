//! The router: a fitted feature extractor, a predictor, per-model calibrators and the
//! catalogue, saved together as one versioned artifact so that serving computes exactly
//! what training measured. The gateway uses [`Router::featurize`], [`Router::predict`]
//! and [`Router::add_feedback`]; the lab uses [`Router::train`].

use crate::calibration::Calibrator;
use crate::catalog::Catalog;
use crate::dataset::Dataset;
use crate::embedder::TextEmbedder;
use crate::features::{EmbeddingCache, Featurizer, SparseVec};
use crate::predictors::baselines::tier_prior;
use crate::predictors::knn::{pruning_for_dim, Knn};
use crate::predictors::profile::{Extended, ProfileHead};
use crate::predictors::{brier, fit_with_validation, AnyPredictor, FitData, Predictor, PredictorKind};
use crate::tokens::DEFAULT_COMPLETION_TOKENS;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;

pub use crate::features::FeatureKind;

/// First bytes of every artifact file.
pub const ARTIFACT_MAGIC: &str = "conductor-router";
/// Bumped whenever the serialised layout changes; older files are refused, not misread.
pub const ARTIFACT_VERSION: u32 = 1;
/// Neighbours consulted in the feedback memory.
const FEEDBACK_K: usize = 10;

/// One model's predicted success and cost for one prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub model: String,
    /// Calibrated probability that the model answers well.
    pub p_success: f64,
    pub est_cost_usd: f64,
}

/// Why an artifact could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("cannot read router artifact {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is not a conductor router artifact (missing `{ARTIFACT_MAGIC}` header)")]
    NotARouter { path: String },
    #[error("{path} is a router artifact of version {found}; this build reads version {ARTIFACT_VERSION} — retrain it with `conductor lab train`")]
    WrongVersion { path: String, found: String },
    #[error("router artifact {path} is corrupted: {reason}")]
    Corrupt { path: String, reason: String },
}

/// Where one run-time outcome is stored in a router's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackSlot {
    row: usize,
    model: usize,
}

/// How a router was trained (kept in the artifact for `conductor route` to show).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainInfo {
    pub predictor: String,
    pub hyperparameters: String,
    pub train_prompts: usize,
    pub val_prompts: usize,
    pub seed: u64,
    /// Brier score of the raw predictions on the validation prompts.
    #[serde(default)]
    pub val_brier: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Router {
    catalog: Catalog,
    featurizer: Featurizer,
    predictor: AnyPredictor,
    /// One per catalogue model.
    calibrators: Vec<Calibrator>,
    /// Expected completion tokens per model, for cost estimates.
    completion_tokens: Vec<f64>,
    /// Outcomes reported at run time, blended over a non-kNN predictor's output.
    feedback: Knn,
    info: TrainInfo,
}

impl Router {
    /// Fits features, the predictor (hyper-parameter chosen on `val`) and per-model
    /// calibrators (also on `val`). Test prompts never enter here.
    pub fn train(
        train: &Dataset,
        val: &Dataset,
        predictor: PredictorKind,
        feature_kind: FeatureKind,
        embedder: Option<&dyn TextEmbedder>,
        cache: Option<&EmbeddingCache>,
        seed: u64,
    ) -> anyhow::Result<Router> {
        anyhow::ensure!(!train.rows.is_empty(), "no training prompts");
        anyhow::ensure!(train.catalog == val.catalog, "train and validation data must use the same catalogue");
        if feature_kind == FeatureKind::Auto {
            return Router::train_feature_choice(train, val, predictor, embedder, cache, seed);
        }
        let n = train.n_models();
        let featurizer = Featurizer::fit(feature_kind, &train.texts(), embedder, cache)?;
        let dim = featurizer.dim();
        let x_train = featurizer.transform_batch(&train.texts(), embedder, cache)?;
        let x_val = featurizer.transform_batch(&val.texts(), embedder, cache)?;
        let (y_train, y_val) = (train.targets(), val.targets());
        let fit =
            FitData { x_train: &x_train, y_train: &y_train, x_val: &x_val, y_val: &y_val, dim, n_models: n, seed };
        let (model, hyper) = fit_with_validation(predictor, &fit)?;
        let raw_val = predict_all(&model, &x_val);
        let val_brier = brier(&raw_val, &y_val);
        let calibrators = (0..n)
            .map(|j| {
                let (r, y): (Vec<f64>, Vec<f64>) =
                    raw_val.iter().zip(&y_val).filter_map(|(p, t)| t[j].map(|v| (p[j], v))).unzip();
                Calibrator::fit(&r, &y)
            })
            .collect();
        Ok(Router {
            catalog: train.catalog.clone(),
            featurizer,
            predictor: model,
            calibrators,
            completion_tokens: train.mean_completion_tokens(),
            feedback: Knn::empty(vec![0.5; n], FEEDBACK_K).with_pruning(pruning_for_dim(dim)),
            info: TrainInfo {
                predictor: predictor.to_string(),
                hyperparameters: hyper,
                train_prompts: train.rows.len(),
                val_prompts: val.rows.len(),
                seed,
                val_brier,
            },
        })
    }

    /// `auto` features: a router per concrete kind (kinds with an embedding block only with
    /// that embedder), keeping
    /// the one whose raw predictions have the lowest validation Brier score.
    fn train_feature_choice(
        train: &Dataset,
        val: &Dataset,
        predictor: PredictorKind,
        embedder: Option<&dyn TextEmbedder>,
        cache: Option<&EmbeddingCache>,
        seed: u64,
    ) -> anyhow::Result<Router> {
        let given = embedder.map(|e| e.kind());
        let kinds = FeatureKind::CONCRETE.into_iter().filter(|k| k.embedder().is_none() || k.embedder() == given);
        let mut best: Option<Router> = None;
        for k in kinds {
            let r = Router::train(train, val, predictor, k, embedder, cache, seed)?;
            if best.as_ref().is_none_or(|b| r.info.val_brier < b.info.val_brier) {
                best = Some(r);
            }
        }
        let mut r = best.ok_or_else(|| anyhow::anyhow!("no feature kind to try"))?;
        r.info.hyperparameters = format!("features auto → {}; {}", r.feature_kind(), r.info.hyperparameters);
        Ok(r)
    }

    /// A router with no training data: each model starts at a prior success by tier
    /// (see [`tier_prior`]) and learns only from [`Router::add_feedback`].
    pub fn cold_start(catalog: Catalog, feature_kind: FeatureKind) -> Router {
        let n = catalog.models.len();
        let prior: Vec<f64> = catalog.models.iter().map(|m| tier_prior(m.tier_rank())).collect();
        let featurizer = Featurizer::unfitted(feature_kind);
        let pruning = pruning_for_dim(featurizer.dim());
        Router {
            featurizer,
            predictor: AnyPredictor::Knn(Knn::empty(prior.clone(), FEEDBACK_K).with_pruning(pruning)),
            calibrators: vec![Calibrator::Identity; n],
            completion_tokens: vec![DEFAULT_COMPLETION_TOKENS as f64; n],
            feedback: Knn::empty(prior, FEEDBACK_K).with_pruning(pruning),
            info: TrainInfo { predictor: "cold-start knn".into(), ..Default::default() },
            catalog,
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn feature_kind(&self) -> FeatureKind {
        self.featurizer.kind()
    }

    /// The fitted feature extractor; it never changes after training (feedback does not
    /// refit it), so servers may share a copy outside any lock.
    pub fn featurizer(&self) -> &Featurizer {
        &self.featurizer
    }

    pub fn info(&self) -> &TrainInfo {
        &self.info
    }

    /// Features for one prompt (MiniLM features need the embedder). Sparse from here to
    /// the predictor: n-gram vectors have a few hundred non-zeros out of 2^15 slots.
    pub fn featurize(&self, prompt: &str, embedder: Option<&dyn TextEmbedder>) -> anyhow::Result<SparseVec> {
        featurize_one(&self.featurizer, prompt, embedder)
    }

    /// Features for many prompts, through the embedding cache when given.
    pub fn featurize_batch(
        &self,
        prompts: &[&str],
        embedder: Option<&dyn TextEmbedder>,
        cache: Option<&EmbeddingCache>,
    ) -> anyhow::Result<Vec<SparseVec>> {
        self.featurizer.transform_batch(prompts, embedder, cache)
    }

    /// One prediction per catalogue model, in catalogue order.
    pub fn predict(&self, x: &SparseVec, prompt_tokens: usize) -> Vec<Prediction> {
        self.predict_with_raw(x, prompt_tokens).0
    }

    /// [`Router::predict`] and the uncalibrated predictor output per model (for the lab's
    /// before/after calibration report), from one call of the predictor.
    pub fn predict_with_raw(&self, x: &SparseVec, prompt_tokens: usize) -> (Vec<Prediction>, Vec<f64>) {
        let raw = self.predictor.predict(x);
        let mut p: Vec<f64> = raw.iter().zip(&self.calibrators).map(|(&r, c)| c.apply(r)).collect();
        if !self.feedback.is_empty() {
            p = self.feedback.blend(&self.feedback.neighbours(x, FEEDBACK_K), &p);
        }
        let preds = self
            .catalog
            .models
            .iter()
            .zip(p)
            .zip(&self.completion_tokens)
            .map(|((m, p), &ct)| Prediction {
                model: m.id.clone(),
                p_success: p.clamp(0.0, 1.0),
                est_cost_usd: m.cost_usd(prompt_tokens, ct.round() as usize),
            })
            .collect();
        (preds, raw)
    }

    /// Records an observed outcome (score in [0, 1]) without refitting: a kNN predictor
    /// stores it in its own memory, any other predictor gets it in the feedback memory
    /// layered on top. Unknown model ids are ignored (the catalogue decides what exists).
    /// Returns where the outcome was stored, so that a later rating of the same decision
    /// can replace it ([`Router::replace_feedback`]) instead of adding another.
    pub fn add_feedback(&mut self, x: &SparseVec, model: &str, score: f64) -> Option<FeedbackSlot> {
        let j = self.catalog.index_of(model).ok()?;
        let mut scores = vec![None; self.catalog.models.len()];
        scores[j] = Some(score.clamp(0.0, 1.0));
        let memory = self.feedback_memory();
        memory.insert(x, scores);
        Some(FeedbackSlot { row: memory.len() - 1, model: j })
    }

    /// Changes the score of an outcome stored by [`Router::add_feedback`].
    pub fn replace_feedback(&mut self, slot: FeedbackSlot, score: f64) {
        let memory = self.feedback_memory();
        if let Some(cell) = memory.y.get_mut(slot.row).and_then(|y| y.get_mut(slot.model)) {
            *cell = Some(score.clamp(0.0, 1.0));
        }
    }

    /// How many identical ratings the trained predictor's own output is worth when feedback
    /// is blended over it (a serving setting: one rating must not swing a prediction).
    pub fn set_feedback_model_weight(&mut self, w: f64) {
        self.feedback.prior_weight = w.max(0.0);
    }

    /// Where run-time outcomes go: a kNN predictor's own memory, else the feedback layer.
    fn feedback_memory(&mut self) -> &mut Knn {
        match &mut self.predictor {
            AnyPredictor::Knn(k) => k,
            _ => &mut self.feedback,
        }
    }

    /// Adds a model from a few labelled prompts without retraining (see
    /// [`crate::predictors::profile`]): the existing predictor and calibrators stay as they
    /// are, the new model's success is learnt from its labels over the existing models'
    /// predictions. Its completion length is the labels' mean. Feedback stored so far is
    /// kept (the new model has none yet).
    pub fn onboard(
        &mut self,
        entry: crate::catalog::ModelEntry,
        x: &[SparseVec],
        scores: &[f64],
        completion_tokens: f64,
    ) -> anyhow::Result<()> {
        self.onboard_weighted(entry, x, scores, &vec![1.0; scores.len()], completion_tokens)
    }

    /// [`Router::onboard`] with a weight per label (how many prompts it stands for).
    pub fn onboard_weighted(
        &mut self,
        entry: crate::catalog::ModelEntry,
        x: &[SparseVec],
        scores: &[f64],
        weights: &[f64],
        completion_tokens: f64,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(weights.len() == scores.len(), "one weight per label");
        anyhow::ensure!(
            self.catalog.index_of(&entry.id).is_err(),
            "model `{}` is already in the router; onboarding adds a new one",
            entry.id
        );
        anyhow::ensure!(x.len() == scores.len() && !x.is_empty(), "onboarding needs labelled prompts (got none)");
        anyhow::ensure!(scores.iter().all(|s| (0.0..=1.0).contains(s)), "onboarding scores must lie in [0, 1]");
        let profiles: Vec<Vec<f64>> = x.iter().map(|xi| self.predictor.predict(xi)).collect();
        let head = ProfileHead::fit_weighted(&profiles, scores, weights);
        let base = std::mem::replace(
            &mut self.predictor,
            AnyPredictor::Mean(crate::predictors::baselines::MeanPredictor { means: Vec::new() }),
        );
        self.predictor = match base {
            AnyPredictor::Extended(mut e) => {
                e.heads.push(head);
                AnyPredictor::Extended(e)
            }
            other => AnyPredictor::Extended(Box::new(Extended { base: other, heads: vec![head] })),
        };
        let prior = scores.iter().sum::<f64>() / scores.len() as f64;
        self.feedback.add_model(prior);
        self.calibrators.push(Calibrator::Identity);
        self.completion_tokens.push(completion_tokens);
        self.catalog.models.push(entry);
        self.info.hyperparameters.push_str(&format!("; +1 model onboarded from {} labels", scores.len()));
        Ok(())
    }

    /// [`Router::onboard`] from a records file's outcomes of `entry`'s model (records of
    /// other models are ignored); its completion length is the records' mean. Returns how
    /// many labels were used.
    pub fn onboard_from_records(
        &mut self,
        entry: crate::catalog::ModelEntry,
        records: &[crate::records::Record],
        embedder: Option<&dyn TextEmbedder>,
        cache: Option<&EmbeddingCache>,
    ) -> anyhow::Result<usize> {
        let labels: Vec<&crate::records::Record> = records.iter().filter(|r| r.model == entry.id).collect();
        anyhow::ensure!(!labels.is_empty(), "no records of model `{}`", entry.id);
        let texts: Vec<&str> = labels.iter().map(|r| r.prompt.as_str()).collect();
        let x = self.featurize_batch(&texts, embedder, cache)?;
        let scores: Vec<f64> = labels.iter().map(|r| r.score).collect();
        let ct = labels.iter().map(|r| r.completion_tokens.unwrap_or(DEFAULT_COMPLETION_TOKENS) as f64).sum::<f64>()
            / labels.len() as f64;
        self.onboard(entry, &x, &scores, ct)?;
        Ok(labels.len())
    }

    /// Predicted success per model before calibration, for choosing which prompts a new
    /// model should be labelled on ([`crate::predictors::profile::informative`]).
    pub fn raw_predictions(&self, x: &SparseVec) -> Vec<f64> {
        self.predictor.predict(x)
    }

    /// Writes the artifact: a header line (`conductor-router v<N> sha256=<hex of body>`)
    /// then the gzip-compressed JSON body.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        serde_json::to_writer(&mut gz, self)?;
        let body = gz.finish()?;
        let sum = hex::encode(Sha256::digest(&body));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(f, "{ARTIFACT_MAGIC} v{ARTIFACT_VERSION} sha256={sum}")?;
        f.write_all(&body)?;
        f.flush()?;
        Ok(())
    }

    /// Reads an artifact, refusing other versions and corrupted files with a clear error.
    pub fn load(path: &Path) -> anyhow::Result<Router> {
        Ok(Self::load_checked(path)?)
    }

    pub fn load_checked(path: &Path) -> Result<Router, ArtifactError> {
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ArtifactError::Io { path: p.clone(), source })?;
        let nl = bytes.iter().position(|&b| b == b'\n').unwrap_or(bytes.len());
        let header = String::from_utf8_lossy(&bytes[..nl.min(200)]).to_string();
        let mut parts = header.split(' ');
        if parts.next() != Some(ARTIFACT_MAGIC) {
            return Err(ArtifactError::NotARouter { path: p });
        }
        let version = parts.next().unwrap_or("").trim_start_matches('v');
        if version != ARTIFACT_VERSION.to_string() {
            return Err(ArtifactError::WrongVersion { path: p, found: version.to_string() });
        }
        let corrupt = |reason: String| ArtifactError::Corrupt { path: p.clone(), reason };
        let expected = parts
            .next()
            .and_then(|s| s.strip_prefix("sha256="))
            .ok_or_else(|| corrupt("header has no checksum".into()))?;
        let body = bytes.get(nl + 1..).unwrap_or(&[]);
        if hex::encode(Sha256::digest(body)) != expected.trim() {
            return Err(corrupt("checksum mismatch (truncated or modified file)".into()));
        }
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut json)
            .map_err(|e| corrupt(format!("cannot decompress: {e}")))?;
        let r: Router = serde_json::from_slice(&json).map_err(|e| corrupt(format!("invalid body: {e}")))?;
        if r.calibrators.len() != r.catalog.models.len() || r.completion_tokens.len() != r.catalog.models.len() {
            return Err(corrupt("per-model tables do not match the catalogue".into()));
        }
        Ok(r)
    }
}

/// Features of one prompt from a fitted extractor.
pub fn featurize_one(f: &Featurizer, prompt: &str, embedder: Option<&dyn TextEmbedder>) -> anyhow::Result<SparseVec> {
    f.transform_batch(&[prompt], embedder, None)?.pop().ok_or_else(|| anyhow::anyhow!("featurizer returned no vector"))
}

/// Raw predictor output for many prompts (parallel).
pub fn predict_all(p: &AnyPredictor, x: &[SparseVec]) -> Vec<Vec<f64>> {
    use rayon::prelude::*;
    x.par_iter().map(|v| p.predict(v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::two_models;
    use crate::dataset::tests::rec;
    use crate::policy::{decide, Constraints, Policy};

    #[test]
    fn auto_features_keep_the_kind_with_the_lower_validation_brier() {
        let e = crate::features::tests::LetterEmbedder;
        let (train, val) = (toy_dataset(40, 0), toy_dataset(10, 500));
        let auto = Router::train(&train, &val, PredictorKind::Knn, FeatureKind::Auto, Some(&e), None, 1).unwrap();
        let briers: Vec<(FeatureKind, f64)> = FeatureKind::CONCRETE
            .iter()
            .filter(|k| k.embedder() != Some(crate::embedder::EmbedderKind::SmolLm))
            .map(|&k| {
                (k, Router::train(&train, &val, PredictorKind::Knn, k, Some(&e), None, 1).unwrap().info.val_brier)
            })
            .collect();
        let best = briers.iter().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
        assert_eq!(auto.feature_kind(), best.0, "{briers:?}");
        assert_eq!(auto.info.val_brier, best.1);
        assert!(auto.info.hyperparameters.starts_with("features auto → "), "{}", auto.info.hyperparameters);
        // Without an embedder only the kinds without MiniLM can be tried.
        let no_embedder = Router::train(&train, &val, PredictorKind::Knn, FeatureKind::Auto, None, None, 1).unwrap();
        assert!(no_embedder.feature_kind().embedder().is_none(), "{:?}", no_embedder.feature_kind());
    }

    fn toy_dataset(n: usize, offset: usize) -> Dataset {
        let mut rs = Vec::new();
        for i in offset..offset + n {
            let math = i % 2 == 0;
            let mut a = rec(&format!("p{i}"), "weak", if math { 0.0 } else { 1.0 });
            let mut b = rec(&format!("p{i}"), "strong", 1.0);
            let text = if math {
                format!("prove the theorem about primes {i}")
            } else {
                format!("say hello to my friend {i}")
            };
            a.prompt = text.clone();
            b.prompt = text;
            rs.push(a);
            rs.push(b);
        }
        Dataset::from_records(&rs, &two_models()).unwrap()
    }

    #[test]
    fn trains_predicts_routes_and_round_trips() {
        let (train, val) = (toy_dataset(60, 0), toy_dataset(20, 1000));
        for kind in [PredictorKind::Knn, PredictorKind::LogReg, PredictorKind::Mf] {
            let r = Router::train(&train, &val, kind, FeatureKind::Ngram, None, None, 1).unwrap();
            let f = r.featurize("say hello to my friend 7", None).unwrap();
            let preds = r.predict(&f, 20);
            assert_eq!(preds.len(), 2);
            let d = decide(&preds, &Policy::Threshold { tau: 0.7 }, &Constraints::default());
            assert_eq!(d.chosen.as_deref(), Some("weak"), "{kind}: {preds:?}");
            let f = r.featurize("prove the theorem about primes 9", None).unwrap();
            let d = decide(&r.predict(&f, 20), &Policy::Threshold { tau: 0.7 }, &Constraints::default());
            assert_eq!(d.chosen.as_deref(), Some("strong"), "{kind}: {:?} {:?}", r.predict(&f, 20), r.info());

            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("r.router");
            r.save(&p).unwrap();
            let back = Router::load(&p).unwrap();
            assert_eq!(back.predict(&f, 20), r.predict(&f, 20));
        }
    }

    #[test]
    fn cold_start_learns_from_feedback() {
        for kind in [PredictorKind::Knn, PredictorKind::LogReg] {
            let mut r = if kind == PredictorKind::Knn {
                Router::cold_start(two_models(), FeatureKind::Ngram)
            } else {
                Router::train(&toy_dataset(40, 0), &toy_dataset(10, 500), kind, FeatureKind::Ngram, None, None, 1)
                    .unwrap()
            };
            let f = r.featurize("translate this sentence into french", None).unwrap();
            let before = r.predict(&f, 10)[1].p_success;
            for _ in 0..10 {
                r.add_feedback(&f, "strong", 0.0);
            }
            assert!(r.add_feedback(&f, "no-such-model", 1.0).is_none());
            let after = r.predict(&f, 10)[1].p_success;
            assert!(after < before - 0.3, "{kind}: {before} → {after}");
        }
        let r = Router::cold_start(two_models(), FeatureKind::Ngram);
        let p = r.predict(&r.featurize("x", None).unwrap(), 10);
        assert!(p[1].p_success > p[0].p_success && p[1].est_cost_usd > p[0].est_cost_usd);
    }

    #[test]
    fn a_replaced_rating_counts_once_and_the_model_weight_bounds_one_rating() {
        let mut r = Router::train(
            &toy_dataset(40, 0),
            &toy_dataset(10, 500),
            PredictorKind::LogReg,
            FeatureKind::Ngram,
            None,
            None,
            1,
        )
        .unwrap();
        r.set_feedback_model_weight(4.0);
        let f = r.featurize("translate this sentence into french", None).unwrap();
        let before = r.predict(&f, 10)[1].p_success;
        let slot = r.add_feedback(&f, "strong", 0.0).unwrap();
        let once = r.predict(&f, 10)[1].p_success;
        // One identical rating against a model worth four: at most a fifth of the way.
        assert!((before - once) <= before / 5.0 + 1e-6 && once < before, "{before} → {once}");
        // Replacing it (the same key re-rating the same decision) does not add weight.
        r.replace_feedback(slot, 1.0);
        let replaced = r.predict(&f, 10)[1].p_success;
        assert!(replaced > before && replaced - before <= (1.0 - before) / 5.0 + 1e-6, "{before} → {replaced}");
        r.replace_feedback(slot, 0.0);
        assert!((r.predict(&f, 10)[1].p_success - once).abs() < 1e-12);
    }

    #[test]
    fn bad_artifacts_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.router");
        let r = Router::cold_start(two_models(), FeatureKind::Ngram);
        r.save(&p).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();

        let n = bytes.len();
        bytes[n - 5] ^= 0xff;
        std::fs::write(&p, &bytes).unwrap();
        let e = Router::load(&p).unwrap_err().to_string();
        assert!(e.contains("corrupted") && e.contains("checksum"), "{e}");

        let text = String::from_utf8_lossy(&bytes).replacen("conductor-router v1", "conductor-router v0", 1);
        std::fs::write(&p, text.as_bytes()).unwrap();
        let e = Router::load(&p).unwrap_err().to_string();
        assert!(e.contains("version 0"), "{e}");

        std::fs::write(&p, b"{\"hello\": 1}").unwrap();
        assert!(Router::load(&p).unwrap_err().to_string().contains("not a conductor router"));
        assert!(Router::load(&dir.path().join("missing")).unwrap_err().to_string().contains("cannot read"));
    }
}
