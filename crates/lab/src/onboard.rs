//! The onboarding experiment: how well does a model added from K labels
//! ([`Router::onboard`]) route, compared with retraining the router on everything?
//!
//! For each held-out model m and each fold: a router is trained without m (training and
//! validation prompts only); m is then added from K labels on training prompts, chosen as
//! informative ([`profile::informative`]) or at random; a router trained on all models
//! (m included, every training label) is the reference. Both are measured on the fold's
//! test prompts; the metrics pool the folds, as `lab eval` does, with the same keyed folds.

use crate::eval::EvalConfig;
use conductor_core::catalog::Catalog;
use conductor_core::dataset::{Dataset, PromptRow};
use conductor_core::embedder::TextEmbedder;
use conductor_core::features::EmbeddingCache;
use conductor_core::metrics::{self, Outcomes, References};
use conductor_core::policy::{choose_index, Policy};
use conductor_core::predictors::profile;
use conductor_core::records::Record;
use conductor_core::router::Router;
use conductor_core::split;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

/// How the K prompts to label are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Selection {
    Informative,
    Random,
}

/// One (model, K, selection) result, pooled over folds.
#[derive(Debug, Clone, Serialize)]
pub struct OnboardRow {
    pub model: String,
    pub k: usize,
    pub selection: Selection,
    pub apgr: Option<f64>,
    pub max_quality: f64,
    /// The same metrics for the router retrained with every label.
    pub full_apgr: Option<f64>,
    pub full_max_quality: f64,
    /// AUROC of the added model's predicted success on test prompts (full router's beside).
    pub auroc: f64,
    pub full_auroc: f64,
}

/// Predictions gathered on test prompts: calibrated success and estimated cost.
#[derive(Default, Clone)]
struct Gathered {
    p: Vec<Vec<f64>>,
    cost: Vec<Vec<f64>>,
}

impl Gathered {
    fn push(&mut self, router: &Router, test: &Dataset, order: &[usize], x: &[conductor_core::features::SparseVec]) {
        for (xi, row) in x.iter().zip(&test.rows) {
            let preds = router.predict(xi, row.prompt_tokens);
            // Re-ordered into the full catalogue's column order.
            self.p.push(order.iter().map(|&j| preds[j].p_success).collect());
            self.cost.push(order.iter().map(|&j| preds[j].est_cost_usd).collect());
        }
    }
}

/// The dataset without model `j` (its column dropped, catalogue restricted).
fn without_model(d: &Dataset, j: usize) -> Dataset {
    let keep: Vec<String> =
        d.catalog.models.iter().enumerate().filter(|(i, _)| *i != j).map(|(_, m)| m.id.clone()).collect();
    let drop = |v: &[f64]| v.iter().enumerate().filter(|(i, _)| *i != j).map(|(_, x)| *x).collect();
    Dataset {
        catalog: d.catalog.restricted_to(&keep),
        rows: d
            .rows
            .iter()
            .map(|r| PromptRow {
                scores: r.scores.iter().enumerate().filter(|(i, _)| *i != j).map(|(_, s)| *s).collect(),
                costs: drop(&r.costs),
                completion_tokens: r
                    .completion_tokens
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != j)
                    .map(|(_, c)| *c)
                    .collect(),
                latencies_ms: r.latencies_ms.iter().enumerate().filter(|(i, _)| *i != j).map(|(_, l)| *l).collect(),
                ..r.clone()
            })
            .collect(),
    }
}

/// APGR (flat per-model costs, as `lab eval` reports it) and max-quality of gathered predictions.
fn summarize(g: &Gathered, truth: &Outcomes) -> (Option<f64>, f64) {
    let m = g.cost.first().map_or(0, Vec::len);
    let n = g.cost.len().max(1) as f64;
    let mean: Vec<f64> = (0..m).map(|j| g.cost.iter().map(|c| c[j]).sum::<f64>() / n).collect();
    let flat = vec![mean; g.cost.len()];
    let singles: Vec<f64> = (0..m).map(|j| truth.single(j).quality).collect();
    let points = metrics::lambda_sweep(&g.p, &flat, truth, 400);
    let curve = metrics::pgr_curve(&points, singles[truth.refs.cheapest], singles[truth.refs.best]);
    let choices: Vec<usize> = g.p.iter().zip(&g.cost).map(|(p, c)| choose_index(p, c, &Policy::MaxQuality)).collect();
    (metrics::apgr(&curve), truth.evaluate(&choices, 0.0).quality)
}

