//! `conductor.toml`: one file declares the models, the router, the policy, API keys,
//! books and limits. Everything has a default, so no file at all means "serve the local
//! model library, open access". Unknown keys and bad values are start-up errors that name
//! the key, because a typo silently ignored is a budget silently not enforced.

use crate::budget::Period;
use crate::verification::Strategy;
use conductor_core::catalog::Tier;
use conductor_core::features::FeatureKind;
use conductor_core::policy::Policy;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub books: BooksConfig,
    pub router: RouterConfig,
    pub policy: PolicyConfig,
    pub local: LocalConfig,
    pub reliability: ReliabilityConfig,
    pub feedback: FeedbackConfig,
    pub verify: VerifyConfig,
    pub agent: AgentConfig,
    pub telemetry: TelemetryConfig,
    pub store: StoreConfig,
    pub models: Vec<ModelConfig>,
    pub keys: Vec<KeyConfig>,
}

/// OpenTelemetry traces. Nothing is exported unless `otlp_endpoint` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// The OTLP/HTTP collector, e.g. `http://127.0.0.1:4318` (`/v1/traces` is added unless
    /// the URL already ends with it). Protobuf encoding.
    pub otlp_endpoint: Option<String>,
    /// Headers sent with every export (a hosted collector's API key, say).
    pub headers: std::collections::HashMap<String, String>,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// Spans are sent in batches at most this far apart.
    pub batch_delay_ms: u64,
    pub timeout_ms: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: None,
            headers: Default::default(),
            service_name: "conductor".into(),
            batch_delay_ms: 5_000,
            timeout_ms: 10_000,
        }
    }
}

/// The shared store of several replicas. Without a URL each server keeps its state in its
/// own books (SQLite); with one, budgets, reservations, rate limits, decisions and feedback
/// live in PostgreSQL and every replica pointed at it shares them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `postgres://user:password@host:port/database` (or `host=... user=...`).
    pub url: Option<String>,
    /// An environment variable holding the URL instead (keeps the password out of the file).
    pub url_env: Option<String>,
    /// Connections this replica keeps open (requests wait for a free one).
    pub pool_size: usize,
    /// How long a request waits to connect or for a free connection before the store is
    /// reported unavailable (503).
    pub timeout_ms: u64,
    /// This replica's name in the store (default: host name and process id).
    pub replica: Option<String>,
    /// A replica not heard from for this long is taken for dead: what it held in reserve is
    /// counted as spent (it may have paid an upstream before dying).
    pub replica_timeout_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: None,
            url_env: None,
            pool_size: 16,
            timeout_ms: 2_000,
            replica: None,
            replica_timeout_ms: 30_000,
        }
    }
}

impl StoreConfig {
    /// The PostgreSQL URL, when one is configured.
    pub fn resolved_url(&self) -> Result<Option<String>, String> {
        match (&self.url, &self.url_env) {
            (Some(_), Some(_)) => Err("key `store`: set `url` or `url_env`, not both".into()),
            (Some(u), None) => Ok(Some(u.clone())),
            (None, Some(var)) => match std::env::var(var) {
                Ok(u) if !u.trim().is_empty() => Ok(Some(u)),
                _ => Err(format!("key `store.url_env`: environment variable `{var}` is not set")),
            },
            (None, None) => Ok(None),
        }
    }
}

/// Agent runs (`/v1/agent/runs`, `conductor agent`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    pub enabled: bool,
    /// SQLite file of run state and activity logs (default: `agent.sqlite` beside the books).
    pub store: Option<PathBuf>,
    /// Where each run gets its workspace directory (default: `agent_runs/` beside the books).
    pub workspaces: Option<PathBuf>,
    /// Hosts the `http_get` tool may fetch from (exact names); empty: none. A run may
    /// narrow this list, never widen it.
    pub http_allowlist: Vec<String>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig { enabled: true, store: None, workspaces: None, http_allowlist: Vec::new() }
    }
}

