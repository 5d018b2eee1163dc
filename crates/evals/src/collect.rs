//! The collector: runs library models on benchmark tasks, scores every answer and appends
//! one record per (prompt, model) to a JSONL file. Resumable (pairs already in the file
//! are skipped), interleaved (prompt-major, so a partial run still has every model on the
//! same prompts), and interruptible (a set stop flag cancels the running generation and
//! keeps everything already written).

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use conductor_core::catalog::Catalog;
use conductor_local::{ChatMessage, FinishReason, GenParams, Library};

use crate::score::{self, sandbox::Limits};
use crate::tasks::{self, Task};
use crate::template;

/// What to collect.
pub struct Plan {
    pub task_sets: Vec<String>,
    pub models: Vec<String>,
    /// Prompts per task set (the first `limit` of each, in file order).
    pub limit: usize,
    pub data_dir: PathBuf,
    pub out: PathBuf,
    pub catalog: Catalog,
    pub limits: Limits,
    pub seed: u64,
}

/// Counts for the closing summary.
#[derive(Debug, Default)]
pub struct Summary {
    pub written: usize,
    pub skipped: usize,
    pub interrupted: bool,
}

/// The prompts of every task set, interleaved (a0, b0, a1, b1, …) so partial runs stay balanced.
pub fn select(plan: &Plan) -> anyhow::Result<Vec<Task>> {
    let sets: Vec<Vec<Task>> = plan
        .task_sets
        .iter()
        .map(|s| {
            tasks::load(s, &plan.data_dir).map(|mut t| {
                t.truncate(plan.limit);
                t
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let longest = sets.iter().map(Vec::len).max().unwrap_or(0);
    Ok((0..longest).flat_map(|i| sets.iter().filter_map(move |s| s.get(i).cloned())).collect())
}

/// (prompt_id, model) pairs already in `path`.
pub fn done_pairs(path: &Path) -> anyhow::Result<HashSet<(String, String)>> {
    let mut done = HashSet::new();
    let Ok(file) = std::fs::File::open(path) else { return Ok(done) };
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line).with_context(|| {
            format!("{}:{}: malformed record (fix or remove the line to resume)", path.display(), i + 1)
        })?;
        if let (Some(p), Some(m)) = (v["prompt_id"].as_str(), v["model"].as_str()) {
            done.insert((p.to_string(), m.to_string()));
        }
    }
    Ok(done)
}

/// Run the plan. `on_progress(done, total)` is called after each pair.
pub fn run(
    lib: &Library,
    plan: &Plan,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(usize, usize, &str),
) -> anyhow::Result<Summary> {
    for m in &plan.models {
        plan.catalog.get(m).map_err(|e| anyhow::anyhow!("{e} (add it to the catalogue to price its calls)"))?;
        lib.spec(m)?;
    }
    let tasks = select(plan)?;
    let done = done_pairs(&plan.out)?;
    if let Some(dir) = plan.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&plan.out)
        .with_context(|| format!("opening {}", plan.out.display()))?;
    let total = tasks.len() * plan.models.len();
    let mut summary = Summary::default();
    let mut n = 0;
    for task in &tasks {
        for model_id in &plan.models {
            n += 1;
            if done.contains(&(task.id.clone(), model_id.clone())) {
                summary.skipped += 1;
                on_progress(n, total, "");
                continue;
            }
            if stop.load(Ordering::SeqCst) {
                summary.interrupted = true;
                return Ok(summary);
            }
            let model = lib.chat_model(model_id)?;
            let params = GenParams { max_tokens: template::max_tokens(task), seed: plan.seed, ..Default::default() };
            let started = Instant::now();
            let g = model.generate(&[ChatMessage::user(template::render(task))], &params, &mut |_| {
                !stop.load(Ordering::SeqCst)
            })?;
            if g.finish_reason == FinishReason::Cancelled {
                summary.interrupted = true;
                return Ok(summary);
            }
            let latency_ms = started.elapsed().as_secs_f64() * 1e3;
            let verdict = score::score(task, &g.text, &plan.limits)?;
            let entry = plan.catalog.get(model_id)?;
            let line = serde_json::json!({
                "prompt_id": task.id,
                "dataset": task.dataset,
                "prompt": task.question,
                "model": model_id,
                "score": verdict.score,
                "prompt_tokens": g.prompt_tokens,
                "completion_tokens": g.completion_tokens,
                "cost_usd": entry.cost_usd(g.prompt_tokens, g.completion_tokens),
                "latency_ms": (latency_ms * 10.0).round() / 10.0,
                "finish_reason": g.finish_reason.as_str(),
                "verdict": verdict.detail,
                "response": g.text,
            });
            // One line per outcome, flushed and synced: an interrupted run loses nothing written.
            writeln!(file, "{line}")?;
            file.flush()?;
            file.sync_data()?;
            summary.written += 1;
            on_progress(n, total, &format!("{} {} {}", task.id, model_id, if verdict.score > 0.0 { "✓" } else { "✗" }));
        }
    }
    Ok(summary)
}
