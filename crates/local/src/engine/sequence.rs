//! One request in the engine: its prompt still to feed, its sampler, and what it has
//! produced — text held back until no stop sequence can swallow it, bytes held back until
//! they form whole UTF-8 characters, log-probabilities waiting for their text.

use super::{Event, FinishReason, Job, Timings};
use crate::stop::{Fed, StopMatcher};
use conductor_providers::TokenLogprob;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use std::time::Instant;

pub(super) enum Phase {
    /// Feeding the prompt; `fed` tokens are in the KV cache.
    Prefill { fed: usize },
    /// Generating; `next` is the last sampled token, not yet in the KV cache.
    Decode { next: LlamaToken },
}

pub(super) struct Sequence {
    /// The KV-cache sequence id (the batch slot).
    pub slot: i32,
    pub job: Job,
    pub sampler: LlamaSampler,
    pub phase: Phase,
    /// Position of the next token fed.
    pub pos: i32,
    /// Index of this sequence's logits in the batch just decoded, if any.
    pub logits_at: Option<i32>,
    /// Whether the batch being decoded holds tokens of this sequence.
    pub in_batch: bool,
    pub generated: usize,
    stops: StopMatcher,
    pending_bytes: Vec<u8>,
    pending_logprobs: Vec<TokenLogprob>,
    /// Tokens generated since the last piece went out.
    pending_tokens: usize,
    admitted: Instant,
    first_token: Option<Instant>,
    queued: std::time::Duration,
    /// A stop sequence ended it: the held-back text was the stop string, not output.
    stopped_by_sequence: bool,
}

/// What handling a sampled token decided.
pub(super) enum Step {
    Continue,
    Finished(FinishReason),
}

impl Sequence {
    pub fn new(slot: i32, job: Job, sampler: LlamaSampler) -> Sequence {
        let now = Instant::now();
        Sequence {
            slot,
            stops: StopMatcher::new(&job.sampling.stop),
            queued: now.duration_since(job.submitted),
            job,
            sampler,
            phase: Phase::Prefill { fed: 0 },
            pos: 0,
            logits_at: None,
            in_batch: false,
            generated: 0,
            pending_bytes: Vec::new(),
            pending_logprobs: Vec::new(),
            pending_tokens: 0,
            admitted: now,
            first_token: None,
            stopped_by_sequence: false,
        }
    }

    /// The client stopped listening.
    pub fn abandoned(&self) -> bool {
        self.job.events.is_closed()
    }

    fn send(&self, e: Event) {
        let _ = self.job.events.send(e);
    }

    /// Emits `text` (and the log-probabilities gathered so far) when there is text to emit.
    fn emit(&mut self, text: String) {
        if !text.is_empty() {
            let logprobs = std::mem::take(&mut self.pending_logprobs);
            let tokens = std::mem::take(&mut self.pending_tokens);
            self.send(Event::Piece { text, tokens, logprobs });
        }
    }

    /// Takes the next sampled token: end of turn, or its bytes through the UTF-8 buffer and
    /// the stop matcher, then the length limit.
    pub fn accept(&mut self, token: LlamaToken, is_eog: bool, bytes: Vec<u8>, logprob: Option<TokenLogprob>) -> Step {
        if self.first_token.is_none() {
            self.first_token = Some(Instant::now());
        }
        if is_eog {
            return Step::Finished(FinishReason::Stop);
        }
        self.generated += 1;
        self.pending_tokens += 1;
        self.pending_logprobs.extend(logprob);
        self.pending_bytes.extend(bytes);
        let text = match std::str::from_utf8(&self.pending_bytes) {
            Ok(s) => {
                let s = s.to_string();
                self.pending_bytes.clear();
                s
            }
            // An incomplete character at the end: emit what is whole, keep the rest.
            Err(e) if e.error_len().is_none() => {
                let n = e.valid_up_to();
                let s = String::from_utf8_lossy(&self.pending_bytes[..n]).into_owned();
                self.pending_bytes.drain(..n);
                s
            }
            Err(_) => String::from_utf8_lossy(&std::mem::take(&mut self.pending_bytes)).into_owned(),
        };
        let (out, stopped) = match self.stops.feed(&text) {
            Fed::Emit(s) => (s.to_string(), false),
            Fed::Stopped(s) => (s.to_string(), true),
        };
        self.emit(out);
        if stopped {
            self.stopped_by_sequence = true;
            return Step::Finished(FinishReason::Stop);
        }
        self.phase = Phase::Decode { next: token };
        if self.generated >= self.job.sampling.max_tokens {
            return Step::Finished(FinishReason::Length);
        }
        Step::Continue
    }

    /// Ends the sequence: releases text held back as a possible stop-sequence prefix
    /// (unless a stop sequence did match), then reports.
    pub fn finish(&mut self, reason: FinishReason) {
        if !self.stopped_by_sequence {
            let rest = String::from_utf8_lossy(&std::mem::take(&mut self.pending_bytes)).into_owned();
            let rest = match self.stops.feed(&rest) {
                Fed::Emit(s) | Fed::Stopped(s) => s.to_string(),
            };
            let tail = format!("{rest}{}", self.stops.finish());
            self.emit(tail);
        }
        let now = Instant::now();
        let first = self.first_token.unwrap_or(now);
        let timings = Timings {
            queued: self.queued,
            prefill: first.duration_since(self.admitted),
            decode: now.duration_since(first),
        };
        self.send(Event::Done {
            finish_reason: reason,
            prompt_tokens: self.job.prompt.len(),
            completion_tokens: self.generated,
            timings,
        });
    }
}