impl AgentConfig {
    fn beside_books(books: &std::path::Path, name: &str) -> PathBuf {
        books.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from(name), |d| d.join(name))
    }

    pub fn store_path(&self, books: &std::path::Path) -> PathBuf {
        self.store.clone().unwrap_or_else(|| Self::beside_books(books, "agent.sqlite"))
    }

    pub fn workspaces_dir(&self, books: &std::path::Path) -> PathBuf {
        self.workspaces.clone().unwrap_or_else(|| Self::beside_books(books, "agent_runs"))
    }
}

/// Answer checking (`auto:verify`, `auto:cascade`; see `verification.rs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifyConfig {
    /// Recorded answers with signals to fit each model's verifier on at start-up (default:
    /// the library's own, `records/local_signals.jsonl`, when the local library is served).
    pub records: Option<PathBuf>,
    /// What plain `auto` does: `none` (route only), `verify` or `cascade`.
    pub strategy: DefaultCheck,
    /// Largest share of accepted answers allowed to be wrong (per request:
    /// `conductor.max_risk`).
    pub max_risk: f64,
    /// Probability that the max_risk promise fails (Learn-then-Test's δ).
    pub delta: f64,
    /// Say "I don't know" instead of returning an answer not accepted (per request:
    /// `conductor.abstain`).
    pub abstain: bool,
    /// The answer given when abstaining.
    pub message: String,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            records: None,
            strategy: DefaultCheck::None,
            max_risk: 0.2,
            delta: 0.1,
            abstain: false,
            message: "I don't know. I could not find an answer I am confident is correct.".into(),
        }
    }
}

/// Whether plain `auto` checks answers, and how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultCheck {
    #[default]
    None,
    Verify,
    Cascade,
}

impl DefaultCheck {
    pub fn strategy(self) -> Option<Strategy> {
        match self {
            DefaultCheck::None => None,
            DefaultCheck::Verify => Some(Strategy::Verify),
            DefaultCheck::Cascade => Some(Strategy::Cascade),
        }
    }
}

/// What `POST /v1/feedback` accepts and how much one rating may teach the router.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedbackConfig {
    /// Ratings one key may send per minute (a token bucket of this size); 0 = unlimited.
    pub per_key_per_minute: u32,
    /// Without API keys (open access) anyone could rate anything: `accept` or `refuse`.
    pub open_mode: OpenFeedback,
    /// A trained router's own prediction counts as this many identical ratings when feedback
    /// is blended in, so one rating cannot swing a prompt's predicted success.
    pub model_weight: f64,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        FeedbackConfig { per_key_per_minute: 60, open_mode: OpenFeedback::Accept, model_weight: 4.0 }
    }
}

/// Feedback policy when the server runs without keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpenFeedback {
    Accept,
    Refuse,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// `host:port`; port 0 picks a free port (the chosen address is printed on stdout).
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes (larger → 413).
    pub max_body_bytes: usize,
    /// How long shutdown waits for in-flight requests and streams before giving up.
    pub shutdown_grace_secs: u64,
    /// On SIGTERM, keep serving this long with `/readyz` answering 503, so a load balancer
    /// stops sending traffic before the listener closes (0: close at once).
    pub drain_delay_ms: u64,
    /// Open connections at most; further clients wait in the kernel's backlog.
    pub max_connections: usize,
    /// From a request's first byte to the end of its headers (slowloris guard).
    pub header_timeout_ms: u64,
    /// Reading a request's whole body (408 after it).
    pub body_timeout_ms: u64,
    /// A keep-alive connection with no request in flight is closed after this long.
    pub idle_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 4 * 1024 * 1024,
            shutdown_grace_secs: 30,
            drain_delay_ms: 0,
            max_connections: 1024,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            idle_timeout_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BooksConfig {
    /// SQLite file for decisions and feedback.
    pub path: PathBuf,
    /// Keep prompt text in the books (needed to apply feedback and export records).
    pub log_prompts: bool,
}

