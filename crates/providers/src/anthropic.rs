//! Anthropic's Messages API (`POST /v1/messages`), translated to and from the neutral
//! types: system messages move to the top-level `system` field, `max_tokens` is required
//! there (defaulted here), stop reasons map to OpenAI's vocabulary, and the event stream
//! (`message_start`, `content_block_delta`, `message_delta`, `message_stop`) becomes
//! deltas plus one finish.

use crate::openai_compat::status_error;
use crate::sse;
use crate::{
    ChatRequest, ChatResponse, EventStream, Provider, ProviderError, Role, StreamEvent, ToolCall, ToolChoice, Usage,
};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;

/// Anthropic requires `max_tokens`; used when the client sets none.
pub const DEFAULT_MAX_TOKENS: u32 = 1024;
const API_VERSION: &str = "2023-06-01";

pub struct AnthropicProvider {
    client: reqwest::Client,
    url: String,
    api_key: Option<String>,
}

impl AnthropicProvider {
    /// `base_url` like `https://api.anthropic.com` (with or without a trailing `/v1`).
    pub fn new(base_url: &str, api_key: Option<String>, connect_timeout: Duration) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ProviderError::Other(e.to_string()))?;
        let base = base_url.trim_end_matches('/').trim_end_matches("/v1");
        Ok(AnthropicProvider { client, url: format!("{base}/v1/messages"), api_key })
    }

    fn send(
        &self,
        req: &ChatRequest,
        stream: bool,
    ) -> impl std::future::Future<Output = Result<reqwest::Response, ProviderError>> + Send + 'static {
        let mut rb =
            self.client.post(&self.url).header("anthropic-version", API_VERSION).json(&request_body(req, stream));
        if let Some(k) = &self.api_key {
            rb = rb.header("x-api-key", k);
        }
        async move {
            let resp = rb.send().await.map_err(ProviderError::from_reqwest)?;
            if resp.status().is_success() {
                Ok(resp)
            } else {
                Err(status_error(resp).await)
            }
        }
    }
}

/// The Messages API body for a neutral request.
pub fn request_body(req: &ChatRequest, stream: bool) -> Value {
    let system: Vec<&str> =
        req.messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.as_str()).collect();
    let mut messages: Vec<Value> = Vec::new();
    for m in req.messages.iter().filter(|m| m.role != Role::System) {
        match m.role {
            // Tool results go back as `tool_result` blocks of a user turn; consecutive
            // results share one turn (the API wants user and assistant to alternate).
            Role::Tool => {
                let block = json!({"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content});
                let last = messages.last_mut();
                match last {
                    Some(l) if l["role"] == "user" && l["content"].is_array() => {
                        if let Some(a) = l["content"].as_array_mut() {
                            a.push(block)
                        }
                    }
                    _ => messages.push(json!({"role": "user", "content": [block]})),
                }
            }
            Role::Assistant if !m.tool_calls.is_empty() => {
                let mut blocks = Vec::new();
                if !m.content.is_empty() {
                    blocks.push(json!({"type": "text", "text": m.content}));
                }
                for c in &m.tool_calls {
                    let input: Value = serde_json::from_str(&c.arguments).unwrap_or_else(|_| json!({}));
                    blocks.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}));
                }
                messages.push(json!({"role": "assistant", "content": blocks}));
            }
            _ => messages.push(json!({"role": m.role.as_str(), "content": m.content})),
        }
    }
    let mut o = serde_json::Map::new();
    o.insert("model".into(), json!(req.model));
    o.insert("max_tokens".into(), json!(req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)));
    o.insert("messages".into(), json!(messages));
    if !system.is_empty() {
        o.insert("system".into(), json!(system.join("\n\n")));
    }
    if let Some(t) = req.temperature {
        // Anthropic's range is [0, 1]; OpenAI's is [0, 2].
        o.insert("temperature".into(), json!(t.min(1.0)));
    }
    if let Some(p) = req.top_p {
        o.insert("top_p".into(), json!(p));
    }
    if !req.stop.is_empty() {
        o.insert("stop_sequences".into(), json!(req.stop));
    }
    if stream {
        o.insert("stream".into(), json!(true));
    }
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
        o.insert("tools".into(), json!(tools));
        let mut choice = match &req.tool_choice {
            None | Some(ToolChoice::Auto) => json!({"type": "auto"}),
            Some(ToolChoice::None) => json!({"type": "none"}),
            Some(ToolChoice::Required) => json!({"type": "any"}),
            Some(ToolChoice::Function(n)) => json!({"type": "tool", "name": n}),
        };
        if req.parallel_tool_calls == Some(false) && choice["type"] != "none" {
            choice["disable_parallel_tool_use"] = json!(true);
        }
        o.insert("tool_choice".into(), choice);
    }
    Value::Object(o)
}

