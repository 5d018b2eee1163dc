//! The paperwork of one chat request: its budget reservation and its row in the books.
//! A ticket is closed exactly once — normally by [`Ticket::close`], otherwise by `Drop`
//! (client went away mid-request or mid-stream), so every request is booked and every
//! reservation settled whatever path it takes.

use crate::books::{Attempt, AttemptOutcome, DecisionRow};
use crate::budget::{Refusal, Reservation};
use crate::clock::{now_ms, now_secs};
use crate::error::ApiError;
use crate::keys::KeyInfo;
use crate::registry::Served;
use crate::routing::Plan;
use crate::state::AppState;
use crate::store::StoreError;
use crate::verification::Verdict;
use conductor_providers::Usage;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// How a request ended, as the books record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Answered "I don't know": no answer could be trusted (checked requests only).
    Abstained,
    Error,
    ClientDisconnected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Abstained => "abstained",
            Outcome::Error => "error",
            Outcome::ClientDisconnected => "client_disconnected",
        }
    }
}

pub struct Ticket {
    state: Arc<AppState>,
    decision_id: String,
    key_id: String,
    requested_model: String,
    plan: Plan,
    prompt: Option<String>,
    started: Instant,
    ts_ms: i64,
    created: u64,
    stream: bool,
    /// Upper bound of this request's prompt tokens, and the completion limit it asked for.
    prompt_bound: usize,
    max_tokens: Option<u32>,
    reservation: Option<Reservation>,
    attempts: Vec<Attempt>,
    /// The model that is answering, once one is.
    chosen: Option<Arc<Served>>,
    /// Usage so far (streams count deltas until the upstream reports real numbers).
    usage: Usage,
    /// What answers that were not kept cost (checked requests pay every attempt).
    paid_before: f64,
    /// How the answer was checked, for the response and the books.
    verification: Option<serde_json::Value>,
    /// When the last model call ended (the next one starts there).
    mark: Instant,
    ttft_ms: Option<f64>,
    closed: bool,
}

/// When one model call began (ms after the request arrived) and how long it took.
#[derive(Debug, Clone, Copy)]
pub struct Lap {
    pub start_ms: f64,
    pub duration_ms: f64,
}

/// What a ticket is opened with: the request's facts that end up in the books.
pub struct Opening<'a> {
    pub key: &'a KeyInfo,
    pub requested_model: &'a str,
    /// The routed text, kept in the books when `books.log_prompts` is on.
    pub routing_text: &'a str,
    pub stream: bool,
    pub prompt_tokens_estimate: u64,
    pub prompt_bound: usize,
    pub max_tokens: Option<u32>,
}

impl Ticket {
    pub fn open(state: Arc<AppState>, o: Opening<'_>, plan: Plan) -> Ticket {
        let prompt = (state.config.books.log_prompts && o.key.log_prompts).then(|| o.routing_text.to_string());
        let started = Instant::now();
        Ticket {
            decision_id: uuid::Uuid::new_v4().simple().to_string(),
            key_id: o.key.id.clone(),
            requested_model: o.requested_model.to_string(),
            plan,
            prompt,
            started,
            mark: started,
            ttft_ms: None,
            ts_ms: now_ms(),
            created: now_secs(),
            stream: o.stream,
            prompt_bound: o.prompt_bound,
            max_tokens: o.max_tokens,
            reservation: None,
            attempts: Vec::new(),
            chosen: None,
            usage: Usage { prompt_tokens: o.prompt_tokens_estimate, completion_tokens: 0 },
            paid_before: 0.0,
            verification: None,
            closed: false,
            state,
        }
    }