impl Default for BooksConfig {
    fn default() -> Self {
        BooksConfig { path: PathBuf::from("out/books.sqlite"), log_prompts: true }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterConfig {
    /// A trained router artifact (`conductor` lab output). None: cold-start router.
    pub artifact: Option<PathBuf>,
    /// Features for the cold-start router: `ngram` (no model needed), `minilm` or `auto`
    /// (n-grams: without training data there is nothing to choose between).
    pub features: FeatureKind,
    /// Threads that featurise prompts and run the predictor (0: one per CPU core).
    pub workers: usize,
    /// Routing jobs waiting for a worker before requests are refused with 503.
    pub queue: usize,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig { artifact: None, features: FeatureKind::Ngram, workers: 0, queue: 1024 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// What `model: "auto"` means: `quality`, `cost[:λ]` or `threshold[:τ]`.
    #[serde(deserialize_with = "from_str")]
    pub default: Policy,
    pub max_cost_usd: Option<f64>,
    pub min_quality: Option<f64>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            default: Policy::Threshold { tau: conductor_core::policy::DEFAULT_TAU },
            max_cost_usd: None,
            min_quality: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalConfig {
    /// Serve the embedded model library.
    pub enabled: bool,
    /// Where the GGUF files live (default `$CONDUCTOR_MODELS` or `./models`).
    pub models_dir: Option<PathBuf>,
    /// Catalogue with the local models' prices and tiers (default `catalog/local.toml`
    /// when it exists, else built-in prices proportional to parameters).
    pub catalog: Option<PathBuf>,
    /// Library models to serve (empty: every model whose files are present).
    pub models: Vec<String>,
    /// Requests one local model decodes together (continuous batching); each has a KV
    /// cache of the model's whole context window.
    pub parallel: usize,
    /// Waiting requests per local model beyond those, before 429 + `Retry-After`.
    pub max_queue: usize,
    /// CPU threads each model's engine uses (0: one per core).
    pub threads: usize,
    pub first_token_timeout_ms: u64,
    pub total_timeout_ms: u64,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            // A build without the local engine serves remote models only.
            enabled: cfg!(feature = "local"),
            models: Vec::new(),
            models_dir: None,
            catalog: None,
            parallel: 4,
            max_queue: 64,
            threads: 0,
            first_token_timeout_ms: 120_000,
            total_timeout_ms: 600_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReliabilityConfig {
    /// First retry waits about this long (jittered ±50%), doubling each time.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// Consecutive failures that open a model's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker stays open before one probe request is let through.
    pub breaker_cooldown_ms: u64,
}

impl Default for ReliabilityConfig {
    fn default() -> Self {
        ReliabilityConfig { retry_base_ms: 100, retry_max_ms: 2_000, breaker_failures: 5, breaker_cooldown_ms: 10_000 }
    }
}

/// Which kind of upstream serves a model (the `provider` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any OpenAI-compatible server.
    Openai,
    /// Anthropic's Messages API.
    Anthropic,
    /// A model of the embedded library, with its own limits.
    Local,
}

/// Where a model is served, with what that kind of upstream needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    Openai { base_url: String, api_key_env: Option<String> },
    Anthropic { base_url: String, api_key_env: Option<String> },
    Local,
}

impl Endpoint {
    pub fn kind(&self) -> &'static str {
        match self {
            Endpoint::Openai { .. } => "openai",
            Endpoint::Anthropic { .. } => "anthropic",
            Endpoint::Local => "local",
        }
    }
}

/// A model served through an HTTP provider (or a local model with its own limits).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawModelConfig")]
pub struct ModelConfig {
    pub id: String,
    pub endpoint: Endpoint,
    /// The upstream's name for the model (default: `id`).
    pub upstream_model: Option<String>,
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
    pub context_length: usize,
    pub tier: Tier,
    pub max_concurrency: usize,
    pub max_queue: usize,
    pub connect_timeout_ms: u64,
    pub first_token_timeout_ms: u64,
    pub total_timeout_ms: u64,
    pub max_retries: u32,
    /// Records (JSONL) of this model on a few prompts: a model the router was not trained
    /// on joins it from these labels at start-up, without retraining.
    pub onboard_records: Option<std::path::PathBuf>,
    /// What the model handles of `tools`, `response_format` and `logprobs`; unset: whatever
    /// its provider supports (an OpenAI-compatible upstream is sent everything).
    pub capabilities: Option<Vec<String>>,
}

impl ModelConfig {
    /// The model as the router's catalogue (and every priced record) sees it.
    pub fn catalog_entry(&self) -> conductor_core::catalog::ModelEntry {
        conductor_core::catalog::ModelEntry {
            id: self.id.clone(),
            provider: self.endpoint.kind().to_string(),
            input_usd_per_mtok: self.input_usd_per_mtok,
            output_usd_per_mtok: self.output_usd_per_mtok,
            context_length: self.context_length,
            tier: self.tier,
        }
    }
}

/// `[[models]]` as written in the file; [`ModelConfig`] is what it means.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModelConfig {
    id: String,
    provider: ProviderKind,
    upstream_model: Option<String>,
    base_url: Option<String>,
    /// Environment variable holding the API key (the key itself never goes in the file).
    api_key_env: Option<String>,
    input_usd_per_mtok: f64,
    output_usd_per_mtok: f64,
    #[serde(default = "default_context")]
    context_length: usize,
    #[serde(default)]
    tier: Tier,
    #[serde(default = "default_concurrency")]
    max_concurrency: usize,
    #[serde(default = "default_queue")]
    max_queue: usize,
    #[serde(default = "default_connect")]
    connect_timeout_ms: u64,
    #[serde(default = "default_first_token")]
    first_token_timeout_ms: u64,
    #[serde(default = "default_total")]
    total_timeout_ms: u64,
    #[serde(default = "default_retries")]
    max_retries: u32,
    onboard_records: Option<std::path::PathBuf>,
    capabilities: Option<Vec<String>>,
}

impl TryFrom<RawModelConfig> for ModelConfig {
    type Error = String;
    fn try_from(r: RawModelConfig) -> Result<ModelConfig, String> {
        let http = |kind: &str| -> Result<String, String> {
            let url =
                r.base_url.clone().ok_or_else(|| format!("key `base_url`: is required for provider \"{kind}\""))?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("key `base_url`: must start with http:// or https://, got \"{url}\""));
            }
            Ok(url)
        };
        let endpoint = match r.provider {
            ProviderKind::Openai => Endpoint::Openai { base_url: http("openai")?, api_key_env: r.api_key_env },
            ProviderKind::Anthropic => Endpoint::Anthropic { base_url: http("anthropic")?, api_key_env: r.api_key_env },
            ProviderKind::Local => {
                if r.base_url.is_some() || r.api_key_env.is_some() {
                    return Err("key `provider`: a `local` model takes no `base_url` or `api_key_env`".into());
                }
                Endpoint::Local
            }
        };
        Ok(ModelConfig {
            id: r.id,
            endpoint,
            upstream_model: r.upstream_model,
            input_usd_per_mtok: r.input_usd_per_mtok,
            output_usd_per_mtok: r.output_usd_per_mtok,
            context_length: r.context_length,
            tier: r.tier,
            max_concurrency: r.max_concurrency,
            max_queue: r.max_queue,
            connect_timeout_ms: r.connect_timeout_ms,
            first_token_timeout_ms: r.first_token_timeout_ms,
            total_timeout_ms: r.total_timeout_ms,
            max_retries: r.max_retries,
            onboard_records: r.onboard_records,
            capabilities: match r.capabilities {
                Some(c) => {
                    if let Some(bad) = c.iter().find(|c| !crate::registry::DECLARABLE.contains(&c.as_str())) {
                        return Err(format!(
                            "key `capabilities`: \"{bad}\" is not one of {}",
                            crate::registry::DECLARABLE.join(", ")
                        ));
                    }
                    Some(c)
                }
                None => None,
            },
        })
    }
}

