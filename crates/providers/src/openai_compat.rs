//! Any server that speaks OpenAI's `/chat/completions`: OpenAI itself, vLLM, llama.cpp
//! server, OpenRouter, or another conductor. Requests and responses go through the shared
//! [`crate::openai_wire`] types.

use crate::error::retry_after;
use crate::openai_wire::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ErrorEnvelope, StopSpec, StreamOptions,
    WireMessage,
};
use crate::sse;
use crate::{ChatRequest, ChatResponse, EventStream, Provider, ProviderError, StreamEvent, Usage};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use std::time::Duration;

/// Client for one OpenAI-compatible base URL (e.g. `https://api.openai.com/v1`).
pub struct OpenAiCompatProvider {
    client: reqwest::Client,
    url: String,
    api_key: Option<String>,
}

impl OpenAiCompatProvider {
    /// `base_url` ends before `/chat/completions`; `connect_timeout` bounds TCP+TLS setup.
    pub fn new(base_url: &str, api_key: Option<String>, connect_timeout: Duration) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ProviderError::Other(e.to_string()))?;
        Ok(OpenAiCompatProvider {
            client,
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            api_key,
        })
    }

    /// The upstream body. A client's request is forwarded as it came (every field, under
    /// the names it used), with the upstream's model name and streaming set; usage is always
    /// asked for on streams, since the books need it.
    fn body(req: &ChatRequest, stream: bool) -> serde_json::Value {
        if let Some(p) = &req.passthrough {
            let mut b = (**p).clone();
            b.insert("model".into(), serde_json::json!(req.model));
            b.remove("stream");
            b.remove("stream_options");
            // The gateway asks for log-probabilities to check an answer the client did not
            // ask them for.
            if let Some(k) = req.extras.logprobs {
                if b.get("logprobs") != Some(&serde_json::json!(true)) {
                    b.insert("logprobs".into(), serde_json::json!(true));
                    b.insert("top_logprobs".into(), serde_json::json!(k));
                }
            }
            if stream {
                b.insert("stream".into(), serde_json::json!(true));
                b.insert("stream_options".into(), serde_json::json!({"include_usage": true}));
            }
            return serde_json::Value::Object(b);
        }
        serde_json::to_value(Self::typed_body(req, stream)).unwrap_or_default()
    }

    /// The body for a request built in-process (collector, agents): the typed fields, and
    /// token log-probabilities when asked for.
    fn typed_body(req: &ChatRequest, stream: bool) -> ChatCompletionRequest {
        let mut extra = serde_json::Map::new();
        if let Some(k) = req.extras.logprobs {
            extra.insert("logprobs".into(), serde_json::json!(true));
            extra.insert("top_logprobs".into(), serde_json::json!(k));
        }
        if !req.tools.is_empty() {
            let tools: Vec<serde_json::Value> = req.tools.iter().map(|t| t.to_openai()).collect();
            extra.insert("tools".into(), serde_json::json!(tools));
        }
        if let Some(c) = &req.tool_choice {
            extra.insert("tool_choice".into(), c.to_openai());
        }
        if let Some(p) = req.parallel_tool_calls {
            extra.insert("parallel_tool_calls".into(), serde_json::json!(p));
        }
        ChatCompletionRequest {
            model: req.model.clone(),
            messages: req.messages.iter().map(WireMessage::from).collect(),
            temperature: req.temperature,
            top_p: req.top_p,
            max_tokens: req.max_tokens,
            stop: if req.stop.is_empty() { None } else { Some(StopSpec::Many(req.stop.clone())) },
            seed: req.seed.map(|s| s as i64),
            user: req.user.clone(),
            stream: stream.then_some(true),
            stream_options: stream.then_some(StreamOptions { include_usage: Some(true) }),
            extra,
            ..Default::default()
        }
    }

    fn send(
        &self,
        req: &ChatRequest,
        stream: bool,
    ) -> impl std::future::Future<Output = Result<reqwest::Response, ProviderError>> + Send + 'static {
        let mut rb = self.client.post(&self.url).json(&Self::body(req, stream));
        if let Some(k) = &self.api_key {
            rb = rb.bearer_auth(k);
        }
        async move {
            let resp = rb.send().await.map_err(ProviderError::from_reqwest)?;
            if resp.status().is_success() {
                return Ok(resp);
            }
            Err(status_error(resp).await)
        }
    }
}

/// Turns a non-2xx response into [`ProviderError::Status`], keeping the upstream's message.
pub(crate) async fn status_error(resp: reqwest::Response) -> ProviderError {
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let text = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<ErrorEnvelope>(&text)
        .map(|e| e.error.message)
        .unwrap_or_else(|_| text.chars().take(300).collect());
    ProviderError::Status { status, message, retry_after }
}

