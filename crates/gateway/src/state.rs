//! Everything a request handler needs, shared behind one `Arc`.

use crate::books::Books;
use crate::budget::Budgets;
use crate::config::Config;
use crate::error::ApiError;
use crate::keys::KeyStore;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::reliability::rate::RateLimiter;
use crate::routing::LiveRouter;
use conductor_core::verifiers::VerifierSet;

pub struct AppState {
    pub config: Config,
    pub registry: Registry,
    pub router: LiveRouter,
    pub keys: KeyStore,
    pub budgets: Budgets,
    pub books: Books,
    /// PostgreSQL shared by several replicas (`[store] url`); None: this server alone.
    pub store: Option<std::sync::Arc<crate::store::SharedStore>>,
    pub metrics: Metrics,
    /// Answer checkers per model (empty when no records with signals are configured).
    pub verifiers: VerifierSet,
    /// Per-key rate limits of this process (replicas count in the shared store instead).
    pub rates: RateLimiter,
    /// Set on SIGTERM: `/readyz` answers 503 while in-flight work finishes.
    pub draining: std::sync::atomic::AtomicBool,
    /// Traces over OTLP (off unless configured).
    pub telemetry: std::sync::Arc<crate::telemetry::Telemetry>,
    /// The web dashboard's sessions and read connections.
    pub dashboard: std::sync::Arc<crate::dashboard::Dashboard>,
    /// Agent runs, once the server knows its own address (their model calls come back here).
    pub agents: std::sync::OnceLock<std::sync::Arc<conductor_agent::Runner>>,
}

/// What a per-key rate limit counts.
#[derive(Debug, Clone, Copy)]
pub enum Counted {
    Requests,
    Ratings,
}

impl Counted {
    fn name(self) -> &'static str {
        match self {
            Counted::Requests => "requests",
            Counted::Ratings => "ratings",
        }
    }
}

impl AppState {
    /// Counts one of `what` for `key_id` against `per_minute` (0: no limit): together with
    /// the other replicas in the shared store when there is one, else in this process.
    /// A 429 with `Retry-After` when over, a 503 when the shared count cannot be taken.
    pub async fn rate_limit(&self, key_id: &str, what: Counted, per_minute: u32) -> Result<(), ApiError> {
        let counted = match &self.store {
            Some(store) => store.rate_check(key_id, what.name(), per_minute).await.map_err(|e| {
                ApiError::store_unavailable(format!(
                    "the rate limit of API key `{key_id}` cannot be checked: {e}; retry"
                ))
            })?,
            None => self.rates.check(&format!("{}/{key_id}", what.name()), per_minute),
        };
        counted.map_err(|wait| {
            let secs = wait.as_secs().max(1);
            let code = match what {
                Counted::Requests => "rate_limit_exceeded",
                Counted::Ratings => "feedback_rate_limited",
            };
            ApiError::rate_limited(
                code,
                format!("API key `{key_id}` sent more than {per_minute} {} a minute; retry after {secs}s", what.name()),
                secs,
            )
        })
    }
}
