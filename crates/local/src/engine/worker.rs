//! The engine thread: admit waiting requests into free slots, build one batch from every
//! active sequence (one token each for those decoding, a chunk of prompt for those still
//! prefilling), decode it, sample each sequence that got logits, drop the finished and the
//! abandoned. Nothing here may take the process down: a failed batch fails the requests in
//! it, and a panic is caught and reported to them, and the thread carries on.

use super::abort::{self, AbortState};
use super::sampling::logprob;
use super::sequence::{Phase, Sequence, Step};
use super::{Event, FinishReason, Shared};
use crate::error::{LocalError, Result};
use llama_cpp_2::context::params::{KvCacheType, LlamaContextParams};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::DecodeError;
use std::num::NonZeroU32;
use std::sync::Arc;

/// Tokens per decode call (llama.cpp aborts the process beyond its `n_batch`).
const N_BATCH: usize = 512;
/// How long one step may spend on prompt tokens. A step cannot be interrupted, so this
/// bounds how long an abandoned prompt keeps the model busy and how much a prefill slows
/// the streams decoding beside it; the token budget follows from the model's measured
/// prefill speed (bigger chunks are cheaper per token, so no smaller than needed).
const PREFILL_STEP_SECS: f64 = 0.75;
/// Bounds of the per-step prompt budget: below 64 tokens prefill slows down markedly.
const PREFILL_MIN: usize = 64;
const PREFILL_MAX: usize = N_BATCH;

/// Creates the context (on the caller's thread, so errors are reported to it) and starts
/// the engine thread.
pub(super) fn spawn(model: &'static LlamaModel, n_ctx: usize, shared: Arc<Shared>, id: &str) -> Result<()> {
    let o = shared.options;
    let threads = o.threads.max(1) as i32;
    let parallel = o.parallel.max(1);
    // Every sequence gets a KV cache of its own, the full context window long. A pool shared
    // by all sequences would let one request use more of it, but then a sequence's attention
    // depends on where the others' cells sit, and batched greedy output stops matching the
    // same request alone (measured: 2–4 of 8 SmolLM answers differed; 8 of 8 match split).
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new((n_ctx.max(256) * parallel) as u32))
        .with_n_batch(N_BATCH as u32)
        .with_n_ubatch(N_BATCH as u32)
        .with_n_seq_max(parallel as u32)
        .with_kv_unified(false)
        // Keys in 8-bit: the three models' caches take 0.5 GB less, so that the whole library
        // stays within 4 GB with four 8k-token sequences each. (Values stay f16: quantized
        // values need flash attention, which is off — see below.)
        .with_type_k(KvCacheType::Q8_0)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    // Flash attention off, as in llama.cpp's own defaults for CPU here: measured no faster
    // on two cores for these models, and it is what the llama.cpp comparison runs.
    let params = params.with_flash_attention_policy(llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED);
    let backend = crate::load::backend()?;
    let ctx = model
        .new_context(backend, params)
        .map_err(|e| LocalError::Other(anyhow::anyhow!("creating the llama.cpp context for {id}: {e}")))?;
    let abort = Arc::new(AbortState::default());
    let can_abort = abort::install(&ctx, &abort);
    if !can_abort {
        tracing::warn!(
            model = id,
            "cannot install llama.cpp's abort callback; abandoned prompts stop at step boundaries"
        );
    }
    std::thread::Builder::new()
        .name(format!("engine-{id}"))
        .spawn(move || Worker { model, ctx, shared, seqs: Vec::new(), prefill_tps: 0.0, abort, can_abort }.run())
        .map_err(|e| LocalError::Other(anyhow::anyhow!("starting the engine thread for {id}: {e}")))?;
    Ok(())
}

struct Worker {
    model: &'static LlamaModel,
    ctx: LlamaContext<'static>,
    shared: Arc<Shared>,
    seqs: Vec<Sequence>,
    /// Moving average of prompt tokens per second in steps that fed prompt tokens.
    prefill_tps: f64,
    /// The requests of the decode call in progress, for the abort callback.
    abort: Arc<AbortState>,
    /// Whether the abort callback is installed (then a step may feed a whole prompt).
    can_abort: bool,
}

