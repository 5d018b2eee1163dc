//! The evaluation runner: train on training prompts, choose hyper-parameters and
//! calibrate on validation prompts, and measure every policy on held-out test prompts
//! (or on every prompt once, out of fold, with k-fold cross-validation).

use crate::progress::Progress;
use conductor_core::calibration::{self, CalibrationReport};
use conductor_core::catalog::Catalog;
use conductor_core::dataset::Dataset;
use conductor_core::embedder::TextEmbedder;
use conductor_core::features::{EmbeddingCache, FeatureKind};
use conductor_core::metrics::{self, OperatingPoint, Outcomes};
use conductor_core::policy::{Policy, DEFAULT_TAU};
use conductor_core::predictors::PredictorKind;
use conductor_core::records::Record;
use conductor_core::router::Router;
use conductor_core::split;
use serde::Serialize;
use std::time::Instant;

/// Strong-call shares the threshold policy's τ is calibrated to (on validation prompts).
pub const TARGET_SHARES: [f64; 4] = [0.1, 0.2, 0.3, 0.5];
/// Caps on the strong-call share for the budgeted cost trade-off: λ is the smallest one
/// sending at most this share of validation prompts to the largest model.
pub const SHARE_CAPS: [f64; 3] = [0.3, 0.5, 0.6];
/// Operating points kept from the λ sweep.
const SWEEP_POINTS: usize = 400;
/// Test prompts per fold whose routing decision is timed (uncached, one at a time).
const DECISION_SAMPLE: usize = 16;
/// Fewer complete prompts than this cannot be split into train/validation/test sensibly.
const MIN_PROMPTS: usize = 10;

#[derive(Debug, Clone)]
pub struct EvalConfig {
    pub predictor: PredictorKind,
    pub features: FeatureKind,
    pub seed: u64,
    pub val_frac: f64,
    pub test_frac: f64,
    /// `Some(k)`: k-fold cross-validation instead of one train/val/test split.
    pub folds: Option<usize>,
    pub progress: bool,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            predictor: PredictorKind::Knn,
            features: FeatureKind::Ngram,
            seed: 42,
            val_frac: 0.2,
            test_frac: 0.2,
            folds: None,
            progress: false,
        }
    }
}

/// A policy whose knob (τ or λ) was chosen on validation prompts for a strong-call share
/// (a target for τ, a cap for λ), measured on test prompts.
#[derive(Debug, Clone, Serialize)]
pub struct ValidatedPoint {
    pub target_share: f64,
    /// Median over folds of the knob chosen on validation.
    pub param: f64,
    pub test: OperatingPoint,
    pub pgr: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelCalibration {
    pub model: String,
    pub raw: CalibrationReport,
    pub calibrated: CalibrationReport,
}

/// Everything one evaluation measured.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub dataset: String,
    pub predictor: String,
    pub features: String,
    pub protocol: String,
    pub prompts: usize,
    pub test_prompts: usize,
    pub models: Vec<String>,
    pub weak: usize,
    pub strong: usize,
    pub singles: Vec<OperatingPoint>,
    pub oracle: OperatingPoint,
    pub random: OperatingPoint,
    pub router_points: Vec<OperatingPoint>,
    pub max_quality: OperatingPoint,
    /// The gateway's default policy (threshold at [`DEFAULT_TAU`]), fixed before any data.
    pub default_threshold: OperatingPoint,
    pub pgr_curve: Vec<(f64, f64)>,
    /// APGR of the gain-ranked curve (λ policy with flat per-model prices).
    pub apgr: f64,
    /// APGR of the λ policy with per-prompt cost estimates (the curve AIQ is computed on).
    pub apgr_cost_aware: f64,
    pub cpt50: Option<f64>,
    pub cpt80: Option<f64>,
    pub aiq: f64,
    pub aiq_singles: f64,
    /// Threshold policy, τ set on validation for each of [`TARGET_SHARES`].
    pub thresholds: Vec<ValidatedPoint>,
    /// Cost trade-off, λ set on validation under each of [`SHARE_CAPS`].
    pub budgeted: Vec<ValidatedPoint>,
    /// Mean time to featurize a prompt and predict every model (ms): up to
    /// [`DECISION_SAMPLE`] test prompts per fold, one at a time, without the embedding cache.
    pub decision_ms: f64,
    pub calibration: Vec<ModelCalibration>,
    /// Area under the risk–coverage curve when abstaining on the least confident prompts
    /// (confidence = predicted success of the max-quality choice).
    pub aurc: f64,
    pub hallucination_at_05: f64,
    pub train_seconds: f64,
    pub hyperparameters: Vec<String>,
}

