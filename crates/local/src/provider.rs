//! The embedded library behind the providers' common trait. Each call starts a generation
//! on the model's engine (loading the model on first use, on a blocking thread) and turns
//! its events into a whole response or a stream. Dropping the future or the stream drops
//! the generation's receiver, and the engine removes the sequence at its next step — that
//! is how cancellation reaches a model, prefill included.

use crate::tool_calls::{BadToolCall, Parsed, ToolCallParser};
use crate::{ChatModel, Event, FinishReason, GenParams, Library, LocalError, Running};
use conductor_providers::{
    ChatRequest, ChatResponse, EventStream, Provider, ProviderError, StreamEvent, TokenLogprob, ToolChoice, Usage,
};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
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
        tools: req.tools.clone(),
        tool_choice: req.tool_choice.clone(),
        parallel_tool_calls: req.parallel_tool_calls,
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

fn bad_call(model: &str, e: BadToolCall) -> ProviderError {
    ProviderError::BadResponse(format!("{model}: {e}"))
}

/// Parses tool calls out of the text when the request offered tools.
fn parser(req: &ChatRequest) -> Option<ToolCallParser> {
    (!req.tools.is_empty() && req.tool_choice != Some(ToolChoice::None)).then(ToolCallParser::new)
}

/// OpenAI's finish reason: `tool_calls` when the turn ended in calls.
fn finish(reason: FinishReason, called: bool) -> String {
    if called && reason == FinishReason::Stop {
        "tool_calls".into()
    } else {
        reason.as_str().to_string()
    }
}

fn stopped() -> ProviderError {
    ProviderError::Other("the local model's engine stopped mid-generation".into())
}

impl Provider for LocalProvider {
    fn kind(&self) -> &'static str {
        "local"
    }

    /// The engine honours penalties, logit bias and log-probabilities for every model;
    /// constrained JSON and tool calls need the model's `json` / `tools` capability in
    /// the manifest (a chat template that renders tools).
    fn supports(&self, model: &str, capability: &str) -> bool {
        match capability {
            "frequency_penalty" | "presence_penalty" | "logit_bias" | "logprobs" | "top_logprobs" => true,
            "response_format" => self.library.spec(model).is_ok_and(|s| s.has_capability("json")),
            "tools" => self.library.spec(model).is_ok_and(|s| s.has_capability("tools")),
            _ => false,
        }
    }

    fn complete(&self, req: ChatRequest) -> BoxFuture<'static, Result<ChatResponse, ProviderError>> {
        let lib = self.library.clone();
        let want_logprobs = req.extras.logprobs.is_some();
        let mut parser = parser(&req);
        let id = req.model.clone();
        async move {
            let (_model, mut run) = start(lib, req).await?;
            let mut raw = String::new();
            let mut logprobs: Vec<TokenLogprob> = Vec::new();
            loop {
                match run.next().await {
                    Some(Event::Piece { text: t, logprobs: lp, .. }) => {
                        raw.push_str(&t);
                        logprobs.extend(lp);
                    }
                    Some(Event::Done { finish_reason, prompt_tokens, completion_tokens, .. }) => {
                        let (mut text, mut tool_calls) = (String::new(), Vec::new());
                        match parser.as_mut() {
                            None => text = raw,
                            Some(p) => {
                                let mut parsed = p.feed(&raw).map_err(|e| bad_call(&id, e))?;
                                let cut_off = finish_reason == FinishReason::Length;
                                parsed.extend(p.finish(cut_off).map_err(|e| bad_call(&id, e))?);
                                for piece in parsed {
                                    match piece {
                                        Parsed::Text(t) => text.push_str(&t),
                                        Parsed::Call(c) => tool_calls.push(c),
                                    }
                                }
                            }
                        }
                        return Ok(ChatResponse {
                            text,
                            finish_reason: finish(finish_reason, !tool_calls.is_empty()),
                            tool_calls,
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
        let parser = parser(&req);
        let id = req.model.clone();
        async move {
            let (model, run) = start(lib, req).await?;
            // The model stays referenced while its stream lives.
            let st = Streaming { model, run, parser, id, calls: 0, want_logprobs };
            let s = futures::stream::unfold(Some(st), |state| async move {
                let mut st = state?;
                let events = st.next().await;
                let end = events.iter().any(|e| matches!(e, Err(_) | Ok(StreamEvent::Finish { .. })));
                Some((futures::stream::iter(events), (!end).then_some(st)))
            })
            .flatten();
            Ok(Box::pin(s) as EventStream)
        }
        .boxed()
    }
}

/// A local generation being streamed, its text run through the tool-call parser.
struct Streaming {
    /// Kept referenced while its stream lives.
    #[allow(dead_code)]
    model: Arc<ChatModel>,
    run: Running,
    parser: Option<ToolCallParser>,
    id: String,
    calls: u32,
    want_logprobs: bool,
}

impl Streaming {
    /// The events of the engine's next event: pieces of text and tool calls, or the end
    /// (a finish or an error, always last).
    async fn next(&mut self) -> Vec<Result<StreamEvent, ProviderError>> {
        match self.run.next().await {
            Some(Event::Piece { text, logprobs, .. }) => {
                let logprobs = self.want_logprobs.then_some(logprobs);
                match self.parser.as_mut() {
                    None => vec![Ok(StreamEvent::Delta { text, logprobs })],
                    Some(p) => match p.feed(&text) {
                        Ok(parsed) => self.events(parsed),
                        Err(e) => vec![Err(bad_call(&self.id, e))],
                    },
                }
            }
            Some(Event::Done { finish_reason, prompt_tokens, completion_tokens, .. }) => {
                let mut out = match self.parser.as_mut().map(|p| p.finish(finish_reason == FinishReason::Length)) {
                    None => vec![],
                    Some(Ok(parsed)) => self.events(parsed),
                    Some(Err(e)) => return vec![Err(bad_call(&self.id, e))],
                };
                let usage = Usage { prompt_tokens: prompt_tokens as u64, completion_tokens: completion_tokens as u64 };
                out.push(Ok(StreamEvent::Finish {
                    finish_reason: finish(finish_reason, self.calls > 0),
                    usage: Some(usage),
                }));
                out
            }
            Some(Event::Failed(e)) => vec![Err(map_err(e))],
            None => vec![Err(stopped())],
        }
    }

    /// Parsed pieces as stream events; a call goes out whole, in one piece.
    fn events(&mut self, parsed: Vec<Parsed>) -> Vec<Result<StreamEvent, ProviderError>> {
        parsed
            .into_iter()
            .map(|p| match p {
                Parsed::Text(text) => Ok(StreamEvent::Delta { text, logprobs: None }),
                Parsed::Call(c) => {
                    self.calls += 1;
                    Ok(StreamEvent::ToolCall {
                        index: self.calls - 1,
                        id: Some(c.id),
                        name: Some(c.name),
                        arguments: c.arguments,
                    })
                }
            })
            .collect()
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