    pub fn decision_id(&self) -> &str {
        &self.decision_id
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The `created` timestamp of the response.
    pub fn created(&self) -> u64 {
        self.created
    }

    /// Id of the model answering (empty before one is).
    pub fn model_id(&self) -> String {
        self.chosen.as_ref().map(|m| m.entry.id.clone()).unwrap_or_default()
    }

    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Makes sure the budget covers the most a call to `m` can cost, reserving more when
    /// needed (the first model, or a pricier fallback). Keys without a budget always pass.
    pub async fn reserve_for(&mut self, m: &Served) -> Result<(), ApiError> {
        let max_tokens = self.max_tokens.unwrap_or(m.limits.default_max_tokens) as usize;
        // Answers already paid for stay paid: the next call comes on top.
        let need = self.paid_before + m.entry.cost_usd(self.prompt_bound, max_tokens);
        let budgets = &self.state.budgets;
        let topped = match self.reservation.take() {
            Some(r) if r.amount() >= need => Ok(Some(r)),
            Some(r) => budgets.top_up(r, need).await.map(Some),
            None => budgets.reserve(&self.key_id, need).await.map_err(|o| (None, o)),
        };
        match topped {
            Ok(r) => {
                self.reservation = r;
                Ok(())
            }
            Err((kept, Refusal::Store(e))) => {
                self.reservation = kept;
                let what = format!("the budget of API key `{}` cannot be checked: {e}", self.key_id);
                Err(match e {
                    StoreError::Unavailable(_) => ApiError::store_unavailable(format!("{what}; retry")),
                    _ => ApiError::internal(what),
                })
            }
            Err((kept, Refusal::Over(o))) => {
                self.reservation = kept;
                Err(ApiError::budget_exceeded(format!(
                    "budget of API key `{}` exhausted: a call to {} may cost up to ${:.6}, ${:.6} of ${:.6} left this period",
                    self.key_id, m.entry.id, o.needed, o.remaining, o.limit
                )))
            }
        }
    }

    /// Ends the timing of the model call that just returned; the next starts now.
    pub fn lap(&mut self) -> Lap {
        let now = Instant::now();
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let lap = Lap { start_ms: ms(self.mark - self.started), duration_ms: ms(now - self.mark) };
        self.mark = now;
        lap
    }

    /// The first token is ready to go to the client; returns seconds since arrival.
    pub fn first_token(&mut self) -> f64 {
        let secs = self.started.elapsed().as_secs_f64();
        self.ttft_ms = Some(secs * 1000.0);
        secs
    }

    /// Records one model call (or a model skipped).
    pub fn attempt(&mut self, model: &str, outcome: AttemptOutcome, error: Option<String>) {
        let lap = self.lap();
        self.attempts.push(Attempt {
            model: model.to_string(),
            outcome,
            error,
            verdict: None,
            cost_usd: None,
            start_ms: Some(lap.start_ms),
            duration_ms: Some(lap.duration_ms),
        });
    }

    /// Attempts recorded so far.
    pub fn attempt_count(&self) -> usize {
        self.attempts.len()
    }

    /// Records a checked answer at position `at` of the attempts (where its call was made):
    /// the one kept (`Ok`) or one passed over (`Rejected`, paid for here: its tokens are
    /// counted in the metrics and its cost in the books).
    pub fn checked(
        &mut self,
        at: usize,
        m: &Served,
        outcome: AttemptOutcome,
        verdict: Verdict,
        lap: Lap,
        usage: Usage,
    ) {
        let cost = (outcome == AttemptOutcome::Rejected).then(|| {
            let (pt, ct) = (usage.prompt_tokens, usage.completion_tokens);
            let cost = m.entry.cost_usd(pt as usize, ct as usize);
            self.paid_before += cost;
            self.state.metrics.completion(&m.entry.id, pt, ct, cost, self.started.elapsed().as_secs_f64());
            cost
        });
        let attempt = Attempt {
            model: m.entry.id.clone(),
            outcome,
            error: None,
            verdict: Some(verdict),
            cost_usd: cost,
            start_ms: Some(lap.start_ms),
            duration_ms: Some(lap.duration_ms),
        };
        self.attempts.insert(at.min(self.attempts.len()), attempt);
    }

    /// How the answer was checked (shown in the response's `conductor` object and booked).
    pub fn set_verification(&mut self, v: serde_json::Value) {
        self.verification = Some(v);
    }

    /// Whether this request's text may be kept in the books (config and key allow it).
    pub fn logs_text(&self) -> bool {
        self.prompt.is_some()
    }

    /// The answer is "I don't know" (set by a checked request that trusted no answer).
    pub fn abstained(&self) -> bool {
        self.verification.as_ref().is_some_and(|v| v["abstained"] == true)
    }

    /// The model whose answer the client gets.
    pub fn answered_by(&mut self, m: Arc<Served>) {
        self.chosen = Some(m);
    }

    /// One streamed piece of text (a token, as far as counting goes).
    pub fn count_delta(&mut self) {
        self.usage.completion_tokens += 1;
    }

    /// Final usage: what the upstream reported, with counts it left out filled in from
    /// our own estimates (`completion_estimate` when it reported no completion tokens).
    pub fn settle_usage(&mut self, reported: Option<Usage>, completion_estimate: u64) {
        let u = reported.unwrap_or(self.usage);
        self.usage = Usage {
            prompt_tokens: if u.prompt_tokens == 0 { self.usage.prompt_tokens } else { u.prompt_tokens },
            completion_tokens: if u.completion_tokens == 0 { completion_estimate } else { u.completion_tokens },
        };
    }

    /// The `conductor` object returned to the client.
    pub fn meta(&self) -> serde_json::Value {
        let mut meta = json!({
            "decision_id": self.decision_id,
            "model": self.chosen.as_ref().map(|m| m.entry.id.clone()),
            "requested_model": self.requested_model,
            "mode": self.plan.mode.as_str(),
            "policy": self.plan.policy,
            "reason": self.plan.reason,
            "candidates": self.plan.candidates,
            "attempts": self.attempts,
        });
        // What the answer cost at the usage known now (final for whole answers; agents
        // keep their books with it).
        if let Some(m) = &self.chosen {
            let (pt, ct) = (self.usage.prompt_tokens as usize, self.usage.completion_tokens as usize);
            meta["cost_usd"] = json!(self.paid_before + m.entry.cost_usd(pt, ct));
        }
        if let Some(v) = &self.verification {
            meta["abstained"] = v["abstained"].clone();
            meta["verification"] = v.clone();
        }
        meta
    }

    /// [`Ticket::close`], then, for budgeted requests, wait until the row is committed, so
    /// that a crash cannot forget spend the client has seen.
    pub async fn close_durably(&mut self, outcome: Outcome, error: Option<String>) {
        let budgeted = self.reservation.is_some();
        self.close(outcome, error);
        if budgeted {
            self.state.books.flush().await;
            if let Some(store) = &self.state.store {
                store.flush().await;
            }
        }
    }

    /// Books the request and settles its reservation (once; later calls do nothing).
    pub fn close(&mut self, outcome: Outcome, error: Option<String>) {
        if self.closed {
            return;
        }
        self.closed = true;
        let outcome = if outcome == Outcome::Ok && self.abstained() { Outcome::Abstained } else { outcome };
        let latency = self.started.elapsed().as_secs_f64();
        // A streamed answer's call was timed to its first token; it lasted until the stream ended.
        if self.stream {
            if let Some(a) = self.attempts.iter_mut().rev().find(|a| a.outcome == AttemptOutcome::Ok) {
                a.duration_ms = a.start_ms.map(|start| (latency * 1000.0 - start).max(0.0));
            }
        }
        let (pt, ct) = (self.usage.prompt_tokens as usize, self.usage.completion_tokens as usize);
        let cost = self.paid_before
            + match (&self.chosen, outcome) {
                (Some(m), _) => m.entry.cost_usd(pt, ct),
                // Gone before any model answered: the call may still have cost something.
                (None, Outcome::ClientDisconnected) => {
                    (self.reservation.as_ref().map_or(0.0, |r| r.amount()) - self.paid_before).max(0.0)
                }
                (None, _) => 0.0,
            };
        let baseline = self.state.registry.largest().map_or(0.0, |m| m.entry.cost_usd(pt, ct));
        let settles = self.reservation.take().and_then(|r| self.state.budgets.settle(r, cost));
        let model_id = self.chosen.as_ref().map(|m| m.entry.id.clone());
        if let (Some(m), Outcome::Ok | Outcome::Abstained) = (&model_id, outcome) {
            self.state.metrics.completion(m, pt as u64, ct as u64, cost - self.paid_before, latency);
        }
        let row = DecisionRow {
            id: self.decision_id.clone(),
            ts_ms: self.ts_ms,
            key_id: self.key_id.clone(),
            requested_model: self.requested_model.clone(),
            chosen_model: model_id,
            policy: self.plan.policy.clone(),
            reason: self.plan.reason.clone(),
            candidates: self.plan.candidates.clone(),
            attempts: std::mem::take(&mut self.attempts),
            prompt: self.prompt.take(),
            prompt_tokens: pt as u64,
            completion_tokens: ct as u64,
            cost_usd: cost,
            baseline_cost_usd: baseline,
            latency_ms: latency * 1000.0,
            stream: self.stream,
            outcome: outcome.as_str().to_string(),
            error,
            verification: self.verification.take(),
            ttft_ms: self.ttft_ms,
        };
        let registry = &self.state.registry;
        self.state.telemetry.request(&row, |m| registry.get(m).map(|s| s.entry.provider.clone()));
        if let Some(store) = &self.state.store {
            store.record(row.clone(), settles);
        }
        self.state.books.record(row);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.close(
            Outcome::ClientDisconnected,
            Some("client closed the connection before the answer was complete".into()),
        );
    }
}
