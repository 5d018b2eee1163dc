//! Provider-neutral request and response types: what the gateway hands a provider and
//! what it gets back, independent of any wire format.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// Parses an OpenAI role name (`developer`, the newer name, means system); `None` for
    /// roles conductor cannot route (e.g. `tool`).
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "system" | "developer" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into() }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }
}

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
    /// Sampling controls beyond temperature and top_p, and what to return with the text.
    pub extras: Extras,
    /// What the request needs beyond the fields above, as capability names (`tools`,
    /// `response_format`, `message.name`, ...); a provider must support each (see
    /// [`crate::Provider::supports`]).
    pub requires: Vec<Requirement>,
    /// The client's request body as sent (minus conductor's own fields), for
    /// OpenAI-compatible upstreams, which get every field unchanged.
    pub passthrough: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
}

/// Generation controls a provider must honour when it claims the matching capability
/// (`frequency_penalty`, `logit_bias`, `logprobs`, `response_format`, ...). Defaults mean off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extras {
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
    /// Token id → bias added to its logit (−100 bans, +100 forces).
    pub logit_bias: Vec<(u32, f32)>,
    /// Return each generated token's log-probability, with this many alternatives.
    pub logprobs: Option<usize>,
    pub response_format: Option<ResponseFormat>,
}

/// Constrained output (`response_format`).
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    /// Any JSON object.
    JsonObject,
    /// JSON matching this JSON Schema.
    JsonSchema(serde_json::Value),
}

/// One generated token's log-probability and its most likely alternatives, in OpenAI's
/// `logprobs.content[]` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f32,
    #[serde(default)]
    pub bytes: Option<Vec<u8>>,
    #[serde(default)]
    pub top_logprobs: Vec<TopLogprob>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopLogprob {
    pub token: String,
    pub logprob: f32,
    #[serde(default)]
    pub bytes: Option<Vec<u8>>,
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
    /// Per-token log-probabilities, when asked for.
    pub logprobs: Option<Vec<TokenLogprob>>,
}

/// One step of a streamed completion.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A piece of generated text, with the log-probabilities of the tokens it came from
    /// when they were asked for.
    Delta { text: String, logprobs: Option<Vec<TokenLogprob>> },
    /// The end: why it stopped and, when the upstream reported it, token usage.
    Finish { finish_reason: String, usage: Option<Usage> },
}
