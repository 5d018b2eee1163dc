//! conductor-providers: every way conductor can get a chat completion, behind one trait.
//!
//! A [`Provider`] takes a provider-neutral [`ChatRequest`] and returns either a whole
//! [`ChatResponse`] or a stream of [`StreamEvent`]s. Cancellation is by dropping: dropping
//! the future or the stream stops the upstream call (for local models the generation loop
//! sees the closed channel and stops at the next token). Timeouts, retries and fallback
//! are *not* here: they are policy and live in the gateway, so every provider gets the
//! same behaviour.
//!
//! One file per kind: [`openai_compat`] (OpenAI, vLLM, llama.cpp server, OpenRouter,
//! another conductor) and [`anthropic`] (Messages API). The embedded models' provider lives
//! with the engine in `conductor-local`, so a gateway for remote models only builds
//! without it.
//! The OpenAI wire format lives once in [`openai_wire`] and is shared by the
//! OpenAI-compatible provider and the gateway's own HTTP API.

pub mod anthropic;
pub mod error;
pub mod openai_compat;
pub mod openai_wire;
mod sse;
pub mod types;

pub use error::ProviderError;
pub use types::{
    ChatMessage, ChatRequest, ChatResponse, Extras, Requirement, ResponseFormat, Role, StreamEvent, TokenLogprob,
    ToolCall, ToolChoice, ToolSpec, TopLogprob, Usage,
};

use futures::future::BoxFuture;
use futures::Stream;
use std::pin::Pin;

/// A stream of generation events; ends after [`StreamEvent::Finish`] or an error.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ProviderError>> + Send>>;

/// One upstream kind. Implementations are cheap to share (`Arc<dyn Provider>`).
pub trait Provider: Send + Sync + 'static {
    /// Short kind name for logs and metrics: `"local"`, `"openai"`, `"anthropic"`.
    fn kind(&self) -> &'static str;
    /// Whole completion in one response.
    fn complete(&self, req: ChatRequest) -> BoxFuture<'static, Result<ChatResponse, ProviderError>>;
    /// Streamed completion. The future resolves once the upstream accepted the request
    /// (HTTP headers received / local model loaded); the first token arrives on the stream.
    fn stream(&self, req: ChatRequest) -> BoxFuture<'static, Result<EventStream, ProviderError>>;
    /// Whether this provider honours, for `model` (its own name for it), a capability a
    /// request may need (see [`Requirement`]). The gateway never sends a request to a
    /// model that does not.
    fn supports(&self, model: &str, capability: &str) -> bool;
}

/// The first requirement of `req` that `p` cannot honour for `model`.
pub fn unsupported<'a>(p: &dyn Provider, model: &str, req: &'a [Requirement]) -> Option<&'a Requirement> {
    req.iter().find(|r| !p.supports(model, &r.capability))
}
