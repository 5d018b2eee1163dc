//! Where a run's model calls go: a conductor gateway's OpenAI-compatible endpoint, so every
//! step is routed, budgeted, booked and verified like any other request. The gateway's
//! `conductor` answer object says which model answered and why; it becomes the step's
//! routing record. Dropping a call's future drops the HTTP request, which stops the
//! generation on the gateway.

use crate::run::Routing;
use crate::spec::Role;
use conductor_providers::{ChatMessage, ToolCall};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// One model call of a run.
#[derive(Debug, Clone)]
pub struct ModelCall {
    pub role: Role,
    /// `auto`, `auto:<policy>` or a model id.
    pub model: String,
    pub messages: Vec<ChatMessage>,
    /// OpenAI `tools` entries (empty: none offered).
    pub tools: Vec<Value>,
    pub tool_choice: Option<Value>,
    pub response_format: Option<Value>,
    pub max_tokens: u32,
    /// The `Authorization` header of whoever started or resumed the run (a gateway with
    /// keys bills and limits the run's calls to that key); never stored.
    pub authorization: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ModelReply {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: String,
    pub routing: Routing,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
    pub latency_ms: u64,
}

pub trait Backend: Send + Sync + 'static {
    fn chat(&self, call: ModelCall) -> BoxFuture<'static, Result<ModelReply, String>>;
    /// Sentence embeddings of `texts` (for long-term memory).
    fn embed(
        &self,
        texts: Vec<String>,
        authorization: Option<String>,
    ) -> BoxFuture<'static, Result<Vec<Vec<f32>>, String>>;
}

/// The gateway's sentence-embedding model.
pub const EMBEDDING_MODEL: &str = "all-MiniLM-L6-v2";

/// A conductor (or any OpenAI-compatible server) at `base_url` (ending before `/v1`).
pub struct HttpBackend {
    client: reqwest::Client,
    url: String,
    embeddings_url: String,
}

impl HttpBackend {
    pub fn new(base_url: &str) -> anyhow::Result<HttpBackend> {
        let client = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build()?;
        let base = base_url.trim_end_matches('/');
        Ok(HttpBackend {
            client,
            url: format!("{base}/v1/chat/completions"),
            embeddings_url: format!("{base}/v1/embeddings"),
        })
    }
}

/// A message in OpenAI's request shape.
pub fn wire_message(m: &ChatMessage) -> Value {
    let mut v = json!({"role": m.role.as_str(), "content": m.content});
    if !m.tool_calls.is_empty() {
        v["tool_calls"] = Value::Array(m.tool_calls.iter().map(ToolCall::to_openai).collect());
        if m.content.is_empty() {
            v["content"] = Value::Null;
        }
    }
    if let Some(id) = &m.tool_call_id {
        v["tool_call_id"] = json!(id);
    }
    v
}

fn body(call: &ModelCall) -> Value {
    let mut b = json!({
        "model": call.model,
        "messages": call.messages.iter().map(wire_message).collect::<Vec<_>>(),
        "max_tokens": call.max_tokens,
        "temperature": 0,
    });
    if !call.tools.is_empty() {
        b["tools"] = json!(call.tools);
    }
    if let Some(c) = &call.tool_choice {
        b["tool_choice"] = c.clone();
    }
    if let Some(f) = &call.response_format {
        b["response_format"] = f.clone();
    }
    b
}

/// Reads a chat completion (with conductor's `conductor` object when present).
pub fn parse_reply(v: &Value, latency_ms: u64) -> Result<ModelReply, String> {
    let choice = v["choices"].get(0).ok_or_else(|| format!("the answer has no choices: {v}"))?;
    let msg = &choice["message"];
    let tool_calls = msg["tool_calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .map(|c| ToolCall {
                    id: c["id"].as_str().unwrap_or_default().to_string(),
                    name: c["function"]["name"].as_str().unwrap_or_default().to_string(),
                    arguments: c["function"]["arguments"].as_str().unwrap_or("{}").to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    let meta = &v["conductor"];
    let text = |x: &Value| x.as_str().unwrap_or_default().to_string();
    Ok(ModelReply {
        content: text(&msg["content"]),
        tool_calls,
        finish_reason: text(&choice["finish_reason"]),
        routing: Routing {
            decision_id: text(&meta["decision_id"]),
            model: meta["model"].as_str().or(v["model"].as_str()).unwrap_or_default().to_string(),
            policy: text(&meta["policy"]),
            reason: text(&meta["reason"]),
            candidates: meta["candidates"].clone(),
        },
        prompt_tokens: v["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
        completion_tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        cost_usd: meta["cost_usd"].as_f64().unwrap_or(0.0),
        latency_ms,
    })
}

impl Backend for HttpBackend {
    fn chat(&self, call: ModelCall) -> BoxFuture<'static, Result<ModelReply, String>> {
        let mut rb = self.client.post(&self.url).json(&body(&call));
        if let Some(a) = &call.authorization {
            rb = rb.header("authorization", a);
        }
        async move {
            let started = Instant::now();
            let resp = rb.send().await.map_err(|e| format!("the gateway did not answer: {e}"))?;
            let status = resp.status();
            let v: Value = resp.json().await.map_err(|e| format!("the gateway's answer is not JSON: {e}"))?;
            if !status.is_success() {
                let msg = v["error"]["message"].as_str().unwrap_or("no message");
                return Err(format!("the gateway refused the {} call ({status}): {msg}", call.role.as_str()));
            }
            parse_reply(&v, started.elapsed().as_millis() as u64)
        }
        .boxed()
    }

    fn embed(
        &self,
        texts: Vec<String>,
        authorization: Option<String>,
    ) -> BoxFuture<'static, Result<Vec<Vec<f32>>, String>> {
        let mut rb = self.client.post(&self.embeddings_url).json(&json!({"model": EMBEDDING_MODEL, "input": texts}));
        if let Some(a) = &authorization {
            rb = rb.header("authorization", a);
        }
        async move {
            let resp = rb.send().await.map_err(|e| format!("the gateway did not answer: {e}"))?;
            let status = resp.status();
            let v: Value = resp.json().await.map_err(|e| format!("the gateway's answer is not JSON: {e}"))?;
            if !status.is_success() {
                return Err(format!("embeddings refused ({status}): {}", v["error"]["message"].as_str().unwrap_or("")));
            }
            let data = v["data"].as_array().ok_or("no `data` in the embeddings answer")?;
            Ok(data
                .iter()
                .map(|d| {
                    d["embedding"]
                        .as_array()
                        .map_or_else(Vec::new, |e| e.iter().filter_map(|x| x.as_f64()).map(|x| x as f32).collect())
                })
                .collect())
        }
        .boxed()
    }
}
