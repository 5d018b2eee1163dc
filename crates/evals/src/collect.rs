//! The collector: runs models on benchmark tasks (or the user's own prompts), scores every
//! answer and appends one record per (prompt, model) to a JSONL file. Models are reached
//! through an [`Answerer`]: the embedded library ([`Library`] implements it) or any
//! provider a gateway config declares (the CLI implements that one). Resumable (pairs already in the file
//! are skipped), interleaved (prompt-major, so a partial run still has every model on the
//! same prompts), and interruptible (a set stop flag cancels the running generation and
//! keeps everything already written).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use conductor_core::catalog::Catalog;
use conductor_core::jsonl::Appender;
use conductor_core::records::Record;
use conductor_core::signals::AnswerSignals;
use conductor_local::{ChatMessage, FinishReason, GenParams, Library};

use crate::score::{self, sandbox::Limits};
use crate::tasks::{self, Task};
use crate::template;

/// One answer, as the collector records it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub text: String,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// `stop`, `length`, … as the model reported it.
    pub finish_reason: String,
    /// The stop flag was raised while answering: the answer is incomplete, not recorded.
    pub cancelled: bool,
    /// Log-probabilities of the generated tokens, when the model reports them.
    pub logprobs: Option<Vec<f32>>,
}

/// How the collector reaches a model. `answer` is called from several threads at once for
/// one model (a batch), so an implementation may serve them together.
pub trait Answerer: Sync {
    /// Fails (before any work) when `model` cannot be reached this way.
    fn check(&self, model: &str) -> anyhow::Result<()>;
    /// One user message in, one answer out; gives up early when `stop` is raised.
    fn answer(
        &self,
        model: &str,
        prompt: &str,
        max_tokens: usize,
        seed: u64,
        stop: &AtomicBool,
    ) -> anyhow::Result<Answer>;
    /// The `k` most likely first tokens of the reply with their log-probabilities (for a
    /// judge read as P("yes")). Only where the model reports alternatives.
    fn first_token_alternatives(
        &self,
        model: &str,
        prompt: &str,
        k: usize,
        seed: u64,
        stop: &AtomicBool,
    ) -> anyhow::Result<Vec<(String, f32)>> {
        let _ = (prompt, k, seed, stop);
        anyhow::bail!("model `{model}` is not a library model: judge signals read a library model's log-probabilities")
    }
}

impl Answerer for Library {
    fn check(&self, model: &str) -> anyhow::Result<()> {
        self.spec(model).map(|_| ()).map_err(Into::into)
    }

    fn answer(
        &self,
        model: &str,
        prompt: &str,
        max_tokens: usize,
        seed: u64,
        stop: &AtomicBool,
    ) -> anyhow::Result<Answer> {
        // The chosen tokens' log-probabilities cost one log-softmax per token: always asked.
        let params = GenParams { max_tokens, seed, logprobs: Some(0), ..Default::default() };
        let g = self
            .chat_model(model)?
            .generate(&[ChatMessage::user(prompt)], &params, &mut |_| !stop.load(Ordering::SeqCst))?;
        Ok(Answer {
            cancelled: g.finish_reason == FinishReason::Cancelled,
            finish_reason: g.finish_reason.as_str().to_string(),
            text: g.text,
            prompt_tokens: g.prompt_tokens,
            completion_tokens: g.completion_tokens,
            logprobs: Some(g.logprobs.iter().map(|t| t.logprob).collect()),
        })
    }

    fn first_token_alternatives(
        &self,
        model: &str,
        prompt: &str,
        k: usize,
        seed: u64,
        stop: &AtomicBool,
    ) -> anyhow::Result<Vec<(String, f32)>> {
        let params = GenParams { max_tokens: 1, seed, logprobs: Some(k.min(20)), ..Default::default() };
        let g = self
            .chat_model(model)?
            .generate(&[ChatMessage::user(prompt)], &params, &mut |_| !stop.load(Ordering::SeqCst))?;
        let first = g.logprobs.into_iter().next();
        Ok(first.map(|t| t.top_logprobs.into_iter().map(|a| (a.token, a.logprob)).collect()).unwrap_or_default())
    }
}

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
    /// Prompts sent to a model at once (the engine decodes them together as one batch).
    pub batch: usize,
    /// The model that grades prompts with the `judge` scorer (needed only for those).
    pub judge: Option<String>,
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

/// (prompt_id, model) pairs already in `path` (a missing file has none). A malformed line
/// stops the run: fix or remove it to resume.
pub fn done_pairs(path: &Path) -> anyhow::Result<HashSet<(String, String)>> {
    if !path.exists() {
        return Ok(HashSet::new());
    }
    let records = conductor_core::records::read_jsonl(path).context("reading the records to resume")?;
    Ok(records.into_iter().map(|r| (r.prompt_id, r.model)).collect())
}

