//! The streaming half of `/v1/chat/completions`: OpenAI's SSE format (`data: {chunk}`,
//! a final chunk with `finish_reason`, an optional usage chunk, then `data: [DONE]`).
//! An upstream failure after the first token cannot be hidden any more; it is sent as
//! an `{"error": ...}` event, which the OpenAI SDKs raise as an exception.

use crate::dispatch::Started;
use crate::error::ApiError;
use crate::reliability::queue::Slot;
use crate::ticket::Ticket;
use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::Response;
use conductor_providers::openai_wire::{ChatCompletionChunk, ChunkChoice, Delta, WireUsage};
use conductor_providers::{EventStream, ProviderError, StreamEvent};
use futures::StreamExt;
use serde_json::Value;

struct Sse {
    ticket: Ticket,
    first: Option<StreamEvent>,
    rest: EventStream,
    _slot: Slot,
    deadline: tokio::time::Instant,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    sent_role: bool,
    done: bool,
    text_len: usize,
}

impl Sse {
    fn chunk(&self, delta: Delta, finish: Option<String>, conductor: Option<Value>) -> String {
        let c = ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice { index: 0, delta, finish_reason: finish, logprobs: None }],
            usage: self.include_usage.then_some(Value::Null),
            conductor,
        };
        format!("data: {}\n\n", serde_json::to_string(&c).unwrap_or_default())
    }

    fn fail(&mut self, e: ProviderError) -> String {
        if let Some(m) = &self.ticket.chosen {
            self.ticket.state.metrics.error(&m.entry.id, e.kind());
            if e.is_model_fault() {
                m.breaker.failure();
            }
        }
        let err = ApiError::from_provider(&self.model, &e);
        self.ticket.close("error", Some(err.message.clone()));
        self.done = true;
        format!("data: {}\n\n", serde_json::to_string(&err.envelope()).unwrap_or_default())
    }

    async fn next_bytes(&mut self) -> Option<String> {
        if self.done {
            return None;
        }
        if !self.sent_role {
            self.sent_role = true;
            let meta = self.ticket.meta();
            return Some(self.chunk(
                Delta { role: Some("assistant".into()), content: Some(String::new()) },
                None,
                Some(meta),
            ));
        }
        let ev = match self.first.take() {
            Some(ev) => Some(Ok(ev)),
            None => match tokio::time::timeout_at(self.deadline, self.rest.next()).await {
                Ok(ev) => ev,
                Err(_) => Some(Err(ProviderError::Timeout("stream exceeded the total time limit".into()))),
            },
        };
        match ev {
            Some(Ok(StreamEvent::Delta(text))) => {
                self.text_len += text.len();
                self.ticket.usage.completion_tokens += 1;
                Some(self.chunk(Delta { role: None, content: Some(text) }, None, None))
            }
            Some(Ok(StreamEvent::Finish { finish_reason, usage })) => {
                let counted = self.ticket.usage;
                let u = usage.unwrap_or(counted);
                self.ticket.usage = crate::routes::chat::fix_usage(u, counted.prompt_tokens, counted.completion_tokens);
                let mut out = self.chunk(Delta::default(), Some(finish_reason), None);
                if self.include_usage {
                    let c = ChatCompletionChunk {
                        id: self.id.clone(),
                        object: "chat.completion.chunk".into(),
                        created: self.created,
                        model: self.model.clone(),
                        choices: vec![],
                        usage: Some(
                            serde_json::to_value(WireUsage::new(
                                self.ticket.usage.prompt_tokens,
                                self.ticket.usage.completion_tokens,
                            ))
                            .unwrap_or_default(),
                        ),
                        conductor: None,
                    };
                    out.push_str(&format!("data: {}\n\n", serde_json::to_string(&c).unwrap_or_default()));
                }
                out.push_str("data: [DONE]\n\n");
                // Booked before [DONE] leaves, so feedback can follow at once (and, for a
                // budgeted key, the spend is on disk before the client has its answer).
                self.ticket.close_durably("ok", None).await;
                self.done = true;
                Some(out)
            }
            Some(Err(e)) => Some(self.fail(e)),
            None => Some(self.fail(ProviderError::StreamCut("stream ended without a finish".into()))),
        }
    }
}

pub fn respond(ticket: Ticket, started: Started, include_usage: bool) -> Response {
    let model = ticket.chosen.as_ref().map(|m| m.entry.id.clone()).unwrap_or_default();
    let st = Sse {
        id: format!("chatcmpl-{}", ticket.decision_id),
        created: super::chat::now_secs(),
        model,
        include_usage,
        ticket,
        first: Some(started.first),
        rest: started.rest,
        _slot: started.slot,
        deadline: started.deadline,
        sent_role: false,
        done: false,
        text_len: 0,
    };
    let body = futures::stream::unfold(st, |mut st| async move {
        st.next_bytes().await.map(|s| (Ok::<Bytes, std::convert::Infallible>(Bytes::from(s)), st))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}