impl Worker {
    fn run(mut self) {
        let mut batch = LlamaBatch::new(N_BATCH, 1);
        loop {
            if !self.admit() {
                return;
            }
            let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.step(&mut batch)));
            if let Err(p) = step {
                let why = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown".into());
                self.fail_all(&format!("the engine hit an internal error ({why})"));
            }
        }
    }

    /// Moves waiting requests into free slots (each slot's KV cache holds a whole context
    /// window, so any admitted request fits); blocks while there is nothing to do. Returns
    /// false on shutdown.
    fn admit(&mut self) -> bool {
        let parallel = self.shared.options.parallel.max(1);
        let mut a = self.shared.lock();
        loop {
            if a.shutdown {
                return false;
            }
            // Requests whose client left while waiting never start.
            a.waiting.retain(|j| !j.events.is_closed());
            while self.seqs.len() < parallel {
                let Some(job) = a.waiting.pop_front() else { break };
                let slot = (0..parallel as i32).find(|s| self.seqs.iter().all(|q| q.slot != *s)).unwrap_or(0);
                match job.sampling.chain(self.model) {
                    Ok(sampler) => {
                        a.active += 1;
                        self.seqs.push(Sequence::new(slot, job, sampler));
                    }
                    Err(e) => {
                        let _ = job.events.send(Event::Failed(e));
                    }
                }
            }
            if !self.seqs.is_empty() {
                return true;
            }
            a = self.shared.wake.wait(a).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Removes sequence `i` from the batch and the KV cache, and frees its slot.
    fn drop_seq(&mut self, i: usize, reason: Option<FinishReason>) {
        let mut s = self.seqs.swap_remove(i);
        if let Some(r) = reason {
            s.finish(r);
        }
        let _ = self.ctx.clear_kv_cache_seq(Some(s.slot as u32), None, None);
        self.shared.record_service(s.job.submitted.elapsed());
        self.shared.lock().active -= 1;
    }

    fn fail_all(&mut self, why: &str) {
        while !self.seqs.is_empty() {
            let _ = self.seqs[0].job.events.send(Event::Failed(LocalError::Other(anyhow::anyhow!("{why}"))));
            self.drop_seq(0, None);
        }
    }

    fn step(&mut self, batch: &mut LlamaBatch) {
        // Abandoned requests leave before any more work is spent on them.
        for i in (0..self.seqs.len()).rev() {
            if self.seqs[i].abandoned() {
                self.drop_seq(i, None);
            }
        }
        if self.seqs.is_empty() {
            return;
        }
        batch.clear();
        let mut room = N_BATCH;
        // Decoding sequences first: one token each keeps every stream moving.
        for s in self.seqs.iter_mut() {
            s.logits_at = None;
            s.in_batch = false;
            if let Phase::Decode { next } = s.phase {
                s.in_batch = true;
                s.logits_at = Some(batch.n_tokens());
                if batch.add(next, s.pos, &[s.slot], true).is_err() {
                    s.logits_at = None;
                    continue;
                }
                s.pos += 1;
                room -= 1;
            }
        }
        // Then prompt chunks, in arrival order, within the step's prefill budget.
        let decode_tokens = batch.n_tokens() as usize;
        // Alone, a prompt goes in whole when an abandoned one can be aborted mid-call;
        // beside streams that are decoding, in chunks they can wait for.
        let budget = if decode_tokens == 0 && self.can_abort {
            PREFILL_MAX
        } else if self.prefill_tps > 0.0 {
            (self.prefill_tps * PREFILL_STEP_SECS) as usize
        } else {
            128
        };
        room = room.min(budget.clamp(PREFILL_MIN, PREFILL_MAX));
        for s in self.seqs.iter_mut() {
            let Phase::Prefill { fed } = s.phase else { continue };
            let n = (s.job.prompt.len() - fed).min(room);
            if n == 0 {
                continue;
            }
            let last = fed + n == s.job.prompt.len();
            let mut ok = true;
            for (j, t) in s.job.prompt[fed..fed + n].iter().enumerate() {
                let is_last = last && j == n - 1;
                if is_last {
                    s.logits_at = Some(batch.n_tokens());
                }
                ok &= batch.add(*t, s.pos, &[s.slot], is_last).is_ok();
                s.pos += 1;
            }
            if !ok {
                s.logits_at = None;
            }
            s.phase = Phase::Prefill { fed: fed + n };
            s.in_batch = true;
            room -= n;
        }
        if batch.n_tokens() == 0 {
            return;
        }
        self.abort.set(self.seqs.iter().filter(|s| s.in_batch).map(|s| s.job.events.clone()).collect());
        // Timed inside the turn: waiting for another model is not this model's prefill speed.
        let (decoded, started) = {
            let _turn = super::COMPUTE.lock();
            let started = std::time::Instant::now();
            (self.ctx.decode(batch), started)
        };
        self.abort.set(Vec::new());
        match decoded {
            Ok(()) => {}
            // Aborted: everyone in the batch has gone; the next step drops them.
            Err(DecodeError::Unknown(2)) => return,
            Err(e) => {
                self.fail_all(&format!("llama.cpp could not decode the batch: {e}"));
                return;
            }
        }
        let prompt_tokens = batch.n_tokens() as usize - decode_tokens;
        if prompt_tokens >= PREFILL_MIN / 2 {
            let tps = prompt_tokens as f64 / started.elapsed().as_secs_f64().max(1e-6);
            self.prefill_tps = if self.prefill_tps == 0.0 { tps } else { 0.7 * self.prefill_tps + 0.3 * tps };
        }
        let vocab = self.model.vocab();
        let n_vocab = self.model.n_vocab().max(0) as usize;
        let mut finished = Vec::new();
        for (i, s) in self.seqs.iter_mut().enumerate() {
            let Some(at) = s.logits_at.take() else { continue };
            let token = if s.job.sampling.plain_greedy() {
                llama_cpp_2::token::LlamaToken(s.job.sampling.argmax(self.ctx.get_logits_ith(at)) as i32)
            } else {
                s.sampler.sample(&self.ctx, at)
            };
            let id = token.0.max(0) as usize;
            let lp = s.job.sampling.logprobs.map(|k| {
                let logits = self.ctx.get_logits_ith(at);
                let piece = |t: usize| {
                    if t < n_vocab {
                        vocab.token_to_piece(llama_cpp_2::token::LlamaToken(t as i32), false, None)
                    } else {
                        Vec::new()
                    }
                };
                logprob(logits, id, k, &piece)
            });
            let is_eog = id >= n_vocab || vocab.is_eog(token);
            let bytes = if is_eog { Vec::new() } else { vocab.token_to_piece(token, false, None) };
            if let Step::Finished(r) = s.accept(token, is_eog, bytes, lp) {
                finished.push((i, r));
            }
        }
        // Highest index first: swap_remove keeps the lower indices valid.
        finished.sort_by_key(|f| std::cmp::Reverse(f.0));
        for (i, r) in finished {
            self.drop_seq(i, Some(r));
        }
    }
}
