//! `conductor collect`: run models — the library's, or any a gateway config declares — on
//! benchmark prompts or the user's own, score the answers, and append records. Ctrl-C stops
//! after cancelling the running generation; rerunning resumes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::collect_remote::ProviderAnswerer;
use clap::Args;
use conductor_core::catalog::Catalog;
use conductor_evals::collect::{self, Answer, Answerer, Plan};
use conductor_evals::score::sandbox::Limits;
use conductor_local::Library;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args)]
pub struct CollectArgs {
    /// Task sets (comma-separated): gsm8k, humaneval, or file:<prompts.jsonl> — your own
    /// prompts, one JSON object per line: {"id", "prompt", "scorer": number|choice|code|judge,
    /// "reference"} (see crates/evals/src/tasks/custom.rs).
    #[arg(long, value_delimiter = ',', default_value = "gsm8k,humaneval")]
    tasks: Vec<String>,
    /// A gateway config (TOML): its remote models (OpenAI-compatible, Anthropic) can be
    /// collected too, priced as it says.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Models (comma-separated): library ids or ids from --config.
    #[arg(long, value_delimiter = ',', default_value = "smollm2-135m,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")]
    models: Vec<String>,
    /// Prompts per task set (the first N in file order).
    #[arg(long, default_value_t = 200)]
    limit: usize,
    /// Records file to append to (created if missing; pairs already in it are skipped).
    #[arg(long, default_value = "records/local.jsonl")]
    out: PathBuf,
    /// Catalogue giving each model's compute price.
    #[arg(long, default_value = "catalog/local.toml")]
    catalog: PathBuf,
    /// Folder holding routellm/ and humaneval/.
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// Wall-clock limit for running one generated program, in seconds.
    #[arg(long, default_value_t = 10)]
    code_timeout: u64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Prompts sent to a model at once; the engine decodes them together (1 = one at a time).
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// The model grading prompts whose scorer is `judge` (a library id or one from --config).
    #[arg(long)]
    judge: Option<String>,
}

/// The library for its own models, the config's providers for the rest.
struct Either {
    lib: Library,
    remote: Option<ProviderAnswerer>,
}

impl Either {
    fn pick(&self, model: &str) -> &dyn Answerer {
        match &self.remote {
            Some(r) if r.serves(model) => r,
            _ => &self.lib,
        }
    }
}

impl Answerer for Either {
    fn check(&self, model: &str) -> anyhow::Result<()> {
        self.pick(model).check(model)
    }

    fn answer(
        &self,
        model: &str,
        prompt: &str,
        max_tokens: usize,
        seed: u64,
        stop: &AtomicBool,
    ) -> anyhow::Result<Answer> {
        self.pick(model).answer(model, prompt, max_tokens, seed, stop)
    }
}

pub fn run(a: CollectArgs) -> anyhow::Result<()> {
    let mut catalog = Catalog::load(&a.catalog)?;
    let config = a.config.as_deref().map(conductor_gateway::Config::load).transpose()?;
    let remote = match &config {
        Some(c) => {
            // Their prices come from the config, as `serve` books them.
            for m in &c.models {
                if catalog.index_of(&m.id).is_err() {
                    catalog.models.push(m.catalog_entry());
                }
            }
            Some(ProviderAnswerer::new(&c.models)?)
        }
        None => None,
    };
    let plan = Plan {
        task_sets: a.tasks,
        models: a.models,
        limit: a.limit,
        data_dir: a.data,
        out: a.out,
        catalog,
        limits: Limits { wall: Duration::from_secs(a.code_timeout), ..Default::default() },
        seed: a.seed,
        batch: a.batch,
        judge: a.judge,
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130); // second Ctrl-C: leave now
            }
            eprintln!("\nstopping after the current answer is cancelled; everything written is kept");
        })?;
    }
    let lib = Either {
        lib: Library::with_options(
            conductor_core::install::models_dir(),
            conductor_local::EngineOptions { parallel: a.batch.max(1), ..Default::default() },
        ),
        remote,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}")?);
    let summary = collect::run(&lib, &plan, &stop, &mut |done, total, msg| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        if !msg.is_empty() {
            bar.set_message(msg.to_string());
        }
    })?;
    bar.finish_and_clear();
    eprintln!(
        "{} new records written to {}, {} already present{}",
        summary.written,
        plan.out.display(),
        summary.skipped,
        if summary.interrupted { " (interrupted: rerun to resume)" } else { "" }
    );
    Ok(())
}
