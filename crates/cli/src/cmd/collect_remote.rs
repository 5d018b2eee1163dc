//! The collector's way to models a gateway config declares (OpenAI-compatible servers,
//! Anthropic): one blocking call per answer on a shared tokio runtime, built by the same
//! code `serve` uses, with retries on connection errors, 5xx and 429 — honouring the
//! upstream's Retry-After, else backing off exponentially with jitter.

use conductor_evals::collect::{Answer, Answerer};
use conductor_gateway::config::ModelConfig;
use conductor_providers::{ChatMessage, ChatRequest, Provider, ProviderError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Attempts per answer beyond the first, on retryable errors.
const RETRIES: u32 = 6;
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

struct Remote {
    provider: Arc<dyn Provider>,
    upstream_model: String,
    total_timeout: Duration,
    /// OpenAI-compatible upstreams may return token log-probabilities; Anthropic cannot.
    logprobs: bool,
}

pub struct ProviderAnswerer {
    rt: tokio::runtime::Runtime,
    models: HashMap<String, Remote>,
}

impl ProviderAnswerer {
    /// Every remote model of the config (library models are collected directly).
    pub fn new(models: &[ModelConfig]) -> anyhow::Result<ProviderAnswerer> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let mut out = HashMap::new();
        for m in models.iter().filter(|m| m.endpoint != conductor_gateway::config::Endpoint::Local) {
            // reqwest clients must be made inside a runtime.
            let provider = rt.block_on(async { conductor_gateway::remote_provider(m) })?;
            out.insert(
                m.id.clone(),
                Remote {
                    provider,
                    upstream_model: m.upstream_model.clone().unwrap_or_else(|| m.id.clone()),
                    total_timeout: Duration::from_millis(m.total_timeout_ms),
                    logprobs: matches!(m.endpoint, conductor_gateway::config::Endpoint::Openai { .. }),
                },
            );
        }
        Ok(ProviderAnswerer { rt, models: out })
    }

    pub fn serves(&self, model: &str) -> bool {
        self.models.contains_key(model)
    }
}

/// The pause before retry `attempt` (0-based): the upstream's hint, else 0.5 s · 2^attempt
/// with ±50% jitter, at most 30 s.
fn pause(e: &ProviderError, attempt: u32) -> Duration {
    let hint = match e {
        ProviderError::Status { retry_after: Some(d), .. } => Some(*d),
        ProviderError::Overloaded { retry_after, .. } => Some(*retry_after),
        _ => None,
    };
    hint.unwrap_or_else(|| {
        let base = BACKOFF_BASE.saturating_mul(1 << attempt.min(8)).min(BACKOFF_MAX);
        base.mul_f64(0.5 + rand_unit())
    })
}

/// A cheap uniform number in [0, 1) for jitter (no need for a seeded generator here).
fn rand_unit() -> f64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    (nanos % 1000) as f64 / 1000.0
}

impl Answerer for ProviderAnswerer {
    fn check(&self, model: &str) -> anyhow::Result<()> {
        anyhow::ensure!(self.serves(model), "model `{model}` is not a remote model of the config");
        Ok(())
    }

    fn answer(
        &self,
        model: &str,
        prompt: &str,
        max_tokens: usize,
        seed: u64,
        stop: &AtomicBool,
    ) -> anyhow::Result<Answer> {
        let m = self.models.get(model).ok_or_else(|| anyhow::anyhow!("model `{model}` is not in the config"))?;
        let mut attempt = 0;
        loop {
            if stop.load(Ordering::SeqCst) {
                return Ok(Answer {
                    text: String::new(),
                    prompt_tokens: 0,
                    completion_tokens: 0,
                    finish_reason: "cancelled".into(),
                    cancelled: true,
                    logprobs: None,
                });
            }
            let req = ChatRequest {
                model: m.upstream_model.clone(),
                messages: vec![ChatMessage::user(prompt)],
                max_tokens: Some(max_tokens as u32),
                temperature: Some(0.0),
                seed: Some(seed),
                extras: conductor_providers::Extras { logprobs: m.logprobs.then_some(0), ..Default::default() },
                ..Default::default()
            };
            let call = m.provider.complete(req);
            let result = match self.rt.block_on(async { tokio::time::timeout(m.total_timeout, call).await }) {
                Ok(r) => r,
                Err(_) => Err(ProviderError::Timeout(format!("no answer within {:?}", m.total_timeout))),
            };
            match result {
                Ok(r) => {
                    return Ok(Answer {
                        text: r.text,
                        prompt_tokens: r.usage.prompt_tokens as usize,
                        completion_tokens: r.usage.completion_tokens as usize,
                        finish_reason: r.finish_reason,
                        cancelled: false,
                        // An upstream may ignore the request: then there are none.
                        logprobs: r.logprobs.map(|l| l.iter().map(|t| t.logprob).collect()),
                    });
                }
                Err(e) if e.is_retryable() && attempt < RETRIES => {
                    let wait = pause(&e, attempt);
                    eprintln!("{model}: {e}; retrying in {:.1} s", wait.as_secs_f64());
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                Err(e) => anyhow::bail!("{model}: {e}"),
            }
        }
    }
}
