//! `conductor lab convert|eval|train|bench|report`: the evaluation lab on the command line.
//! Argument parsing and printing only; the work is in `conductor-lab` and `conductor-core`.

use anyhow::Context;
use clap::builder::TypedValueParser as _;
use clap::{Args, Subcommand};
use conductor_core::catalog::Catalog;
use conductor_core::embedder::TextEmbedder;
use conductor_core::features::{EmbeddingCache, FeatureKind};
use conductor_core::predictors::PredictorKind;
use conductor_core::records::{self, Record};
use conductor_core::router::Router;
use conductor_core::split;
use conductor_lab::eval::{run_eval, EvalConfig};
use conductor_lab::{bench, convert, plot, report, table};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Subcommand)]
pub enum LabCommand {
    /// Convert the RouteLLM release (MMLU, GSM8K, MT-Bench) or, with --mmlu-pro, the MMLU-Pro
    /// release with 28 models into records files.
    Convert(ConvertArgs),
    /// Train on training prompts, evaluate on held-out prompts: tables and plots.
    Eval(EvalArgs),
    /// Train a router on all given records and save the versioned artifact.
    Train(TrainArgs),
    /// Decision latency (p50/p99) with a large memory, and training time.
    Bench(BenchArgs),
    /// The seed experiment on held-out prompts: each model alone, the router over the whole
    /// library and over the smaller models, random, oracle; quality, cost, latency, share to
    /// the largest model, and whether the router beats the largest model alone.
    Report(ReportArgs),
    /// Add a model to a trained router from a few labelled prompts, without retraining.
    Onboard(OnboardArgs),
    /// Measure onboarding: models added from K labels against a router retrained on everything.
    OnboardEval(OnboardEvalArgs),
    /// Replay held-out prompts as a stream with feedback after each answer: router quality
    /// against feedback rows, for a cold-start and a trained router.
    Online(OnlineArgs),
    /// Read the answer, not only the prompt: route-then-verify, cascades and abstention from
    /// records with answer signals, thresholds set on validation prompts with a promise.
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    common: Common,
    /// Predictor of the prompt-only router that picks the first model.
    #[arg(long, default_value = "logreg", value_parser = predictor_values())]
    predictor: PredictorKind,
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Promise for abstention: the selective error (wrong among answers given) at most this.
    #[arg(long, default_value_t = 0.10)]
    alpha: f64,
    /// Promise for verify and cascade: at most this share of requests reach the largest model.
    #[arg(long, default_value_t = 0.60)]
    beta: f64,
    /// Each promise may fail with at most this probability.
    #[arg(long, default_value_t = 0.10)]
    delta: f64,
    /// What the answer models read (comma-separated): logprobs (always), judge
    /// (`judge_p_yes`), examples (`examples_pass`), all — see `conductor signals`.
    #[arg(long, default_value = "logprobs")]
    signals: String,
    /// Output folder for `verify.md` and `verify.json`.
    #[arg(long, default_value = "out/lab/verify")]
    out: PathBuf,
}

#[derive(Args)]
pub struct OnlineArgs {
    #[command(flatten)]
    common: Common,
    /// Predictor of the trained router (auto: chosen on validation prompts).
    #[arg(long, default_value = "knn", value_parser = predictor_values())]
    predictor: PredictorKind,
    /// Output folder for `online.md`, `online.json` and the chart.
    #[arg(long, default_value = "out/lab/online")]
    out: PathBuf,
}

