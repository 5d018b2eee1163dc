//! ReWOO: the planner writes every tool call up front (JSON constrained by a schema, so a
//! small local model cannot write an unreadable plan), with `#E1`, `#E2`, ... standing for
//! earlier calls' results; workers run the calls in order with no model in between; the
//! solver answers from the goal, the plan and the evidence. Three model calls at most per
//! attempt, whatever the number of tool calls.

use crate::backend::ModelCall;
use crate::run::{PlanStep, RunState};
use crate::runner::{Ctx, Driver, Halt, Next};
use crate::spec::Role;
use conductor_providers::{ChatMessage, ToolCall};
use serde_json::{json, Value};

/// Most calls a plan may hold.
const MAX_PLAN: usize = 6;

pub(crate) async fn step(d: &Driver, ctx: &Ctx, st: &mut RunState) -> Result<Next, Halt> {
    let Some(plan) = st.plan.clone() else {
        return plan_step(d, ctx, st).await;
    };
    let k = st.evidence.len();
    if let Some(p) = plan.get(k) {
        let call = ToolCall {
            id: format!("E{}", k + 1),
            name: p.tool.clone(),
            arguments: substitute(&p.args, &st.evidence).to_string(),
        };
        let outcome = match d.tool(ctx, st, &call).await {
            Ok(o) => o,
            Err(next) => return Ok(next),
        };
        st.evidence.push(outcome.text.clone());
        d.log_tool(st, outcome);
        return Ok(Next::Continue);
    }
    let mut text = format!("Goal:\n{}\n\nA plan was made and carried out:\n", st.spec.goal);
    for (i, (p, e)) in plan.iter().zip(&st.evidence).enumerate() {
        text.push_str(&format!("#E{} = {}({}) — {}\nResult: {}\n\n", i + 1, p.tool, p.args, p.note, e.trim()));
    }
    text.push_str("Using these results, give the final answer to the goal. Reply with the answer only.");
    st.messages = vec![ChatMessage::user(text)];
    let call = ModelCall {
        role: Role::Solver,
        model: st.models.solver.clone(),
        messages: st.messages.clone(),
        tools: vec![],
        tool_choice: None,
        response_format: None,
        max_tokens: st.spec.limits.max_tokens_per_call,
        authorization: None,
    };
    let Some(reply) = d.model(st, call).await? else { return Ok(Next::Cancelled) };
    d.finish(st, reply.content.trim().to_string()).await
}

async fn plan_step(d: &Driver, ctx: &Ctx, st: &mut RunState) -> Result<Next, Halt> {
    let names: Vec<&str> = ctx.tools.names();
    let described: Vec<String> = ctx
        .tools
        .specs()
        .iter()
        .map(|s| {
            format!(
                "- {}: {} Arguments: {}",
                s["function"]["name"], s["function"]["description"], s["function"]["parameters"]
            )
        })
        .collect();
    let prompt = format!(
        "Goal:\n{}\n\nTools:\n{}\n\nWrite a plan of 1 to {MAX_PLAN} tool calls that gathers what the goal needs. \
         In a call's arguments, write #E1, #E2, ... for the result of the 1st, 2nd, ... call. The calls run in \
         order without you; then you will answer from their results.",
        st.spec.goal,
        described.join("\n")
    );
    let schema = json!({"type": "json_schema", "json_schema": {"name": "plan", "schema": {
        "type": "object",
        "properties": {"steps": {"type": "array", "minItems": 1, "maxItems": MAX_PLAN, "items": {
            "type": "object",
            "properties": {"tool": {"enum": names}, "args": {"type": "object"}, "note": {"type": "string"}},
            "required": ["tool", "args", "note"]}}},
        "required": ["steps"]}}});
    let call = ModelCall {
        role: Role::Planner,
        model: st.models.planner.clone(),
        messages: vec![ChatMessage::user(prompt)],
        tools: vec![],
        tool_choice: None,
        response_format: Some(schema),
        max_tokens: st.spec.limits.max_tokens_per_call,
        authorization: None,
    };
    let Some(reply) = d.model(st, call).await? else { return Ok(Next::Cancelled) };
    let plan = parse_plan(&reply.content).map_err(|reason| Halt { kind: "bad_plan", reason })?;
    st.plan = Some(plan);
    Ok(Next::Continue)
}

fn parse_plan(text: &str) -> Result<Vec<PlanStep>, String> {
    let v: Value = serde_json::from_str(text.trim()).map_err(|e| format!("the plan is not JSON ({e}): {text}"))?;
    let steps: Vec<PlanStep> =
        serde_json::from_value(v["steps"].clone()).map_err(|e| format!("the plan's steps: {e}"))?;
    if steps.is_empty() || steps.len() > MAX_PLAN {
        return Err(format!("a plan holds 1 to {MAX_PLAN} calls, this one {}", steps.len()));
    }
    Ok(steps)
}

/// `args` with each `#E<k>` in its strings replaced by the k-th result (trimmed).
fn substitute(args: &Value, evidence: &[String]) -> Value {
    match args {
        Value::String(s) => {
            let mut out = s.clone();
            // Highest first, so #E1 does not eat the start of #E10.
            for (i, e) in evidence.iter().enumerate().rev() {
                out = out.replace(&format!("#E{}", i + 1), e.trim());
            }
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| substitute(v, evidence)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), substitute(v, evidence))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_take_earlier_results() {
        let ev: Vec<String> = (1..=10).map(|i| format!("r{i}\n")).collect();
        let v = substitute(&json!({"expression": "#E1 * #E10", "n": 3, "list": ["#E2"]}), &ev);
        assert_eq!(v, json!({"expression": "r1 * r10", "n": 3, "list": ["r2"]}));
    }

    #[test]
    fn plans_parse_or_say_why_not() {
        let p = parse_plan(r#"{"steps":[{"tool":"calculator","args":{"expression":"2+2"},"note":"add"}]}"#).unwrap();
        assert_eq!(p[0].tool, "calculator");
        assert!(parse_plan("{\"steps\": []}").unwrap_err().contains("1 to"));
        assert!(parse_plan("not json").unwrap_err().contains("not JSON"));
    }
}
