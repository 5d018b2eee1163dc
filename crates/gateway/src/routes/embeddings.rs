//! `POST /v1/embeddings` in OpenAI's shape, served by the bundled all-MiniLM-L6-v2
//! (384-d, unit length, input truncated at 256 tokens). `encoding_format` may be `float`
//! or `base64` (little-endian f32, what OpenAI's Python SDK asks for by default). The
//! model runs on a blocking thread, never on the async reactor.

use super::read_body;
use crate::error::ApiError;
use crate::state::{AppState, Counted};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header::AUTHORIZATION, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub const ROUTE: &str = "/v1/embeddings";

/// Most inputs in one request (OpenAI's limit).
const MAX_INPUTS: usize = 2048;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbeddingsBody {
    input: Input,
    model: String,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<u64>,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<Value>),
}

pub async fn handler(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let resp = match handle(&state, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    state.metrics.request(ROUTE, resp.status().as_u16());
    resp
}

async fn handle(state: &AppState, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let key = state.keys.authenticate(headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()))?;
    state.rate_limit(&key.id, Counted::Requests, key.requests_per_minute).await?;
    let body = read_body(state, body).await?;
    let req: EmbeddingsBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_body",
            format!(
                "expected {{\"input\": string or list of strings, \"model\": \"{}\"}}: {e}",
                crate::local::EMBEDDER_ID
            ),
        )
    })?;
    let _ = req.user;
    if req.model != crate::local::EMBEDDER_ID {
        return Err(ApiError::not_found(
            "model_not_found",
            format!(
                "embedding model `{}` does not exist; this server embeds with `{}`",
                crate::error::truncate(&req.model),
                crate::local::EMBEDDER_ID
            ),
        )
        .with_param("model"));
    }
    if !key.may_use(&req.model) {
        return Err(ApiError::forbidden(format!("API key `{}` may not use model `{}`", key.id, req.model)));
    }
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_value",
                format!("`encoding_format` must be \"float\" or \"base64\", got \"{}\"", crate::error::truncate(other)),
            )
            .with_param("encoding_format"))
        }
    };
    let texts: Vec<String> = match req.input {
        Input::One(s) => vec![s],
        Input::Many(v) => v
            .into_iter()
            .enumerate()
            .map(|(i, x)| match x {
                Value::String(s) => Ok(s),
                _ => Err(ApiError::bad_request(
                    "invalid_value",
                    format!("input[{i}] must be a string (token arrays are not supported by this model)"),
                )
                .with_param(format!("input[{i}]"))),
            })
            .collect::<Result<_, _>>()?,
    };
    if texts.is_empty() || texts.len() > MAX_INPUTS {
        return Err(ApiError::bad_request("invalid_value", format!("`input` must hold 1 to {MAX_INPUTS} strings"))
            .with_param("input"));
    }
    if let Some(i) = texts.iter().position(|t| t.is_empty()) {
        return Err(ApiError::bad_request("invalid_value", format!("input[{i}] is empty")).with_param("input"));
    }
    let Some(library) = state.registry.library.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "model_unavailable",
            "embeddings need the local model library, which this server does not serve (`local.enabled = false`)",
        ));
    };
    let dims = library.feature_embedder(conductor_core::embedder::EmbedderKind::MiniLm).map(|e| e.dim()).unwrap_or(0);
    if let Some(d) = req.dimensions.filter(|d| *d as usize != dims) {
        return Err(ApiError::bad_request(
            "invalid_value",
            format!("`dimensions` {d} is not supported: {} returns {dims}-d vectors", crate::local::EMBEDDER_ID),
        )
        .with_param("dimensions"));
    }
    let (vectors, tokens) = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        library.embed(&refs)
    })
    .await
    .map_err(|e| ApiError::internal(format!("embedding task failed: {e}")))?
    .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", "model_unavailable", e.to_string()))?;
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Ok(axum::Json(json!({
        "object": "list",
        "data": data,
        "model": crate::local::EMBEDDER_ID,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response())
}
