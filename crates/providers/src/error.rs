//! What can go wrong when calling a model, classified the way the gateway needs it:
//! is it worth retrying the same model, and what should the client be told if nothing
//! else can answer.

use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// Could not connect or the connection broke before a response.
    #[error("connection to upstream failed: {0}")]
    Connect(String),
    /// The connection or the upstream's own reply timed out at the HTTP client.
    #[error("upstream timed out: {0}")]
    Timeout(String),
    /// The gateway's own deadline for this model passed (first token or whole answer):
    /// the upstream is slow or overloaded, so the request falls back instead of retrying.
    #[error("upstream timed out: {0}")]
    Deadline(String),
    /// The upstream answered with an HTTP error status.
    #[error("upstream returned HTTP {status}: {message}")]
    Status { status: u16, message: String, retry_after: Option<Duration> },
    /// The upstream answered 2xx with something that is not a valid completion.
    #[error("upstream sent an invalid response: {0}")]
    BadResponse(String),
    /// The stream ended before the upstream said it was finished.
    #[error("upstream stream ended early: {0}")]
    StreamCut(String),
    /// The request cannot be served by this model (e.g. prompt longer than its context).
    #[error("{message}")]
    InvalidRequest { message: String, code: &'static str },
    /// The model cannot run here (missing weights, unknown id).
    #[error("model unavailable: {0}")]
    Unavailable(String),
    /// The model is busy and its own queue is full: the request should go elsewhere or
    /// come back after `retry_after`.
    #[error("{message}")]
    Overloaded { message: String, retry_after: Duration },
    /// Anything else.
    #[error("provider error: {0}")]
    Other(String),
}

impl ProviderError {
    /// Worth trying the same model again after a pause: transient network trouble,
    /// overload (429) and server errors (5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            ProviderError::Connect(_) | ProviderError::Timeout(_) => true,
            ProviderError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// Counts against the model's circuit breaker (the model misbehaves, not the request).
    /// An upstream rejecting one request's content (400, 413, 422) says nothing about the
    /// next request; bad credentials (401/403) or a missing model (404) do. A 429 is
    /// back-pressure from a healthy upstream, honoured by waiting, not a failure.
    pub fn is_model_fault(&self) -> bool {
        match self {
            ProviderError::InvalidRequest { .. } | ProviderError::Overloaded { .. } => false,
            ProviderError::Status { status, .. } => !matches!(status, 400 | 413 | 422 | 429),
            _ => true,
        }
    }

    /// The upstream refused this particular request as malformed or too large.
    pub fn is_request_rejected(&self) -> bool {
        matches!(self, ProviderError::Status { status: 400 | 413 | 422, .. })
    }

    /// Short machine-readable kind for metrics and the books.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::Connect(_) => "connect",
            ProviderError::Timeout(_) | ProviderError::Deadline(_) => "timeout",
            ProviderError::Status { status, .. } if *status == 429 => "upstream_429",
            ProviderError::Status { status, .. } if *status >= 500 => "upstream_5xx",
            ProviderError::Status { .. } => "upstream_4xx",
            ProviderError::BadResponse(_) => "bad_response",
            ProviderError::StreamCut(_) => "stream_cut",
            ProviderError::InvalidRequest { .. } => "invalid_request",
            ProviderError::Unavailable(_) => "unavailable",
            ProviderError::Overloaded { .. } => "queue_full",
            ProviderError::Other(_) => "other",
        }
    }

    /// Maps a reqwest error to connect / timeout / other.
    pub fn from_reqwest(e: reqwest::Error) -> ProviderError {
        if e.is_timeout() {
            ProviderError::Timeout(e.to_string())
        } else if e.is_connect() || e.is_request() || e.is_body() {
            ProviderError::Connect(format!("{e:#}"))
        } else if e.is_decode() {
            ProviderError::BadResponse(e.to_string())
        } else {
            ProviderError::Connect(format!("{e:#}"))
        }
    }
}

/// Parses a `Retry-After` header given in seconds.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64)
}