/// Run the plan. `on_progress(done, total)` is called after each pair.
pub fn run(
    lib: &dyn Answerer,
    plan: &Plan,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(usize, usize, &str),
) -> anyhow::Result<Summary> {
    for m in &plan.models {
        plan.catalog.get(m).map_err(|e| anyhow::anyhow!("{e} (add it to the catalogue to price its calls)"))?;
        lib.check(m)?;
    }
    let tasks = select(plan)?;
    let judge = match (&plan.judge, tasks.iter().find(|t| matches!(t.check, tasks::Check::Judge { .. }))) {
        (Some(j), _) => {
            lib.check(j).map_err(|e| anyhow::anyhow!("the judge model: {e}"))?;
            Some(j.as_str())
        }
        (None, Some(t)) => anyhow::bail!("{} is scored by a judge: name the judge model (--judge <model>)", t.id),
        (None, None) => None,
    };
    let done = done_pairs(&plan.out)?;
    // One line per outcome, synced: an interrupted run loses nothing written.
    let mut file = Appender::append(&plan.out, true)?;
    let total = tasks.len() * plan.models.len();
    let mut summary = Summary::default();
    let mut n = 0;
    // Prompt-major in chunks: a chunk of prompts goes to every model before the next chunk,
    // so a partial run still has every model on the same prompts; within a chunk each
    // model gets its prompts together and batches them.
    for chunk in tasks.chunks(plan.batch.max(1)) {
        for model_id in &plan.models {
            let todo: Vec<&Task> = chunk.iter().filter(|t| !done.contains(&(t.id.clone(), model_id.clone()))).collect();
            let skipped = chunk.len() - todo.len();
            summary.skipped += skipped;
            n += skipped;
            if todo.is_empty() {
                on_progress(n, total, "");
                continue;
            }
            if stop.load(Ordering::SeqCst) {
                summary.interrupted = true;
                return Ok(summary);
            }
            let answers: Vec<anyhow::Result<(Answer, f64)>> = std::thread::scope(|s| {
                let hs: Vec<_> = todo
                    .iter()
                    .map(|task| {
                        s.spawn(move || {
                            let started = Instant::now();
                            let prompt = template::render(task);
                            let g = lib.answer(model_id, &prompt, template::max_tokens(task), plan.seed, stop)?;
                            Ok((g, started.elapsed().as_secs_f64() * 1e3))
                        })
                    })
                    .collect();
                hs.into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a generation thread panicked"))))
                    .collect()
            });
            for (task, answer) in todo.iter().zip(answers) {
                let (g, latency_ms) = answer?;
                if g.cancelled {
                    summary.interrupted = true;
                    return Ok(summary);
                }
                let verdict = match (&task.check, judge) {
                    (tasks::Check::Judge { reference }, Some(j)) => {
                        score::judge::score(lib, j, &task.question, reference, &g.text, plan.seed, stop)?
                    }
                    _ => score::score(task, &g.text, &plan.limits)?,
                };
                let examples_pass = match &task.check {
                    tasks::Check::Python { prompt, entry_point, .. } => {
                        crate::signals::examples::check(prompt, &g.text, entry_point, &plan.limits)?
                    }
                    _ => None,
                };
                let entry = plan.catalog.get(model_id)?;
                file.push(&Record {
                    prompt_id: task.id.clone(),
                    dataset: task.dataset.clone(),
                    prompt: task.question.clone(),
                    model: model_id.clone(),
                    score: verdict.score,
                    prompt_tokens: Some(g.prompt_tokens),
                    completion_tokens: Some(g.completion_tokens),
                    cost_usd: Some(entry.cost_usd(g.prompt_tokens, g.completion_tokens)),
                    // Wall time of this answer, sharing the model with the rest of its batch.
                    latency_ms: Some((latency_ms * 10.0).round() / 10.0),
                    finish_reason: Some(g.finish_reason),
                    verdict: Some(verdict.detail.clone()),
                    response: Some(g.text),
                    signals: g.logprobs.as_deref().and_then(AnswerSignals::from_logprobs),
                    examples_pass,
                    judge_p_yes: None,
                })?;
                summary.written += 1;
                n += 1;
                on_progress(
                    n,
                    total,
                    &format!("{} {} {}", task.id, model_id, if verdict.score > 0.0 { "✓" } else { "✗" }),
                );
            }
        }
    }
    Ok(summary)
}
