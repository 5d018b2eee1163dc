//! `conductor.toml`: one file declares the models, the router, the policy, API keys,
//! books and limits. Everything has a default, so no file at all means "serve the local
//! model library, open access". Unknown keys and bad values are start-up errors that name
//! the key, because a typo silently ignored is a budget silently not enforced.

use serde::Deserialize;
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
    pub models: Vec<ModelConfig>,
    pub keys: Vec<KeyConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// `host:port`; port 0 picks a free port (the chosen address is printed on stdout).
    pub listen: String,
    /// Largest request body accepted, in bytes (larger → 413).
    pub max_body_bytes: usize,
    /// How long shutdown waits for in-flight requests and streams before giving up.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { listen: "127.0.0.1:8080".into(), max_body_bytes: 4 * 1024 * 1024, shutdown_grace_secs: 30 }
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
    /// Features for the cold-start router: `ngram` (no model needed) or `embedding`.
    pub features: String,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig { artifact: None, features: "ngram".into() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// What `model: "auto"` means: `quality`, `cost[:λ]` or `threshold[:τ]`.
    pub default: String,
    pub max_cost_usd: Option<f64>,
    pub min_quality: Option<f64>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig { default: "threshold".into(), max_cost_usd: None, min_quality: None }
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
    /// Waiting requests per local model before 429 (each model runs one at a time).
    pub max_queue: usize,
    pub first_token_timeout_ms: u64,
    pub total_timeout_ms: u64,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            enabled: true,
            models: Vec::new(),
            models_dir: None,
            catalog: None,
            max_queue: 64,
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

/// A model served through an HTTP provider (or a local model with its own limits).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub id: String,
    /// `openai` (any OpenAI-compatible server), `anthropic` or `local`.
    pub provider: String,
    /// The upstream's name for the model (default: `id`).
    pub upstream_model: Option<String>,
    pub base_url: Option<String>,
    /// Environment variable holding the API key (the key itself never goes in the file).
    pub api_key_env: Option<String>,
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
    #[serde(default = "default_context")]
    pub context_length: usize,
    #[serde(default = "default_tier")]
    pub tier: String,
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    #[serde(default = "default_queue")]
    pub max_queue: usize,
    #[serde(default = "default_connect")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_first_token")]
    pub first_token_timeout_ms: u64,
    #[serde(default = "default_total")]
    pub total_timeout_ms: u64,
    #[serde(default = "default_retries")]
    pub max_retries: u32,
}

fn default_context() -> usize {
    8192
}
fn default_tier() -> String {
    "medium".into()
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
    #[serde(default = "default_period")]
    pub budget_period: String,
}

fn default_period() -> String {
    "month".into()
}

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
        let cfg: Config = toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values serde cannot: ranges, enums given as strings, cross references.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |key: String, msg: &str| Err(format!("key `{key}`: {msg}"));
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return bad("server.listen".into(), "must be host:port with a numeric IP, e.g. 127.0.0.1:8080");
        }
        if self.server.max_body_bytes < 1024 {
            return bad("server.max_body_bytes".into(), "must be at least 1024");
        }
        if !["ngram", "embedding"].contains(&self.router.features.as_str()) {
            return bad("router.features".into(), "must be \"ngram\" or \"embedding\"");
        }
        if let Err(e) = self.policy.default.parse::<conductor_core::policy::Policy>() {
            return bad("policy.default".into(), &e.to_string());
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
            match m.provider.as_str() {
                "openai" | "anthropic" => {
                    let Some(url) = &m.base_url else { return bad(k("base_url"), "is required for HTTP providers") };
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return bad(k("base_url"), "must start with http:// or https://");
                    }
                }
                "local" => {}
                _ => return bad(k("provider"), "must be \"openai\", \"anthropic\" or \"local\""),
            }
            if let Some(env) = &m.api_key_env {
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
            if !["small", "medium", "large"].contains(&m.tier.as_str()) {
                return bad(k("tier"), "must be \"small\", \"medium\" or \"large\"");
            }
            if m.first_token_timeout_ms == 0 || m.total_timeout_ms == 0 || m.connect_timeout_ms == 0 {
                return bad(k("*_timeout_ms"), "timeouts must be at least 1 ms");
            }
        }
        let mut key_ids = std::collections::HashSet::new();
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
            if !["day", "month", "total"].contains(&key.budget_period.as_str()) {
                return bad(k("budget_period"), "must be \"day\", \"month\" or \"total\"");
            }
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
    fn unknown_key_is_named() {
        let e = Config::parse("[server]\nlisten_addr = \"x\"\n").unwrap_err();
        assert!(e.contains("listen_addr"), "{e}");
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
    }
}
