//! `POST /v1/feedback` `{"decision_id": "...", "score": 0.0..=1.0}`: written durably to
//! the books (the 2xx is sent only after the commit) and applied to the running router
//! at once, so the next similar prompt is routed with it. A key may only rate decisions
//! it made (others get 404), once each: a later rating of the same decision replaces the
//! earlier one, in the books and in the router. Each key is rate limited, and a server
//! without keys may refuse feedback altogether (`feedback.open_mode`).

use super::read_body;
use crate::books::BooksError;
use crate::config::OpenFeedback;
use crate::error::ApiError;
use crate::state::{AppState, Counted};
use crate::store::StoreError;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header::AUTHORIZATION, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

pub const ROUTE: &str = "/v1/feedback";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    decision_id: String,
    score: f64,
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
    if state.keys.is_open() && state.config.feedback.open_mode == OpenFeedback::Refuse {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "feedback_disabled",
            "this server runs without API keys and refuses anonymous feedback (config `feedback.open_mode`)",
        ));
    }
    let key = state.keys.authenticate(headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()))?;
    state.rate_limit(&key.id, Counted::Ratings, state.config.feedback.per_key_per_minute).await?;
    let body = read_body(state, body).await?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("invalid_body", "request body is not valid UTF-8"))?;
    let fb: FeedbackBody = serde_json::from_str(text).map_err(|e| {
        ApiError::bad_request(
            "invalid_body",
            format!("expected {{\"decision_id\": string, \"score\": number in [0, 1]}}: {e}"),
        )
    })?;
    if !(fb.score.is_finite() && (0.0..=1.0).contains(&fb.score)) {
        return Err(ApiError::bad_request("invalid_value", format!("`score` must be in [0, 1], got {}", fb.score))
            .with_param("score"));
    }
    if fb.decision_id.is_empty() || fb.decision_id.len() > 128 {
        return Err(ApiError::bad_request("invalid_value", "`decision_id` must be a decision id from a response")
            .with_param("decision_id"));
    }
    let unknown = |e: String| ApiError::not_found("decision_not_found", e).with_param("decision_id");
    // The store is locked, full or gone: nothing was recorded, and saying so lets the client
    // retry rather than believe a 500 means its rating is lost for good.
    let unwritten = |e: String| {
        ApiError::store_unavailable(format!("the rating was not recorded, the books could not be written ({e}); retry"))
    };
    let target = match &state.store {
        Some(store) => store.feedback(&fb.decision_id, fb.score, &key.id).await.map_err(|e| match e {
            StoreError::UnknownDecision(_) => unknown(e.to_string()),
            other => unwritten(other.to_string()),
        })?,
        None => state.books.feedback(fb.decision_id.clone(), fb.score, key.id.clone()).await.map_err(|e| match e {
            BooksError::UnknownDecision(_) => unknown(e.to_string()),
            other => unwritten(other.to_string()),
        })?,
    };
    state.metrics.feedback();
    let applied = match (&target.prompt, &target.chosen_model) {
        (Some(p), Some(m)) => match state.router.learn(&format!("{}/{}", fb.decision_id, key.id), p, m, fb.score).await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("feedback stored but not applied to the router: {e:#}");
                false
            }
        },
        _ => false,
    };
    Ok((
        StatusCode::OK,
        axum::Json(json!({"ok": true, "decision_id": fb.decision_id, "applied": applied, "replaced": target.replaced})),
    )
        .into_response())
}
