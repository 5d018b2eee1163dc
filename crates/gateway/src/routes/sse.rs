//! The streaming half of `/v1/chat/completions`: OpenAI's SSE format (`data: {chunk}`,
//! a final chunk with `finish_reason`, an optional usage chunk, then `data: [DONE]`).
//! An upstream failure after the first token cannot be hidden any more; it is sent as
//! an `{"error": ...}` event, which the OpenAI SDKs raise as an exception. Breaker and
//! error bookkeeping happen in [`crate::dispatch::Started`]; this file only formats.

use crate::dispatch::Started;
use crate::error::ApiError;
use crate::ticket::{Outcome, Ticket};
use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::Response;
use conductor_providers::openai_wire::{
    ChatCompletionChunk, ChunkChoice, Delta, WireFunctionDelta, WireToolCallDelta, WireUsage,
};
use conductor_providers::StreamEvent;
use serde_json::Value;

struct Sse {
    ticket: Ticket,
    started: Started,
    id: String,
    model: String,
    include_usage: bool,
    sent_role: bool,
    done: bool,
}

impl Sse {
    fn chunk(&self, choices: Vec<ChunkChoice>, usage: Option<Value>, conductor: Option<Value>) -> String {
        let c = ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.ticket.created(),
            model: self.model.clone(),
            choices,
            usage,
            conductor,
        };
        format!("data: {}\n\n", serde_json::to_string(&c).unwrap_or_default())
    }

    fn delta(&self, delta: Delta, finish: Option<String>, conductor: Option<Value>) -> String {
        self.delta_with(delta, finish, conductor, None)
    }

    fn delta_with(&self, delta: Delta, finish: Option<String>, conductor: Option<Value>, lp: Option<Value>) -> String {
        let usage = self.include_usage.then_some(Value::Null);
        self.chunk(vec![ChunkChoice { index: 0, delta, finish_reason: finish, logprobs: lp }], usage, conductor)
    }

    async fn next_bytes(&mut self) -> Option<String> {
        if self.done {
            return None;
        }
        if !self.sent_role {
            self.sent_role = true;
            let meta = self.ticket.meta();
            let role = Delta { role: Some("assistant".into()), content: Some(String::new()), tool_calls: None };
            return Some(self.delta(role, None, Some(meta)));
        }
        let ev = self.started.next().await;
        match ev {
            Some(Ok(StreamEvent::Delta { text, logprobs })) => {
                self.ticket.count_delta();
                let lp = logprobs.map(|l| serde_json::json!({"content": l}));
                Some(self.delta_with(Delta { role: None, content: Some(text), tool_calls: None }, None, None, lp))
            }
            Some(Ok(StreamEvent::ToolCall { index, id, name, arguments })) => {
                self.ticket.count_delta();
                let call = WireToolCallDelta {
                    index,
                    kind: id.is_some().then(|| "function".to_string()),
                    id,
                    function: Some(WireFunctionDelta { name, arguments: Some(arguments) }),
                };
                Some(self.delta(Delta { tool_calls: Some(vec![call]), ..Default::default() }, None, None))
            }
            Some(Ok(StreamEvent::Finish { finish_reason, usage })) => {
                // Without a reported count, each streamed piece counts as one token.
                let counted = self.ticket.usage().completion_tokens;
                self.ticket.settle_usage(usage, counted);
                let mut out = self.delta(Delta::default(), Some(finish_reason), None);
                if self.include_usage {
                    let u = self.ticket.usage();
                    let usage = serde_json::to_value(WireUsage::new(u.prompt_tokens, u.completion_tokens)).ok();
                    out.push_str(&self.chunk(vec![], usage, None));
                }
                out.push_str("data: [DONE]\n\n");
                // Booked before [DONE] leaves, so feedback can follow at once (and, for a
                // budgeted key, the spend is on disk before the client has its answer).
                self.ticket.close_durably(Outcome::Ok, None).await;
                self.done = true;
                Some(out)
            }
            Some(Err(e)) => {
                let err = ApiError::from_provider(&self.model, &e);
                self.ticket.close(Outcome::Error, Some(err.message.clone()));
                self.done = true;
                Some(format!("data: {}\n\n", serde_json::to_string(&err.envelope()).unwrap_or_default()))
            }
            None => None,
        }
    }
}

pub fn respond(ticket: Ticket, started: Started, include_usage: bool) -> Response {
    let st = Sse {
        id: format!("chatcmpl-{}", ticket.decision_id()),
        model: ticket.model_id(),
        include_usage,
        ticket,
        started,
        sent_role: false,
        done: false,
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
