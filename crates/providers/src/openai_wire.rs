//! The OpenAI chat-completions wire format, written once. The OpenAI-compatible provider
//! serialises requests and parses responses with these types, and the gateway's own API
//! accepts and emits the same types, so conductor in front of conductor just works.
//!
//! Response types are lenient when parsing (missing fields default) because real
//! OpenAI-compatible servers differ in what they send.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /v1/chat/completions` body. Unknown fields are ignored, as OpenAI's SDKs send
/// fields conductor has no use for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<WireMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// conductor's routing knobs (`{"policy": "cost", "lambda": 0.3, ...}`); ignored by
    /// other servers, never forwarded upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conductor: Option<Value>,
    /// Every other field (`tools`, `response_format`, `logprobs`, ...): conductor does not
    /// interpret them, so they are forwarded to upstreams that understand them and refused
    /// by models that cannot honour them — never silently dropped.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
}

/// `stop` may be one string or a list of strings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StopSpec {
    One(String),
    Many(Vec<String>),
}

impl StopSpec {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            StopSpec::One(s) => vec![s],
            StopSpec::Many(v) => v,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireMessage {
    pub role: String,
    /// A string, a list of content parts (only `text` parts are understood) or null.
    #[serde(default)]
    pub content: Option<MessageContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An assistant turn's function calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<WireToolCall>>,
    /// The call a `tool` turn answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Other message fields (`refusal`, `audio`, ...), kept like the request's.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl From<&crate::ChatMessage> for WireMessage {
    /// A neutral message on the wire; an assistant turn that only calls tools has `content: null`.
    fn from(m: &crate::ChatMessage) -> Self {
        WireMessage {
            role: m.role.as_str().to_string(),
            content: (!m.content.is_empty() || m.tool_calls.is_empty())
                .then(|| MessageContent::Text(m.content.clone())),
            name: None,
            tool_calls: (!m.tool_calls.is_empty()).then(|| m.tool_calls.iter().map(Into::into).collect()),
            tool_call_id: m.tool_call_id.clone(),
            extra: Default::default(),
        }
    }
}

/// One function call in a message or response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function")]
    pub kind: String,
    pub function: WireFunction,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireFunction {
    pub name: String,
    /// JSON text of the arguments object.
    #[serde(default)]
    pub arguments: String,
}

fn function() -> String {
    "function".into()
}

impl From<&crate::ToolCall> for WireToolCall {
    fn from(c: &crate::ToolCall) -> Self {
        WireToolCall {
            id: c.id.clone(),
            kind: function(),
            function: WireFunction { name: c.name.clone(), arguments: c.arguments.clone() },
        }
    }
}

impl From<WireToolCall> for crate::ToolCall {
    fn from(c: WireToolCall) -> Self {
        crate::ToolCall { id: c.id, name: c.function.name, arguments: c.function.arguments }
    }
}

/// A piece of a streamed tool call (`choices[].delta.tool_calls[]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WireToolCallDelta {
    #[serde(default)]
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<WireFunctionDelta>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WireFunctionDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// `tools` of a request, typed; `Err` says which entry is wrong and how.
pub fn parse_tools(v: &Value) -> Result<Vec<crate::ToolSpec>, (String, String)> {
    let Value::Array(items) = v else {
        return Err(("tools".into(), "`tools` must be a list of {\"type\": \"function\", \"function\": {...}}".into()));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, t) in items.iter().enumerate() {
        let at = format!("tools[{i}]");
        if t.get("type").and_then(Value::as_str) != Some("function") {
            return Err((format!("{at}.type"), format!("`{at}.type` must be \"function\"")));
        }
        let f = t
            .get("function")
            .filter(|f| f.is_object())
            .ok_or_else(|| (format!("{at}.function"), format!("`{at}.function` must be an object with a `name`")))?;
        let spec: crate::ToolSpec = serde_json::from_value(f.clone())
            .map_err(|e| (format!("{at}.function"), format!("`{at}.function`: {e}")))?;
        let valid_name = !spec.name.is_empty()
            && spec.name.len() <= 64
            && spec.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            return Err((
                format!("{at}.function.name"),
                format!("`{at}.function.name` must be 1-64 letters, digits, underscores or dashes"),
            ));
        }
        if !spec.parameters.is_object() {
            return Err((
                format!("{at}.function.parameters"),
                format!("`{at}.function.parameters` must be a JSON Schema object"),
            ));
        }
        if out.iter().any(|o: &crate::ToolSpec| o.name == spec.name) {
            return Err((format!("{at}.function.name"), format!("two tools are named `{}`", spec.name)));
        }
        out.push(spec);
    }
    Ok(out)
}

/// `tool_choice`, typed: "auto", "none", "required" or `{"type": "function", "function": {"name"}}`.
pub fn parse_tool_choice(v: &Value) -> Result<crate::ToolChoice, String> {
    use crate::ToolChoice;
    match v {
        Value::String(s) if s == "auto" => Ok(ToolChoice::Auto),
        Value::String(s) if s == "none" => Ok(ToolChoice::None),
        Value::String(s) if s == "required" => Ok(ToolChoice::Required),
        Value::Object(_) => {
            v["function"]["name"].as_str().map(|n| ToolChoice::Function(n.to_string())).ok_or_else(|| {
                "`tool_choice` object must be {\"type\": \"function\", \"function\": {\"name\": ...}}".into()
            })
        }
        _ => Err("`tool_choice` must be \"auto\", \"none\", \"required\" or a named function".into()),
    }
}

impl crate::ToolChoice {
    /// OpenAI's wire form.
    pub fn to_openai(&self) -> Value {
        use crate::ToolChoice;
        match self {
            ToolChoice::Auto => Value::from("auto"),
            ToolChoice::None => Value::from("none"),
            ToolChoice::Required => Value::from("required"),
            ToolChoice::Function(n) => serde_json::json!({"type": "function", "function": {"name": n}}),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl MessageContent {
    /// The text of the message; `Err` names the first part type that is not text.
    pub fn to_text(&self) -> Result<String, String> {
        match self {
            MessageContent::Text(s) => Ok(s.clone()),
            MessageContent::Parts(parts) => {
                let mut out = String::new();
                for (i, p) in parts.iter().enumerate() {
                    match (p.kind.as_str(), &p.text) {
                        ("text", Some(t)) => out.push_str(t),
                        ("text", None) => return Err(format!("content part {i} has type 'text' but no `text` field")),
                        (k, _) => return Err(format!("content part type '{k}' is not supported (only 'text')")),
                    }
                }
                Ok(out)
            }
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WireUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
}

impl WireUsage {
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> WireUsage {
        WireUsage { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens }
    }
}

/// Non-streaming response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatCompletionResponse {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub model: String,
    pub choices: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<WireUsage>,
    /// Which model answered and why (conductor only; SDKs keep unknown fields as extras).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conductor: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pub index: u32,
    pub message: ResponseMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub logprobs: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ResponseMessage {
    #[serde(default = "assistant")]
    pub role: String,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<WireToolCall>>,
}

fn assistant() -> String {
    "assistant".into()
}

/// One `data:` payload of a streamed response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    /// Present (and `null` on every other chunk) when `stream_options.include_usage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conductor: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChunkChoice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub delta: Delta,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub logprobs: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<WireToolCallDelta>>,
}

/// OpenAI's error envelope: `{"error": {"message", "type", "code", "param"}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub message: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
}

/// `GET /v1/models` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelObject {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub owned_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<ModelObject>,
}
