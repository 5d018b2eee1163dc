//! Provider-neutral request and response types: what the gateway hands a provider and
//! what it gets back, independent of any wire format.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Who said a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    #[default]
    User,
    Assistant,
    /// A tool's result, answering one of the assistant's tool calls.
    Tool,
}

impl Role {
    /// Parses an OpenAI role name (`developer`, the newer name, means system).
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "system" | "developer" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            "tool" => Some(Role::Tool),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// The functions an assistant turn called (OpenAI's `tool_calls`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The call a `tool` turn answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into(), ..Default::default() }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
    /// A tool's result for the call `id`.
    pub fn tool(id: impl Into<String>, content: impl Into<String>) -> Self {
        Self { role: Role::Tool, content: content.into(), tool_call_id: Some(id.into()), ..Default::default() }
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
    /// Functions the model may call (empty: plain chat).
    pub tools: Vec<ToolSpec>,
    /// Whether and which tool the model must call; `None` is the provider's default (auto).
    pub tool_choice: Option<ToolChoice>,
    /// `Some(false)`: at most one call per turn.
    pub parallel_tool_calls: Option<bool>,
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

/// A function the model may call, as OpenAI describes one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments object.
    #[serde(default = "empty_object")]
    pub parameters: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({"type": "object", "properties": {}})
}

impl ToolSpec {
    /// OpenAI's `{"type": "function", "function": {...}}` form (also what chat templates expect).
    pub fn to_openai(&self) -> serde_json::Value {
        serde_json::json!({"type": "function", "function": self})
    }
}

/// OpenAI's `tool_choice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    /// Answer in text; call nothing.
    None,
    /// Call at least one tool.
    Required,
    /// Call this function.
    Function(String),
}

/// One function call by the model. `arguments` is JSON text, as in OpenAI's API: a
/// provider only hands out calls whose arguments parsed as a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

impl ToolCall {
    /// A fresh call id in OpenAI's style (`call_` + 24 hex digits).
    pub fn new_id() -> String {
        format!("call_{}", &uuid::Uuid::new_v4().simple().to_string()[..24])
    }

    /// OpenAI's `{"id", "type": "function", "function": {"name", "arguments"}}` form.
    pub fn to_openai(&self) -> serde_json::Value {
        serde_json::json!({"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}})
    }
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
    /// Functions the model called (`finish_reason` is then `tool_calls`).
    pub tool_calls: Vec<ToolCall>,
}

/// One step of a streamed completion.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A piece of generated text, with the log-probabilities of the tokens it came from
    /// when they were asked for.
    Delta { text: String, logprobs: Option<Vec<TokenLogprob>> },
    /// A piece of the `index`-th tool call: its id and name come with the first piece,
    /// its arguments' JSON text in one or more pieces.
    ToolCall { index: u32, id: Option<String>, name: Option<String>, arguments: String },
    /// The end: why it stopped and, when the upstream reported it, token usage.
    Finish { finish_reason: String, usage: Option<Usage> },
}