/// Anthropic stop reason → OpenAI finish reason.
pub fn finish_reason(stop_reason: Option<&str>) -> String {
    match stop_reason {
        Some("max_tokens") => "length",
        Some("refusal") => "content_filter",
        Some("tool_use") => "tool_calls",
        _ => "stop",
    }
    .to_string()
}

/// Parses a non-streaming Messages API response.
pub fn parse_response(v: &Value) -> Result<ChatResponse, ProviderError> {
    let content = v
        .get("content")
        .and_then(|c| c.as_array())
        .ok_or_else(|| ProviderError::BadResponse("message has no content array".into()))?;
    let text: String = content
        .iter()
        .filter(|b| b.get("type").and_then(|t| t.as_str()) == Some("text"))
        .filter_map(|b| b.get("text").and_then(|t| t.as_str()))
        .collect();
    let tool_calls = content
        .iter()
        .filter(|b| b.get("type").and_then(|t| t.as_str()) == Some("tool_use"))
        .map(|b| ToolCall {
            id: b["id"].as_str().unwrap_or_default().to_string(),
            name: b["name"].as_str().unwrap_or_default().to_string(),
            arguments: b.get("input").map(|i| i.to_string()).unwrap_or_else(|| "{}".into()),
        })
        .collect();
    let usage = v.get("usage");
    let get = |k: &str| usage.and_then(|u| u.get(k)).and_then(|x| x.as_u64()).unwrap_or(0);
    Ok(ChatResponse {
        text,
        logprobs: None,
        tool_calls,
        finish_reason: finish_reason(v.get("stop_reason").and_then(|s| s.as_str())),
        usage: Usage { prompt_tokens: get("input_tokens"), completion_tokens: get("output_tokens") },
    })
}

impl Provider for AnthropicProvider {
    fn kind(&self) -> &'static str {
        "anthropic"
    }

    /// The Messages API translation covers the core chat fields and tool use.
    fn supports(&self, _model: &str, capability: &str) -> bool {
        capability == "tools"
    }

    fn complete(&self, req: ChatRequest) -> BoxFuture<'static, Result<ChatResponse, ProviderError>> {
        let send = self.send(&req, false);
        async move {
            let resp = send.await?;
            let bytes = resp.bytes().await.map_err(ProviderError::from_reqwest)?;
            let v: Value =
                serde_json::from_slice(&bytes).map_err(|e| ProviderError::BadResponse(format!("not JSON: {e}")))?;
            parse_response(&v)
        }
        .boxed()
    }

    fn stream(&self, req: ChatRequest) -> BoxFuture<'static, Result<EventStream, ProviderError>> {
        let send = self.send(&req, true);
        async move {
            let resp = send.await?;
            Ok(translate(sse::events(resp.bytes_stream())))
        }
        .boxed()
    }
}

#[derive(Default)]
struct StreamState {
    /// Content block index → tool call index, for `tool_use` blocks.
    tools: std::collections::HashMap<u64, u32>,
    usage: Usage,
    stop_reason: Option<String>,
    done: bool,
}