fn default_context() -> usize {
    8192
}
fn default_concurrency() -> usize {
    64
}
fn default_queue() -> usize {
    256
}
fn default_connect() -> u64 {
    2_000
}
fn default_first_token() -> u64 {
    30_000
}
fn default_total() -> u64 {
    300_000
}
fn default_retries() -> u32 {
    2
}

/// Deserialises a value through its `FromStr` (policies are written `threshold:0.7`).
fn from_str<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Name of the key in the books (the key itself is never written anywhere).
    pub id: String,
    /// The key in clear text (hashed at load) ...
    pub key: Option<String>,
    /// ... or its SHA-256 in hex ...
    pub key_sha256: Option<String>,
    /// ... or the environment variable that holds it.
    pub key_env: Option<String>,
    /// Models this key may use (concrete ids); empty = all.
    #[serde(default)]
    pub allowed_models: Vec<String>,
    /// Spending limit in USD per period; none = unlimited.
    pub budget_usd: Option<f64>,
    /// `day`, `month` or `total`.
    #[serde(default)]
    pub budget_period: Period,
    /// Chat and embedding requests this key may send per minute (all replicas together
    /// when they share a store); none or 0 = unlimited.
    #[serde(default)]
    pub requests_per_minute: u32,
    /// May read `/metrics` and the full `/healthz` (operators, not applications).
    #[serde(default)]
    pub admin: bool,
    /// Keep this key's prompts and answers in the books (with `books.log_prompts`). Off:
    /// its requests are booked without text, so nothing of theirs is ever exported.
    #[serde(default = "yes")]
    pub log_prompts: bool,
}

