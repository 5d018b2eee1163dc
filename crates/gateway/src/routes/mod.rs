//! HTTP routes, one file per endpoint group.

pub mod chat;
pub mod feedback;
pub mod info;
pub mod sse;

use crate::error::ApiError;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;

/// Maps a body-read failure (too large, broken connection) to an OpenAI-shaped error.
pub fn body_error(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "body_too_large",
            "request body is larger than the server's limit",
        )
    } else {
        ApiError::bad_request("invalid_body", format!("could not read request body: {e}"))
    }
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