/// Applies one Anthropic stream event; returns the neutral event to emit, if any.
fn apply(st: &mut StreamState, data: &str) -> Result<Option<StreamEvent>, ProviderError> {
    let v: Value =
        serde_json::from_str(data).map_err(|e| ProviderError::BadResponse(format!("bad stream event: {e}")))?;
    match v.get("type").and_then(|t| t.as_str()).unwrap_or("") {
        "message_start" => {
            let u = &v["message"]["usage"];
            st.usage.prompt_tokens = u["input_tokens"].as_u64().unwrap_or(0);
            st.usage.completion_tokens = u["output_tokens"].as_u64().unwrap_or(0);
            Ok(None)
        }
        "content_block_start" if v["content_block"]["type"] == "tool_use" => {
            let index = st.tools.len() as u32;
            st.tools.insert(v["index"].as_u64().unwrap_or(0), index);
            let b = &v["content_block"];
            Ok(Some(StreamEvent::ToolCall {
                index,
                id: b["id"].as_str().map(str::to_string),
                name: b["name"].as_str().map(str::to_string),
                arguments: String::new(),
            }))
        }
        "content_block_delta" if v["delta"]["type"] == "input_json_delta" => {
            let index = st.tools.get(&v["index"].as_u64().unwrap_or(0)).copied().unwrap_or(0);
            Ok(v["delta"]["partial_json"].as_str().filter(|t| !t.is_empty()).map(|t| StreamEvent::ToolCall {
                index,
                id: None,
                name: None,
                arguments: t.to_string(),
            }))
        }
        "content_block_delta" => Ok(v["delta"]["text"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(|t| StreamEvent::Delta { text: t.to_string(), logprobs: None })),
        "message_delta" => {
            if let Some(r) = v["delta"]["stop_reason"].as_str() {
                st.stop_reason = Some(r.to_string());
            }
            if let Some(n) = v["usage"]["output_tokens"].as_u64() {
                st.usage.completion_tokens = n;
            }
            Ok(None)
        }
        "message_stop" => {
            st.done = true;
            Ok(Some(StreamEvent::Finish {
                finish_reason: finish_reason(st.stop_reason.as_deref()),
                usage: Some(st.usage),
            }))
        }
        "error" => {
            let msg = v["error"]["message"].as_str().unwrap_or("upstream stream error").to_string();
            let status = if v["error"]["type"].as_str() == Some("overloaded_error") { 529 } else { 502 };
            Err(ProviderError::Status { status, message: msg, retry_after: None })
        }
        _ => Ok(None), // ping, content_block_start/stop
    }
}

fn translate<S>(events: S) -> EventStream
where
    S: futures::Stream<Item = Result<sse::SseEvent, reqwest::Error>> + Send + Unpin + 'static,
{
    futures::stream::unfold((events, StreamState::default(), false), |(mut events, mut st, ended)| async move {
        if ended {
            return None;
        }
        loop {
            if st.done {
                return None;
            }
            match events.next().await {
                None => {
                    return Some((
                        Err(ProviderError::StreamCut("stream ended before message_stop".into())),
                        (events, st, true),
                    ))
                }
                Some(Err(e)) => return Some((Err(ProviderError::StreamCut(format!("{e:#}"))), (events, st, true))),
                Some(Ok(ev)) => match apply(&mut st, &ev.data) {
                    Ok(Some(out)) => return Some((Ok(out), (events, st, false))),
                    Ok(None) => continue,
                    Err(e) => return Some((Err(e), (events, st, true))),
                },
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChatMessage;

    #[test]
    fn system_moves_to_top_level() {
        let req = ChatRequest {
            model: "claude".into(),
            messages: vec![ChatMessage::system("be brief"), ChatMessage::user("hi")],
            stop: vec!["END".into()],
            temperature: Some(1.5),
            ..Default::default()
        };
        let b = request_body(&req, true);
        assert_eq!(b["system"], "be brief");
        assert_eq!(b["messages"].as_array().unwrap().len(), 1);
        assert_eq!(b["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(b["stop_sequences"][0], "END");
        assert_eq!(b["temperature"], 1.0);
        assert_eq!(b["stream"], true);
    }

    #[tokio::test]
    async fn stream_events_translate() {
        let raw = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}\n\n",
            "event: ping\ndata: {\"type\":\"ping\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":2}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let mut st = StreamState::default();
        let mut out = vec![];
        for block in raw.split("\n\n").filter(|b| !b.is_empty()) {
            let data = block.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            if let Some(ev) = apply(&mut st, data).unwrap() {
                out.push(ev);
            }
        }
        assert_eq!(out[0], StreamEvent::Delta { text: "Hel".into(), logprobs: None });
        assert_eq!(out[1], StreamEvent::Delta { text: "lo".into(), logprobs: None });
        assert_eq!(
            out[2],
            StreamEvent::Finish {
                finish_reason: "length".into(),
                usage: Some(Usage { prompt_tokens: 7, completion_tokens: 2 })
            }
        );
    }

    #[test]
    fn tool_turns_translate_both_ways() {
        let call =
            ToolCall { id: "call_1".into(), name: "calculator".into(), arguments: r#"{"expression":"2+2"}"#.into() };
        let req = ChatRequest {
            model: "claude".into(),
            messages: vec![
                ChatMessage::user("what is 2+2?"),
                ChatMessage { tool_calls: vec![call], ..ChatMessage::assistant("") },
                ChatMessage::tool("call_1", "4"),
            ],
            tools: vec![crate::ToolSpec {
                name: "calculator".into(),
                description: Some("evaluates".into()),
                parameters: json!({"type": "object"}),
            }],
            tool_choice: Some(ToolChoice::Function("calculator".into())),
            parallel_tool_calls: Some(false),
            ..Default::default()
        };
        let b = request_body(&req, false);
        assert_eq!(b["tools"][0]["input_schema"]["type"], "object");
        assert_eq!(b["tool_choice"], json!({"type": "tool", "name": "calculator", "disable_parallel_tool_use": true}));
        assert_eq!(
            b["messages"][1]["content"][0],
            json!({"type": "tool_use", "id": "call_1", "name": "calculator", "input": {"expression": "2+2"}})
        );
        assert_eq!(b["messages"][2]["content"][0]["type"], "tool_result");
        assert_eq!(b["messages"][2]["content"][0]["tool_use_id"], "call_1");
        let v = json!({"content":[{"type":"text","text":"let me"},{"type":"tool_use","id":"toolu_1","name":"calculator","input":{"expression":"3*3"}}],
            "stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":1}});
        let r = parse_response(&v).unwrap();
        assert_eq!(r.finish_reason, "tool_calls");
        assert_eq!(r.tool_calls[0].name, "calculator");
        assert_eq!(serde_json::from_str::<Value>(&r.tool_calls[0].arguments).unwrap(), json!({"expression": "3*3"}));
        let mut st = StreamState::default();
        let start = apply(&mut st, r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_2","name":"calculator","input":{}}}"#).unwrap();
        assert_eq!(
            start,
            Some(StreamEvent::ToolCall {
                index: 0,
                id: Some("toolu_2".into()),
                name: Some("calculator".into()),
                arguments: String::new()
            })
        );
        let piece = apply(
            &mut st,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"expr"}}"#,
        )
        .unwrap();
        assert_eq!(piece, Some(StreamEvent::ToolCall { index: 0, id: None, name: None, arguments: "{\"expr".into() }));
    }

    #[test]
    fn parses_response() {
        let v = serde_json::json!({"content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}});
        let r = parse_response(&v).unwrap();
        assert_eq!(r.text, "hi");
        assert_eq!(r.finish_reason, "stop");
        assert_eq!(r.usage.completion_tokens, 1);
    }
}
