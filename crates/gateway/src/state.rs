//! Everything a request handler needs, shared behind one `Arc`.

use crate::books::Books;
use crate::budget::Budgets;
use crate::config::Config;
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
    /// Ratings per key per minute on `/v1/feedback`.
    pub feedback_limit: RateLimiter,
    /// Set on SIGTERM: `/readyz` answers 503 while in-flight work finishes.
    pub draining: std::sync::atomic::AtomicBool,
    /// Traces over OTLP (off unless configured).
    pub telemetry: std::sync::Arc<crate::telemetry::Telemetry>,
    /// The web dashboard's sessions and read connections.
    pub dashboard: std::sync::Arc<crate::dashboard::Dashboard>,
    /// Agent runs, once the server knows its own address (their model calls come back here).
    pub agents: std::sync::OnceLock<std::sync::Arc<conductor_agent::Runner>>,
}