#[derive(Args)]
pub struct OnboardArgs {
    /// The trained router to extend.
    #[arg(long)]
    router: PathBuf,
    /// Records (JSONL) of the new model on a few prompts (other models' records are ignored).
    #[arg(long)]
    records: PathBuf,
    /// The new model's id; its price and tier come from --catalog.
    #[arg(long)]
    model: String,
    /// Catalogue holding the new model.
    #[arg(long)]
    catalog: PathBuf,
    /// Disk cache for MiniLM embeddings (routers on MiniLM features).
    #[arg(long, default_value = "out/embeddings")]
    cache: PathBuf,
    /// Where to write the extended router.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct OnboardEvalArgs {
    #[command(flatten)]
    common: Common,
    /// The models to hold out and add back from few labels (comma-separated ids).
    #[arg(long, value_delimiter = ',', required = true)]
    add: Vec<String>,
    /// Label budgets K (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "25,50,100")]
    k: Vec<usize>,
    /// Predictor (auto: chosen on each fold's validation prompts).
    #[arg(long, default_value = "logreg", value_parser = predictor_values())]
    predictor: PredictorKind,
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Output folder for `onboard.md` and `onboard.json`.
    #[arg(long, default_value = "out/lab/onboard")]
    out: PathBuf,
}

#[derive(Args)]
pub struct ConvertArgs {
    /// The `routellm` data folder.
    #[arg(long, default_value = "data/routellm")]
    routellm: PathBuf,
    /// Convert the MMLU-Pro release (this folder) instead, into `mmlu_pro.jsonl`; prices are
    /// in `catalog/mmlu_pro.toml`.
    #[arg(long, num_args = 0..=1, default_missing_value = "data/mmlu_pro", value_name = "DIR")]
    mmlu_pro: Option<PathBuf>,
    /// Output folder for `mmlu.jsonl`, `gsm8k.jsonl`, `mt_bench.jsonl` (or `mmlu_pro.jsonl`).
    #[arg(long, default_value = "out/records")]
    out: PathBuf,
}

#[derive(Args, Clone)]
pub struct Common {
    /// Records files (JSONL), comma-separated; they are evaluated together.
    #[arg(long, value_delimiter = ',', required = true)]
    records: Vec<PathBuf>,
    /// Model catalogue (TOML).
    #[arg(long, default_value = "catalog/routellm.toml")]
    catalog: PathBuf,
    /// Prompt features (auto: the best on validation prompts of the kinds without SmolLM).
    #[arg(long, default_value = "ngram", value_parser = feature_values())]
    features: FeatureKind,
    /// Seed of the prompt split and of training.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Disk cache for MiniLM embeddings and SmolLM prompt readings.
    #[arg(long, default_value = "out/embeddings")]
    cache: PathBuf,
    /// Only these catalogue models (comma-separated), e.g. a router over the smaller models alone.
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Only N prompts: those whose id has the smallest SHA-256 (the same ones in every run),
    /// for features too slow to compute on every prompt on a small machine.
    #[arg(long)]
    sample: Option<usize>,
    /// Only the records of these datasets (comma-separated, e.g. gsm8k).
    #[arg(long, value_delimiter = ',')]
    datasets: Vec<String>,
}

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    common: Common,
    /// Predictors, comma-separated to run several (auto: chosen on each fold's validation prompts).
    #[arg(long, value_delimiter = ',', default_value = "knn", value_parser = predictor_values())]
    predictor: Vec<PredictorKind>,
    /// k-fold cross-validation instead of one 60/20/20 train/validation/test split.
    #[arg(long)]
    folds: Option<usize>,
    /// Transfer: test on every prompt of this dataset (e.g. mt_bench), train and validate on
    /// the other records given.
    #[arg(long)]
    test_dataset: Option<String>,
    /// Output folder for the tables (Markdown, JSON) and plots (SVG, PNG).
    #[arg(long, default_value = "out/lab")]
    out: PathBuf,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    common: Common,
    /// Predictor (auto: chosen on the validation prompts).
    #[arg(long, default_value = "knn", value_parser = predictor_values())]
    predictor: PredictorKind,
    /// Where to write the router artifact.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct ReportArgs {
    /// Records files (JSONL), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "records/local.jsonl")]
    records: Vec<PathBuf>,
    #[arg(long, default_value = "catalog/local.toml")]
    catalog: PathBuf,
    /// Predictor (auto: chosen on each fold's validation prompts).
    #[arg(long, default_value = "auto", value_parser = predictor_values())]
    predictor: PredictorKind,
    /// Prompt features (auto: chosen on each fold's validation prompts).
    #[arg(long, default_value = "auto", value_parser = feature_values())]
    features: FeatureKind,
    #[arg(long, default_value_t = 5)]
    folds: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Re-check the claim with this many further CV seeds (seed+1, seed+2, …).
    #[arg(long, default_value_t = 4)]
    repeats: u64,
    /// The smaller models for the second router (default: every model but the largest).
    #[arg(long, value_delimiter = ',')]
    small: Vec<String>,
    #[arg(long, default_value = "out/embeddings")]
    cache: PathBuf,
    /// Output folder for `report.md`, `report.json` and the cost–quality chart.
    #[arg(long, default_value = "out/lab/report")]
    out: PathBuf,
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    common: Common,
    /// Stored outcomes in the kNN memory during the latency benchmark.
    #[arg(long, default_value_t = 100_000)]
    memory: usize,
    /// Prompt length in tokens.
    #[arg(long, default_value_t = 512)]
    tokens: usize,
    /// Decisions timed in all (spread over the callers).
    #[arg(long, default_value_t = 300)]
    iterations: usize,
    /// Callers deciding at once, sharing the router as the gateway's requests do.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Only the latency benchmark (skip timing the three predictors' training).
    #[arg(long)]
    skip_training: bool,
    /// Output folder for `bench.json`.
    #[arg(long, default_value = "out/lab")]
    out: PathBuf,
}

