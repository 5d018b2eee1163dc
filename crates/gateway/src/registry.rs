//! The models this gateway serves: for each, its catalogue entry (prices, context, tier),
//! the provider that calls it, the upstream's name for it, its limits, and its own
//! circuit breaker and queue. Built once at start-up from the config and the local
//! library.

use crate::config::{Config, Endpoint, ModelConfig};
use crate::local;
use crate::reliability::breaker::Breaker;
use crate::reliability::queue::Queue;
use anyhow::Context;
use conductor_core::catalog::{Catalog, ModelEntry};
use conductor_providers::anthropic::AnthropicProvider;
use conductor_providers::openai_compat::OpenAiCompatProvider;
use conductor_providers::{unsupported, Provider, Requirement};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Per-model limits applied by the dispatcher.
#[derive(Debug, Clone)]
pub struct Limits {
    pub first_token: Duration,
    pub total: Duration,
    pub max_retries: u32,
    /// Completion tokens a call is assumed to produce at most when the client sets no
    /// limit, for budget reservations only (nothing is sent upstream).
    pub default_max_tokens: u32,
}

pub struct Served {
    pub entry: ModelEntry,
    pub upstream_model: String,
    pub provider: Arc<dyn Provider>,
    pub limits: Limits,
    pub breaker: Breaker,
    pub queue: Queue,
    /// What the config says the model handles (`capabilities`); `None`: whatever its
    /// provider supports.
    pub declared: Option<Vec<String>>,
}

/// Capabilities a model's config may declare (and so withhold).
pub const DECLARABLE: [&str; 3] = ["tools", "response_format", "logprobs"];

impl Served {
    /// The first requirement this model cannot honour: its provider's verdict, narrowed by
    /// the capabilities its config declares.
    pub fn unsupported<'a>(&self, requires: &'a [Requirement]) -> Option<&'a Requirement> {
        unsupported(self.provider.as_ref(), &self.upstream_model, requires).or_else(|| {
            let declared = self.declared.as_ref()?;
            requires.iter().find(|r| DECLARABLE.contains(&r.capability.as_str()) && !declared.contains(&r.capability))
        })
    }
}

pub struct Registry {
    models: Vec<Arc<Served>>,
    by_id: HashMap<String, usize>,
    /// Index of the largest model (the "always use the biggest" baseline for savings).
    largest: Option<usize>,
    pub library: Option<Arc<local::Local>>,
}

/// Built-in compute price for local models when no catalogue gives one: $0.10 per
/// million tokens per billion parameters, in and out. Only ratios matter for routing.
fn local_price(params: u64) -> f64 {
    params as f64 / 1e9 * 0.10
}

