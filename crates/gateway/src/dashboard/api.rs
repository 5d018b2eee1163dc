//! `/ui/api/*`: the JSON the pages draw. Every handler first asks who is looking
//! (`session::viewer`); an unknown viewer gets a 401 and no data.

use super::session::{self, Viewer};
use crate::books::views::{parse_cursor, DecisionFilter};
use crate::books::DecisionRow;
use crate::error::ApiError;
use crate::routes::agents::{not_running, runner};
use crate::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

const HOUR_MS: i64 = 3_600_000;

/// The windows a page can show, with their bucket size.
fn window(name: Option<&str>) -> Result<(i64, i64), ApiError> {
    Ok(match name.unwrap_or("24h") {
        "1h" => (HOUR_MS, 60_000),
        "24h" => (24 * HOUR_MS, 30 * 60_000),
        "7d" => (7 * 24 * HOUR_MS, 4 * HOUR_MS),
        "30d" => (30 * 24 * HOUR_MS, 24 * HOUR_MS),
        other => {
            return Err(ApiError::bad_request(
                "invalid_value",
                format!("unknown window `{}`: one of 1h, 24h, 7d, 30d", crate::error::truncate(other)),
            )
            .with_param("window"))
        }
    })
}

fn json_response(v: Value) -> Response {
    let mut r = axum::Json(v).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn guarded<F>(state: Arc<AppState>, headers: &HeaderMap, f: impl FnOnce(Arc<AppState>, Viewer) -> F) -> Response
where
    F: std::future::Future<Output = Result<Value, ApiError>>,
{
    let viewer = match session::viewer(&state, &state.dashboard.sessions, headers) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    match f(state, viewer).await {
        Ok(v) => json_response(v),
        Err(e) => e.into_response(),
    }
}

/// A decision as a table row: what it was, not everything about it.
pub(super) fn summary(d: &DecisionRow) -> Value {
    let prompt = d.prompt.as_deref().map(|p| p.chars().take(160).collect::<String>());
    json!({
        "id": d.id, "ts_ms": d.ts_ms, "key_id": d.key_id, "requested_model": d.requested_model,
        "model": d.chosen_model, "policy": d.policy, "outcome": d.outcome, "cost_usd": d.cost_usd,
        "latency_ms": d.latency_ms, "ttft_ms": d.ttft_ms, "tokens": d.prompt_tokens + d.completion_tokens,
        "attempts": d.attempts.len(), "stream": d.stream, "prompt": prompt,
        "verified": d.verification.as_ref().map(|v| v["verified"].clone()),
    })
}

/// `GET /ui/api/options`: what the filters offer, and what the viewer may see.
pub async fn options(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    guarded(state, &headers, |state, viewer| async move {
        let keys: BTreeSet<String> = if state.keys.is_open() {
            [crate::keys::ANONYMOUS.to_string()].into()
        } else {
            state.config.keys.iter().map(|k| k.id.clone()).collect()
        };
        Ok(json!({
            "viewer": viewer.key_id,
            "open": state.keys.is_open(),
            "models": state.registry.all().iter().map(|m| m.entry.id.clone()).collect::<Vec<_>>(),
            "keys": keys,
            "outcomes": ["ok", "abstained", "error", "client_disconnected"],
            "agents": state.agents.get().is_some(),
        }))
    })
    .await
}

/// A query string, or why it could not be read.
type Queried<T> = Result<Query<T>, QueryRejection>;

/// The query's values, or a 400 in the API's error shape (axum's own is plain text).
fn query<T>(q: Queried<T>) -> Result<T, ApiError> {
    q.map(|Query(v)| v).map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

#[derive(Deserialize)]
pub struct WindowQuery {
    window: Option<String>,
}

/// `GET /ui/api/overview?window=24h`: traffic, spend, saving, shares, errors, latency.
pub async fn overview(State(state): State<Arc<AppState>>, headers: HeaderMap, q: Queried<WindowQuery>) -> Response {
    guarded(state, &headers, |state, _| async move {
        let q = query(q)?;
        let (span, bucket) = window(q.window.as_deref())?;
        let since = crate::clock::now_ms() - span;
        let o = state.dashboard.read(move |r| r.overview(since, bucket)).await?;
        let mut v = serde_json::to_value(&o).map_err(|e| ApiError::internal(e.to_string()))?;
        v["largest_model"] = json!(state.registry.largest().map(|m| m.entry.id.clone()));
        Ok(v)
    })
    .await
}

#[derive(Deserialize)]
pub struct DecisionQuery {
    model: Option<String>,
    key: Option<String>,
    policy: Option<String>,
    outcome: Option<String>,
    /// Only decisions in the last `window` (1h, 24h, 7d, 30d).
    window: Option<String>,
    before: Option<String>,
    limit: Option<usize>,
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// `GET /ui/api/decisions`: a page of decisions under filters, newest first.
pub async fn decisions(State(state): State<Arc<AppState>>, headers: HeaderMap, q: Queried<DecisionQuery>) -> Response {
    guarded(state, &headers, |state, _| async move {
        let q = query(q)?;
        let before = match nonempty(q.before) {
            None => None,
            Some(c) => Some(parse_cursor(&c).ok_or_else(|| {
                ApiError::bad_request("invalid_value", "`before` must be a cursor from `next`").with_param("before")
            })?),
        };
        let since_ms = match nonempty(q.window) {
            None => None,
            Some(w) => Some(crate::clock::now_ms() - window(Some(&w))?.0),
        };
        let f = DecisionFilter {
            model: nonempty(q.model),
            key: nonempty(q.key),
            policy: nonempty(q.policy),
            outcome: nonempty(q.outcome),
            since_ms,
            until_ms: None,
            before,
        };
        let limit = q.limit.unwrap_or(50).clamp(1, 500);
        let page = state.dashboard.read(move |r| r.decisions(&f, limit)).await?;
        Ok(json!({"rows": page.rows.iter().map(summary).collect::<Vec<_>>(), "next": page.next}))
    })
    .await
}

/// `GET /ui/api/decisions/{id}`: one decision with everything about it — the why.
pub async fn decision(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    guarded(state, &headers, |state, _| async move {
        let wanted = id.clone();
        let found = state.dashboard.read(move |r| r.decision(&wanted)).await?;
        let (row, ratings) = found.ok_or_else(|| {
            ApiError::not_found("decision_not_found", format!("no decision `{}`", crate::error::truncate(&id)))
        })?;
        let p = &state.config.policy;
        let v = &state.config.verify;
        Ok(json!({
            "decision": row,
            "ratings": ratings,
            "policy_config": {
                "default": p.default, "max_cost_usd": p.max_cost_usd, "min_quality": p.min_quality,
            },
            "verify_config": {"max_risk": v.max_risk, "delta": v.delta},
        }))
    })
    .await
}

/// `GET /ui/api/quality?window=7d`: feedback per model and the reliability diagram.
pub async fn quality(State(state): State<Arc<AppState>>, headers: HeaderMap, q: Queried<WindowQuery>) -> Response {
    guarded(state, &headers, |state, _| async move {
        let q = query(q)?;
        let (span, bucket) = window(q.window.as_deref().or(Some("7d")))?;
        let since = crate::clock::now_ms() - span;
        let quality = state.dashboard.read(move |r| r.quality(since, bucket, 10)).await?;
        let mut v = serde_json::to_value(&quality).map_err(|e| ApiError::internal(e.to_string()))?;
        v["router"] = state.router.summary();
        v["feedback_model_weight"] = json!(state.config.feedback.model_weight);
        Ok(v)
    })
    .await
}

/// `GET /ui/api/health`: spend against budget per key; breaker and queue per model.
pub async fn health(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    guarded(state, &headers, |state, _| async move {
        let periods: std::collections::HashMap<&str, String> = state
            .config
            .keys
            .iter()
            .map(|k| (k.id.as_str(), format!("{:?}", k.budget_period).to_lowercase()))
            .collect();
        let budgets: Vec<Value> = state
            .budgets
            .snapshot()
            .await
            .into_iter()
            .map(|(key, spent, reserved, limit)| {
                json!({"key": key, "spent_usd": spent, "reserved_usd": reserved, "limit_usd": limit,
                       "period": periods.get(key.as_str())})
            })
            .collect();
        let models: Vec<Value> = state
            .registry
            .all()
            .iter()
            .map(|m| {
                let breaker = match m.breaker.gauge() {
                    0 => "closed",
                    1 => "open",
                    _ => "half-open",
                };
                json!({
                    "model": m.entry.id, "provider": m.entry.provider, "tier": format!("{:?}", m.entry.tier).to_lowercase(),
                    "breaker": breaker, "reopens_in_ms": m.breaker.reopens_in().as_millis() as u64,
                    "queue_waiting": m.queue.waiting(),
                    "usd_per_mtok": [m.entry.input_usd_per_mtok, m.entry.output_usd_per_mtok],
                })
            })
            .collect();
        Ok(json!({"budgets": budgets, "models": models, "router": state.router.summary()}))
    })
    .await
}

/// `GET /ui/api/agents`: the latest runs.
pub async fn agent_runs(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    guarded(state, &headers, |state, _| async move {
        let runs = runner(&state)?.store().list(200).map_err(|e| ApiError::internal(format!("{e:#}")))?;
        Ok(json!({"runs": runs}))
    })
    .await
}

/// `GET /ui/api/agents/{id}`: a run's state and its transcript.
pub async fn agent_run(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    guarded(state, &headers, |state, _| async move {
        let store = runner(&state)?.store();
        let run = store.load(&id).map_err(|e| ApiError::internal(format!("{e:#}")))?;
        let run = run.ok_or_else(|| ApiError::not_found("run_not_found", format!("no run `{id}`")))?;
        let steps = store.steps(&id).map_err(|e| ApiError::internal(format!("{e:#}")))?;
        let waiting = match &run.status {
            conductor_agent::run::Status::AwaitingApproval { call } => Some(call.clone()),
            _ => None,
        };
        Ok(json!({
            "id": id, "status": run.status.as_str(), "goal": run.spec.goal, "strategy": run.spec.strategy,
            "steps_taken": run.steps, "tokens": run.tokens, "cost_usd": run.cost_usd, "answer": run.answer,
            "awaiting": waiting, "status_detail": run.status, "steps": steps,
        }))
    })
    .await
}

/// `POST /ui/api/agents/{id}/approvals` with `{"approve": bool}`.
pub async fn agent_decide(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    guarded(state, &headers, |state, viewer| async move {
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let approve = v["approve"].as_bool().ok_or_else(|| {
            ApiError::bad_request("invalid_value", "body must be {\"approve\": true} or {\"approve\": false}")
                .with_param("approve")
        })?;
        runner(&state)?
            .decide(&id, approve, viewer.authorization)
            .map_err(|e| ApiError::new(StatusCode::CONFLICT, "invalid_request_error", "run_not_waiting", e))?;
        Ok(json!({"id": id, "approved": approve}))
    })
    .await
}

/// `POST /ui/api/agents/{id}/cancel`.
pub async fn agent_cancel(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    guarded(state, &headers, |state, _| async move {
        if !runner(&state)?.cancel(&id) {
            return Err(not_running(&id));
        }
        Ok(json!({"id": id, "cancelling": true}))
    })
    .await
}