fn yes() -> bool {
    true
}

impl KeyConfig {
    /// SHA-256 (hex) of the key's secret, from whichever of the three forms was given;
    /// `None` when it is missing or empty.
    pub fn secret_hash(&self) -> Option<String> {
        let clear = match (&self.key, &self.key_sha256, &self.key_env) {
            (Some(k), _, _) => k.clone(),
            (None, Some(h), _) => return Some(h.to_ascii_lowercase()).filter(|h| *h != EMPTY_SHA256),
            (None, None, Some(env)) => std::env::var(env).unwrap_or_default(),
            (None, None, None) => return None,
        };
        (!clear.trim().is_empty()).then(|| crate::keys::sha256_hex(clear.trim()))
    }
}

/// SHA-256 of the empty string: a `key_sha256` of an empty secret.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A config problem, phrased as `key: problem`.
#[derive(Debug, thiserror::Error)]
#[error("invalid config {file}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError { file: file.clone(), message: format!("cannot read: {e}") })?;
        Config::parse(&text).map_err(|message| ConfigError { file, message })
    }

    /// Parses and validates TOML text; the error names the offending key.
    pub fn parse(text: &str) -> Result<Config, String> {
        let de = toml::Deserializer::new(text);
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            let inner = inner.trim();
            // A table's own check names a field inside it: `key \`base_url\`: ...`.
            if let Some((field, rest)) = inner.split_once("key `").and_then(|(_, r)| r.split_once("`: ")) {
                return format!("key `{path}.{field}`: {rest}");
            }
            if path == "." || inner.contains(&path) {
                inner.to_string()
            } else {
                format!("key `{path}`: {inner}")
            }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Whether `id` names a model this config can serve: a `[[models]]` id or a model of the
    /// embedded library (checked by id; whether its file is present is known at start-up).
    fn known_model(&self, id: &str) -> bool {
        self.models.iter().any(|m| m.id == id)
            || crate::local::library_chat_ids().iter().any(|l| l == id)
            || id == crate::local::EMBEDDER_ID
    }

    /// Checks values serde cannot: ranges, cross references.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |key: String, msg: &str| Err(format!("key `{key}`: {msg}"));
        self.store.resolved_url()?;
        if self.store.pool_size == 0 {
            return bad("store.pool_size".into(), "must be at least 1");
        }
        if self.server.max_body_bytes < 1024 {
            return bad("server.max_body_bytes".into(), "must be at least 1024");
        }
        if self.server.max_connections == 0 {
            return bad("server.max_connections".into(), "must be at least 1");
        }
        for (k, v) in [
            ("header_timeout_ms", self.server.header_timeout_ms),
            ("body_timeout_ms", self.server.body_timeout_ms),
            ("idle_timeout_ms", self.server.idle_timeout_ms),
        ] {
            if v == 0 {
                return bad(format!("server.{k}"), "must be at least 1 ms");
            }
        }
        if self.local.parallel == 0 {
            return bad("local.parallel".into(), "must be at least 1");
        }
        if self.router.queue == 0 {
            return bad("router.queue".into(), "must be at least 1");
        }
        if let Some(q) = self.policy.min_quality {
            if !(0.0..=1.0).contains(&q) {
                return bad("policy.min_quality".into(), "must be in [0, 1]");
            }
        }
        if let Some(c) = self.policy.max_cost_usd {
            if !(c.is_finite() && c >= 0.0) {
                return bad("policy.max_cost_usd".into(), "must be a finite number >= 0");
            }
        }
        for (k, v) in [("max_risk", self.verify.max_risk), ("delta", self.verify.delta)] {
            if !(v > 0.0 && v < 1.0) {
                return bad(format!("verify.{k}"), "must be between 0 and 1 (exclusive)");
            }
        }
        if self.verify.message.trim().is_empty() {
            return bad("verify.message".into(), "must not be empty (it is the answer given when abstaining)");
        }
        if self.reliability.breaker_failures == 0 {
            return bad("reliability.breaker_failures".into(), "must be at least 1");
        }
        let mut ids = std::collections::HashSet::new();
        for (i, m) in self.models.iter().enumerate() {
            let k = |f: &str| format!("models[{i}].{f}");
            if m.id.trim().is_empty() || m.id.starts_with("auto") {
                return bad(k("id"), "must be non-empty and must not start with \"auto\" (reserved for routing)");
            }
            if !ids.insert(m.id.clone()) {
                return bad(k("id"), &format!("duplicate model id \"{}\"", m.id));
            }
            let served_locally =
                self.local.enabled && (self.local.models.is_empty() || self.local.models.contains(&m.id));
            if served_locally && m.endpoint != Endpoint::Local && crate::local::library_chat_ids().contains(&m.id) {
                return bad(
                    k("id"),
                    &format!(
                        "\"{}\" is also a local library model; rename the remote model, or set `local.enabled = false` \
                         (or leave it out of `local.models`) to serve only the remote one",
                        m.id
                    ),
                );
            }
            if let Endpoint::Openai { api_key_env: Some(env), .. }
            | Endpoint::Anthropic { api_key_env: Some(env), .. } = &m.endpoint
            {
                if std::env::var(env).is_err() {
                    return bad(k("api_key_env"), &format!("environment variable {env} is not set"));
                }
            }
            for (f, v) in [("input_usd_per_mtok", m.input_usd_per_mtok), ("output_usd_per_mtok", m.output_usd_per_mtok)]
            {
                if !(v.is_finite() && v >= 0.0) {
                    return bad(k(f), "must be a finite number >= 0");
                }
            }
            if m.max_concurrency == 0 {
                return bad(k("max_concurrency"), "must be at least 1");
            }
            if m.context_length == 0 {
                return bad(k("context_length"), "must be at least 1");
            }
            if m.first_token_timeout_ms == 0 || m.total_timeout_ms == 0 || m.connect_timeout_ms == 0 {
                return bad(k("*_timeout_ms"), "timeouts must be at least 1 ms");
            }
        }
        let mut key_ids = std::collections::HashSet::new();
        let mut secrets: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for (i, key) in self.keys.iter().enumerate() {
            let k = |f: &str| format!("keys[{i}].{f}");
            if key.id.trim().is_empty() || !key_ids.insert(key.id.clone()) {
                return bad(k("id"), "must be non-empty and unique");
            }
            let given =
                [key.key.is_some(), key.key_sha256.is_some(), key.key_env.is_some()].iter().filter(|b| **b).count();
            if given != 1 {
                return bad(k("key"), "give exactly one of key, key_sha256, key_env");
            }
            if let Some(h) = &key.key_sha256 {
                if h.len() != 64 || hex::decode(h).is_err() {
                    return bad(k("key_sha256"), "must be 64 hex digits");
                }
            }
            if let Some(env) = &key.key_env {
                if std::env::var(env).map(|v| v.is_empty()).unwrap_or(true) {
                    return bad(k("key_env"), &format!("environment variable {env} is not set"));
                }
            }
            if let Some(b) = key.budget_usd {
                if !(b.is_finite() && b >= 0.0) {
                    return bad(k("budget_usd"), "must be a finite number >= 0");
                }
            }
            let Some(hash) = key.secret_hash() else {
                return bad(k("key"), "the secret is empty; give a non-empty key (an empty one would match an empty Authorization header)");
            };
            if let Some(j) = secrets.get(&hash) {
                return bad(
                    k("key"),
                    &format!(
                        "uses the same secret as keys[{j}] (`{}`); every key needs its own secret",
                        self.keys[*j].id
                    ),
                );
            }
            secrets.insert(hash, i);
            for m in &key.allowed_models {
                if !self.known_model(m) {
                    return bad(
                        k("allowed_models"),
                        &format!("unknown model `{m}`: not a [[models]] id or a local library model"),
                    );
                }
            }
        }
        if self.feedback.model_weight.is_nan() || self.feedback.model_weight < 0.0 {
            return bad("feedback.model_weight".into(), "must be a number >= 0");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_is_valid() {
        for v in ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "CONDUCTOR_KEY_TEAM_A"] {
            if std::env::var(v).is_err() {
                std::env::set_var(v, "sk-example");
            }
        }
        let c = Config::parse(include_str!("../conductor.example.toml")).unwrap();
        assert_eq!(c.models.len(), 2);
        assert_eq!(c.keys[0].budget_usd, Some(25.0));
    }

    #[test]
    fn empty_is_default() {
        let c = Config::parse("").unwrap();
        assert!(c.local.enabled);
        assert!(c.keys.is_empty());
    }

    #[test]
    fn verification_settings_are_checked() {
        let e = Config::parse("[verify]\nstrategy = \"sometimes\"\n").unwrap_err();
        assert!(e.contains("verify.strategy") && e.contains("cascade"), "{e}");
        let e = Config::parse("[verify]\nmax_risk = 1.5\n").unwrap_err();
        assert!(e.contains("verify.max_risk"), "{e}");
        let c = Config::parse("[verify]\nstrategy = \"cascade\"\n").unwrap();
        assert_eq!(c.verify.strategy.strategy(), Some(Strategy::Cascade));
        assert_eq!(Config::default().verify.strategy.strategy(), None);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::parse("[server]\nlisten_addr = \"x\"\n").unwrap_err();
        assert!(e.contains("listen_addr"), "{e}");
    }

    #[test]
    fn unknown_enum_values_name_the_key_and_the_accepted_values() {
        let model = |extra: &str| {
            format!("[[models]]\nid='m'\nbase_url='http://x'\ninput_usd_per_mtok=1\noutput_usd_per_mtok=1\n{extra}\n")
        };
        let e = Config::parse(&model("provider='openia'")).unwrap_err();
        assert!(e.contains("models[0].provider") && e.contains("openia") && e.contains("anthropic"), "{e}");
        let e = Config::parse(&model("provider='openai'\ntier='huge'")).unwrap_err();
        assert!(e.contains("models[0].tier") && e.contains("huge") && e.contains("small"), "{e}");
        let e = Config::parse("[[keys]]\nid='k'\nkey='s'\nbudget_period='week'\n").unwrap_err();
        assert!(e.contains("keys[0].budget_period") && e.contains("week") && e.contains("month"), "{e}");
        let e = Config::parse("[router]\nfeatures='embedding'\n").unwrap_err();
        assert!(e.contains("router.features") && e.contains("minilm"), "{e}");
        let e = Config::parse("[policy]\ndefault='cheapest-ish'\n").unwrap_err();
        assert!(e.contains("policy.default") && e.contains("threshold"), "{e}");
        let c = Config::parse(&model("provider='anthropic'\ntier='large'")).unwrap();
        assert_eq!(c.models[0].endpoint, Endpoint::Anthropic { base_url: "http://x".into(), api_key_env: None });
        assert_eq!(c.models[0].tier, Tier::Large);
    }

    #[test]
    fn bad_value_is_named() {
        let e = Config::parse("[[models]]\nid='m'\nprovider='openai'\ninput_usd_per_mtok=1\noutput_usd_per_mtok=1\n")
            .unwrap_err();
        assert!(e.contains("models[0].base_url"), "{e}");
        let e = Config::parse("[policy]\ndefault = \"threshold:3\"\n").unwrap_err();
        assert!(e.contains("policy.default"), "{e}");
        let e = Config::parse("[server]\nmax_body_bytes = \"big\"\n").unwrap_err();
        assert!(e.contains("max_body_bytes"), "{e}");
        let e = Config::parse("[server]\nlisten = \"localhost\"\n").unwrap_err();
        assert!(e.contains("server.listen"), "{e}");
    }
}
