//! Start-up and shutdown: open the books, build the models and the router, replay
//! persisted feedback into it, bind, serve until a signal, then finish in-flight
//! requests (streams included) for up to `server.shutdown_grace_secs` and flush the books.

mod connections;

use crate::books::{Books, Reader};
use crate::budget::Budgets;
use crate::config::Config;
use crate::keys::KeyStore;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::reliability::rate::RateLimiter;
use crate::routes;
use crate::routing::LiveRouter;
use crate::state::AppState;
use anyhow::Context;
use axum::routing::{get, post};
use axum::Router as HttpRouter;
use conductor_core::embedder::TextEmbedder;
use conductor_core::router::Router;
use conductor_core::verifiers::VerifierSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The HTTP routes over a ready state.
pub fn app(state: Arc<AppState>) -> HttpRouter {
    HttpRouter::new()
        .route(routes::chat::ROUTE, post(routes::chat::handler))
        .route(routes::feedback::ROUTE, post(routes::feedback::handler))
        .route(routes::embeddings::ROUTE, post(routes::embeddings::handler))
        .route("/v1/models", get(routes::info::models))
        .route("/v1/models/{*id}", get(routes::info::model))
        .route("/v1/agent/runs", post(routes::agents::start).get(routes::agents::list))
        .route("/v1/agent/runs/{id}", get(routes::agents::show))
        .route("/v1/agent/runs/{id}/cancel", post(routes::agents::cancel))
        .route("/v1/agent/runs/{id}/approvals", post(routes::agents::approve))
        .route("/v1/agent/runs/{id}/resume", post(routes::agents::resume))
        .route("/healthz", get(routes::info::healthz))
        .route("/readyz", get(routes::info::readyz))
        .route("/metrics", get(routes::info::metrics))
        .merge(crate::dashboard::routes())
        .fallback(routes::info::not_found)
        .method_not_allowed_fallback(routes::info::method_not_allowed)
        .with_state(state)
}

/// The router trained on this project's own outcomes for the embedded library
/// (`records/local.jsonl`), shipped with the installation (see `conductor_core::install`).
pub const DEFAULT_LOCAL_ROUTER: &str = "routers/local.router";

/// The shipped router, when it fits: the config names no artifact and serves only the
/// local library. With remote models too it would not know them: say so loudly.
fn default_local_router(config: &Config) -> Option<std::path::PathBuf> {
    let p = conductor_core::install::shipped(DEFAULT_LOCAL_ROUTER);
    if !(config.local.enabled && p.is_file()) {
        return None;
    }
    if !config.models.is_empty() {
        tracing::warn!(
            "the router shipped for the local library ({}) knows only the local models, so with [[models]] \
             configured `auto` starts from a cold-start router (tier priors, learning only from feedback). \
             To route with a trained router, collect outcomes for your models (`conductor collect`), train one \
             (`conductor lab train`) and set `router.artifact`; to keep the shipped one, serve the local library only",
            p.display()
        );
        return None;
    }
    Some(p)
}

/// Adds every configured model with `onboard_records` that the router does not know yet,
/// from its labels (see `Router::onboard`); a model the router already routes keeps what
/// it was trained on.
fn onboard_configured(
    router: &mut Router,
    config: &Config,
    registry: &Registry,
    embedder: Option<&dyn TextEmbedder>,
) -> anyhow::Result<()> {
    for m in &config.models {
        let Some(path) = &m.onboard_records else { continue };
        if router.catalog().index_of(&m.id).is_ok() {
            tracing::warn!(model = %m.id, "the router already knows this model; `onboard_records` is ignored");
            continue;
        }
        let key = || format!("config key `onboard_records` of model `{}`: {}", m.id, path.display());
        let records = conductor_core::records::read_jsonl(path).with_context(key)?;
        let entry = registry.catalog().get(&m.id)?.clone();
        let labels = router.onboard_from_records(entry, &records, embedder, None).with_context(key)?;
        tracing::info!(model = %m.id, labels, "model added to the router from its labels");
    }
    Ok(())
}

/// The library's own answers with signals, shipped with the installation.
pub const DEFAULT_VERIFY_RECORDS: &str = "records/local_signals.jsonl";

