//! The evaluation runner: train on training prompts, choose hyper-parameters and
//! calibrate on validation prompts, and measure every policy on held-out test prompts
//! (or on every prompt once, out of fold, with k-fold cross-validation).

use crate::progress::Progress;
use conductor_core::calibration::{self, CalibrationReport};
use conductor_core::catalog::Catalog;
use conductor_core::dataset::Dataset;
use conductor_core::embedder::TextEmbedder;
use conductor_core::features::{EmbeddingCache, FeatureKind};
use conductor_core::metrics::{self, OperatingPoint, Outcomes, References};
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
/// sending at most this share of validation prompts to the best single model.
pub const SHARE_CAPS: [f64; 3] = [0.3, 0.5, 0.6];
/// Operating points kept from the λ sweep.
const SWEEP_POINTS: usize = 400;
/// Test prompts per fold whose routing decision is timed (uncached, one at a time).
const DECISION_SAMPLE: usize = 16;
/// How far (in share of calls) a validated τ may land from its target and still count as
/// reaching it; a λ cap must bind to within this.
const REACH_TOLERANCE: f64 = 0.05;
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
    /// Transfer: test on every prompt of this dataset, train and validate on the others
    /// (overrides `folds` and `test_frac`).
    pub test_dataset: Option<String>,
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
            test_dataset: None,
            progress: false,
        }
    }
}

/// A policy whose knob (τ or λ) was chosen on validation prompts for a share of calls to the
/// best single model (a target for τ, a cap for λ), measured on test prompts.
#[derive(Debug, Clone, Serialize)]
pub struct ValidatedPoint {
    pub target_share: f64,
    /// Median over folds of the knob chosen on validation.
    pub param: f64,
    pub test: OperatingPoint,
    pub pgr: f64,
    /// Mean over folds of the share the chosen knob gave on validation prompts.
    pub validation_share: f64,
    /// Whether the target was met on validation (a τ target within ±5 points; a λ cap that
    /// binds, i.e. the router would send that much to the best model when allowed).
    /// An unreached target's row is the same policy as another's: tables mark it.
    pub reached: bool,
}

