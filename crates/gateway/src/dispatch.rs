//! Calling models with retries, timeouts and fallback. For each model in the plan's
//! order: skip it if the key's budget cannot cover it, its breaker is open or its queue
//! is full; otherwise call it, retrying transient failures (connection errors, 5xx, 429,
//! timeouts) with jittered backoff; if it still fails, fall back to the next model. The
//! client sees an error only when every candidate failed, and then the error of the last
//! one tried.
//!
//! For streams, "succeeded" means the first event arrived in time: until then nothing
//! was sent to the client, so falling back is invisible. After it, the stream is
//! committed to that model, and [`Started::next`] keeps the same books on it (breaker,
//! error metrics, the total deadline) that the call itself did.

use crate::books::AttemptOutcome;
use crate::error::ApiError;
use crate::registry::Served;
use crate::reliability::backoff;
use crate::reliability::queue::Slot;
use crate::state::AppState;
use crate::ticket::{Lap, Ticket};
use crate::verification::{judge, Check, Verdict};
use conductor_providers::{ChatRequest, ChatResponse, EventStream, ProviderError, StreamEvent};
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A stream that has produced its first event.
pub struct Started {
    first: Option<StreamEvent>,
    rest: EventStream,
    /// Holds the model's queue slot until the stream ends (none for a replayed answer).
    _slot: Option<Slot>,
    /// When the whole call must be over.
    deadline: tokio::time::Instant,
    model: Arc<Served>,
    state: Arc<AppState>,
    finished: bool,
}

impl Started {
    /// The next event, ending after [`StreamEvent::Finish`]. A failure — an upstream error,
    /// the total deadline, or a stream that ends without finishing — is counted against the
    /// model (metrics, breaker) here and returned once; nothing follows it.
    pub async fn next(&mut self) -> Option<Result<StreamEvent, ProviderError>> {
        if self.finished {
            return None;
        }
        let ev = match self.first.take() {
            Some(ev) => Ok(ev),
            None => match tokio::time::timeout_at(self.deadline, self.rest.next()).await {
                Ok(Some(ev)) => ev,
                Ok(None) => Err(ProviderError::StreamCut("stream ended without a finish".into())),
                Err(_) => Err(ProviderError::Deadline("stream exceeded the total time limit".into())),
            },
        };
        match &ev {
            Ok(StreamEvent::Finish { .. }) => self.finished = true,
            Ok(StreamEvent::Delta { .. } | StreamEvent::ToolCall { .. }) => {}
            Err(e) => {
                self.finished = true;
                self.state.metrics.error(&self.model.entry.id, e.kind());
                if e.is_model_fault() {
                    self.model.breaker.failure();
                }
            }
        }
        Some(ev)
    }
}

pub enum Answer {
    Whole(ChatResponse),
    Stream(Started),
}

/// The request for one model: its upstream name; everything else as the client sent it
/// (no completion limit is invented: a provider without one applies its own default).
pub fn request_for(m: &Served, base: &ChatRequest) -> ChatRequest {
    ChatRequest { model: m.upstream_model.clone(), ..base.clone() }
}

/// One call's result before it is paired with its queue slot.
enum Call {
    Whole(ChatResponse),
    Stream(StreamEvent, EventStream, tokio::time::Instant),
}

async fn call_once(m: &Served, req: ChatRequest, stream: bool, started: Instant) -> Result<Call, ProviderError> {
    let total = m.limits.total;
    let deadline = tokio::time::Instant::from_std(started) + total;
    if !stream {
        let r = tokio::time::timeout(total, m.provider.complete(req))
            .await
            .map_err(|_| ProviderError::Deadline(format!("no complete answer within {} ms", total.as_millis())))??;
        return Ok(Call::Whole(r));
    }
    let ft = m.limits.first_token.min(total);
    let fut = async {
        let mut s = m.provider.stream(req).await?;
        match s.next().await {
            Some(Ok(ev)) => Ok((ev, s)),
            Some(Err(e)) => Err(e),
            None => Err(ProviderError::StreamCut("stream ended before the first token".into())),
        }
    };
    let (first, rest) = tokio::time::timeout(ft, fut)
        .await
        .map_err(|_| ProviderError::Deadline(format!("no first token within {} ms", ft.as_millis())))??;
    Ok(Call::Stream(first, rest, deadline))
}