impl Provider for OpenAiCompatProvider {
    fn kind(&self) -> &'static str {
        "openai"
    }

    /// Everything: the request is forwarded unchanged and the upstream judges it.
    fn supports(&self, _model: &str, _capability: &str) -> bool {
        true
    }

    fn complete(&self, req: ChatRequest) -> BoxFuture<'static, Result<ChatResponse, ProviderError>> {
        let send = self.send(&req, false);
        async move {
            let resp = send.await?;
            let bytes = resp.bytes().await.map_err(ProviderError::from_reqwest)?;
            let parsed: ChatCompletionResponse = serde_json::from_slice(&bytes)
                .map_err(|e| ProviderError::BadResponse(format!("not a chat completion: {e}")))?;
            let choice = parsed
                .choices
                .into_iter()
                .next()
                .ok_or_else(|| ProviderError::BadResponse("response has no choices".into()))?;
            let usage = parsed.usage.unwrap_or_default();
            Ok(ChatResponse {
                logprobs: token_logprobs(&choice.logprobs),
                tool_calls: choice.message.tool_calls.unwrap_or_default().into_iter().map(Into::into).collect(),
                text: choice.message.content.unwrap_or_default(),
                finish_reason: choice.finish_reason.unwrap_or_else(|| "stop".into()),
                usage: Usage { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens },
            })
        }
        .boxed()
    }

    fn stream(&self, req: ChatRequest) -> BoxFuture<'static, Result<EventStream, ProviderError>> {
        let send = self.send(&req, true);
        async move {
            let resp = send.await?;
            let events = sse::events(resp.bytes_stream());
            Ok(translate_stream(events))
        }
        .boxed()
    }
}

/// The `logprobs.content` list of an OpenAI choice, when the upstream sent one.
fn token_logprobs(v: &Option<serde_json::Value>) -> Option<Vec<crate::TokenLogprob>> {
    let content = v.as_ref()?.get("content")?;
    serde_json::from_value(content.clone()).ok()
}

/// State of an OpenAI stream being translated into [`StreamEvent`]s.
struct Translate<S> {
    events: S,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    pending: std::collections::VecDeque<StreamEvent>,
    done: bool,
}

fn translate_stream<S>(events: S) -> EventStream
where
    S: futures::Stream<Item = Result<sse::SseEvent, reqwest::Error>> + Send + Unpin + 'static,
{
    let st = Translate { events, finish_reason: None, usage: None, pending: Default::default(), done: false };
    futures::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(ev) = st.pending.pop_front() {
                return Some((Ok(ev), st));
            }
            if st.done {
                return None;
            }
            match st.events.next().await {
                None => {
                    st.done = true;
                    // Some servers omit [DONE]; a finish_reason is enough to call it complete.
                    return match st.finish_reason.take() {
                        Some(fr) => Some((Ok(StreamEvent::Finish { finish_reason: fr, usage: st.usage }), st)),
                        None => Some((
                            Err(ProviderError::StreamCut("stream ended without finish_reason or [DONE]".into())),
                            st,
                        )),
                    };
                }
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(ProviderError::StreamCut(format!("{e:#}"))), st));
                }
                Some(Ok(ev)) => {
                    if ev.data.trim() == "[DONE]" {
                        st.done = true;
                        let fr = st.finish_reason.take().unwrap_or_else(|| "stop".into());
                        return Some((Ok(StreamEvent::Finish { finish_reason: fr, usage: st.usage }), st));
                    }
                    let value: serde_json::Value = match serde_json::from_str(&ev.data) {
                        Ok(v) => v,
                        Err(e) => {
                            st.done = true;
                            return Some((Err(ProviderError::BadResponse(format!("bad stream chunk: {e}"))), st));
                        }
                    };
                    if let Some(err) = value.get("error") {
                        st.done = true;
                        let msg = err.get("message").and_then(|m| m.as_str()).unwrap_or("upstream stream error");
                        return Some((
                            Err(ProviderError::Status { status: 502, message: msg.to_string(), retry_after: None }),
                            st,
                        ));
                    }
                    let chunk: ChatCompletionChunk = match serde_json::from_value(value) {
                        Ok(c) => c,
                        Err(e) => {
                            st.done = true;
                            return Some((Err(ProviderError::BadResponse(format!("bad stream chunk: {e}"))), st));
                        }
                    };
                    if let Some(u) = chunk
                        .usage
                        .as_ref()
                        .and_then(|u| serde_json::from_value::<crate::openai_wire::WireUsage>(u.clone()).ok())
                    {
                        st.usage =
                            Some(Usage { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens });
                    }
                    for c in chunk.choices {
                        if let Some(text) = c.delta.content.clone().filter(|t| !t.is_empty()) {
                            st.pending.push_back(StreamEvent::Delta { text, logprobs: token_logprobs(&c.logprobs) });
                        }
                        for t in c.delta.tool_calls.into_iter().flatten() {
                            let f = t.function.unwrap_or_default();
                            st.pending.push_back(StreamEvent::ToolCall {
                                index: t.index,
                                id: t.id,
                                name: f.name,
                                arguments: f.arguments.unwrap_or_default(),
                            });
                        }
                        if let Some(fr) = c.finish_reason {
                            st.finish_reason = Some(fr);
                        }
                    }
                }
            }
        }
    })
    .boxed()
}
