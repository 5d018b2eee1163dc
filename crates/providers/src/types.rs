//! Provider-neutral request and response types: what the gateway hands a provider and
//! what it gets back, independent of any wire format.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Roles and messages are the library's own types, shared by every provider.
pub use conductor_local::{ChatMessage, Role};

/// A chat completion request as a provider sees it. `model` is the provider's own name
/// for the model (the upstream model name, or the library id for local models).
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    /// The completion limit the client set (`max_tokens` or `max_completion_tokens`);
    /// `None`: the provider's own default — nothing is invented for upstreams.
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Vec<String>,
    pub seed: Option<u64>,
    pub user: Option<String>,
    /// What the request needs beyond the fields above, as capability names (`tools`,
    /// `response_format`, `message.name`, ...); a provider must support each (see
    /// [`crate::Provider::supports`]).
    pub requires: Vec<Requirement>,
    /// The client's request body as sent (minus conductor's own fields), for
    /// OpenAI-compatible upstreams, which get every field unchanged.
    pub passthrough: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
}

/// One thing a request asks for beyond plain chat: where it was asked (`tools`,
/// `messages[2].name`) and the capability a provider needs to honour it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The request field, as the client would recognise it.
    pub field: String,
    /// The capability (`tools`, `response_format`, `message.name`, ...).
    pub capability: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// A whole completion.
#[derive(Debug, Clone)]
pub struct ChatResponse {
    pub text: String,
    /// OpenAI vocabulary: `stop`, `length`, `content_filter`, ...
    pub finish_reason: String,
    pub usage: Usage,
}

/// One step of a streamed completion.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A piece of generated text.
    Delta(String),
    /// The end: why it stopped and, when the upstream reported it, token usage.
    Finish { finish_reason: String, usage: Option<Usage> },
}