/// `--predictor`'s accepted names, listed by `--help` and checked by clap.
fn predictor_values() -> impl clap::builder::TypedValueParser<Value = PredictorKind> {
    clap::builder::PossibleValuesParser::new(PredictorKind::NAMES).try_map(|s| s.parse::<PredictorKind>())
}

/// `--features`' accepted names, listed by `--help` and checked by clap.
fn feature_values() -> impl clap::builder::TypedValueParser<Value = FeatureKind> {
    clap::builder::PossibleValuesParser::new(FeatureKind::NAMES).try_map(|s| s.parse::<FeatureKind>())
}

pub fn run(cmd: LabCommand) -> anyhow::Result<()> {
    match cmd {
        LabCommand::Convert(a) => run_convert(a),
        LabCommand::Eval(a) => run_eval_cmd(a),
        LabCommand::Train(a) => run_train(a),
        LabCommand::Bench(a) => run_bench(a),
        LabCommand::Report(a) => run_report(a),
        LabCommand::Onboard(a) => run_onboard(a),
        LabCommand::OnboardEval(a) => run_onboard_eval(a),
        LabCommand::Online(a) => run_online(a),
        LabCommand::Verify(a) => run_verify(a),
    }
}

fn run_convert(a: ConvertArgs) -> anyhow::Result<()> {
    let converted = match &a.mmlu_pro {
        Some(dir) => vec![convert::mmlu_pro::convert(dir)?],
        None => convert::convert_all(&a.routellm)?,
    };
    for c in converted {
        let path = a.out.join(format!("{}.jsonl", c.dataset));
        records::write_jsonl(&path, &c.records)?;
        println!(
            "{}: {} prompts, {} records, {} contaminated prompts dropped → {}",
            c.dataset,
            c.prompts,
            c.records.len(),
            c.dropped_contaminated,
            path.display()
        );
    }
    Ok(())
}

/// Records, catalogue and (for MiniLM features) the embedder.
struct Inputs {
    records: Vec<Record>,
    catalog: Catalog,
    embedder: Option<Arc<dyn TextEmbedder>>,
    cache: EmbeddingCache,
}

