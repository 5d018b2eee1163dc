//! Small read-only endpoints: `/v1/models`, `/v1/models/{id}`, `/healthz`, `/metrics`, and
//! the OpenAI-shaped 404/405 for everything else. With keys configured, what a request
//! sees depends on its key: the models it may use; operator pages need an admin key.

use crate::error::ApiError;
use crate::keys::KeyInfo;
use crate::metrics::esc;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header::AUTHORIZATION, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use conductor_providers::openai_wire::{ModelList, ModelObject};
use std::fmt::Write;
use std::sync::Arc;

/// Routing pseudo-models listed next to the real ones.
const AUTO_MODELS: [&str; 6] = ["auto", "auto:quality", "auto:cost", "auto:threshold", "auto:verify", "auto:cascade"];

fn auth(headers: &HeaderMap) -> Option<&str> {
    headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok())
}

/// The models a key may use, as OpenAI model objects (with the `auto` names when it may
/// use any model at all).
fn visible_models(state: &AppState, key: &KeyInfo) -> Vec<ModelObject> {
    let created = crate::clock::now_secs();
    let object = |id: &str, owned_by: &str| ModelObject {
        id: id.to_string(),
        object: "model".into(),
        created,
        owned_by: owned_by.to_string(),
    };
    let served: Vec<ModelObject> = state
        .registry
        .all()
        .iter()
        .filter(|m| key.may_use(&m.entry.id))
        .map(|m| object(&m.entry.id, &m.entry.provider))
        .collect();
    let autos =
        if served.is_empty() { Vec::new() } else { AUTO_MODELS.iter().map(|a| object(a, "conductor")).collect() };
    autos.into_iter().chain(served).collect()
}

/// `GET /v1/models`: with keys configured, only the models the calling key may use.
pub async fn models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let resp = match state.keys.authenticate(auth(&headers)) {
        Ok(key) => axum::Json(ModelList { object: "list".into(), data: visible_models(&state, &key) }).into_response(),
        Err(e) => e.into_response(),
    };
    state.metrics.request("/v1/models", resp.status().as_u16());
    resp
}

/// `GET /v1/models/{id}`: one model the key may use, or OpenAI's 404.
pub async fn model(State(state): State<Arc<AppState>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let resp = match state.keys.authenticate(auth(&headers)) {
        Err(e) => e.into_response(),
        Ok(key) => match visible_models(&state, &key).into_iter().find(|m| m.id == id) {
            Some(m) => axum::Json(m).into_response(),
            None => ApiError::not_found(
                "model_not_found",
                format!("model `{}` does not exist or this key may not use it", crate::error::truncate(&id)),
            )
            .with_param("model")
            .into_response(),
        },
    };
    state.metrics.request("/v1/models/{id}", resp.status().as_u16());
    resp
}

/// `GET /healthz`: liveness for anyone; the models, breakers and router only for admin
/// keys (or in open mode), since they name every model served.
pub async fn healthz(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if state.keys.authenticate_admin(auth(&headers)).is_err() {
        return axum::Json(serde_json::json!({"status": "ok"})).into_response();
    }
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

/// `GET /readyz`: whether to send this replica traffic — it is not draining, its books
/// writer commits (a flush within 2 s), its books can be read and, with replicas, the shared
/// store answers and its writer commits. 503 with `Retry-After`
/// otherwise; `/healthz` stays the liveness check.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let draining = state.draining.load(std::sync::atomic::Ordering::SeqCst);
    let writes = !draining && state.books.responsive(std::time::Duration::from_secs(2)).await;
    let reads = !draining && state.dashboard.read(|r| r.feedback_count()).await.is_ok();
    let shared = match &state.store {
        Some(s) => Some(!draining && s.responsive(std::time::Duration::from_secs(2)).await),
        None => None,
    };
    let ready = !draining && writes && reads && shared != Some(false);
    let body = serde_json::json!({
        "status": if ready { "ready" } else if draining { "draining" } else { "not_ready" },
        "checks": {"draining": draining, "books_writer": writes, "books_reader": reads, "shared_store": shared,
                   "router": state.router.summary()["source"]},
    });
    let mut r =
        (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, axum::Json(body)).into_response();
    if !ready {
        r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
    }
    r
}

/// `GET /metrics`: Prometheus text; per-key spend and per-model state, so admin keys only
/// when keys are configured.
pub async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = state.keys.authenticate_admin(auth(&headers)) {
        return e.into_response();
    }
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
    for (k, spent, reserved, limit) in state.budgets.snapshot().await {
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
        format!(
            "no route {}; see /v1/chat/completions, /v1/embeddings, /v1/models, /v1/feedback, /v1/agent/runs, /ui, /healthz, /readyz, /metrics",
            crate::error::truncate(uri.path())
        ),
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