impl Registry {
    pub fn build(cfg: &Config) -> anyhow::Result<Registry> {
        let rel = &cfg.reliability;
        let breaker = || Breaker::new(rel.breaker_failures, Duration::from_millis(rel.breaker_cooldown_ms));
        let mut models: Vec<Arc<Served>> = Vec::new();

        let needs_library = cfg.local.enabled || cfg.models.iter().any(|m| m.endpoint == Endpoint::Local);
        let library = if needs_library { Some(Arc::new(local::open(&cfg.local)?)) } else { None };
        let local_catalog = local_catalog(cfg)?;
        let local_provider: Option<Arc<dyn Provider>> = library.as_ref().map(|l| l.provider());
        // Local models: the engine batches requests and keeps its own queue (it refuses a
        // request when full, with the expected wait), so the gateway's queue lets them through.
        let local_queue = || Queue::new(1 << 20, 0);
        let local_limits = || Limits {
            first_token: Duration::from_millis(cfg.local.first_token_timeout_ms),
            total: Duration::from_millis(cfg.local.total_timeout_ms),
            max_retries: 0,
            default_max_tokens: local::DEFAULT_MAX_TOKENS,
        };

        if let (true, Some(lib)) = (cfg.local.enabled, &library) {
            let ids = lib.chat_ids();
            for id in &cfg.local.models {
                if !ids.contains(id) {
                    anyhow::bail!(
                        "config key `local.models`: unknown library model \"{id}\" (library: {})",
                        ids.join(", ")
                    );
                }
            }
            for spec in lib.models() {
                let wanted = cfg.local.models.is_empty() || cfg.local.models.contains(&spec.id);
                if !wanted || !spec.present || cfg.models.iter().any(|m| m.id == spec.id) {
                    continue;
                }
                let Some(provider) = local_provider.clone() else { continue };
                let entry = local_catalog.get(&spec.id).ok().cloned().unwrap_or_else(|| ModelEntry {
                    id: spec.id.clone(),
                    provider: "local".into(),
                    input_usd_per_mtok: local_price(spec.params),
                    output_usd_per_mtok: local_price(spec.params),
                    context_length: spec.context_length,
                    tier: spec.tier,
                });
                models.push(Arc::new(Served {
                    entry,
                    upstream_model: spec.id.clone(),
                    provider,
                    limits: local_limits(),
                    breaker: breaker(),
                    queue: local_queue(),
                    declared: None,
                }));
            }
        }

        for (i, m) in cfg.models.iter().enumerate() {
            let provider =
                make_provider(m, local_provider.as_ref()).with_context(|| format!("config key `models[{i}]`"))?;
            let upstream_model = m.upstream_model.clone().unwrap_or_else(|| m.id.clone());
            let is_local = m.endpoint == Endpoint::Local;
            if let (true, Some(lib)) = (is_local, &library) {
                if !lib.chat_ids().contains(&upstream_model) {
                    anyhow::bail!(
                        "config key `models[{i}].upstream_model`: \"{upstream_model}\" is not a library model ({})",
                        lib.chat_ids().join(", ")
                    );
                }
            }
            models.push(Arc::new(Served {
                entry: m.catalog_entry(),
                upstream_model,
                provider,
                limits: if is_local {
                    local_limits()
                } else {
                    Limits {
                        first_token: Duration::from_millis(m.first_token_timeout_ms),
                        total: Duration::from_millis(m.total_timeout_ms),
                        max_retries: m.max_retries,
                        default_max_tokens: (m.context_length / 2).clamp(1, 4096) as u32,
                    }
                },
                breaker: breaker(),
                queue: if is_local { local_queue() } else { Queue::new(m.max_concurrency, m.max_queue) },
                declared: m.capabilities.clone(),
            }));
        }
        let by_id = models.iter().enumerate().map(|(i, m)| (m.entry.id.clone(), i)).collect();
        let mut r = Registry { models, by_id, largest: None, library };
        // The same rule as the lab's "largest model" (highest tier, then price).
        r.largest = (!r.models.is_empty()).then(|| r.catalog().largest());
        Ok(r)
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Served>> {
        self.by_id.get(id).map(|&i| &self.models[i])
    }

    pub fn all(&self) -> &[Arc<Served>] {
        &self.models
    }

    pub fn largest(&self) -> Option<&Arc<Served>> {
        self.largest.map(|i| &self.models[i])
    }

    /// The served models as a router catalogue.
    pub fn catalog(&self) -> Catalog {
        Catalog { models: self.models.iter().map(|m| m.entry.clone()).collect() }
    }
}

/// Local prices and tiers: `local.catalog` when set, else the library's manifest.
fn local_catalog(cfg: &Config) -> anyhow::Result<Catalog> {
    match &cfg.local.catalog {
        Some(p) => Ok(Catalog::load(p).with_context(|| "config key `local.catalog`")?),
        None => Ok(local::catalog()),
    }
}

/// The provider a configured remote model (OpenAI-compatible or Anthropic) is reached
/// through, exactly as `serve` builds it — for other tools, like the collector.
pub fn remote_provider(m: &ModelConfig) -> anyhow::Result<Arc<dyn Provider>> {
    make_provider(m, None).with_context(|| format!("model `{}`: the library's models are collected directly", m.id))
}

fn make_provider(m: &ModelConfig, local: Option<&Arc<dyn Provider>>) -> anyhow::Result<Arc<dyn Provider>> {
    let key = |env: &Option<String>| env.as_ref().and_then(|v| std::env::var(v).ok());
    let connect = Duration::from_millis(m.connect_timeout_ms);
    Ok(match &m.endpoint {
        Endpoint::Openai { base_url, api_key_env } => {
            Arc::new(OpenAiCompatProvider::new(base_url, key(api_key_env), connect)?)
        }
        Endpoint::Anthropic { base_url, api_key_env } => {
            Arc::new(AnthropicProvider::new(base_url, key(api_key_env), connect)?)
        }
        Endpoint::Local => local.cloned().ok_or_else(|| anyhow::anyhow!("local provider unavailable"))?,
    })
}