/// Runs the experiment for each of `models` (ids), each K and both selections.
pub fn run_onboard(
    records: &[Record],
    catalog: &Catalog,
    cfg: &EvalConfig,
    models: &[String],
    ks: &[usize],
    embedder: Option<&dyn TextEmbedder>,
    cache: Option<&EmbeddingCache>,
) -> anyhow::Result<Vec<OnboardRow>> {
    let data = Dataset::from_records(records, catalog)?.complete();
    anyhow::ensure!(data.n_models() >= 3, "onboarding needs at least three models (two to route between, one to add)");
    let keys: Vec<&str> = data.rows.iter().map(|r| r.prompt_id.as_str()).collect();
    let folds = cfg.folds.unwrap_or(5);
    let splits = split::k_fold_by_key(&keys, folds, cfg.val_frac / (1.0 - cfg.test_frac), cfg.seed);
    let targets: Vec<usize> = models.iter().map(|m| data.catalog.index_of(m)).collect::<Result<_, _>>()?;
    let n_models = data.n_models();
    let selections = [Selection::Informative, Selection::Random];
    let mut full_g = Gathered::default();
    // [target][k][selection]
    let mut onb: Vec<Vec<Vec<Gathered>>> = vec![vec![vec![Gathered::default(); 2]; ks.len()]; targets.len()];
    let mut tested: Vec<usize> = Vec::new();
    let mut refs_per_fold = Vec::new();
    for s in &splits {
        let (train, val, test) = (data.subset(&s.train), data.subset(&s.val), data.subset(&s.test));
        let known = data.subset(&[s.train.as_slice(), s.val.as_slice()].concat());
        refs_per_fold.push(References::choose(&known.targets_complete(), &known.costs()));
        let router = Router::train(&train, &val, cfg.predictor, cfg.features, embedder, cache, cfg.seed)?;
        let x_test = router.featurize_batch(&test.texts(), embedder, cache)?;
        let identity: Vec<usize> = (0..n_models).collect();
        full_g.push(&router, &test, &identity, &x_test);
        for (t, &j) in targets.iter().enumerate() {
            let base = Router::train(
                &without_model(&train, j),
                &without_model(&val, j),
                cfg.predictor,
                cfg.features,
                embedder,
                cache,
                cfg.seed,
            )?;
            let x_train = base.featurize_batch(&train.texts(), embedder, cache)?;
            let x_test = base.featurize_batch(&test.texts(), embedder, cache)?;
            let profiles: Vec<Vec<f64>> = x_train.iter().map(|x| base.raw_predictions(x)).collect();
            // The onboarded router lists m last; map back to catalogue order.
            let order: Vec<usize> = (0..n_models)
                .map(|c| match c.cmp(&j) {
                    std::cmp::Ordering::Less => c,
                    std::cmp::Ordering::Equal => n_models - 1,
                    std::cmp::Ordering::Greater => c - 1,
                })
                .collect();
            for (ki, &k) in ks.iter().enumerate() {
                for (si, sel) in selections.iter().enumerate() {
                    let chosen: Vec<(usize, f64)> = match sel {
                        Selection::Informative => profile::informative(&profiles, k),
                        Selection::Random => {
                            let mut idx: Vec<usize> = (0..train.rows.len()).collect();
                            idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(
                                cfg.seed ^ (k as u64) ^ (j as u64) << 16,
                            ));
                            idx.into_iter().take(k).map(|i| (i, 1.0)).collect()
                        }
                    };
                    let xs: Vec<_> = chosen.iter().map(|&(i, _)| x_train[i].clone()).collect();
                    let ys: Vec<f64> = chosen.iter().map(|&(i, _)| train.rows[i].scores[j].unwrap_or(0.0)).collect();
                    let ws: Vec<f64> = chosen.iter().map(|&(_, w)| w).collect();
                    let ct = chosen.iter().map(|&(i, _)| train.rows[i].completion_tokens[j] as f64).sum::<f64>()
                        / chosen.len().max(1) as f64;
                    let mut r = base.clone();
                    r.onboard_weighted(data.catalog.models[j].clone(), &xs, &ys, &ws, ct)?;
                    onb[t][ki][si].push(&r, &test, &order, &x_test);
                }
            }
        }
        tested.extend(s.test.iter().copied());
    }
    let tested_data = data.subset(&tested);
    let (scores, costs) = (tested_data.targets_complete(), tested_data.costs());
    let refs = crate::eval::most_frequent(&refs_per_fold);
    let truth = Outcomes::new(&scores, &costs, refs, &[]);
    let (full_apgr, full_mq) = summarize(&full_g, &truth);
    let auroc = |g: &Gathered, j: usize| {
        let p: Vec<f64> = g.p.iter().map(|r| r[j]).collect();
        let y: Vec<f64> = scores.iter().map(|r| r[j]).collect();
        conductor_core::calibration::auroc(&p, &y)
    };
    let mut rows = Vec::new();
    for (t, &j) in targets.iter().enumerate() {
        for (ki, &k) in ks.iter().enumerate() {
            for (si, sel) in selections.iter().enumerate() {
                let g = &onb[t][ki][si];
                let (apgr, mq) = summarize(g, &truth);
                rows.push(OnboardRow {
                    model: data.catalog.models[j].id.clone(),
                    k,
                    selection: *sel,
                    apgr,
                    max_quality: mq,
                    full_apgr,
                    full_max_quality: full_mq,
                    auroc: auroc(g, j),
                    full_auroc: auroc(&full_g, j),
                });
            }
        }
    }
    Ok(rows)
}

