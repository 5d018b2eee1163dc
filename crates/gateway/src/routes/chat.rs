//! `POST /v1/chat/completions`, as a short pipeline: authenticate → parse (into a routing
//! target) → plan (the router, off the reactor) → open a ticket → dispatch (budget,
//! retries, fallback) → answer whole or as SSE. Each step lives in its own module; this
//! file only strings them together and shapes the whole response.

use super::{conductor_headers, read_body};
use crate::dispatch::{self, Answer};
use crate::error::ApiError;
use crate::request::parse_chat;
use crate::routing::{self, RoutingRequest};
use crate::state::{AppState, Counted};
use crate::ticket::{Opening, Outcome, Ticket};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header::AUTHORIZATION, HeaderMap};
use axum::response::{IntoResponse, Response};
use conductor_core::tokens::estimate_tokens;
use conductor_providers::openai_wire::{ChatCompletionResponse, Choice, ResponseMessage, WireUsage};
use conductor_providers::ChatResponse;
use std::sync::Arc;

pub const ROUTE: &str = "/v1/chat/completions";

pub async fn handler(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let resp = match handle(state.clone(), headers, body).await {
        Ok(r) => r,
        Err((e, decision)) => {
            let mut r = e.into_response();
            if let Some(id) = decision {
                conductor_headers(&mut r, &id, None);
            }
            r
        }
    };
    state.metrics.request(ROUTE, resp.status().as_u16());
    resp
}

/// An error, with the decision id when one was already made.
type Failure = (ApiError, Option<String>);

async fn handle(state: Arc<AppState>, headers: HeaderMap, body: Body) -> Result<Response, Failure> {
    let auth = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let key = state.keys.authenticate(auth).map_err(|e| (e, None))?;
    state.rate_limit(&key.id, Counted::Requests, key.requests_per_minute).await.map_err(|e| (e, None))?;
    let body = read_body(&state, body).await.map_err(|e| (e, None))?;
    let input = parse_chat(&body, &state.config).map_err(|e| (e, None))?;
    let prompt_estimate = estimate_tokens(&input.all_text());
    let routing_text = input.routing_text();
    let req = RoutingRequest {
        key: &key,
        target: &input.target,
        text: &routing_text,
        prompt_tokens: prompt_estimate,
        requires: &input.request.requires,
    };
    let plan = routing::plan(&state.registry, &state.router, req).await.map_err(|e| (e, None))?;
    let opening = Opening {
        key: &key,
        requested_model: &input.request.model,
        routing_text: &routing_text,
        stream: input.stream,
        prompt_tokens_estimate: prompt_estimate as u64,
        prompt_bound: input.prompt_token_bound(),
        max_tokens: input.request.max_tokens,
    };
    let mut ticket = Ticket::open(state.clone(), opening, plan);
    let decision_id = ticket.decision_id().to_string();
    let dispatched = match ticket.plan().check {
        Some(check) => dispatch::run_checked(&mut ticket, &input.request, check, input.stream).await,
        None => dispatch::run(&mut ticket, &input.request, input.stream).await,
    };
    let abstained = ticket.abstained();
    let answer = match dispatched {
        Ok(a) => a,
        Err(e) => {
            ticket.close(Outcome::Error, Some(e.message.clone()));
            return Err((e, Some(decision_id)));
        }
    };
    let model = ticket.model_id();
    state.metrics.decision(ticket.plan().mode.as_str(), &model);
    let mut resp = match answer {
        Answer::Stream(started) => {
            state.metrics.first_token(&model, ticket.first_token());
            super::sse::respond(ticket, started, input.include_usage)
        }
        Answer::Whole(r) => whole(ticket, r).await,
    };
    conductor_headers(&mut resp, &decision_id, Some(&model));
    if abstained {
        resp.headers_mut().insert("x-conductor-abstained", axum::http::HeaderValue::from_static("1"));
    }
    Ok(resp)
}

/// A whole (non-streamed) completion: booked, then answered.
async fn whole(mut ticket: Ticket, r: ChatResponse) -> Response {
    ticket.settle_usage(Some(r.usage), estimate_tokens(&r.text) as u64);
    let usage = ticket.usage();
    let body = ChatCompletionResponse {
        id: format!("chatcmpl-{}", ticket.decision_id()),
        object: "chat.completion".into(),
        created: ticket.created(),
        model: ticket.model_id(),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant".into(),
                // OpenAI sends `content: null` beside tool calls when the model wrote no text.
                content: (!r.text.is_empty() || r.tool_calls.is_empty()).then_some(r.text),
                tool_calls: (!r.tool_calls.is_empty()).then(|| r.tool_calls.iter().map(Into::into).collect()),
            },
            finish_reason: Some(r.finish_reason),
            logprobs: r.logprobs.map(|lp| serde_json::json!({"content": lp})),
        }],
        usage: Some(WireUsage::new(usage.prompt_tokens, usage.completion_tokens)),
        conductor: Some(ticket.meta()),
    };
    ticket.close_durably(Outcome::Ok, None).await;
    axum::Json(body).into_response()
}
