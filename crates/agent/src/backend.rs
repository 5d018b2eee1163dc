//! Where a run's model calls go: a conductor gateway's OpenAI-compatible endpoint, so every
//! step is routed, budgeted, booked and verified like any other request. The gateway's
//! `conductor` answer object says which model answered and why; it becomes the step's
//! routing record. Dropping a call's future drops the HTTP request, which stops the
//! generation on the gateway.

use crate::run::Routing;
use crate::spec::Role;
use conductor_providers::openai_wire::{ChatCompletionResponse, WireMessage};
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

fn body(call: &ModelCall) -> Value {
    let mut b = json!({
        "model": call.model,
        "messages": call.messages.iter().map(WireMessage::from).collect::<Vec<_>>(),
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
pub fn parse_reply(v: Value, latency_ms: u64) -> Result<ModelReply, String> {
    let r: ChatCompletionResponse = serde_json::from_value(v).map_err(|e| format!("not a chat completion: {e}"))?;
    let choice = r.choices.into_iter().next().ok_or("the answer has no choices")?;
    let meta = r.conductor.unwrap_or_default();
    let text = |x: &Value| x.as_str().unwrap_or_default().to_string();
    let usage = r.usage.unwrap_or_default();
    Ok(ModelReply {
        content: choice.message.content.unwrap_or_default(),
        tool_calls: choice.message.tool_calls.unwrap_or_default().into_iter().map(Into::into).collect(),
        finish_reason: choice.finish_reason.unwrap_or_default(),
        routing: Routing {
            decision_id: text(&meta["decision_id"]),
            model: meta["model"].as_str().map_or(r.model, str::to_string),
            policy: text(&meta["policy"]),
            reason: text(&meta["reason"]),
            candidates: meta["candidates"].clone(),
        },
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
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
            parse_reply(v, started.elapsed().as_millis() as u64)
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
