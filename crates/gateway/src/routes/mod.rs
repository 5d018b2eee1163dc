//! HTTP routes, one file per endpoint group.

pub(crate) mod agents;
pub(crate) mod chat;
pub(crate) mod embeddings;
pub(crate) mod feedback;
pub(crate) mod info;
pub(crate) mod sse;

use crate::error::ApiError;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use std::time::Duration;

/// Reads a whole request body within `server.body_timeout_ms` and `server.max_body_bytes`;
/// a slow body is a 408, a large one a 413, a broken one a 400 (all OpenAI-shaped).
pub async fn read_body(state: &AppState, body: Body) -> Result<Bytes, ApiError> {
    let s = &state.config.server;
    let read = axum::body::to_bytes(body, s.max_body_bytes);
    match tokio::time::timeout(Duration::from_millis(s.body_timeout_ms), read).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) if too_large(&e) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "body_too_large",
            format!("request body is larger than the server's limit of {} bytes", s.max_body_bytes),
        )),
        Ok(Err(e)) => Err(ApiError::bad_request("invalid_body", format!("could not read request body: {e}"))),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "body_timeout",
            format!("request body was not received within {} ms", s.body_timeout_ms),
        )),
    }
}

fn too_large(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Headers naming the decision and the model that answered.
pub fn conductor_headers(resp: &mut axum::response::Response, decision_id: &str, model: Option<&str>) {
    let h = resp.headers_mut();
    if let Ok(v) = decision_id.parse() {
        h.insert("x-conductor-decision-id", v);
    }
    if let Some(Ok(v)) = model.map(|m| m.parse()) {
        h.insert("x-conductor-model", v);
    }
}
