//! The models this gateway serves: for each, its catalogue entry (prices, context, tier),
//! the provider that calls it, the upstream's name for it, its limits, and its own
//! circuit breaker and queue. Built once at start-up from the config and the local
//! library.

use crate::config::{Config, Endpoint, ModelConfig};
use crate::reliability::breaker::Breaker;
use crate::reliability::queue::Queue;
use anyhow::Context;
use conductor_core::catalog::{Catalog, ModelEntry};
use conductor_local::Library;
use conductor_providers::anthropic::AnthropicProvider;
use conductor_providers::local::LocalProvider;
use conductor_providers::openai_compat::OpenAiCompatProvider;
use conductor_providers::Provider;
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
}

pub struct Registry {
    models: Vec<Arc<Served>>,
    by_id: HashMap<String, usize>,
    /// Index of the largest model (the "always use the biggest" baseline for savings).
    largest: Option<usize>,
    pub library: Option<Arc<Library>>,
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
        let library = needs_library.then(|| {
            Arc::new(match &cfg.local.models_dir {
                Some(d) => Library::open(d.clone()),
                None => Library::from_env(),
            })
        });
        let local_catalog = local_catalog(cfg)?;
        let local_provider: Option<Arc<dyn Provider>> =
            library.as_ref().map(|l| Arc::new(LocalProvider::new(l.clone())) as Arc<dyn Provider>);

        if let (true, Some(lib)) = (cfg.local.enabled, &library) {
            for id in &cfg.local.models {
                if !lib.chat_ids().contains(id) {
                    anyhow::bail!(
                        "config key `local.models`: unknown library model \"{id}\" (library: {})",
                        lib.chat_ids().join(", ")
                    );
                }
            }
            for spec in lib.specs() {
                let chat = lib.chat_ids().contains(&spec.id);
                let wanted = cfg.local.models.is_empty() || cfg.local.models.contains(&spec.id);
                if !chat || !wanted || !spec.present() || cfg.models.iter().any(|m| m.id == spec.id) {
                    continue;
                }
                let (Some(tier), Some(provider)) = (spec.tier, local_provider.clone()) else { continue };
                let entry =
                    local_catalog.as_ref().and_then(|c| c.get(&spec.id).ok().cloned()).unwrap_or_else(|| ModelEntry {
                        id: spec.id.clone(),
                        provider: "local".into(),
                        input_usd_per_mtok: local_price(spec.params),
                        output_usd_per_mtok: local_price(spec.params),
                        context_length: spec.context_length,
                        tier,
                    });
                models.push(Arc::new(Served {
                    entry,
                    upstream_model: spec.id.clone(),
                    provider,
                    limits: Limits {
                        first_token: Duration::from_millis(cfg.local.first_token_timeout_ms),
                        total: Duration::from_millis(cfg.local.total_timeout_ms),
                        max_retries: 0,
                        default_max_tokens: conductor_providers::local::DEFAULT_MAX_TOKENS,
                    },
                    breaker: breaker(),
                    queue: Queue::new(1, cfg.local.max_queue),
                }));
            }
        }

        for (i, m) in cfg.models.iter().enumerate() {
            let provider =
                make_provider(m, local_provider.as_ref()).with_context(|| format!("config key `models[{i}]`"))?;
            let upstream_model = m.upstream_model.clone().unwrap_or_else(|| m.id.clone());
            if let (Endpoint::Local, Some(lib)) = (&m.endpoint, &library) {
                if !lib.chat_ids().contains(&upstream_model) {
                    anyhow::bail!(
                        "config key `models[{i}].upstream_model`: \"{upstream_model}\" is not a library model ({})",
                        lib.chat_ids().join(", ")
                    );
                }
            }
            models.push(Arc::new(Served {
                entry: ModelEntry {
                    id: m.id.clone(),
                    provider: m.endpoint.kind().to_string(),
                    input_usd_per_mtok: m.input_usd_per_mtok,
                    output_usd_per_mtok: m.output_usd_per_mtok,
                    context_length: m.context_length,
                    tier: m.tier,
                },
                upstream_model,
                provider,
                limits: Limits {
                    first_token: Duration::from_millis(m.first_token_timeout_ms),
                    total: Duration::from_millis(m.total_timeout_ms),
                    max_retries: m.max_retries,
                    default_max_tokens: (m.context_length / 2).clamp(1, 4096) as u32,
                },
                breaker: breaker(),
                queue: Queue::new(m.max_concurrency, m.max_queue),
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

fn local_catalog(cfg: &Config) -> anyhow::Result<Option<Catalog>> {
    let path = match &cfg.local.catalog {
        Some(p) => p.clone(),
        None => {
            let p = conductor_core::install::shipped("catalog/local.toml");
            if !p.is_file() {
                return Ok(None);
            }
            p
        }
    };
    Ok(Some(Catalog::load(&path).with_context(|| "config key `local.catalog`")?))
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
