//! `conductor signals`: add answer signals to collected records after the fact — a judge
//! model's P("yes") and, for code, whether the answer passes its docstring's examples.
//! Writes the records back (to `--out`, default the same file) when done or interrupted.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use conductor_evals::score::sandbox::Limits;
use conductor_evals::signals::{self, Wanted};
use conductor_local::Library;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args)]
pub struct SignalsArgs {
    /// Records file (JSONL) whose answers (`response`) get the signals.
    #[arg(long)]
    records: PathBuf,
    /// Where to write the records with signals (default: back to --records).
    #[arg(long)]
    out: Option<PathBuf>,
    /// A library model asked whether each answer is correct; its P("yes") is stored as
    /// `judge_p_yes`.
    #[arg(long)]
    judge: Option<String>,
    /// Run code answers on their prompt's `>>>` examples (`examples_pass`).
    #[arg(long)]
    examples: bool,
    /// Only the records of these answering models (comma-separated; default: all).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Task sets the records came from (for code prompts' entry points).
    #[arg(long, value_delimiter = ',', default_value = "gsm8k,humaneval")]
    tasks: Vec<String>,
    /// Folder holding the benchmark data.
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// Wall-clock limit for running one generated program, in seconds.
    #[arg(long, default_value_t = 10)]
    code_timeout: u64,
}

pub fn run(a: SignalsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.judge.is_some() || a.examples, "nothing to add: name a judge model (--judge) and/or --examples");
    let mut records = conductor_core::records::read_jsonl(&a.records)?;
    let mut tasks = Vec::new();
    for t in &a.tasks {
        tasks.extend(conductor_evals::tasks::load(t, &a.data)?);
    }
    let lib = Library::from_env();
    if let Some(j) = &a.judge {
        lib.spec(j).map_err(|e| anyhow::anyhow!("the judge must be a library model: {e}"))?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\nstopping; signals added so far are written");
        })?;
    }
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}]")?);
    let want = Wanted { judge: a.judge.as_deref(), examples: a.examples, models: &a.models };
    let limits = Limits { wall: Duration::from_secs(a.code_timeout), ..Default::default() };
    let changed = signals::add(&mut records, &tasks, &want, &lib, &limits, &stop, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    let out = a.out.unwrap_or(a.records);
    conductor_core::records::write_jsonl(&out, &records)?;
    eprintln!(
        "{changed} records got new signals; {} written to {}{}",
        records.len(),
        out.display(),
        if stop.load(Ordering::SeqCst) { " (interrupted: rerun to continue)" } else { "" }
    );
    Ok(())
}