fn load_inputs(c: &Common) -> anyhow::Result<Inputs> {
    let mut catalog = Catalog::load(&c.catalog)?;
    let mut recs = Vec::new();
    for p in &c.records {
        recs.extend(records::read_jsonl(p)?);
    }
    if !c.models.is_empty() {
        for m in &c.models {
            catalog.get(m)?;
        }
        catalog = catalog.restricted_to(&c.models);
        recs.retain(|r| c.models.contains(&r.model));
    }
    if !c.datasets.is_empty() {
        recs.retain(|r| c.datasets.contains(&r.dataset));
        anyhow::ensure!(!recs.is_empty(), "no records of dataset(s) {}", c.datasets.join(", "));
    }
    if let Some(n) = c.sample {
        records::sample_prompts(&mut recs, n);
    }
    let embedder = super::embedder(c.features)?;
    Ok(Inputs { records: recs, catalog, embedder, cache: EmbeddingCache::new(&c.cache) })
}

fn file_stem(s: &str) -> String {
    s.chars().map(|c| if c.is_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

fn run_eval_cmd(a: EvalArgs) -> anyhow::Result<()> {
    let inp = load_inputs(&a.common)?;
    std::fs::create_dir_all(&a.out)?;
    let mut summary = vec![table::SUMMARY_HEADER.to_string()];
    let mut details = Vec::new();
    for &predictor in &a.predictor {
        let cfg = EvalConfig {
            predictor,
            features: a.common.features,
            seed: a.common.seed,
            folds: a.folds,
            test_dataset: a.test_dataset.clone(),
            progress: !a.quiet,
            ..EvalConfig::default()
        };
        let r = run_eval(&inp.records, &inp.catalog, &cfg, inp.embedder.as_deref(), Some(&inp.cache))?;
        let stem = file_stem(&format!("{}_{}_{}", r.dataset, r.predictor, r.features));
        let detail = table::detailed(&r);
        println!("{detail}");
        std::fs::write(a.out.join(format!("{stem}.md")), &detail)?;
        std::fs::write(a.out.join(format!("{stem}.json")), serde_json::to_string_pretty(&r)?)?;
        for p in plot::draw_all(&r, &a.out, &stem)? {
            println!("plot: {}", p.display());
        }
        summary.push(table::summary_row(&r));
        details.push(detail);
    }
    let summary = summary.join("\n");
    println!("{summary}");
    std::fs::write(a.out.join("summary.md"), format!("{summary}\n\n{}", details.join("\n")))?;
    Ok(())
}

fn run_train(a: TrainArgs) -> anyhow::Result<()> {
    let inp = load_inputs(&a.common)?;
    let data = conductor_core::dataset::Dataset::from_records(&inp.records, &inp.catalog)?;
    let keys: Vec<&str> = data.rows.iter().map(|r| r.prompt_id.as_str()).collect();
    let s = split::train_val_test_by_key(&keys, 0.2, 0.0, a.common.seed);
    let router = Router::train(
        &data.subset(&s.train),
        &data.subset(&s.val),
        a.predictor,
        a.common.features,
        inp.embedder.as_deref(),
        Some(&inp.cache),
        a.common.seed,
    )?;
    router.save(&a.out)?;
    let i = router.info();
    println!(
        "trained {} router ({}, {} features) on {} prompts, calibrated on {}; models: {} → {}",
        i.predictor,
        i.hyperparameters,
        router.feature_kind(),
        i.train_prompts,
        i.val_prompts,
        router.catalog().models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", "),
        a.out.display()
    );
    Ok(())
}

fn run_bench(a: BenchArgs) -> anyhow::Result<()> {
    let inp = load_inputs(&a.common)?;
    let src =
        bench::FeatureSource { kind: a.common.features, embedder: inp.embedder.as_deref(), cache: Some(&inp.cache) };
    let lat =
        bench::decision_latency(&inp.records, &inp.catalog, src, a.memory, a.tokens, a.iterations, a.concurrency)?;
    println!(
        "decision latency ({} features, {}-token prompts, {} stored outcomes, {} decisions by {} concurrent callers): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        a.common.features,
        lat.prompt_tokens,
        lat.memory_records,
        lat.iterations,
        lat.concurrency,
        lat.p50_ms,
        lat.p99_ms,
        lat.max_ms
    );
    let mut times = Vec::new();
    let kinds: &[PredictorKind] =
        if a.skip_training { &[] } else { &[PredictorKind::Knn, PredictorKind::LogReg, PredictorKind::Mf] };
    for &p in kinds {
        let t = bench::training_time(&inp.records, &inp.catalog, p, src)?;
        println!(
            "training time {} ({} features, {} prompts): {:.2} s [{}]",
            t.predictor, t.features, t.prompts, t.seconds, t.hyperparameters
        );
        times.push(t);
    }
    std::fs::create_dir_all(&a.out)?;
    let path: &Path = &a.out.join(format!("bench_{}.json", a.common.features));
    std::fs::write(path, serde_json::to_string_pretty(&serde_json::json!({ "latency": lat, "training": times }))?)?;
    println!("written {}", path.display());
    Ok(())
}

fn run_report(a: ReportArgs) -> anyhow::Result<()> {
    let common = Common {
        records: a.records.clone(),
        catalog: a.catalog.clone(),
        features: a.features,
        seed: a.seed,
        cache: a.cache.clone(),
        models: vec![],
        sample: None,
        datasets: vec![],
    };
    let mut full_inp = load_inputs(&common)?;
    let all: Vec<String> = full_inp.catalog.models.iter().map(|m| m.id.clone()).collect();
    records::retain_complete(&mut full_inp.records, &all);
    let largest = full_inp.catalog.models[full_inp.catalog.largest()].id.clone();
    let small: Vec<String> =
        if a.small.is_empty() { all.iter().filter(|m| **m != largest).cloned().collect() } else { a.small.clone() };
    for m in &small {
        full_inp.catalog.get(m)?;
    }
    anyhow::ensure!(
        !small.contains(&largest),
        "--small must leave out the largest model (`{largest}`): it is what the smaller models are compared with"
    );
    anyhow::ensure!(
        small.len() >= 2,
        "the router over the smaller models needs at least two of them (got {})",
        small.join(", ")
    );
    let small_catalog = full_inp.catalog.restricted_to(&small);
    let small_records: Vec<Record> = full_inp.records.iter().filter(|r| small.contains(&r.model)).cloned().collect();
    let cfg = EvalConfig {
        predictor: a.predictor,
        features: a.features,
        seed: a.seed,
        folds: Some(a.folds),
        progress: !a.quiet,
        ..EvalConfig::default()
    };
    let full =
        run_eval(&full_inp.records, &full_inp.catalog, &cfg, full_inp.embedder.as_deref(), Some(&full_inp.cache))?;
    let small = run_eval(&small_records, &small_catalog, &cfg, full_inp.embedder.as_deref(), Some(&full_inp.cache))?;
    let mut rep = report::build(&full, &small)?;
    for seed in (1..=a.repeats).map(|k| a.seed + k) {
        let r = run_eval(
            &full_inp.records,
            &full_inp.catalog,
            &EvalConfig { seed, ..cfg.clone() },
            full_inp.embedder.as_deref(),
            Some(&full_inp.cache),
        )?;
        rep.repeats.push(report::RepeatCheck { seed, claim: report::claim_check(&r) });
    }
    let md = report::render(&rep);
    println!("{md}");
    std::fs::create_dir_all(&a.out)?;
    std::fs::write(a.out.join("report.md"), &md)?;
    std::fs::write(
        a.out.join("report.json"),
        serde_json::to_string_pretty(&serde_json::json!({ "report": rep, "full": full, "small": small }))?,
    )?;
    for p in plot::seed_cost_quality(&full, &small, &a.out, "cost_quality")? {
        println!("plot: {}", p.display());
    }
    Ok(())
}

fn run_onboard(a: OnboardArgs) -> anyhow::Result<()> {
    let mut router = Router::load(&a.router)?;
    let catalog = Catalog::load(&a.catalog)?;
    let entry = catalog.get(&a.model)?.clone();
    let recs = records::read_jsonl(&a.records)?;
    let embedder = super::embedder(router.feature_kind())?;
    let cache = EmbeddingCache::new(&a.cache);
    let labels = router
        .onboard_from_records(entry, &recs, embedder.as_deref(), Some(&cache))
        .with_context(|| format!("onboarding from {}", a.records.display()))?;
    router.save(&a.out)?;
    println!(
        "added `{}` from {labels} labelled prompts; models: {} → {}",
        a.model,
        router.catalog().models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", "),
        a.out.display()
    );
    Ok(())
}

