//! Small read-only endpoints: `/v1/models`, `/healthz`, `/metrics`, and the OpenAI-shaped
//! 404/405 for everything else.

use crate::error::ApiError;
use crate::metrics::esc;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use conductor_providers::openai_wire::{ModelList, ModelObject};
use std::fmt::Write;
use std::sync::Arc;

/// Routing pseudo-models listed next to the real ones.
const AUTO_MODELS: [&str; 4] = ["auto", "auto:quality", "auto:cost", "auto:threshold"];

pub async fn models(State(state): State<Arc<AppState>>) -> Response {
    let created = crate::ticket::now_secs();
    let mut data: Vec<ModelObject> = AUTO_MODELS
        .iter()
        .map(|id| ModelObject { id: id.to_string(), object: "model".into(), created, owned_by: "conductor".into() })
        .collect();
    data.extend(state.registry.all().iter().map(|m| ModelObject {
        id: m.entry.id.clone(),
        object: "model".into(),
        created,
        owned_by: m.entry.provider.clone(),
    }));
    state.metrics.request("/v1/models", 200);
    axum::Json(ModelList { object: "list".into(), data }).into_response()
}

pub async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let open: Vec<&str> =
        state.registry.all().iter().filter(|m| m.breaker.gauge() == 1).map(|m| m.entry.id.as_str()).collect();
    axum::Json(serde_json::json!({
        "status": "ok",
        "models": state.registry.all().len(),
        "circuit_open": open,
        "router": state.router.summary(),
    }))
    .into_response()
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut extra = String::new();
    extra.push_str("# HELP conductor_circuit_state Circuit breaker per model (0 closed, 1 open, 2 half-open).\n# TYPE conductor_circuit_state gauge\n");
    for m in state.registry.all() {
        let _ = writeln!(extra, "conductor_circuit_state{{model=\"{}\"}} {}", esc(&m.entry.id), m.breaker.gauge());
    }
    extra.push_str(
        "# HELP conductor_queue_waiting Requests waiting for a model.\n# TYPE conductor_queue_waiting gauge\n",
    );
    for m in state.registry.all() {
        let _ = writeln!(extra, "conductor_queue_waiting{{model=\"{}\"}} {}", esc(&m.entry.id), m.queue.waiting());
    }
    extra.push_str("# HELP conductor_budget_spent_usd Spend of each budgeted key this period.\n# TYPE conductor_budget_spent_usd gauge\n");
    for (k, spent, reserved, limit) in state.budgets.snapshot() {
        let k = esc(&k);
        let _ = writeln!(extra, "conductor_budget_spent_usd{{key=\"{k}\"}} {spent}");
        let _ = writeln!(extra, "conductor_budget_reserved_usd{{key=\"{k}\"}} {reserved}");
        let _ = writeln!(extra, "conductor_budget_limit_usd{{key=\"{k}\"}} {limit}");
    }
    (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render(&extra))
        .into_response()
}

pub async fn not_found(uri: axum::http::Uri) -> Response {
    ApiError::not_found(
        "unknown_route",
        format!("no route {}; see /v1/chat/completions, /v1/models, /v1/feedback", uri.path()),
    )
    .into_response()
}

pub async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        "method not allowed on this route",
    )
    .into_response()
}