/// Fits the answer checkers from `verify.records` (default: the library's own records
/// when the library is served) and says which served models can be checked. Verification
/// as the default strategy with no model that can be checked is a start-up error, not a
/// silent no-op.
fn fit_verifiers(config: &Config, registry: &Registry) -> anyhow::Result<VerifierSet> {
    let v = &config.verify;
    let shipped = conductor_core::install::shipped(DEFAULT_VERIFY_RECORDS);
    let path = match &v.records {
        Some(p) => Some(p.clone()),
        None => (config.local.enabled && shipped.is_file()).then_some(shipped),
    };
    let set = match &path {
        Some(p) => {
            let records = conductor_core::records::read_jsonl(p).with_context(|| {
                format!("answer records for verification (config key `verify.records`): {}", p.display())
            })?;
            VerifierSet::fit(&records, 0)
        }
        None => VerifierSet::default(),
    };
    let served: Vec<&str> = registry.all().iter().map(|m| m.entry.id.as_str()).collect();
    let checkable: Vec<&str> = served.iter().copied().filter(|m| set.get(m).is_some()).collect();
    for (m, why) in set.missing().filter(|(m, _)| served.contains(m)) {
        tracing::info!(model = %m, "answers of this model cannot be checked: {why}; checked requests escalate past it");
    }
    for m in served.iter().filter(|m| set.get(m).is_none() && set.missing().all(|(x, _)| x != **m)) {
        tracing::info!(model = %m, "no recorded answers for this model: checked requests escalate past it");
    }
    if let (Some(strategy), true) = (v.strategy.strategy(), checkable.is_empty()) {
        anyhow::bail!(
            "config key `verify.strategy` is \"{}\" but no served model has a verifier: `verify.records` must name \
             recorded answers with signals (token log-probabilities) for at least one of {} — collect them with \
             `conductor collect`",
            strategy.as_str(),
            served.join(", ")
        );
    }
    for m in &checkable {
        let Some(ver) = set.get(m) else { continue };
        let (train, val) = ver.answers();
        match ver.threshold(v.max_risk, v.delta) {
            Some(t) => tracing::info!(
                model = %m, train, val,
                "answer checking: at max_risk {} its answers are accepted from confidence {:.3} ({:.0}% of validation answers, {:.1}% of those wrong)",
                v.max_risk, t.tau, 100.0 * t.coverage, 100.0 * t.risk
            ),
            None => tracing::info!(
                model = %m, train, val,
                "answer checking: no threshold keeps this model's error within max_risk {}; its answers escalate",
                v.max_risk
            ),
        }
    }
    Ok(set)
}

/// Builds everything `serve` needs. Returns the state and the books writer to join
/// after shutdown.
pub async fn build(config: Config) -> anyhow::Result<(Arc<AppState>, crate::books::BooksWriter)> {
    let registry = Registry::build(&config)?;
    if registry.all().is_empty() {
        let dir = registry
            .library
            .as_ref()
            .map_or_else(|| crate::local::models_dir(&config.local), |l| l.dir().to_path_buf());
        anyhow::bail!(
            "no models to serve: the config declares no [[models]] and the local library has no model files: {}",
            conductor_core::install::models_dir_help(&dir)
        );
    }
    let (books, writer) = Books::open(&config.books.path).context("opening the books (config key `books.path`)")?;
    let reader = Reader::open(&config.books.path)?;
    let store = match config.store.resolved_url().map_err(anyhow::Error::msg)? {
        Some(url) => Some(
            crate::store::SharedStore::open(&config.store, &url)
                .await
                .context("opening the shared store (config key `store.url`)")?,
        ),
        None => None,
    };

    let feature_kind = config.router.features;
    let (router, source) = match (&config.router.artifact, default_local_router(&config)) {
        (Some(p), _) => (
            Router::load(p).with_context(|| format!("config key `router.artifact`: {}", p.display()))?,
            p.display().to_string(),
        ),
        (None, Some(p)) => {
            tracing::info!(path = %p.display(), "using the router shipped for the local library");
            (Router::load(&p).with_context(|| format!("default router {}", p.display()))?, p.display().to_string())
        }
        (None, None) => (Router::cold_start(registry.catalog(), feature_kind), "cold start".to_string()),
    };
    let embedder: Option<Arc<dyn TextEmbedder>> = match router.feature_kind().embedder() {
        Some(family) => {
            let lib = match registry.library.clone() {
                Some(l) => l,
                None => Arc::new(crate::local::open(&config.local)?),
            };
            Some(
                lib.feature_embedder(family)
                    .with_context(|| format!("the router's features need the {} model", family.name()))?,
            )
        }
        None => None,
    };
    let workers = match config.router.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let mut router = router;
    onboard_configured(&mut router, &config, &registry, embedder.as_deref())?;
    router.set_feedback_model_weight(config.feedback.model_weight);
    let live = LiveRouter::new(router, embedder, source, workers, config.router.queue)?;
    // Replay feedback so a restart keeps what the router learned: this server's own, or
    // every replica's from the shared store (then keep listening for theirs).
    let mut replayed = 0;
    let mut shared_ratings = None;
    if let Some(store) = &store {
        let (ratings, seen) = store.all_ratings().await.context("replaying feedback from the shared store")?;
        shared_ratings = Some(store.listen(seen));
        for r in ratings {
            if live.learn_now(&r.rating, &r.prompt, &r.model, r.score).is_ok() {
                replayed += 1;
            }
        }
    } else {
        for f in reader.feedback()? {
            if let (Some(p), Some(m)) = (&f.prompt, &f.model) {
                if live.learn_now(&format!("{}/{}", f.decision_id, f.key_id), p, m, f.score).is_ok() {
                    replayed += 1;
                }
            }
        }
    }
    tracing::info!(replayed, "feedback replayed into the router");
    let budgets = match &store {
        Some(s) => Budgets::shared(&config.keys, s.clone()),
        None => Budgets::new(&config.keys, |k, since| reader.spent_since(k, since)),
    };
    let verifiers = fit_verifiers(&config, &registry)?;
    let state = AppState {
        verifiers,
        keys: KeyStore::from_config(&config.keys),
        registry,
        router: live,
        budgets,
        books,
        store,
        metrics: Metrics::default(),
        rates: RateLimiter::default(),
        agents: std::sync::OnceLock::new(),
        dashboard: crate::dashboard::Dashboard::new(config.books.path.clone()),
        draining: std::sync::atomic::AtomicBool::new(false),
        telemetry: Arc::new(crate::telemetry::Telemetry::from_config(&config.telemetry)?),
        config,
    };
    let state = Arc::new(state);
    if let Some(ratings) = shared_ratings {
        tokio::spawn(learn_from_replicas(Arc::downgrade(&state), ratings));
    }
    Ok((state, writer))
}