/// Calibrated success, estimated cost and raw score per prompt and model.
#[derive(Default)]
struct Predicted {
    p: Vec<Vec<f64>>,
    cost: Vec<Vec<f64>>,
    raw: Vec<Vec<f64>>,
}

/// Per-prompt predictions on test prompts, gathered over folds.
#[derive(Default)]
struct Gathered {
    rows: Vec<usize>,
    p: Vec<Vec<f64>>,
    raw: Vec<Vec<f64>>,
    cost: Vec<Vec<f64>>,
    /// Per fold: τ for each target share, λ for each share cap.
    taus: Vec<Vec<f64>>,
    lambdas: Vec<Vec<f64>>,
    decision_seconds: f64,
    decisions_timed: usize,
}

/// Runs one evaluation of `cfg.predictor` on `records`.
pub fn run_eval(
    records: &[Record],
    catalog: &Catalog,
    cfg: &EvalConfig,
    embedder: Option<&dyn TextEmbedder>,
    cache: Option<&EmbeddingCache>,
) -> anyhow::Result<EvalReport> {
    let full = Dataset::from_records(records, catalog)?;
    let complete: Vec<usize> =
        (0..full.rows.len()).filter(|&i| full.rows[i].scores.iter().all(Option::is_some)).collect();
    anyhow::ensure!(
        complete.len() >= MIN_PROMPTS,
        "only {} prompts have an outcome for every model; at least {MIN_PROMPTS} are needed to train, validate and test",
        complete.len()
    );
    let data = full.subset(&complete);
    let n = data.rows.len();
    if let Some(k) = cfg.folds {
        // Each fold needs its own test prompts and enough left over to train and validate.
        anyhow::ensure!(
            (2..=n / 3).contains(&k),
            "{k}-fold cross-validation is not possible on {n} complete prompts: use between 2 and {} folds",
            n / 3
        );
    }
    let splits = match cfg.folds {
        Some(k) => split::k_fold(n, k, cfg.val_frac / (1.0 - cfg.test_frac), cfg.seed),
        None => vec![split::train_val_test(n, cfg.val_frac, cfg.test_frac, cfg.seed)],
    };
    let protocol = match cfg.folds {
        Some(k) => format!("{k}-fold CV (seed {})", cfg.seed),
        None => format!(
            "train/val/test {:.0}/{:.0}/{:.0} (seed {})",
            100.0 * (1.0 - cfg.val_frac - cfg.test_frac),
            100.0 * cfg.val_frac,
            100.0 * cfg.test_frac,
            cfg.seed
        ),
    };
    let (strong, weak) = (data.catalog.largest(), data.catalog.cheapest());
    let mut g = Gathered::default();
    let mut train_seconds = 0.0;
    let mut hyper = Vec::new();
    let bar = Progress::new(
        cfg.progress,
        splits.len() as u64,
        &format!("{} {} {}", dataset_label(&data), cfg.predictor, cfg.features),
    );
    for s in &splits {
        let (train, val, test) = (data.subset(&s.train), data.subset(&s.val), data.subset(&s.test));
        let t0 = Instant::now();
        let router = Router::train(&train, &val, cfg.predictor, cfg.features, embedder, cache, cfg.seed)?;
        train_seconds += t0.elapsed().as_secs_f64();
        hyper.push(router.info().hyperparameters.clone());
        let predict = |d: &Dataset| -> anyhow::Result<Predicted> {
            let x = router.featurize_batch(&d.texts(), embedder, cache)?;
            let mut out = Predicted::default();
            for (xi, row) in x.iter().zip(&d.rows) {
                let (preds, raw) = router.predict_with_raw(xi, row.prompt_tokens);
                out.p.push(preds.iter().map(|p| p.p_success).collect());
                out.cost.push(preds.iter().map(|p| p.est_cost_usd).collect());
                out.raw.push(raw);
            }
            Ok(out)
        };
        let Predicted { p: vp, cost: vc, .. } = predict(&val)?;
        let val_truth = (val.targets_complete(), val.costs());
        let vt = Outcomes { scores: &val_truth.0, costs: &val_truth.1, strong, latencies: &[] };
        g.taus.push(TARGET_SHARES.iter().map(|&t| calibrate_tau(&vp, &vc, &vt, t)).collect());
        g.lambdas.push(SHARE_CAPS.iter().map(|&cap| calibrate_lambda(&vp, &vc, &vt, cap)).collect());
        let t = predict(&test)?;
        // Decision time as serving sees it: one prompt at a time, no embedding cache.
        for row in test.rows.iter().take(DECISION_SAMPLE) {
            let t0 = Instant::now();
            let x = router.featurize(&row.text, embedder)?;
            std::hint::black_box(router.predict(&x, row.prompt_tokens));
            g.decision_seconds += t0.elapsed().as_secs_f64();
            g.decisions_timed += 1;
        }
        g.rows.extend(s.test.iter().copied());
        g.p.extend(t.p);
        g.cost.extend(t.cost);
        g.raw.extend(t.raw);
        bar.inc();
    }
    bar.finish();

    // Threshold points are evaluated fold by fold (each fold's τ on its own test prompts).
    let tested = data.subset(&g.rows);
    let scores = tested.targets_complete();
    let (costs, tested_latencies) = (tested.costs(), tested.latencies());
    let truth = Outcomes { scores: &scores, costs: &costs, strong, latencies: &tested_latencies };
    let singles: Vec<OperatingPoint> = (0..data.n_models()).map(|m| truth.single(m)).collect();
    let (q_weak, q_strong) = (singles[weak].quality, singles[strong].quality);
    let router_points = metrics::lambda_sweep(&g.p, &g.cost, &truth, SWEEP_POINTS);
    let pgr_cost_aware = metrics::apgr(&metrics::pgr_curve(&router_points, q_weak, q_strong));
    // The share-based curve ranks prompts by predicted gain: the same λ policy with each
    // model's mean predicted cost per call instead of the per-prompt estimate (which would
    // otherwise also favour sending short prompts up).
    let flat = flat_costs(&g.cost);
    let share_points = metrics::lambda_sweep(&g.p, &flat, &truth, SWEEP_POINTS);
    let pgr_curve = metrics::pgr_curve(&share_points, q_weak, q_strong);
    let max_quality = metrics::policy_point(&g.p, &g.cost, &truth, &Policy::MaxQuality);
    let default_threshold = metrics::policy_point(&g.p, &g.cost, &truth, &Policy::Threshold { tau: DEFAULT_TAU });
    let (c_min, c_max) = singles.iter().fold((f64::INFINITY, 0.0f64), |(a, b), s| (a.min(s.cost), b.max(s.cost)));
    let mut pts: Vec<(f64, f64)> = router_points.iter().map(|p| (p.cost, p.quality)).collect();
    pts.extend(singles.iter().map(|s| (s.cost, s.quality)));
    let aiq = metrics::aiq(&metrics::upper_hull(&pts), c_min, c_max);
    let single_pts: Vec<(f64, f64)> = singles.iter().map(|s| (s.cost, s.quality)).collect();
    let aiq_singles = metrics::aiq(&metrics::upper_hull(&single_pts), c_min, c_max);

    let thresholds = validated_points(&g.taus, &TARGET_SHARES, &g, &splits, &truth, q_weak, q_strong, |tau| {
        Policy::Threshold { tau }
    });
    let budgeted = validated_points(&g.lambdas, &SHARE_CAPS, &g, &splits, &truth, q_weak, q_strong, |lambda| {
        Policy::CostTradeoff { lambda }
    });
    let calibration = (0..data.n_models())
        .map(|m| {
            let y: Vec<f64> = scores.iter().map(|s| s[m]).collect();
            let raw: Vec<f64> = g.raw.iter().map(|r| r[m]).collect();
            let cal: Vec<f64> = g.p.iter().map(|r| r[m]).collect();
            ModelCalibration {
                model: data.catalog.models[m].id.clone(),
                raw: calibration::report(&raw, &y),
                calibrated: calibration::report(&cal, &y),
            }
        })
        .collect();
    let mq_choice: Vec<usize> =
        g.p.iter().zip(&g.cost).map(|(p, c)| conductor_core::policy::choose_index(p, c, &Policy::MaxQuality)).collect();
    let conf: Vec<f64> = mq_choice.iter().zip(&g.p).map(|(&m, p)| p[m]).collect();
    let realised: Vec<f64> = mq_choice.iter().zip(&scores).map(|(&m, s)| s[m]).collect();
    let (_, aurc) = metrics::risk_coverage(&conf, &realised);

    Ok(EvalReport {
        dataset: dataset_label(&data),
        predictor: cfg.predictor.to_string(),
        features: cfg.features.to_string(),
        protocol,
        prompts: n,
        test_prompts: g.rows.len(),
        models: data.catalog.models.iter().map(|m| m.id.clone()).collect(),
        weak,
        strong,
        oracle: truth.oracle(),
        random: truth.random_uniform(),
        singles,
        max_quality,
        default_threshold,
        apgr: metrics::apgr(&pgr_curve),
        apgr_cost_aware: pgr_cost_aware,
        cpt50: metrics::cpt(&pgr_curve, 0.5),
        cpt80: metrics::cpt(&pgr_curve, 0.8),
        pgr_curve,
        router_points,
        aiq,
        aiq_singles,
        thresholds,
        budgeted,
        decision_ms: 1e3 * g.decision_seconds / g.decisions_timed.max(1) as f64,
        calibration,
        aurc,
        hallucination_at_05: metrics::hallucination_rate(&conf, &realised, 0.5),
        train_seconds,
        hyperparameters: hyper,
    })
}

