//! The web dashboard at `/ui`: the books, the router and the agents, for people. Its
//! pages are static files compiled into the binary (`ui/`, plain JavaScript and SVG, no
//! library, no build step, nothing fetched from elsewhere); they read JSON from
//! `/ui/api/*`, which reads the books through the same typed rows as `conductor logs`
//! (`books::views`), and watch `/ui/api/live` for decisions as they are committed.

mod api;
mod assets;
mod live;
pub mod session;

use crate::books::{BooksError, Reader};
use crate::error::ApiError;
use crate::state::AppState;
use axum::routing::{get, post};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Sign-in attempts the login form takes per minute (a burst of as many).
const LOGINS_PER_MINUTE: u32 = 20;

/// Read connections kept open between page loads.
const MAX_IDLE_READERS: usize = 4;

/// The dashboard's share of the server: sessions and a pool of read connections.
pub struct Dashboard {
    pub sessions: session::Sessions,
    /// Sign-in attempts at the form, all together.
    pub logins: crate::reliability::rate::RateLimiter,
    books: PathBuf,
    readers: Mutex<Vec<Reader>>,
}

impl Dashboard {
    pub fn new(books: PathBuf) -> Arc<Dashboard> {
        Arc::new(Dashboard {
            sessions: Default::default(),
            logins: crate::reliability::rate::RateLimiter::default(),
            books,
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` on a pooled read connection, off the async threads (a page's query must
    /// not hold up requests being answered).
    pub async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Reader) -> Result<T, BooksError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let me = self.clone();
        let run = tokio::task::spawn_blocking(move || {
            let pooled = me.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let reader = match pooled {
                Some(r) => r,
                None => Reader::open(&me.books)?,
            };
            let out = f(&reader);
            let mut pool = me.readers.lock().unwrap_or_else(|p| p.into_inner());
            // Keep a few for the next pages; a burst's extra connections just close.
            if pool.len() < MAX_IDLE_READERS {
                pool.push(reader);
            }
            out
        });
        match run.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ApiError::internal(format!("reading the books: {e}"))),
            Err(e) => Err(ApiError::internal(format!("reading the books: {e}"))),
        }
    }
}

/// The dashboard's routes.
pub fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new()
        .route("/ui", get(assets::index))
        .route("/ui/", get(assets::index))
        .route("/ui/login", get(assets::login_page).post(assets::login))
        .route("/ui/logout", post(assets::logout))
        .route("/ui/assets/{name}", get(assets::asset))
        .route("/ui/api/options", get(api::options))
        .route("/ui/api/overview", get(api::overview))
        .route("/ui/api/decisions", get(api::decisions))
        .route("/ui/api/decisions/{id}", get(api::decision))
        .route("/ui/api/quality", get(api::quality))
        .route("/ui/api/health", get(api::health))
        .route("/ui/api/agents", get(api::agent_runs))
        .route("/ui/api/agents/{id}", get(api::agent_run))
        .route("/ui/api/agents/{id}/approvals", post(api::agent_decide))
        .route("/ui/api/agents/{id}/cancel", post(api::agent_cancel))
        .route("/ui/api/live", get(live::events))
}