/// Teaches this replica's router the ratings other replicas took, as they arrive.
async fn learn_from_replicas(
    state: std::sync::Weak<AppState>,
    mut ratings: tokio::sync::mpsc::Receiver<crate::store::SharedRating>,
) {
    while let Some(r) = ratings.recv().await {
        let Some(state) = state.upgrade() else { return };
        if let Err(e) = state.router.learn(&r.rating, &r.prompt, &r.model, r.score).await {
            tracing::warn!("a rating from another replica was not applied: {e}");
        }
    }
}

/// The agent runner of a server bound to `addr`: runs' model calls come back to it.
fn agent_runner(config: &Config, addr: SocketAddr) -> anyhow::Result<Arc<conductor_agent::Runner>> {
    let a = &config.agent;
    let path = a.store_path(&config.books.path);
    let store = conductor_agent::store::Store::open(&path).context("config key `agent.store`")?;
    let host = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
    let backend = conductor_agent::backend::HttpBackend::new(&format!("http://{host}:{}", addr.port()))?;
    let workspaces = a.workspaces_dir(&config.books.path);
    Ok(conductor_agent::Runner::new(Arc::new(store), Arc::new(backend), workspaces, a.http_allowlist.clone()))
}

/// Serves until `shutdown` resolves. `on_bound` gets the actual address (port 0 → chosen).
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let listen = config.server.listen;
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let (state, writer) = build(config).await?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    if state.config.agent.enabled {
        let runner = agent_runner(&state.config, addr)?;
        runner.observe(Arc::new(crate::telemetry::AgentTraces(state.telemetry.clone())));
        let _ = state.agents.set(runner);
    }
    on_bound(addr);

    let s = &state.config.server;
    let limits = connections::Limits {
        max_connections: s.max_connections,
        header_timeout: Duration::from_millis(s.header_timeout_ms),
        idle_timeout: Duration::from_millis(s.idle_timeout_ms),
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let drain = Duration::from_millis(s.drain_delay_ms);
    let st = state.clone();
    tokio::spawn(async move {
        shutdown.await;
        // Not ready any more; still serving for `drain_delay_ms`, so a load balancer that
        // polls /readyz moves traffic away before the listener closes.
        st.draining.store(true, std::sync::atomic::Ordering::SeqCst);
        if !drain.is_zero() {
            tracing::info!("draining: /readyz answers 503 for {} ms, then no new connections", drain.as_millis());
            tokio::time::sleep(drain).await;
        }
        drop(st);
        let _ = tx.send(true);
    });
    let server = connections::serve(listener, app(state.clone()), limits, rx.clone());
    let mut rx2 = rx.clone();
    tokio::select! {
        _ = server => {},
        _ = async move {
            let _ = rx2.wait_for(|v| *v).await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!("shutdown grace period over; dropping remaining connections"),
    }
    drop(rx);
    state.books.flush().await;
    if let Some(store) = &state.store {
        if tokio::time::timeout(grace, store.flush()).await.is_err() {
            tracing::error!("the shared store could not be written before shutdown; unwritten decisions are lost");
        }
    }
    // The last batch of spans goes out before the process does (a blocking export).
    let traced = state.clone();
    let _ = tokio::time::timeout(
        grace.max(Duration::from_secs(5)),
        tokio::task::spawn_blocking(move || traced.telemetry.shutdown()),
    )
    .await;
    drop(state);
    // Everything queued is committed (flush above). Connections cut off after the grace
    // period may still hold handles for a moment; do not wait on them forever.
    let _ = tokio::time::timeout(Duration::from_secs(5), tokio::task::spawn_blocking(move || writer.join())).await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
