//! Online learning, measured: held-out prompts arrive as a stream, the router answers each
//! with its policy, and the rating of that answer (the chosen model's real score) comes
//! back as feedback before the next prompt — only for the model that answered, as in
//! serving. At checkpoints the router's max-quality choice is scored on a separate set of
//! held-out prompts that never give feedback, for a router that starts cold (tier priors,
//! no training) and one trained on the training prompts.
//!
//! Exploration: the stream policy is max quality with probability 1 − ε and a uniformly
//! random model with probability ε (seeded), so that a cold router also hears about the
//! models its priors would never pick.

use crate::eval::EvalConfig;
use conductor_core::catalog::Catalog;
use conductor_core::dataset::Dataset;
use conductor_core::embedder::TextEmbedder;
use conductor_core::features::{EmbeddingCache, FeatureKind};
use conductor_core::metrics::References;
use conductor_core::policy::{choose_index, Policy};
use conductor_core::records::Record;
use conductor_core::router::Router;
use conductor_core::split;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// Share of stream prompts answered by a random model.
pub const EPSILON: f64 = 0.1;

/// Quality of one router at a number of feedback rows received.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    pub start: String,
    /// (feedback rows so far, held-out max-quality score).
    pub points: Vec<(usize, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OnlineReport {
    pub stream_prompts: usize,
    pub eval_prompts: usize,
    pub best_single: String,
    pub best_single_quality: f64,
    pub oracle_quality: f64,
    pub curves: Vec<Curve>,
}

/// Feedback counts at which the held-out quality is measured (0, 25, 50, 100, … up to n).
fn checkpoints(n: usize) -> Vec<usize> {
    let mut c = vec![0];
    let mut k = 25;
    while k < n {
        c.push(k);
        k *= 2;
    }
    c.push(n);
    c
}

/// Runs the replay. Training, validation and the two held-out halves come from one keyed
/// split: 40% train, 10% validation, 25% stream, 25% evaluation.
pub fn run_online(
    records: &[Record],
    catalog: &Catalog,
    cfg: &EvalConfig,
    embedder: Option<&dyn TextEmbedder>,
    cache: Option<&EmbeddingCache>,
) -> anyhow::Result<OnlineReport> {
    let data = Dataset::from_records(records, catalog)?.complete();
    anyhow::ensure!(
        data.rows.len() >= 40,
        "the online replay needs at least 40 complete prompts (got {})",
        data.rows.len()
    );
    let keys: Vec<&str> = data.rows.iter().map(|r| r.prompt_id.as_str()).collect();
    let s = split::train_val_test_by_key(&keys, 0.1, 0.5, cfg.seed);
    let half = s.test.len() / 2;
    let (stream, eval) = (data.subset(&s.test[..half]), data.subset(&s.test[half..]));
    let (train, val) = (data.subset(&s.train), data.subset(&s.val));
    let known = data.subset(&[s.train.as_slice(), s.val.as_slice()].concat());
    let refs = References::choose(&known.targets_complete(), &known.costs());
    let eval_scores = eval.targets_complete();
    let n_eval = eval_scores.len().max(1) as f64;
    let best_single_quality = eval_scores.iter().map(|r| r[refs.best]).sum::<f64>() / n_eval;
    let oracle_quality = eval_scores.iter().map(|r| r.iter().copied().fold(0.0, f64::max)).sum::<f64>() / n_eval;

    let trained = Router::train(&train, &val, cfg.predictor, cfg.features, embedder, cache, cfg.seed)?;
    // The cold router needs no data: tier priors and n-gram features with uniform weights.
    let cold = Router::cold_start(data.catalog.clone(), FeatureKind::Ngram);
    let mut curves = Vec::new();
    for (name, mut router) in
        [("cold start".to_string(), cold), (format!("trained ({} prompts)", train.rows.len()), trained)]
    {
        let x_stream = router.featurize_batch(&stream.texts(), embedder, cache)?;
        let x_eval = router.featurize_batch(&eval.texts(), embedder, cache)?;
        let score_eval = |r: &Router| -> f64 {
            x_eval
                .iter()
                .zip(&eval.rows)
                .zip(&eval_scores)
                .map(|((x, row), s)| {
                    let preds = r.predict(x, row.prompt_tokens);
                    let p: Vec<f64> = preds.iter().map(|p| p.p_success).collect();
                    let c: Vec<f64> = preds.iter().map(|p| p.est_cost_usd).collect();
                    s[choose_index(&p, &c, &Policy::MaxQuality)]
                })
                .sum::<f64>()
                / n_eval
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
        let marks = checkpoints(stream.rows.len());
        let mut points = Vec::with_capacity(marks.len());
        for (i, (x, row)) in x_stream.iter().zip(&stream.rows).enumerate() {
            if marks.contains(&i) {
                points.push((i, score_eval(&router)));
            }
            let m = if rng.gen_bool(EPSILON) {
                rng.gen_range(0..data.n_models())
            } else {
                let preds = router.predict(x, row.prompt_tokens);
                let p: Vec<f64> = preds.iter().map(|p| p.p_success).collect();
                let c: Vec<f64> = preds.iter().map(|p| p.est_cost_usd).collect();
                choose_index(&p, &c, &Policy::MaxQuality)
            };
            let model = data.catalog.models[m].id.clone();
            router.add_feedback(x, &model, row.scores[m].unwrap_or(0.0));
        }
        points.push((stream.rows.len(), score_eval(&router)));
        curves.push(Curve { start: name, points });
    }
    Ok(OnlineReport {
        stream_prompts: stream.rows.len(),
        eval_prompts: eval.rows.len(),
        best_single: data.catalog.models[refs.best].id.clone(),
        best_single_quality,
        oracle_quality,
        curves,
    })
}

/// The replay as a Markdown table: one row per checkpoint, one column per router.
pub fn render(r: &OnlineReport) -> String {
    let mut o = format!(
        "{} stream prompts give feedback (ε = {EPSILON} exploration); quality is the max-quality choice on {} other held-out prompts. Best single model `{}`: {:.4}; oracle {:.4}.\n\n| feedback rows |",
        r.stream_prompts, r.eval_prompts, r.best_single, r.best_single_quality, r.oracle_quality
    );
    for c in &r.curves {
        o.push_str(&format!(" {} |", c.start));
    }
    o.push_str(&format!("\n|---|{}\n", "---|".repeat(r.curves.len())));
    let rows = r.curves.first().map_or(0, |c| c.points.len());
    for i in 0..rows {
        o.push_str(&format!("| {} |", r.curves[0].points[i].0));
        for c in &r.curves {
            o.push_str(&format!(" {:.4} |", c.points.get(i).map_or(f64::NAN, |p| p.1)));
        }
        o.push('\n');
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use conductor_core::catalog::{ModelEntry, Tier};
    use conductor_core::predictors::PredictorKind;

    #[test]
    fn feedback_teaches_a_cold_router_which_model_fits_which_prompt() {
        let entry = |id: &str, tier: Tier| ModelEntry {
            id: id.into(),
            provider: "t".into(),
            input_usd_per_mtok: 1.0,
            output_usd_per_mtok: 1.0,
            context_length: 4096,
            tier,
        };
        // The "large" model is only right on maths; the "small" one only on poems: tier
        // priors alone get half the prompts right.
        let catalog = Catalog { models: vec![entry("small", Tier::Small), entry("large", Tier::Large)] };
        let topics = ["solve the integral of the polynomial", "write a friendly poem about the sea"];
        let mut records = Vec::new();
        for i in 0..600 {
            let t = i % 2;
            for (m, s) in [("small", t == 1), ("large", t == 0)] {
                records.push(Record {
                    prompt_id: format!("p{i:04}"),
                    dataset: "t".into(),
                    prompt: format!("{} number {}", topics[t], i % 17),
                    model: m.into(),
                    score: s as u8 as f64,
                    ..Default::default()
                });
            }
        }
        let cfg = EvalConfig { predictor: PredictorKind::LogReg, ..EvalConfig::default() };
        let r = run_online(&records, &catalog, &cfg, None, None).unwrap();
        let cold = &r.curves[0].points;
        assert!(cold[0].1 < 0.6, "tier priors alone: {cold:?}");
        assert!(cold.last().unwrap().1 > 0.9, "learnt from feedback: {cold:?}");
        assert!(r.curves[1].points[0].1 > 0.9, "a trained router starts high: {:?}", r.curves[1].points);
        assert!(!render(&r).contains("NaN"));
    }
}
