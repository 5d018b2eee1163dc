//! ReAct: the worker model reasons and calls tools; each call's result goes back as a
//! `tool` message; a reply without a call is the answer. One step = one model call or one
//! tool call, so a run can stop, pause or resume between any two of them.

use crate::backend::ModelCall;
use crate::run::RunState;
use crate::runner::{Ctx, Driver, Halt, Next};
use crate::spec::Role;
use conductor_providers::{ChatMessage, Role as ChatRole};

const SYSTEM: &str = "You are an agent that reaches a goal with tools. Call a tool when it helps; you see each \
result before you go on. Check your work with the tools when you can. When you know the final answer, reply \
with it in plain text, without calling a tool.";

pub(crate) async fn step(d: &Driver, ctx: &Ctx, st: &mut RunState) -> Result<Next, Halt> {
    if st.messages.is_empty() {
        st.messages = vec![ChatMessage::system(SYSTEM), ChatMessage::user(st.spec.goal.clone())];
    }
    if let Some(call) = st.pending.first().cloned() {
        let outcome = match d.tool(ctx, st, &call).await {
            Ok(o) => o,
            Err(next) => return Ok(next),
        };
        st.pending.remove(0);
        insert_result(&mut st.messages, &call.id, outcome.text.clone());
        d.log_tool(st, outcome);
        return Ok(Next::Continue);
    }
    let call = ModelCall {
        role: Role::Worker,
        model: st.models.worker.clone(),
        messages: st.messages.clone(),
        tools: ctx.tools.specs(),
        tool_choice: None,
        response_format: None,
        max_tokens: st.spec.limits.max_tokens_per_call,
        authorization: None,
    };
    let Some(reply) = d.model(st, call).await? else { return Ok(Next::Cancelled) };
    st.messages
        .push(ChatMessage { tool_calls: reply.tool_calls.clone(), ..ChatMessage::assistant(reply.content.clone()) });
    if reply.tool_calls.is_empty() {
        return d.finish(st, reply.content.trim().to_string()).await;
    }
    st.pending = reply.tool_calls;
    Ok(Next::Continue)
}

/// Puts a call's result right after the assistant turn's earlier results (a steering
/// message the guard added stays after them, where the model reads it last).
fn insert_result(messages: &mut Vec<ChatMessage>, id: &str, text: String) {
    let at = messages
        .iter()
        .rposition(|m| m.role == ChatRole::Assistant || m.role == ChatRole::Tool)
        .map_or(messages.len(), |i| i + 1);
    messages.insert(at, ChatMessage::tool(id, text));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_go_before_a_steering_message() {
        let mut m = vec![ChatMessage::user("goal"), ChatMessage::assistant("calling"), ChatMessage::user("steer")];
        insert_result(&mut m, "c1", "42".into());
        assert_eq!(m[2].role, ChatRole::Tool);
        assert_eq!(m[3].content, "steer");
    }
}
