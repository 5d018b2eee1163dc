//! Benchmarks: decision latency (featurize + predict + decide) with a large kNN memory,
//! and training time. Printed as p50/p99, not asserted in tests.

use conductor_core::catalog::Catalog;
use conductor_core::dataset::Dataset;
use conductor_core::embedder::TextEmbedder;
use conductor_core::features::{EmbeddingCache, FeatureKind};
use conductor_core::policy::{decide, Constraints, Policy};
use conductor_core::predictors::PredictorKind;
use conductor_core::records::Record;
use conductor_core::router::Router;
use conductor_core::split;
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct LatencyReport {
    pub memory_records: usize,
    pub prompt_tokens: usize,
    pub iterations: usize,
    /// Callers deciding at once (each timing its own decisions, waiting included).
    pub concurrency: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainTime {
    pub predictor: String,
    pub features: String,
    pub prompts: usize,
    pub seconds: f64,
    pub hyperparameters: String,
}

/// Where prompt features come from: the kind, and for MiniLM the embedder and its cache.
#[derive(Clone, Copy)]
pub struct FeatureSource<'a> {
    pub kind: FeatureKind,
    pub embedder: Option<&'a dyn TextEmbedder>,
    pub cache: Option<&'a EmbeddingCache>,
}

/// A ~512-token prompt built from real dataset prompts (4 characters per token).
pub fn long_prompt(records: &[Record], tokens: usize) -> String {
    let mut s = String::new();
    for r in records.iter().cycle().take(records.len().max(1) * 4) {
        if s.len() >= tokens * 4 {
            break;
        }
        s.push_str(&r.prompt);
        s.push('\n');
    }
    s.chars().take(tokens * 4).collect()
}

/// Trains a kNN router on the records, fills its memory to `memory_records` stored
/// outcomes by feeding the records' own features back as feedback (real prompts,
/// repeated), then times `iterations` decisions on `prompt_tokens`-token prompts, made by
/// `concurrency` callers at once sharing the router (as the gateway's requests do): each
/// decision's time includes waiting for the cores the others hold.
pub fn decision_latency(
    records: &[Record],
    catalog: &Catalog,
    features: FeatureSource,
    memory_records: usize,
    prompt_tokens: usize,
    iterations: usize,
    concurrency: usize,
) -> anyhow::Result<LatencyReport> {
    let FeatureSource { kind: feature_kind, embedder, cache } = features;
    let data = Dataset::from_records(records, catalog)?;
    let s = split::train_val_test(data.rows.len(), 0.2, 0.0, 1);
    let mut router = Router::train(
        &data.subset(&s.train),
        &data.subset(&s.val),
        PredictorKind::Knn,
        feature_kind,
        embedder,
        cache,
        1,
    )?;
    let rows_in_memory = s.train.len() * data.n_models();
    let x = router.featurize_batch(&data.texts(), embedder, cache)?;
    let mut stored = rows_in_memory;
    let mut i = 0;
    while stored < memory_records {
        let row = &data.rows[i % data.rows.len()];
        let m = i % data.n_models();
        router.add_feedback(&x[i % x.len()], &data.catalog.models[m].id, row.scores[m].unwrap_or(0.0));
        stored += 1;
        i += 1;
    }
    let policy = Policy::CostTradeoff { lambda: conductor_core::policy::DEFAULT_LAMBDA };
    let callers = concurrency.max(1);
    let per_caller = iterations.div_ceil(callers);
    // A different real prompt per caller: no caller may profit from another's work.
    let prompts: Vec<String> =
        (0..callers).map(|c| long_prompt(&records[(c * 97) % records.len().max(1)..], prompt_tokens)).collect();
    let router = &router;
    let mut times: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = prompts
            .iter()
            .map(|prompt| {
                let policy = &policy;
                s.spawn(move || -> anyhow::Result<Vec<f64>> {
                    let mut times = Vec::with_capacity(per_caller);
                    for _ in 0..per_caller {
                        let t = Instant::now();
                        let f = router.featurize(prompt, embedder)?;
                        let preds = router.predict(&f, prompt_tokens);
                        std::hint::black_box(decide(&preds, policy, &Constraints::default()));
                        times.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    Ok(times)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a benchmark caller panicked"))))
            .collect::<anyhow::Result<Vec<Vec<f64>>>>()
    })?
    .into_iter()
    .flatten()
    .collect();
    times.sort_by(f64::total_cmp);
    let q = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    Ok(LatencyReport {
        memory_records: stored,
        prompt_tokens,
        iterations: times.len(),
        concurrency: callers,
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        max_ms: q(1.0),
    })
}

/// Time to train (fit features, choose hyper-parameters, calibrate) on all records, 80/20
/// train/validation. With MiniLM features and a warm cache this excludes embedding time.
pub fn training_time(
    records: &[Record],
    catalog: &Catalog,
    predictor: PredictorKind,
    features: FeatureSource,
) -> anyhow::Result<TrainTime> {
    let FeatureSource { kind: feature_kind, embedder, cache } = features;
    let data = Dataset::from_records(records, catalog)?;
    let s = split::train_val_test(data.rows.len(), 0.2, 0.0, 1);
    let t = Instant::now();
    let r = Router::train(&data.subset(&s.train), &data.subset(&s.val), predictor, feature_kind, embedder, cache, 1)?;
    Ok(TrainTime {
        predictor: predictor.to_string(),
        features: feature_kind.to_string(),
        prompts: data.rows.len(),
        seconds: t.elapsed().as_secs_f64(),
        hyperparameters: r.info().hyperparameters.clone(),
    })
}
