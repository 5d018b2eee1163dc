//! `POST /v1/chat/completions`: authenticate, validate, route, reserve budget, call
//! (with retries and fallback), answer (whole or SSE), book.

use super::{body_error, conductor_headers};
use crate::dispatch::{self, Answer};
use crate::error::ApiError;
use crate::request::{parse_chat, ChatInput};
use crate::routing;
use crate::state::AppState;
use crate::ticket::Ticket;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header::AUTHORIZATION, HeaderMap};
use axum::response::{IntoResponse, Response};
use conductor_core::policy::Constraints;
use conductor_core::tokens::estimate_tokens;
use conductor_providers::openai_wire::{ChatCompletionResponse, Choice, ResponseMessage, WireUsage};
use conductor_providers::{ChatRequest, Usage};
use std::sync::Arc;

pub const ROUTE: &str = "/v1/chat/completions";

pub async fn handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
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

/// Upper bound of prompt tokens: a byte-level tokenizer never produces more tokens than
/// bytes; the chat template adds a few per message.
fn prompt_token_bound(input: &ChatInput) -> usize {
    input.prompt_bytes() + 16 * input.request.messages.len() + 64
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Fills in counts an upstream did not report.
pub fn fix_usage(u: Usage, prompt_estimate: u64, text_len_tokens: u64) -> Usage {
    Usage {
        prompt_tokens: if u.prompt_tokens == 0 { prompt_estimate } else { u.prompt_tokens },
        completion_tokens: if u.completion_tokens == 0 { text_len_tokens } else { u.completion_tokens },
    }
}

async fn handle(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, (ApiError, Option<String>)> {
    let key =
        state.keys.authenticate(headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok())).map_err(|e| (e, None))?;
    let body = body.map_err(|e| (body_error(e), None))?;
    let input = parse_chat(&body).map_err(|e| (e, None))?;
    let all_text: String = input.request.messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n");
    let prompt_estimate = estimate_tokens(&all_text);
    let routing_text = input.routing_text();
    let pc = &state.config.policy;
    let defaults = Constraints { max_cost_usd: pc.max_cost_usd, min_quality: pc.min_quality, allowed_models: None };
    let plan = routing::plan(
        &state.registry,
        &state.router,
        &key,
        &input.request.model,
        input.knobs.as_ref(),
        &routing_text,
        prompt_estimate,
        &pc.default,
        &defaults,
    )
    .map_err(|e| (e, None))?;

    // Reserve the most this request can cost on any model it may fall back to.
    let bound = prompt_token_bound(&input);
    let reserve = plan
        .ranked
        .iter()
        .filter_map(|id| state.registry.get(id))
        .map(|m| m.entry.cost_usd(bound, input.request.max_tokens.unwrap_or(m.limits.default_max_tokens) as usize))
        .fold(0.0, f64::max);
    let reservation = state.budgets.reserve(&key.id, reserve).map_err(|o| {
        (
            ApiError::budget_exceeded(format!(
                "budget of API key `{}` exhausted: this request may cost up to ${:.6}, ${:.6} of ${:.6} left this period",
                key.id, o.needed, o.remaining, o.limit
            )),
            None,
        )
    })?;

    let decision_id = uuid::Uuid::new_v4().simple().to_string();
    let prompt = state.config.books.log_prompts.then(|| routing_text.clone());
    let mut ticket = Ticket::new(
        state.clone(),
        decision_id.clone(),
        key.id.clone(),
        input.request.model.clone(),
        plan,
        prompt,
        input.stream,
        reservation,
        prompt_estimate as u64,
    );
    // Dispatch fills in each candidate's own model name.
    let base = ChatRequest { model: String::new(), ..input.request.clone() };
    match dispatch::run(&state, &mut ticket, &base, input.stream).await {
        Err(e) => {
            ticket.close("error", Some(e.message.clone()));
            Err((e, Some(decision_id)))
        }
        Ok(Answer::Stream(started)) => {
            let model = ticket.chosen.as_ref().map(|m| m.entry.id.clone()).unwrap_or_default();
            state.metrics.decision(ticket.plan.mode, &model);
            state.metrics.first_token(&model, ticket.started.elapsed().as_secs_f64());
            let mut resp = super::sse::respond(ticket, started, input.include_usage);
            conductor_headers(&mut resp, &decision_id, Some(&model));
            Ok(resp)
        }
        Ok(Answer::Whole(r)) => {
            let model = ticket.chosen.as_ref().map(|m| m.entry.id.clone()).unwrap_or_default();
            state.metrics.decision(ticket.plan.mode, &model);
            ticket.usage = fix_usage(r.usage, prompt_estimate as u64, estimate_tokens(&r.text) as u64);
            let usage = ticket.usage;
            let meta = ticket.meta();
            ticket.close_durably("ok", None).await;
            let body = ChatCompletionResponse {
                id: format!("chatcmpl-{decision_id}"),
                object: "chat.completion".into(),
                created: now_secs(),
                model: model.clone(),
                choices: vec![Choice {
                    index: 0,
                    message: ResponseMessage { role: "assistant".into(), content: Some(r.text) },
                    finish_reason: Some(r.finish_reason),
                    logprobs: None,
                }],
                usage: Some(WireUsage::new(usage.prompt_tokens, usage.completion_tokens)),
                conductor: Some(meta),
            };
            let mut resp = axum::Json(body).into_response();
            conductor_headers(&mut resp, &decision_id, Some(&model));
            Ok(resp)
        }
    }
}