fn run_onboard_eval(a: OnboardEvalArgs) -> anyhow::Result<()> {
    let inp = load_inputs(&a.common)?;
    let cfg = EvalConfig {
        predictor: a.predictor,
        features: a.common.features,
        seed: a.common.seed,
        folds: Some(a.folds),
        ..EvalConfig::default()
    };
    let rows = conductor_lab::onboard::run_onboard(
        &inp.records,
        &inp.catalog,
        &cfg,
        &a.add,
        &a.k,
        inp.embedder.as_deref(),
        Some(&inp.cache),
    )?;
    let md = conductor_lab::onboard::render(&rows);
    println!("{md}");
    std::fs::create_dir_all(&a.out)?;
    std::fs::write(a.out.join("onboard.md"), &md)?;
    std::fs::write(a.out.join("onboard.json"), serde_json::to_string_pretty(&rows)?)?;
    Ok(())
}

fn run_verify(a: VerifyArgs) -> anyhow::Result<()> {
    for (name, v) in [("--alpha", a.alpha), ("--beta", a.beta), ("--delta", a.delta)] {
        anyhow::ensure!(v > 0.0 && v < 1.0, "{name} must be strictly between 0 and 1, got {v}");
    }
    let inp = load_inputs(&a.common)?;
    let cfg = conductor_lab::verify::VerifyConfig {
        predictor: a.predictor,
        features: a.common.features,
        folds: a.folds,
        seed: a.common.seed,
        val_frac: 0.25,
        alpha: a.alpha,
        beta: a.beta,
        delta: a.delta,
        signals: conductor_core::verify::SignalSet::parse(&a.signals).map_err(|e| anyhow::anyhow!("--signals: {e}"))?,
    };
    let r =
        conductor_lab::verify::evaluate(&inp.records, &inp.catalog, &cfg, inp.embedder.as_deref(), Some(&inp.cache))?;
    let md = conductor_lab::verify::markdown(&r);
    println!("{md}");
    std::fs::create_dir_all(&a.out)?;
    std::fs::write(a.out.join("verify.md"), &md)?;
    std::fs::write(a.out.join("verify.json"), serde_json::to_string_pretty(&r)?)?;
    for p in conductor_lab::verify_plot::draw_all(&r, &a.out)? {
        println!("written {}", p.display());
    }
    println!("written {}", a.out.join("verify.md").display());
    Ok(())
}

fn run_online(a: OnlineArgs) -> anyhow::Result<()> {
    let inp = load_inputs(&a.common)?;
    let cfg = EvalConfig {
        predictor: a.predictor,
        features: a.common.features,
        seed: a.common.seed,
        ..EvalConfig::default()
    };
    let r =
        conductor_lab::online::run_online(&inp.records, &inp.catalog, &cfg, inp.embedder.as_deref(), Some(&inp.cache))?;
    let md = conductor_lab::online::render(&r);
    println!("{md}");
    std::fs::create_dir_all(&a.out)?;
    std::fs::write(a.out.join("online.md"), &md)?;
    std::fs::write(a.out.join("online.json"), serde_json::to_string_pretty(&r)?)?;
    for p in plot::online_curves(&r, &a.out, "online")? {
        println!("plot: {}", p.display());
    }
    Ok(())
}