/// The datasets evaluated together, in first-seen order (`gsm8k+humaneval`).
fn dataset_label(data: &Dataset) -> String {
    let mut names: Vec<&str> = Vec::new();
    for r in &data.rows {
        if !names.contains(&r.dataset.as_str()) {
            names.push(&r.dataset);
        }
    }
    names.join("+")
}

/// Each model's mean predicted cost, repeated for every prompt.
fn flat_costs(cost: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let m = cost.first().map_or(0, Vec::len);
    let n = cost.len().max(1) as f64;
    let mean: Vec<f64> = (0..m).map(|j| cost.iter().map(|c| c[j]).sum::<f64>() / n).collect();
    vec![mean; cost.len()]
}

/// τ whose threshold policy sends about `target` of validation prompts to the strong
/// model (bisection: a higher τ sends more prompts up).
fn calibrate_tau(p: &[Vec<f64>], c: &[Vec<f64>], truth: &Outcomes, target: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..40 {
        let mid = (lo + hi) / 2.0;
        let share = metrics::policy_point(p, c, truth, &Policy::Threshold { tau: mid }).strong_share;
        if share < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// The smallest λ that sends at most `cap` of validation prompts to the strong model: the
/// budget used in full, as RouteLLM calibrates its thresholds. (Maximising validation
/// quality under the cap instead chases noise on validation sets of a few dozen prompts.)
/// The strong share falls as λ grows (the chosen cost per prompt never rises with λ, and
/// the largest model is the dearest in every catalogue we ship), and λ = max sends everything to the cheapest model.
fn calibrate_lambda(p: &[Vec<f64>], c: &[Vec<f64>], truth: &Outcomes, cap: f64) -> f64 {
    metrics::lambda_grid(p, c, SWEEP_POINTS)
        .into_iter()
        .find(|&lambda| {
            metrics::policy_point(p, c, truth, &Policy::CostTradeoff { lambda }).strong_share <= cap + 1e-12
        })
        .unwrap_or(f64::MAX)
}

/// Applies each fold's validation-chosen knob (`params[fold][target]`) to that fold's test
/// prompts, one point per target.
#[allow(clippy::too_many_arguments)]
fn validated_points(
    params: &[Vec<f64>],
    targets: &[f64],
    g: &Gathered,
    splits: &[split::Split],
    truth: &Outcomes,
    q_weak: f64,
    q_strong: f64,
    policy: impl Fn(f64) -> Policy,
) -> Vec<ValidatedPoint> {
    targets
        .iter()
        .enumerate()
        .map(|(t, &target)| {
            let mut choices = Vec::with_capacity(g.rows.len());
            let mut start = 0;
            for (f, s) in splits.iter().enumerate() {
                let pol = policy(params[f][t]);
                for i in start..start + s.test.len() {
                    choices.push(conductor_core::policy::choose_index(&g.p[i], &g.cost[i], &pol));
                }
                start += s.test.len();
            }
            // The median: λ spans orders of magnitude (and is f64::MAX for "all cheapest").
            let mut knobs: Vec<f64> = params.iter().map(|v| v[t]).collect();
            knobs.sort_by(f64::total_cmp);
            let param = knobs[knobs.len() / 2];
            let test = truth.evaluate(&choices, param);
            ValidatedPoint { target_share: target, param, pgr: metrics::pgr(test.quality, q_weak, q_strong), test }
        })
        .collect()
}
