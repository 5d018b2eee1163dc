//! Agent runs over HTTP: `POST /v1/agent/runs` starts one (its events stream back as SSE
//! unless `"stream": false`), `GET` lists runs or shows one with its activity log,
//! `POST .../cancel`, `.../approvals` (`{"approve": true|false}`) and `.../resume`. The
//! runs' model calls come back into this gateway with the caller's key.

use super::read_body;
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use conductor_agent::{RunSpec, Runner};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::broadcast;

/// The server's agent runner, or the 503 that says runs are off.
pub(crate) fn runner(state: &AppState) -> Result<&Arc<Runner>, ApiError> {
    state.agents.get().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "agents_unavailable",
            "agent runs are not enabled",
        )
    })
}

fn auth(state: &AppState, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let a = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    state.keys.authenticate(a)?;
    Ok(a.map(str::to_string))
}

/// A cancel for a run that no task here drives.
pub(crate) fn not_running(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "invalid_request_error",
        "run_not_running",
        format!("run `{id}` is not running on this server"),
    )
}

fn refused(e: String) -> ApiError {
    if e.starts_with("no run") {
        ApiError::not_found("run_not_found", e)
    } else {
        ApiError::bad_request("invalid_run_request", e)
    }
}

pub async fn start(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    handle(async {
        let authorization = auth(&state, &headers)?;
        let body = read_body(&state, body).await?;
        let mut v: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("invalid_body", format!("invalid request body: {e}")))?;
        let stream = match v.as_object_mut().and_then(|o| o.remove("stream")) {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => b,
            Some(_) => return Err(ApiError::bad_request("invalid_value", "`stream` must be true or false")),
        };
        let spec: RunSpec = serde_path_to_error::deserialize(&v).map_err(|e| {
            let path = e.path().to_string();
            ApiError::bad_request("invalid_value", format!("invalid value for `{path}`: {}", e.into_inner()))
                .with_param(path)
        })?;
        let (id, rx) = runner(&state)?.start(spec, authorization).map_err(refused)?;
        Ok(if stream { events(id, rx) } else { (StatusCode::ACCEPTED, axum::Json(json!({"id": id}))).into_response() })
    })
    .await
}

pub async fn list(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    handle(async {
        auth(&state, &headers)?;
        let runs = runner(&state)?.store().list(100).map_err(|e| ApiError::internal(format!("{e:#}")))?;
        Ok(axum::Json(json!({"object": "list", "data": runs})).into_response())
    })
    .await
}

pub async fn show(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    handle(async {
        auth(&state, &headers)?;
        let store = runner(&state)?.store();
        let run = store.load(&id).map_err(|e| ApiError::internal(format!("{e:#}")))?;
        let run = run.ok_or_else(|| ApiError::not_found("run_not_found", format!("no run `{id}`")))?;
        let steps = store.steps(&id).map_err(|e| ApiError::internal(format!("{e:#}")))?;
        Ok(axum::Json(json!({"id": id, "status": run.status.as_str(), "run": run, "steps": steps})).into_response())
    })
    .await
}

pub async fn cancel(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    handle(async {
        auth(&state, &headers)?;
        if !runner(&state)?.cancel(&id) {
            return Err(not_running(&id));
        }
        Ok((StatusCode::ACCEPTED, axum::Json(json!({"id": id, "cancelling": true}))).into_response())
    })
    .await
}

pub async fn approve(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    handle(async {
        let authorization = auth(&state, &headers)?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let approve = v["approve"].as_bool().ok_or_else(|| {
            ApiError::bad_request("invalid_value", "body must be {\"approve\": true} or {\"approve\": false}")
                .with_param("approve")
        })?;
        runner(&state)?.decide(&id, approve, authorization).map_err(refused)?;
        Ok(axum::Json(json!({"id": id, "approved": approve})).into_response())
    })
    .await
}

pub async fn resume(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    handle(async {
        let authorization = auth(&state, &headers)?;
        let rx = runner(&state)?.resume(&id, authorization).map_err(refused)?;
        Ok(events(id, rx))
    })
    .await
}

async fn handle(f: impl std::future::Future<Output = Result<Response, ApiError>>) -> Response {
    f.await.unwrap_or_else(|e| e.into_response())
}

/// A run's events as SSE (`data: {...}`), ending after its `end` event. The run goes on
/// if the client leaves.
fn events(id: String, rx: broadcast::Receiver<Value>) -> Response {
    let first = json!({"type": "run", "id": id});
    let stream = futures::stream::unfold((Some(first), rx, false), |(first, mut rx, done)| async move {
        if let Some(f) = first {
            return Some((
                Ok::<Bytes, std::convert::Infallible>(Bytes::from(format!("data: {f}\n\n"))),
                (None, rx, false),
            ));
        }
        if done {
            return None;
        }
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    let end = ev["type"] == "end";
                    return Some((Ok(Bytes::from(format!("data: {ev}\n\n"))), (None, rx, end)));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}
