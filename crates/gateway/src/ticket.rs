//! The paperwork of one chat request: its budget reservation and its row in the books.
//! A ticket is closed exactly once — normally by [`Ticket::close`], otherwise by `Drop`
//! (client went away mid-request or mid-stream), so every request is booked and every
//! reservation settled whatever path it takes.

use crate::books::DecisionRow;
use crate::budget::{now_ms, Reservation};
use crate::registry::Served;
use crate::routing::Plan;
use crate::state::AppState;
use conductor_providers::Usage;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// One model call tried for a request.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub model: String,
    /// `ok`, `error` or `skipped`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub struct Ticket {
    pub state: Arc<AppState>,
    pub decision_id: String,
    pub key_id: String,
    pub requested_model: String,
    pub plan: Plan,
    pub prompt: Option<String>,
    pub started: Instant,
    pub ts_ms: i64,
    pub stream: bool,
    pub reservation: Option<Reservation>,
    pub attempts: Vec<Attempt>,
    /// The model that is answering, once one is.
    pub chosen: Option<Arc<Served>>,
    /// Usage so far (streams count deltas until the upstream reports real numbers).
    pub usage: Usage,
    closed: bool,
}

impl Ticket {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        state: Arc<AppState>,
        decision_id: String,
        key_id: String,
        requested_model: String,
        plan: Plan,
        prompt: Option<String>,
        stream: bool,
        reservation: Option<Reservation>,
        prompt_tokens_estimate: u64,
    ) -> Ticket {
        Ticket {
            state,
            decision_id,
            key_id,
            requested_model,
            plan,
            prompt,
            started: Instant::now(),
            ts_ms: now_ms(),
            stream,
            reservation,
            attempts: Vec::new(),
            chosen: None,
            usage: Usage { prompt_tokens: prompt_tokens_estimate, completion_tokens: 0 },
            closed: false,
        }
    }

    /// The `conductor` object returned to the client.
    pub fn meta(&self) -> serde_json::Value {
        json!({
            "decision_id": self.decision_id,
            "model": self.chosen.as_ref().map(|m| m.entry.id.clone()),
            "requested_model": self.requested_model,
            "mode": self.plan.mode,
            "policy": self.plan.policy,
            "reason": self.plan.reason,
            "candidates": self.plan.candidates_json(),
            "attempts": self.attempts,
        })
    }

    /// Whether this request spends from a budget: then its row must be on disk before the
    /// answer is complete, so a crash cannot forget spend (see [`Ticket::close_durably`]).
    pub fn budgeted(&self) -> bool {
        self.reservation.is_some()
    }

    /// [`Ticket::close`], then, for budgeted requests, wait until the row is committed.
    pub async fn close_durably(&mut self, outcome: &str, error: Option<String>) {
        let budgeted = self.budgeted();
        self.close(outcome, error);
        if budgeted {
            self.state.books.flush().await;
        }
    }

    /// Books the request: outcome `ok`, `error` or `client_disconnected`.
    pub fn close(&mut self, outcome: &str, error: Option<String>) {
        if self.closed {
            return;
        }
        self.closed = true;
        let latency = self.started.elapsed().as_secs_f64();
        let (pt, ct) = (self.usage.prompt_tokens as usize, self.usage.completion_tokens as usize);
        let cost = match (&self.chosen, outcome) {
            (Some(m), _) => m.entry.cost_usd(pt, ct),
            (None, "client_disconnected") => self.reservation.as_ref().map_or(0.0, |r| r.amount()),
            (None, _) => 0.0,
        };
        let baseline = self.state.registry.largest().map_or(0.0, |m| m.entry.cost_usd(pt, ct));
        if let Some(r) = self.reservation.take() {
            self.state.budgets.settle(r, cost);
        }
        let model_id = self.chosen.as_ref().map(|m| m.entry.id.clone());
        if let Some(m) = &model_id {
            if outcome == "ok" {
                self.state.metrics.completion(m, pt as u64, ct as u64, cost, latency);
            }
        }
        let attempts = std::mem::take(&mut self.attempts);
        self.state.books.record(DecisionRow {
            id: self.decision_id.clone(),
            ts_ms: self.ts_ms,
            key_id: self.key_id.clone(),
            requested_model: self.requested_model.clone(),
            chosen_model: model_id,
            policy: self.plan.policy.clone(),
            reason: self.plan.reason.clone(),
            candidates: self.plan.candidates_json(),
            attempts: json!(attempts),
            prompt: self.prompt.take(),
            prompt_tokens: pt as u64,
            completion_tokens: ct as u64,
            cost_usd: cost,
            baseline_cost_usd: baseline,
            latency_ms: latency * 1000.0,
            stream: self.stream,
            outcome: outcome.to_string(),
            error,
        });
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.close("client_disconnected", Some("client closed the connection before the answer was complete".into()));
    }
}