/// The experiment's table as Markdown.
pub fn render(rows: &[OnboardRow]) -> String {
    let f = |v: Option<f64>| v.map_or("undefined".into(), |x| format!("{x:.3}"));
    let mut o = String::from(
        "| added model | K labels | chosen | APGR (onboarded) | APGR (full retrain) | Δ APGR | max quality (onboarded) | max quality (full) | AUROC of the added model (onboarded / full) |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let d = match (r.apgr, r.full_apgr) {
            (Some(a), Some(b)) => format!("{:+.3}", a - b),
            _ => "–".into(),
        };
        o.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {d} | {:.4} | {:.4} | {:.3} / {:.3} |\n",
            r.model,
            r.k,
            match r.selection {
                Selection::Informative => "informative",
                Selection::Random => "random",
            },
            f(r.apgr),
            f(r.full_apgr),
            r.max_quality,
            r.full_max_quality,
            r.auroc,
            r.full_auroc
        ));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use conductor_core::catalog::{ModelEntry, Tier};
    use conductor_core::predictors::PredictorKind;

    #[test]
    fn a_model_added_from_few_labels_routes_close_to_a_full_retrain() {
        let entry = |id: &str, price: f64| ModelEntry {
            id: id.into(),
            provider: "t".into(),
            input_usd_per_mtok: price,
            output_usd_per_mtok: price,
            context_length: 4096,
            tier: Tier::Medium,
        };
        let catalog =
            Catalog { models: vec![entry("cheap", 0.1), entry("maths", 1.0), entry("words", 1.0), entry("twin", 2.0)] };
        let topics = ["solve the integral of the polynomial", "write a friendly poem about the sea"];
        let mut records = Vec::new();
        for i in 0..160 {
            let t = i % 2;
            for (m, s) in [("cheap", i % 4 == 0), ("maths", t == 0), ("words", t == 1), ("twin", t == 0)] {
                records.push(Record {
                    prompt_id: format!("p{i:03}"),
                    dataset: "t".into(),
                    prompt: format!("{} number {i}", topics[t]),
                    model: m.into(),
                    score: s as u8 as f64,
                    ..Default::default()
                });
            }
        }
        let cfg = EvalConfig { predictor: PredictorKind::LogReg, folds: Some(4), ..EvalConfig::default() };
        let rows = run_onboard(&records, &catalog, &cfg, &["twin".into()], &[12], None, None).unwrap();
        assert_eq!(rows.len(), 2);
        for r in &rows {
            // `twin` behaves like `maths`: a dozen labels suffice to rank it well.
            assert!(r.auroc > 0.9, "{r:?}");
            assert!(r.max_quality >= r.full_max_quality - 0.05, "{r:?}");
        }
        assert!(render(&rows).contains("| `twin` | 12 | informative |"));
    }
}
