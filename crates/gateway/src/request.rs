//! Turns a raw `/v1/chat/completions` body into a validated request, or a 400 that says
//! exactly which field is wrong (`messages[2].role: ...`). Bodies are parsed by hand from
//! bytes rather than by an extractor so that invalid UTF-8, wrong types and missing
//! fields all get OpenAI-shaped errors.

use crate::error::ApiError;
use conductor_providers::openai_wire::ChatCompletionRequest;
use conductor_providers::{ChatMessage, ChatRequest, Role};
use serde_json::Value;

/// Longest `stop` list OpenAI accepts.
const MAX_STOP: usize = 4;

/// A chat request that passed validation: what providers are sent, plus how the client
/// wants the answer delivered and routed.
#[derive(Debug, Clone)]
pub struct ChatInput {
    /// `model` is still the name the client asked for (`auto`, `auto:<policy>` or an id).
    pub request: ChatRequest,
    pub stream: bool,
    pub include_usage: bool,
    /// The raw `conductor` routing knobs, validated later by the router.
    pub knobs: Option<Value>,
}

impl ChatInput {
    /// The text the router looks at: the last user message (what is being asked now),
    /// with earlier turns as context when there is no user message.
    pub fn routing_text(&self) -> String {
        let messages = &self.request.messages;
        messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.clone())
            .unwrap_or_else(|| messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n"))
    }

    /// Total characters of the conversation (for token estimates).
    pub fn prompt_bytes(&self) -> usize {
        self.request.messages.iter().map(|m| m.content.len()).sum()
    }
}

pub fn parse_chat(body: &[u8]) -> Result<ChatInput, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("invalid_body", "request body is empty; expected a JSON object"));
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request("invalid_body", format!("request body is not valid UTF-8 (at byte {})", e.valid_up_to()))
    })?;
    let de = &mut serde_json::Deserializer::from_str(text);
    let req: ChatCompletionRequest = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = if path == "." || path.is_empty() {
            format!("invalid request body: {inner}")
        } else {
            format!("invalid value for `{path}`: {inner}")
        };
        let mut err = ApiError::bad_request("invalid_body", msg);
        if path != "." && !path.is_empty() {
            err = err.with_param(path);
        }
        err
    })?;
    validate(req)
}

fn validate(req: ChatCompletionRequest) -> Result<ChatInput, ApiError> {
    let bad = |param: &str, msg: String| Err(ApiError::bad_request("invalid_value", msg).with_param(param));
    if req.model.trim().is_empty() {
        return bad("model", "`model` must be a model id or \"auto\"".into());
    }
    if req.messages.is_empty() {
        return bad("messages", "`messages` must contain at least one message".into());
    }
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        let Some(role) = Role::parse(&m.role) else {
            return bad(
                &format!("messages[{i}].role"),
                format!(
                    "messages[{i}].role \"{}\" is not supported; use system, developer, user or assistant",
                    m.role.chars().take(40).collect::<String>()
                ),
            );
        };
        let content = match &m.content {
            None => String::new(),
            Some(c) => match c.to_text() {
                Ok(t) => t,
                Err(msg) => return bad(&format!("messages[{i}].content"), format!("messages[{i}].content: {msg}")),
            },
        };
        messages.push(ChatMessage { role, content });
    }
    if !messages.iter().any(|m| m.role == Role::User) {
        return bad("messages", "`messages` must contain at least one user message".into());
    }
    if let Some(t) = req.temperature {
        if !(0.0..=2.0).contains(&t) {
            return bad("temperature", format!("`temperature` must be between 0 and 2, got {t}"));
        }
    }
    if let Some(p) = req.top_p {
        if !(p > 0.0 && p <= 1.0) {
            return bad("top_p", format!("`top_p` must be in (0, 1], got {p}"));
        }
    }
    let max_tokens = req.max_completion_tokens.or(req.max_tokens);
    if max_tokens == Some(0) {
        return bad("max_tokens", "`max_tokens` must be at least 1".into());
    }
    if let Some(n) = req.n {
        if n != 1 {
            return bad("n", "only `n = 1` is supported".into());
        }
    }
    let stop = req.stop.map(|s| s.into_vec()).unwrap_or_default();
    if stop.len() > MAX_STOP {
        return bad("stop", format!("`stop` may hold at most {MAX_STOP} sequences"));
    }
    if stop.iter().any(|s| s.is_empty()) {
        return bad("stop", "`stop` sequences must be non-empty".into());
    }
    let stream = req.stream.unwrap_or(false);
    let include_usage = stream && req.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
    if let Some(k) = &req.conductor {
        if !k.is_object() && !k.is_null() {
            return bad("conductor", "`conductor` must be an object of routing options".into());
        }
    }
    Ok(ChatInput {
        request: ChatRequest {
            model: req.model,
            messages,
            max_tokens,
            temperature: req.temperature,
            top_p: req.top_p,
            stop,
            seed: req.seed.map(|s| s as u64),
            user: req.user,
        },
        stream,
        include_usage,
        knobs: req.conductor.filter(|v| !v.is_null()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> ApiError {
        parse_chat(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn names_the_bad_field() {
        let e = err(r#"{"model":"auto","messages":[{"role":"user","content":"hi"}],"temperature":"hot"}"#);
        assert_eq!(e.param.as_deref(), Some("temperature"));
        let e = err(r#"{"model":"auto"}"#);
        assert!(e.message.contains("messages"), "{}", e.message);
        let e = err(r#"{"model":"auto","messages":[]}"#);
        assert_eq!(e.param.as_deref(), Some("messages"));
        let e = err(r#"{"model":"auto","messages":[{"role":"wizard","content":"x"}]}"#);
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
        let e = err(r#"{"model":5,"messages":[]}"#);
        assert_eq!(e.param.as_deref(), Some("model"));
        assert!(parse_chat(b"{\"model\":\"a\xff\"}").is_err());
        assert!(parse_chat(b"[1,2]").is_err());
    }

    #[test]
    fn accepts_openai_shapes() {
        let ok = parse_chat(
            br#"{"model":"auto","messages":[{"role":"developer","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"}]}],
                "stop":"\n","max_completion_tokens":5,"stream":true,"stream_options":{"include_usage":true},"seed":1,"logit_bias":{}}"#,
        )
        .unwrap();
        assert_eq!(ok.request.messages[0].role, Role::System);
        assert_eq!(ok.request.messages[1].content, "hi");
        assert_eq!(ok.request.stop, vec!["\n".to_string()]);
        assert_eq!(ok.request.max_tokens, Some(5));
        assert!(ok.include_usage);
    }
}
