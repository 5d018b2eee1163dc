//! Every failure the client sees, in OpenAI's error shape
//! (`{"error": {"message", "type", "code", "param"}}`) so SDKs raise their usual
//! exception classes (400 → BadRequestError, 401 → AuthenticationError, 429 →
//! RateLimitError, ...).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use conductor_providers::openai_wire::{ErrorBody, ErrorEnvelope};
use conductor_providers::ProviderError;

/// A client-supplied string cut to at most 64 characters for echoing in an error (a 1 MB
/// model name must not come back in full).
pub fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}… ({} bytes)", &s[..i], s.len()),
        None => s.to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub code: &'static str,
    pub param: Option<String>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
    /// `x-should-retry` for OpenAI's SDKs, which otherwise retry every 429 and 5xx.
    pub should_retry: Option<bool>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), kind, code, param: None, retry_after: None, should_retry: None }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", code, message)
    }
    pub fn with_retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after = Some(secs);
        self
    }
    pub fn with_param(mut self, param: impl Into<String>) -> ApiError {
        self.param = Some(param.into());
        self
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "invalid_request_error", "invalid_api_key", message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "permission_error", "model_not_allowed", message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "invalid_request_error", code, message)
    }
    pub fn rate_limited(code: &'static str, message: impl Into<String>, retry_after: u64) -> ApiError {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", code, message);
        e.retry_after = Some(retry_after);
        e
    }
    /// Retrying cannot help before the budget period starts over, so SDKs are told not to.
    pub fn budget_exceeded(message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "insufficient_quota", "budget_exceeded", message);
        e.should_retry = Some(false);
        e
    }
    /// The books or the shared store cannot be written or asked: nothing was done, retry.
    pub fn store_unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", "store_unavailable", message).with_retry_after(1)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal_error", message)
    }

    /// What the client is told when no model could answer and this was the last error.
    pub fn from_provider(model: &str, e: &ProviderError) -> ApiError {
        match e {
            ProviderError::InvalidRequest { message, code } => {
                ApiError::bad_request(code, format!("model {model}: {message}"))
            }
            ProviderError::Timeout(_) | ProviderError::Deadline(_) => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "server_error",
                "upstream_timeout",
                format!("model {model}: {e}"),
            ),
            ProviderError::Status { status: 429, retry_after, .. } => {
                let mut err = ApiError::rate_limited("upstream_rate_limited", format!("model {model}: {e}"), 1);
                err.retry_after = Some(retry_after.map(|d| d.as_secs().max(1)).unwrap_or(1));
                err
            }
            ProviderError::Status { .. } if e.is_request_rejected() => {
                ApiError::bad_request("upstream_rejected_request", format!("model {model}: {e}"))
            }
            ProviderError::Overloaded { message, retry_after } => ApiError::rate_limited(
                "queue_full",
                format!("model {model}: {message}"),
                retry_after.as_secs_f64().ceil().max(1.0) as u64,
            ),
            ProviderError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "model_unavailable",
                format!("model {model}: {e}"),
            ),
            _ => {
                ApiError::new(StatusCode::BAD_GATEWAY, "server_error", "upstream_error", format!("model {model}: {e}"))
            }
        }
    }

    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorBody {
                message: self.message.clone(),
                kind: self.kind.to_string(),
                code: Some(self.code.to_string()),
                param: self.param.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.envelope())).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut().insert("retry-after", HeaderValue::from(s));
        }
        if let Some(r) = self.should_retry {
            resp.headers_mut().insert("x-should-retry", HeaderValue::from_static(if r { "true" } else { "false" }));
        }
        // The unread rest of an oversized body is still on the wire: the connection cannot
        // carry another request, so tell the client not to reuse it (else its next request
        // on that pooled connection fails with an incomplete message).
        if self.status == StatusCode::PAYLOAD_TOO_LARGE || self.status == StatusCode::REQUEST_TIMEOUT {
            resp.headers_mut().insert(axum::http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}
