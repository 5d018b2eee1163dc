//! `GET /ui/api/live`: decisions as server-sent events, each once it is committed to the
//! books (so a page can open it at once). A watcher too slow to keep up is told how many
//! it missed (`lagged`) rather than slowing the books down.

use super::session;
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

pub async fn events(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = session::viewer(&state, &state.dashboard.sessions, &headers) {
        return e.into_response();
    }
    let rx = state.books.subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(row) => Event::default().event("decision").json_data(super::api::summary(&row)).ok()?,
            Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok::<_, std::convert::Infallible>(event), rx))
    })
    .boxed();
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}
