//! Embedded local models (`conductor-local`): GGUF models running on this machine's CPU.
//!
//! Generation is blocking and a model runs one request at a time, so each call runs on
//! tokio's blocking pool; tokens travel to the async side through a bounded channel.
//! When the receiver goes away (client disconnected, timeout) the token callback returns
//! `false` and the model stops at the next token: that is how cancellation reaches it.

use crate::{ChatRequest, ChatResponse, EventStream, Provider, ProviderError, StreamEvent, Usage};
use conductor_local::{GenParams, Library, LocalError};
use futures::future::BoxFuture;
use futures::FutureExt;
use std::sync::Arc;

/// Tokens to generate when the client sets no limit (the models are small; long
/// rambling answers only cost time).
pub const DEFAULT_MAX_TOKENS: u32 = 512;

/// All models of one local library.
pub struct LocalProvider {
    library: Arc<Library>,
}

impl LocalProvider {
    pub fn new(library: Arc<Library>) -> LocalProvider {
        LocalProvider { library }
    }

    pub fn library(&self) -> &Arc<Library> {
        &self.library
    }
}

fn to_local(req: &ChatRequest) -> (Vec<conductor_local::ChatMessage>, GenParams) {
    let messages = req.messages.clone();
    let defaults = GenParams::default();
    // `..defaults` keeps this compiling if the library grows new knobs.
    #[allow(clippy::needless_update)]
    let params = GenParams {
        max_tokens: req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS) as usize,
        temperature: req.temperature.unwrap_or(defaults.temperature),
        top_p: req.top_p,
        seed: seed(req, &defaults),
        stop: req.stop.clone(),
        ..defaults
    };
    (messages, params)
}

/// The client's seed; without one, sampling (temperature > 0) draws a fresh seed per
/// request — a fixed default would give every client the same "random" answer — and greedy
/// decoding keeps the library's fixed seed (it does not use it).
fn seed(req: &ChatRequest, defaults: &GenParams) -> u64 {
    match req.seed {
        Some(s) => s,
        None if req.temperature.unwrap_or(defaults.temperature) > 0.0 => rand::random(),
        None => defaults.seed,
    }
}

fn map_err(e: LocalError) -> ProviderError {
    match e {
        LocalError::PromptTooLong { .. } => {
            ProviderError::InvalidRequest { message: e.to_string(), code: "context_length_exceeded" }
        }
        LocalError::InvalidParams(_) => ProviderError::InvalidRequest { message: e.to_string(), code: "invalid_value" },
        LocalError::UnknownModel { .. } | LocalError::MissingFile { .. } | LocalError::BadModelFile { .. } => {
            ProviderError::Unavailable(e.to_string())
        }
        other => ProviderError::Other(other.to_string()),
    }
}

impl Provider for LocalProvider {
    fn kind(&self) -> &'static str {
        "local"
    }

    /// The embedded engine honours the core chat fields only.
    fn supports(&self, _capability: &str) -> bool {
        false
    }

    fn complete(&self, req: ChatRequest) -> BoxFuture<'static, Result<ChatResponse, ProviderError>> {
        let lib = self.library.clone();
        async move {
            // A dropped future must stop the model too: a guard flips this flag on drop.
            let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
            struct Guard(Arc<std::sync::atomic::AtomicBool>);
            impl Drop for Guard {
                fn drop(&mut self) {
                    self.0.store(false, std::sync::atomic::Ordering::Relaxed);
                }
            }
            let _guard = Guard(alive.clone());
            let task = tokio::task::spawn_blocking(move || {
                let model = lib.chat_model(&req.model).map_err(map_err)?;
                let (messages, params) = to_local(&req);
                let mut on_token = |_: &str| alive.load(std::sync::atomic::Ordering::Relaxed);
                model.generate(&messages, &params, &mut on_token).map_err(map_err)
            });
            let g = task.await.map_err(|e| ProviderError::Other(format!("generation task failed: {e}")))??;
            Ok(ChatResponse {
                text: g.text,
                finish_reason: g.finish_reason.as_str().to_string(),
                usage: Usage { prompt_tokens: g.prompt_tokens as u64, completion_tokens: g.completion_tokens as u64 },
            })
        }
        .boxed()
    }

    fn stream(&self, req: ChatRequest) -> BoxFuture<'static, Result<EventStream, ProviderError>> {
        let lib = self.library.clone();
        async move {
            // Load (or fetch the shared) model first so a missing model fails the call itself.
            let model = {
                let lib = lib.clone();
                let id = req.model.clone();
                tokio::task::spawn_blocking(move || lib.chat_model(&id))
                    .await
                    .map_err(|e| ProviderError::Other(e.to_string()))?
                    .map_err(map_err)?
            };
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<StreamEvent, ProviderError>>(256);
            tokio::task::spawn_blocking(move || {
                let (messages, params) = to_local(&req);
                let tx2 = tx.clone();
                let mut on_token = |piece: &str| {
                    if piece.is_empty() {
                        return !tx2.is_closed();
                    }
                    tx2.blocking_send(Ok(StreamEvent::Delta(piece.to_string()))).is_ok()
                };
                let result = model.generate(&messages, &params, &mut on_token);
                let last = match result {
                    Ok(g) => Ok(StreamEvent::Finish {
                        finish_reason: g.finish_reason.as_str().to_string(),
                        usage: Some(Usage {
                            prompt_tokens: g.prompt_tokens as u64,
                            completion_tokens: g.completion_tokens as u64,
                        }),
                    }),
                    Err(e) => Err(map_err(e)),
                };
                let _ = tx.blocking_send(last);
            });
            let s = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|ev| (ev, rx)) });
            Ok(Box::pin(s) as EventStream)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_without_a_seed_draws_a_fresh_one() {
        let d = GenParams::default();
        let warm = ChatRequest { temperature: Some(0.8), ..Default::default() };
        let seeds: std::collections::HashSet<u64> = (0..8).map(|_| seed(&warm, &d)).collect();
        assert!(seeds.len() > 1, "every sampled request gets its own seed");
        assert_eq!(seed(&ChatRequest { seed: Some(7), ..warm.clone() }, &d), 7);
        assert_eq!(seed(&ChatRequest::default(), &d), d.seed, "greedy keeps the fixed seed");
    }
}
