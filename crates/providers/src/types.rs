//! Provider-neutral request and response types: what the gateway hands a provider and
//! what it gets back, independent of any wire format.

use serde::{Deserialize, Serialize};

/// Who said a message. `developer` (newer OpenAI name) maps to [`Role::System`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// Parses an OpenAI role name; `None` for roles conductor cannot route (e.g. `tool`).
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

/// A chat completion request as a provider sees it. `model` is the provider's own name
/// for the model (the upstream model name, or the library id for local models).
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Vec<String>,
    pub seed: Option<u64>,
    pub user: Option<String>,
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
