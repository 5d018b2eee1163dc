//! The inference engine of one loaded model: one thread owns the llama.cpp context (it is
//! not `Sync`), and requests reach it through a small admission queue. Concurrent requests
//! decode together as separate sequences of one batch (continuous batching): a new request
//! joins between steps, a finished or cancelled one leaves at once and frees its KV cells.
//! Prompts are fed in chunks, so a request whose client has gone stops within a chunk,
//! prefill included, and it counts against the queue until the engine has really dropped it.

mod abort;
mod sampling;
mod sequence;
mod worker;

use crate::error::{LocalError, Result};
use conductor_providers::TokenLogprob;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

pub(crate) use sampling::{Sampling, JSON_OBJECT_GBNF};

/// How an engine runs.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// Sequences decoded together (batch slots).
    pub parallel: usize,
    /// Requests that may wait for a slot; beyond that a request is refused at once.
    pub max_waiting: usize,
    /// CPU threads llama.cpp uses for this model.
    pub threads: usize,
}

/// Environment variable overriding the CPU threads each engine uses.
pub const THREADS_ENV: &str = "CONDUCTOR_THREADS";

impl Default for EngineOptions {
    /// Four sequences, 64 waiting, one thread per core (or `$CONDUCTOR_THREADS`).
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = std::env::var(THREADS_ENV).ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(cores);
        EngineOptions { parallel: 4, max_waiting: 64, threads }
    }
}

/// One decode call at a time in the whole process. Each engine already uses every core,
/// and ggml's threads meet at spinning barriers between graph nodes: two engines computing
/// at once (requests to two models) would leave each thread spinning while the one it waits
/// for is descheduled — slower than taking turns by orders of magnitude. Fair, so models
/// alternate step by step.
pub(crate) static COMPUTE: parking_lot::FairMutex<()> = parking_lot::const_fair_mutex(());

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// End-of-turn token or a stop sequence.
    Stop,
    /// `max_tokens` (or the context window) reached.
    Length,
    /// The caller went away or asked to stop.
    Cancelled,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Cancelled => "cancelled",
        }
    }
}

/// Where the time of one generation went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Waiting for a batch slot (other requests ahead).
    pub queued: Duration,
    /// Processing the prompt up to the first sampled token.
    pub prefill: Duration,
    /// Producing the remaining tokens.
    pub decode: Duration,
}

/// What a running generation reports, in order: pieces, then exactly one `Done` or `Failed`.
#[derive(Debug)]
pub enum Event {
    /// Text that is final (no stop sequence can still swallow it), with the log-probabilities
    /// of the tokens generated since the last piece when they were asked for.
    Piece {
        text: String,
        tokens: usize,
        logprobs: Vec<TokenLogprob>,
    },
    Done {
        finish_reason: FinishReason,
        prompt_tokens: usize,
        completion_tokens: usize,
        timings: Timings,
    },
    Failed(LocalError),
}

/// A request handed to the engine thread.
pub(crate) struct Job {
    pub prompt: Vec<LlamaToken>,
    pub sampling: Sampling,
    pub events: UnboundedSender<Event>,
    pub submitted: Instant,
}

/// Admission state shared by callers and the engine thread.
struct Admission {
    waiting: VecDeque<Job>,
    /// Sequences the engine is working on (cancelled ones count until really dropped).
    active: usize,
    shutdown: bool,
}

pub(crate) struct Shared {
    admission: Mutex<Admission>,
    wake: Condvar,
    options: EngineOptions,
    /// Moving average of a request's time in the engine, in microseconds (0 = none yet).
    service_us: AtomicU64,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Admission> {
        self.admission.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record_service(&self, took: Duration) {
        let took = took.as_micros() as f64;
        let _ = self.service_us.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |old| {
            Some(if old == 0 { took } else { 0.2 * took + 0.8 * old as f64 }.max(1.0) as u64)
        });
    }
}

/// Handle to a model's engine thread.
pub(crate) struct Engine {
    shared: Arc<Shared>,
}

impl Engine {
    /// Creates the context for `model` and starts its thread.
    pub fn start(model: &'static LlamaModel, n_ctx: usize, options: EngineOptions, id: &str) -> Result<Engine> {
        let shared = Arc::new(Shared {
            admission: Mutex::new(Admission { waiting: VecDeque::new(), active: 0, shutdown: false }),
            wake: Condvar::new(),
            options,
            service_us: AtomicU64::new(0),
        });
        worker::spawn(model, n_ctx, shared.clone(), id)?;
        Ok(Engine { shared })
    }

    /// Queues a generation; its events arrive on the returned receiver. Dropping the
    /// receiver cancels it. A full queue is refused at once with the expected wait.
    pub fn submit(&self, prompt: Vec<LlamaToken>, sampling: Sampling) -> Result<UnboundedReceiver<Event>> {
        let (events, rx) = unbounded_channel();
        let o = self.shared.options;
        let mut a = self.shared.lock();
        if a.shutdown {
            return Err(LocalError::Other(anyhow::anyhow!("the model's engine has stopped")));
        }
        let ahead = a.waiting.len() + a.active;
        if ahead >= o.parallel.max(1) + o.max_waiting {
            let mean = match self.shared.service_us.load(Ordering::SeqCst) {
                0 => Duration::from_secs(1),
                us => Duration::from_micros(us),
            };
            let rounds = (ahead + 1) as f64 / o.parallel.max(1) as f64;
            return Err(LocalError::Busy { waiting: a.waiting.len(), expected_wait: mean.mul_f64(rounds) });
        }
        a.waiting.push_back(Job { prompt, sampling, events, submitted: Instant::now() });
        drop(a);
        self.shared.wake.notify_one();
        Ok(rx)
    }

    /// (running, waiting) requests.
    pub fn load(&self) -> (usize, usize) {
        let a = self.shared.lock();
        (a.active, a.waiting.len())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_all();
    }
}
