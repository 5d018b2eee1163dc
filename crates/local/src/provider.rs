//! The embedded library behind the providers' common trait. Each call starts a generation
//! on the model's engine (loading the model on first use, on a blocking thread) and turns
//! its events into a whole response or a stream. Dropping the future or the stream drops
//! the generation's receiver, and the engine removes the sequence at its next step — that
//! is how cancellation reaches a model, prefill included.

use crate::{ChatModel, Event, GenParams, Library, LocalError, Running};
use conductor_providers::{
    ChatRequest, ChatResponse, EventStream, Provider, ProviderError, StreamEvent, TokenLogprob, Usage,
};
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

fn params(req: &ChatRequest) -> GenParams {
    let d = GenParams::default();
    let x = &req.extras;
    GenParams {
        max_tokens: req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS) as usize,
        temperature: req.temperature.unwrap_or(d.temperature),
        top_p: req.top_p,
        seed: seed(req, &d),
        stop: req.stop.clone(),
        frequency_penalty: x.frequency_penalty,
        presence_penalty: x.presence_penalty,
        logit_bias: x.logit_bias.clone(),
        logprobs: x.logprobs,
        response_format: x.response_format.clone(),
    }
}

fn map_err(e: LocalError) -> ProviderError {
    match e {
        LocalError::PromptTooLong { .. } => {
            ProviderError::InvalidRequest { message: e.to_string(), code: "context_length_exceeded" }
        }
        LocalError::InvalidParams(_) => ProviderError::InvalidRequest { message: e.to_string(), code: "invalid_value" },
        LocalError::Busy { expected_wait, .. } => {
            ProviderError::Overloaded { message: e.to_string(), retry_after: expected_wait }
        }
        LocalError::UnknownModel { .. } | LocalError::MissingFile { .. } | LocalError::BadModelFile { .. } => {
            ProviderError::Unavailable(e.to_string())
        }
        other => ProviderError::Other(other.to_string()),
    }
}

/// Loads the model (first use) and starts the generation, off the async reactor.
async fn start(library: Arc<Library>, req: ChatRequest) -> Result<(Arc<ChatModel>, Running), ProviderError> {
    tokio::task::spawn_blocking(move || {
        let model = library.chat_model(&req.model)?;
        let run = model.start(&req.messages, &params(&req))?;
        Ok::<_, LocalError>((model, run))
    })
    .await
    .map_err(|e| ProviderError::Other(format!("generation task failed: {e}")))?
    .map_err(map_err)
}

fn stopped() -> ProviderError {
    ProviderError::Other("the local model's engine stopped mid-generation".into())
}

impl Provider for LocalProvider {
    fn kind(&self) -> &'static str {
        "local"
    }

    /// The engine honours penalties, logit bias and log-probabilities for every model;
    /// constrained JSON needs the model's `json` capability in the manifest.
    fn supports(&self, model: &str, capability: &str) -> bool {
        match capability {
            "frequency_penalty" | "presence_penalty" | "logit_bias" | "logprobs" | "top_logprobs" => true,
            "response_format" => self.library.spec(model).is_ok_and(|s| s.has_capability("json")),
            _ => false,
        }
    }

    fn complete(&self, req: ChatRequest) -> BoxFuture<'static, Result<ChatResponse, ProviderError>> {
        let lib = self.library.clone();
        let want_logprobs = req.extras.logprobs.is_some();
        async move {
            let (_model, mut run) = start(lib, req).await?;
            let mut text = String::new();
            let mut logprobs: Vec<TokenLogprob> = Vec::new();
            loop {
                match run.next().await {
                    Some(Event::Piece { text: t, logprobs: lp, .. }) => {
                        text.push_str(&t);
                        logprobs.extend(lp);
                    }
                    Some(Event::Done { finish_reason, prompt_tokens, completion_tokens, .. }) => {
                        return Ok(ChatResponse {
                            text,
                            finish_reason: finish_reason.as_str().to_string(),
                            usage: Usage {
                                prompt_tokens: prompt_tokens as u64,
                                completion_tokens: completion_tokens as u64,
                            },
                            logprobs: want_logprobs.then_some(logprobs),
                        });
                    }
                    Some(Event::Failed(e)) => return Err(map_err(e)),
                    None => return Err(stopped()),
                }
            }
        }
        .boxed()
    }

    fn stream(&self, req: ChatRequest) -> BoxFuture<'static, Result<EventStream, ProviderError>> {
        let lib = self.library.clone();
        let want_logprobs = req.extras.logprobs.is_some();
        async move {
            let (model, run) = start(lib, req).await?;
            // The model stays referenced while its stream lives.
            let s = futures::stream::unfold(Some((model, run)), move |state| async move {
                let (model, mut run) = state?;
                let item = match run.next().await {
                    Some(Event::Piece { text, logprobs, .. }) => {
                        Ok(StreamEvent::Delta { text, logprobs: want_logprobs.then_some(logprobs) })
                    }
                    Some(Event::Done { finish_reason, prompt_tokens, completion_tokens, .. }) => {
                        let usage =
                            Usage { prompt_tokens: prompt_tokens as u64, completion_tokens: completion_tokens as u64 };
                        return Some((
                            Ok(StreamEvent::Finish {
                                finish_reason: finish_reason.as_str().to_string(),
                                usage: Some(usage),
                            }),
                            None,
                        ));
                    }
                    Some(Event::Failed(e)) => return Some((Err(map_err(e)), None)),
                    None => return Some((Err(stopped()), None)),
                };
                Some((item, Some((model, run))))
            });
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