/// The cheapest validated operating point that matches the best single model's quality.
#[derive(Debug, Clone, Serialize)]
pub struct MatchedCost {
    /// Median over folds of λ: the cheapest λ-point whose validation quality reached the
    /// best single model's validation quality.
    pub param: f64,
    pub test: OperatingPoint,
    /// Held-out quality ≥ the best single model's minus the paired standard error.
    pub holds: bool,
    /// Mean cost as a share of the best single model's.
    pub cost_fraction: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelCalibration {
    pub model: String,
    pub raw: CalibrationReport,
    pub calibrated: CalibrationReport,
    /// The model's held-out outcome never varies: AUROC and ECE say nothing about ranking
    /// or calibration, so means skip it (and tables name it).
    pub constant_outcome: bool,
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
    /// The reference models the normalised metrics use (the most frequent choice over folds;
    /// each fold chooses on its own training and validation prompts).
    pub references: References,
    pub references_per_fold: Vec<References>,
    pub singles: Vec<OperatingPoint>,
    pub oracle: OperatingPoint,
    pub random: OperatingPoint,
    pub router_points: Vec<OperatingPoint>,
    pub max_quality: OperatingPoint,
    /// Max quality that leaves the best single model only for a model predicted at least
    /// `switch_margin` better (the margin set on each fold's validation prompts; median
    /// reported): argmax over many noisy predictions favours whichever is overestimated.
    pub max_quality_margin: OperatingPoint,
    pub switch_margin: f64,
    /// The gateway's default policy (threshold at [`DEFAULT_TAU`]), fixed before any data.
    pub default_threshold: OperatingPoint,
    /// PGR against cost share (see `conductor_core::metrics`); empty when APGR is undefined.
    pub pgr_curve: Vec<(f64, f64)>,
    /// APGR of the gain-ranked curve (λ policy with flat per-model prices); `None` when
    /// the references leave nothing to trade (see [`EvalReport::apgr_note`]).
    pub apgr: Option<f64>,
    /// APGR of the λ policy with per-prompt cost estimates (the curve AIQ is computed on).
    pub apgr_cost_aware: Option<f64>,
    pub cpt50: Option<f64>,
    pub cpt80: Option<f64>,
    pub aiq: f64,
    pub aiq_singles: f64,
    /// Threshold policy, τ set on validation for each of [`TARGET_SHARES`].
    pub thresholds: Vec<ValidatedPoint>,
    /// Cost trade-off, λ set on validation under each of [`SHARE_CAPS`].
    pub budgeted: Vec<ValidatedPoint>,
    /// Cost at best-single quality; `None` when no validation point reached it in some fold.
    pub matched_cost: Option<MatchedCost>,
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

impl EvalReport {
    pub fn best_name(&self) -> &str {
        &self.models[self.references.best]
    }

    pub fn cheapest_name(&self) -> &str {
        &self.models[self.references.cheapest]
    }

    /// Why APGR is undefined, or what an APGR outside [0, 1] means; `None` when it needs
    /// no explanation.
    pub fn apgr_note(&self) -> Option<String> {
        let (b, c) = (self.best_name(), self.cheapest_name());
        match self.apgr {
            None if self.references.best == self.references.cheapest => Some(format!(
                "APGR undefined: the best single model `{b}` is also the cheapest, so there is no cost to trade for quality"
            )),
            None => Some(format!(
                "APGR undefined: the best single model `{b}` and the cheapest `{c}` have the same held-out quality"
            )),
            Some(a) if a > 1.0 => Some(format!(
                "APGR above 1: averaged over budgets between `{c}` and `{b}`, the router is better than the best single model itself"
            )),
            Some(a) if a < 0.0 => {
                Some(format!("APGR below 0: on average the router is worse than always using the cheapest model `{c}`"))
            }
            Some(_) => None,
        }
    }

    /// Reference choices that differed between folds, for a warning line.
    pub fn reference_disagreement(&self) -> Option<String> {
        let differ = self.references_per_fold.iter().filter(|r| **r != self.references).count();
        (differ > 0).then(|| {
            format!(
                "the reference models differed in {differ} of {} folds (the most frequent pair is used for the pooled metrics)",
                self.references_per_fold.len()
            )
        })
    }

    /// Models whose held-out outcome is constant (skipped by the mean AUROC and ECE).
    pub fn constant_models(&self) -> Vec<&str> {
        self.calibration.iter().filter(|c| c.constant_outcome).map(|c| c.model.as_str()).collect()
    }
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
    /// Per fold: (τ, validation share) for each target share, (λ, validation share) for
    /// each share cap, and the λ matching the best single model's quality.
    taus: Vec<Vec<(f64, f64)>>,
    lambdas: Vec<Vec<(f64, f64)>>,
    matched: Vec<Option<f64>>,
    margins: Vec<f64>,
    refs: Vec<References>,
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
    let data = Dataset::from_records(records, catalog)?.complete();
    anyhow::ensure!(
        data.rows.len() >= MIN_PROMPTS,
        "only {} prompts have an outcome for every model; at least {MIN_PROMPTS} are needed to train, validate and test",
        data.rows.len()
    );
    let n = data.rows.len();
    if let Some(k) = cfg.folds {
        // Each fold needs its own test prompts and enough left over to train and validate.
        anyhow::ensure!(
            (2..=n / 3).contains(&k),
            "{k}-fold cross-validation is not possible on {n} complete prompts: use between 2 and {} folds",
            n / 3
        );
    }
    // Folds follow prompt ids, not row order: every command cuts the same prompts alike.
    let keys: Vec<&str> = data.rows.iter().map(|r| r.prompt_id.as_str()).collect();
    let splits = match (&cfg.test_dataset, cfg.folds) {
        (Some(name), _) => vec![transfer_split(&data, name, cfg)?],
        (None, Some(k)) => split::k_fold_by_key(&keys, k, cfg.val_frac / (1.0 - cfg.test_frac), cfg.seed),
        (None, None) => vec![split::train_val_test_by_key(&keys, cfg.val_frac, cfg.test_frac, cfg.seed)],
    };
    let protocol = match (&cfg.test_dataset, cfg.folds) {
        (Some(name), _) => format!("trained on the other datasets, tested on all of {name} (seed {})", cfg.seed),
        (None, Some(k)) => format!("{k}-fold CV (seed {})", cfg.seed),
        (None, None) => format!(
            "train/val/test {:.0}/{:.0}/{:.0} (seed {})",
            100.0 * (1.0 - cfg.val_frac - cfg.test_frac),
            100.0 * cfg.val_frac,
            100.0 * cfg.test_frac,
            cfg.seed
        ),
    };
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
        // The references come from this fold's training and validation prompts only.
        let known = data.subset(&[s.train.as_slice(), s.val.as_slice()].concat());
        let refs = References::choose(&known.targets_complete(), &known.costs());
        g.refs.push(refs);
        let Predicted { p: vp, cost: vc, .. } = predict(&val)?;
        let val_truth = (val.targets_complete(), val.costs());
        let vt = Outcomes::new(&val_truth.0, &val_truth.1, refs, &[]);
        g.taus.push(TARGET_SHARES.iter().map(|&t| calibrate_tau(&vp, &vc, &vt, t)).collect());
        g.lambdas.push(SHARE_CAPS.iter().map(|&cap| calibrate_lambda(&vp, &vc, &vt, cap)).collect());
        g.matched.push(match_best_single(&vp, &vc, &vt));
        g.margins.push(choose_margin(&vp, &vc, &vt));
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
    let refs = most_frequent(&g.refs);
    let truth = Outcomes::new(&scores, &costs, refs, &tested_latencies);
    let singles: Vec<OperatingPoint> = (0..data.n_models()).map(|m| truth.single(m)).collect();
    let (q_weak, q_strong) = (singles[refs.cheapest].quality, singles[refs.best].quality);
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

    let refq = (q_weak, q_strong);
    let thresholds =
        validated_points(&g.taus, &TARGET_SHARES, &g, &splits, &truth, refq, |tau| Policy::Threshold { tau })
            .into_iter()
            .map(|v| ValidatedPoint { reached: tau_reached(&v), ..v })
            .collect();
    let budgeted =
        validated_points(&g.lambdas, &SHARE_CAPS, &g, &splits, &truth, refq, |lambda| Policy::CostTradeoff { lambda })
            .into_iter()
            .map(|v| ValidatedPoint { reached: cap_binds(&v), ..v })
            .collect();
    let matched_cost = matched_cost(&g, &splits, &truth, &singles[refs.best]);
    let mut margin_choices = Vec::with_capacity(g.rows.len());
    let mut start = 0;
    for (f, s) in splits.iter().enumerate() {
        for i in start..start + s.test.len() {
            margin_choices.push(switch_choice(&g.p[i], &g.cost[i], refs.best, g.margins[f]));
        }
        start += s.test.len();
    }
    let switch_margin = median(g.margins.clone());
    let max_quality_margin = truth.evaluate(&margin_choices, switch_margin);
    let calibration = (0..data.n_models())
        .map(|m| {
            let y: Vec<f64> = scores.iter().map(|s| s[m]).collect();
            let raw: Vec<f64> = g.raw.iter().map(|r| r[m]).collect();
            let cal: Vec<f64> = g.p.iter().map(|r| r[m]).collect();
            let constant_outcome = y.iter().all(|v| (v >= &0.5) == (y[0] >= 0.5));
            ModelCalibration {
                model: data.catalog.models[m].id.clone(),
                raw: calibration::report(&raw, &y),
                calibrated: calibration::report(&cal, &y),
                constant_outcome,
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
        references: refs,
        references_per_fold: g.refs.clone(),
        oracle: truth.oracle(),
        random: truth.random_uniform(),
        singles,
        max_quality,
        max_quality_margin,
        switch_margin,
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
        matched_cost,
        decision_ms: 1e3 * g.decision_seconds / g.decisions_timed.max(1) as f64,
        calibration,
        aurc,
        hallucination_at_05: metrics::hallucination_rate(&conf, &realised, 0.5),
        train_seconds,
        hyperparameters: hyper,
    })
}

/// A τ target counts as reached when validation landed within [`REACH_TOLERANCE`] of it.
fn tau_reached(v: &ValidatedPoint) -> bool {
    (v.validation_share - v.target_share).abs() <= REACH_TOLERANCE
}

/// A λ cap binds when the router, allowed that share, would use (nearly) all of it.
fn cap_binds(v: &ValidatedPoint) -> bool {
    v.validation_share >= v.target_share - REACH_TOLERANCE
}

/// Every prompt of dataset `name` for testing; the others split into training and
/// validation by prompt id.
fn transfer_split(data: &Dataset, name: &str, cfg: &EvalConfig) -> anyhow::Result<split::Split> {
    let (test, rest): (Vec<usize>, Vec<usize>) = (0..data.rows.len()).partition(|&i| data.rows[i].dataset == name);
    anyhow::ensure!(!test.is_empty(), "no complete prompt of dataset `{name}` to test on");
    anyhow::ensure!(rest.len() >= MIN_PROMPTS, "too few prompts of other datasets to train on ({})", rest.len());
    let keys: Vec<&str> = rest.iter().map(|&i| data.rows[i].prompt_id.as_str()).collect();
    let s = split::train_val_test_by_key(&keys, cfg.val_frac / (1.0 - cfg.test_frac), 0.0, cfg.seed);
    Ok(split::Split {
        train: s.train.iter().map(|&i| rest[i]).collect(),
        val: s.val.iter().map(|&i| rest[i]).collect(),
        test,
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
fn calibrate_tau(p: &[Vec<f64>], c: &[Vec<f64>], truth: &Outcomes, target: f64) -> (f64, f64) {
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
    let tau = (lo + hi) / 2.0;
    (tau, metrics::policy_point(p, c, truth, &Policy::Threshold { tau }).strong_share)
}

/// The smallest λ that sends at most `cap` of validation prompts to the strong model: the
/// budget used in full, as RouteLLM calibrates its thresholds. (Maximising validation
/// quality under the cap instead chases noise on validation sets of a few dozen prompts.)
/// λ is scanned upwards: the share to the best single model falls as λ grows when that model
/// is the dearest; when it is not, the first λ meeting the cap is taken. λ = max sends
/// everything to the cheapest model.
fn calibrate_lambda(p: &[Vec<f64>], c: &[Vec<f64>], truth: &Outcomes, cap: f64) -> (f64, f64) {
    metrics::lambda_grid(p, c, SWEEP_POINTS)
        .into_iter()
        .map(|lambda| (lambda, metrics::policy_point(p, c, truth, &Policy::CostTradeoff { lambda }).strong_share))
        .find(|&(_, share)| share <= cap + 1e-12)
        .unwrap_or((f64::MAX, 0.0))
}

/// The λ of the cheapest validation operating point whose quality reaches the best single
/// model's on the same validation prompts; `None` when no point does.
fn match_best_single(p: &[Vec<f64>], c: &[Vec<f64>], truth: &Outcomes) -> Option<f64> {
    let target = truth.single(truth.refs.best).quality - 1e-12;
    metrics::lambda_sweep(p, c, truth, SWEEP_POINTS)
        .into_iter()
        .filter(|pt| pt.quality >= target)
        .min_by(|a, b| a.cost.total_cmp(&b.cost))
        .map(|pt| pt.param)
}

/// Margins tried for [`switch_choice`] on validation prompts.
const MARGINS: [f64; 8] = [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 1.0];

/// The max-quality choice, unless it is predicted less than `margin` better than `best`.
fn switch_choice(p: &[f64], c: &[f64], best: usize, margin: f64) -> usize {
    let m = conductor_core::policy::choose_index(p, c, &Policy::MaxQuality);
    if p[m] - p[best] >= margin && m != best {
        m
    } else {
        best
    }
}

/// The margin with the best validation quality (ties: the larger margin, the safer choice).
fn choose_margin(p: &[Vec<f64>], c: &[Vec<f64>], truth: &Outcomes) -> f64 {
    let mut best = (f64::NEG_INFINITY, 0.0);
    for &m in &MARGINS {
        let choices: Vec<usize> = p.iter().zip(c).map(|(pi, ci)| switch_choice(pi, ci, truth.refs.best, m)).collect();
        let q = truth.evaluate(&choices, m).quality;
        if q >= best.0 - 1e-12 {
            best = (q, m);
        }
    }
    best.1
}

/// Applies each fold's matching λ to its test prompts; `None` if a fold had none.
fn matched_cost(g: &Gathered, splits: &[split::Split], truth: &Outcomes, best: &OperatingPoint) -> Option<MatchedCost> {
    let lambdas: Vec<f64> = g.matched.iter().copied().collect::<Option<Vec<f64>>>()?;
    let choices = per_fold_choices(g, splits, |f| Policy::CostTradeoff { lambda: lambdas[f] });
    let param = median(lambdas);
    let test = truth.evaluate(&choices, param);
    let holds = test.quality >= best.quality - test.diff_se.unwrap_or(0.0) - 1e-12;
    Some(MatchedCost { param, holds, cost_fraction: test.cost / best.cost.max(f64::MIN_POSITIVE), test })
}

/// The reference pair most folds chose (ties: the earliest fold's).
pub(crate) fn most_frequent(refs: &[References]) -> References {
    let count = |r: &References| refs.iter().filter(|x| *x == r).count();
    refs.iter()
        .copied()
        .max_by(|a, b| count(a).cmp(&count(b)).then(std::cmp::Ordering::Greater))
        .unwrap_or(References { best: 0, cheapest: 0 })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One choice per gathered test prompt, each fold's prompts under that fold's policy.
fn per_fold_choices(g: &Gathered, splits: &[split::Split], policy: impl Fn(usize) -> Policy) -> Vec<usize> {
    let mut choices = Vec::with_capacity(g.rows.len());
    let mut start = 0;
    for (f, s) in splits.iter().enumerate() {
        let pol = policy(f);
        for i in start..start + s.test.len() {
            choices.push(conductor_core::policy::choose_index(&g.p[i], &g.cost[i], &pol));
        }
        start += s.test.len();
    }
    choices
}

/// Applies each fold's validation-chosen knob (`params[fold][target].0`) to that fold's test
/// prompts, one point per target.
fn validated_points(
    params: &[Vec<(f64, f64)>],
    targets: &[f64],
    g: &Gathered,
    splits: &[split::Split],
    truth: &Outcomes,
    (q_weak, q_strong): (f64, f64),
    policy: impl Fn(f64) -> Policy,
) -> Vec<ValidatedPoint> {
    targets
        .iter()
        .enumerate()
        .map(|(t, &target)| {
            let choices = per_fold_choices(g, splits, |f| policy(params[f][t].0));
            // The median: λ spans orders of magnitude (and is f64::MAX for "all cheapest").
            let param = median(params.iter().map(|v| v[t].0).collect());
            let validation_share = params.iter().map(|v| v[t].1).sum::<f64>() / params.len().max(1) as f64;
            let test = truth.evaluate(&choices, param);
            ValidatedPoint {
                target_share: target,
                param,
                pgr: metrics::pgr(test.quality, q_weak, q_strong),
                test,
                validation_share,
                reached: true,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use conductor_core::catalog::{ModelEntry, Tier};

    fn entry(id: &str, price: f64, tier: Tier) -> ModelEntry {
        ModelEntry {
            id: id.into(),
            provider: "t".into(),
            input_usd_per_mtok: price,
            output_usd_per_mtok: price,
            context_length: 4096,
            tier,
        }
    }

    /// Four models where price says nothing about quality: `cheap` solves a third,
    /// `mid-a` one topic, `mid-b` the other, and the dearest, `giant`, nothing at all.
    fn many_models() -> (Vec<Record>, Catalog) {
        let catalog = Catalog {
            models: vec![
                entry("cheap", 0.1, Tier::Small),
                entry("mid-a", 0.2, Tier::Medium),
                entry("mid-b", 0.3, Tier::Medium),
                entry("giant", 30.0, Tier::Large),
            ],
        };
        let topics = ["integral of a polynomial in calculus", "the capital city of a European country"];
        let mut records = Vec::new();
        for i in 0..90 {
            let topic = i % 2;
            let prompt = format!("Question {i} about {}: item {}", topics[topic], i * 7 % 13);
            for (m, score) in [
                ("cheap", (i % 3 == 0) as u8),
                ("mid-a", (topic == 0) as u8),
                ("mid-b", (topic == 1 || i % 5 == 0) as u8),
                ("giant", 0),
            ] {
                records.push(Record {
                    prompt_id: format!("p{i:03}"),
                    dataset: "t".into(),
                    prompt: prompt.clone(),
                    model: m.into(),
                    score: score as f64,
                    ..Default::default()
                });
            }
        }
        (records, catalog)
    }

    fn cfg() -> EvalConfig {
        EvalConfig { predictor: PredictorKind::LogReg, folds: Some(5), ..EvalConfig::default() }
    }

    #[test]
    fn references_come_from_data_and_every_metric_is_defined_or_explained() {
        let (records, catalog) = many_models();
        let r = run_eval(&records, &catalog, &cfg(), None, None).unwrap();
        assert_eq!(r.best_name(), "mid-b", "the best single model by quality, not the dearest");
        assert_eq!(r.cheapest_name(), "cheap");
        assert!(r.references_per_fold.iter().all(|f| *f == r.references));
        // The constant model is named and skipped; the means are finite.
        assert_eq!(r.constant_models(), vec!["giant"]);
        let (ece, brier, auroc) = crate::table::mean_calibration(&r).unwrap();
        assert!(ece.is_finite() && brier.is_finite() && auroc.is_finite());
        // APGR is defined here; outside [0, 1] it must come with its explanation.
        let apgr = r.apgr.unwrap();
        assert!(apgr.is_finite());
        assert_eq!(r.apgr_note().is_some(), !(0.0..=1.0).contains(&apgr), "{apgr} {:?}", r.apgr_note());
        assert!(r.pgr_curve.iter().all(|(x, y)| (0.0..=1.0).contains(x) && y.is_finite()));
        // The router should beat the best single model here (the two mid models split the topics).
        assert!(r.max_quality.quality > r.singles[r.references.best].quality, "{:?}", r.max_quality);
        let m = r.matched_cost.as_ref().expect("a validated point reaches the best single model's quality");
        assert!(m.cost_fraction.is_finite());
        // Nothing in the tables prints NaN.
        let text = crate::table::detailed(&r) + &crate::table::summary_row(&r);
        assert!(!text.contains("NaN"), "{text}");
        assert!(text.contains("skipped: constant outcome"), "{text}");
    }

    #[test]
    fn unreachable_targets_are_marked_not_printed_as_distinct_points() {
        let (records, catalog) = many_models();
        let mut r = run_eval(&records, &catalog, &cfg(), None, None).unwrap();
        let v = |target: f64, share: f64| ValidatedPoint {
            target_share: target,
            param: 0.5,
            test: r.max_quality,
            pgr: 1.0,
            validation_share: share,
            reached: true,
        };
        assert!(tau_reached(&v(0.3, 0.32)) && !tau_reached(&v(0.1, 0.5)));
        assert!(cap_binds(&v(0.5, 0.48)) && !cap_binds(&v(0.5, 0.2)));
        r.thresholds = vec![ValidatedPoint { reached: false, ..v(0.1, 0.5) }];
        r.budgeted = vec![ValidatedPoint { reached: false, ..v(0.6, 0.2) }];
        let text = crate::table::detailed(&r);
        assert!(text.contains("**target not reached**: 50.0% on validation"), "{text}");
        assert!(text.contains("20.0% on validation (the cap does not bind)"), "{text}");
    }

    #[test]
    fn folds_follow_prompt_ids_not_record_order() {
        let (mut records, catalog) = many_models();
        let a = run_eval(&records, &catalog, &cfg(), None, None).unwrap();
        records.reverse();
        let b = run_eval(&records, &catalog, &cfg(), None, None).unwrap();
        assert_eq!(a.max_quality, b.max_quality);
        assert_eq!(format!("{:?}", a.singles), format!("{:?}", b.singles), "NaN knobs compare by text");
        assert_eq!(a.apgr, b.apgr);
        assert_eq!(a.references_per_fold, b.references_per_fold);
    }

    #[test]
    fn transfer_tests_on_every_prompt_of_one_dataset_and_trains_on_the_others() {
        let (mut records, catalog) = many_models();
        for r in records.iter_mut() {
            if r.prompt_id.as_str() >= "p060" {
                r.dataset = "u".into();
            }
        }
        let cfg = EvalConfig { test_dataset: Some("u".into()), ..cfg() };
        let r = run_eval(&records, &catalog, &cfg, None, None).unwrap();
        assert_eq!(r.test_prompts, 30);
        assert!(r.protocol.contains("tested on all of u"), "{}", r.protocol);
        let bad = EvalConfig { test_dataset: Some("nope".into()), ..cfg };
        assert!(run_eval(&records, &catalog, &bad, None, None).unwrap_err().to_string().contains("`nope`"));
    }

    #[test]
    fn the_best_single_model_being_the_cheapest_leaves_apgr_undefined_and_says_why() {
        let (mut records, catalog) = many_models();
        for r in records.iter_mut().filter(|r| r.model == "cheap") {
            r.score = 1.0;
        }
        let r = run_eval(&records, &catalog, &cfg(), None, None).unwrap();
        assert_eq!(r.best_name(), "cheap");
        assert_eq!(r.apgr, None);
        assert!(r.apgr_note().unwrap().contains("also the cheapest"));
        assert!(crate::table::detailed(&r).contains("APGR undefined"));
    }
}