/// Tries the plan's models in order; records every attempt on the ticket.
pub async fn run(ticket: &mut Ticket, base: &ChatRequest, stream: bool) -> Result<Answer, ApiError> {
    let state = ticket.state().clone();
    let mut last: Option<ApiError> = None;
    let ranked = ticket.plan().ranked.clone();
    for id in &ranked {
        let (call, slot, m) = match call_model(ticket, id, base, stream).await {
            Ok(c) => c,
            Err(e) => {
                last = e.or(last);
                continue;
            }
        };
        ticket.attempt(id, AttemptOutcome::Ok, None);
        ticket.answered_by(m.clone());
        return Ok(match call {
            Call::Whole(r) => Answer::Whole(r),
            Call::Stream(first, rest, deadline) => Answer::Stream(Started {
                first: Some(first),
                rest,
                _slot: Some(slot),
                deadline,
                model: m,
                state,
                finished: false,
            }),
        });
    }
    Err(last.unwrap_or_else(|| ApiError::internal("no model to try")))
}

/// One model of the plan, with the budget, breaker and queue checks, retries and backoff.
/// A model that was skipped or failed is booked on the ticket and gives the error the
/// client would see if nothing after it answers (none when it is not served).
async fn call_model(
    ticket: &mut Ticket,
    id: &str,
    base: &ChatRequest,
    stream: bool,
) -> Result<(Call, Slot, Arc<Served>), Option<ApiError>> {
    let state = ticket.state().clone();
    let rel = &state.config.reliability;
    let (base_delay, max_delay) = (Duration::from_millis(rel.retry_base_ms), Duration::from_millis(rel.retry_max_ms));
    let Some(m) = state.registry.get(id).cloned() else { return Err(None) };
    if let Err(e) = ticket.reserve_for(&m).await {
        let why = if e.code == "budget_exceeded" { "over budget" } else { "budget could not be checked" };
        ticket.attempt(id, AttemptOutcome::Skipped, Some(why.into()));
        return Err(Some(e));
    }
    if !m.breaker.try_acquire() {
        ticket.attempt(id, AttemptOutcome::Skipped, Some("circuit breaker open".into()));
        state.metrics.error(id, "circuit_open");
        let retry = m.breaker.reopens_in().as_secs_f64().ceil().max(1.0) as u64;
        return Err(Some(
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "circuit_open",
                format!("model {id} is failing and out of rotation for another {retry}s; retry then"),
            )
            .with_retry_after(retry),
        ));
    }
    let slot = match m.queue.acquire().await {
        Ok(s) => s,
        Err(full) => {
            ticket.attempt(id, AttemptOutcome::Skipped, Some("queue full".into()));
            state.metrics.error(id, "queue_full");
            let retry = full.expected_wait.as_secs_f64().ceil().max(1.0) as u64;
            return Err(Some(ApiError::rate_limited(
                "queue_full",
                format!(
                    "model {id} has {} requests waiting (about {retry}s of work at its recent pace); retry after {retry}s",
                    full.waiting
                ),
                retry,
            )));
        }
    };
    let req = request_for(&m, base);
    let mut try_no = 0;
    // The breaker counts requests, not attempts: one verdict per request and model.
    let mut faulted = false;
    loop {
        let started = Instant::now();
        match call_once(&m, req.clone(), stream, started).await {
            Ok(call) => {
                m.breaker.success();
                return Ok((call, slot, m));
            }
            Err(e) => {
                tracing::warn!(model = %id, attempt = try_no, "model call failed: {e}");
                state.metrics.error(id, e.kind());
                ticket.attempt(id, AttemptOutcome::Error, Some(e.to_string()));
                faulted |= e.is_model_fault();
                let err = ApiError::from_provider(id, &e);
                // Whether to retry must not change the breaker's state: a predicate, not
                // `try_acquire`, or the check itself would use up a half-open probe. Our own
                // deadline passing means the upstream is slow: fall back, don't pile on.
                if e.is_retryable() && try_no < m.limits.max_retries && m.breaker.is_closed() {
                    let ra = match &e {
                        ProviderError::Status { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    tokio::time::sleep(backoff::delay(try_no, base_delay, max_delay, ra)).await;
                    try_no += 1;
                    continue;
                }
                if faulted {
                    m.breaker.failure();
                } else {
                    // Back-pressure or a rejected request: the model is up; release a
                    // half-open probe instead of leaving the breaker waiting on it.
                    m.breaker.release();
                }
                return Err(Some(err));
            }
        }
    }
}

/// The answer a checked request keeps so far: the reply, its model, its verdict, its call's
/// timing, and where its attempt goes in the books.
type Kept = (ChatResponse, Arc<Served>, Verdict, Lap, usize);

/// A checked request: climbs the plan's ladder (cheapest first), asking each model for
/// its token log-probabilities, until an answer is accepted; every answer is paid. The
/// last answer is kept when none is accepted — or, with `abstain`, replaced by "I don't
/// know". A model that fails is passed over like an untrusted answer. Streams get the
/// kept answer once it is chosen (time to first token is the whole climb).
pub async fn run_checked(
    ticket: &mut Ticket,
    base: &ChatRequest,
    check: Check,
    stream: bool,
) -> Result<Answer, ApiError> {
    let state = ticket.state().clone();
    let delta = state.config.verify.delta;
    let mut req = base.clone();
    // Log-probabilities are how answers are checked; the client gets them only if it asked.
    let client_wants_logprobs = req.extras.logprobs.is_some();
    req.extras.logprobs.get_or_insert(0);
    let ranked = ticket.plan().ranked.clone();
    let mut last_err: Option<ApiError> = None;
    // The answer kept so far, with where its attempt belongs in the books (it is booked once
    // its fate is known, in the order the calls were made).
    let mut kept: Option<Kept> = None;
    for (i, id) in ranked.iter().enumerate() {
        let top = i + 1 == ranked.len();
        let (r, m, lap) = match call_model(ticket, id, &req, false).await {
            Ok((Call::Whole(r), _slot, m)) => (r, m, ticket.lap()),
            Ok((Call::Stream(..), ..)) => return Err(ApiError::internal("a whole answer was asked for")),
            Err(e) => {
                last_err = e.or(last_err);
                continue;
            }
        };
        let verdict = judge(&state.verifiers, id, &r, &check, delta);
        let label = match (verdict.accepted, verdict.confidence) {
            (true, _) => "accepted",
            (false, Some(_)) => "rejected",
            (false, None) => "unchecked",
        };
        state.metrics.verdict(id, label);
        let mut at = ticket.attempt_count();
        if let Some((old, old_m, old_v, old_lap, old_at)) = kept.take() {
            ticket.checked(old_at, &old_m, AttemptOutcome::Rejected, old_v, old_lap, old.usage);
            at += 1;
        }
        let done = verdict.accepted || top;
        kept = Some((r, m, verdict, lap, at));
        if done {
            break;
        }
    }
    let Some((mut r, m, verdict, lap, at)) = kept else {
        return Err(last_err.unwrap_or_else(|| ApiError::internal("no model to try")));
    };
    let abstained = !verdict.accepted && check.abstain;
    let mut verification = serde_json::json!({
        "strategy": check.strategy.as_str(),
        "max_risk": check.max_risk,
        "delta": delta,
        "abstain": check.abstain,
        "verified": verdict.accepted,
        "abstained": abstained,
        "confidence": verdict.confidence,
        "tau": verdict.tau,
        "reason": verdict.reason,
    });
    // A verified answer is what distillation data is made of (`conductor logs export
    // --distill`); kept only where the prompt may be.
    if verdict.accepted && ticket.logs_text() {
        verification["answer"] = serde_json::json!(r.text);
    }
    ticket.set_verification(verification);
    ticket.checked(at, &m, AttemptOutcome::Ok, verdict, lap, r.usage);
    ticket.answered_by(m.clone());
    if abstained {
        state.metrics.abstention(&m.entry.id);
        r.text = state.config.verify.message.clone();
        r.finish_reason = "stop".into();
        r.logprobs = None;
        r.tool_calls.clear();
    }
    if !client_wants_logprobs {
        r.logprobs = None;
    }
    if !stream {
        return Ok(Answer::Whole(r));
    }
    Ok(Answer::Stream(replay(r, m, state)))
}

/// A whole answer as a stream: its text in word-sized pieces, its tool calls whole, then
/// the finish.
fn replay(r: ChatResponse, model: Arc<Served>, state: Arc<AppState>) -> Started {
    let mut pieces: Vec<String> = r.text.split_inclusive(' ').map(str::to_string).collect();
    if pieces.is_empty() {
        pieces.push(String::new());
    }
    let mut events: Vec<Result<StreamEvent, ProviderError>> =
        pieces.into_iter().map(|text| Ok(StreamEvent::Delta { text, logprobs: None })).collect();
    events.extend(r.tool_calls.into_iter().enumerate().map(|(i, c)| {
        Ok(StreamEvent::ToolCall { index: i as u32, id: Some(c.id), name: Some(c.name), arguments: c.arguments })
    }));
    events.push(Ok(StreamEvent::Finish { finish_reason: r.finish_reason, usage: Some(r.usage) }));
    let first = events.remove(0).ok();
    let total = model.limits.total;
    Started {
        first,
        rest: Box::pin(futures::stream::iter(events)),
        _slot: None,
        deadline: tokio::time::Instant::now() + total,
        model,
        state,
        finished: false,
    }
}
