//! Turns a raw `/v1/chat/completions` body into a validated request, or a 400 that says
//! exactly which field is wrong (`messages[2].role: ...`). Bodies are parsed by hand from
//! bytes rather than by an extractor so that invalid UTF-8, wrong types and missing
//! fields all get OpenAI-shaped errors.

use crate::config::Config;
use crate::error::ApiError;
use crate::routing::Target;
use crate::verification::{Check, Strategy};
use conductor_core::policy::{Constraints, Policy};
use conductor_providers::openai_wire::{parse_tool_choice, parse_tools, ChatCompletionRequest};
use conductor_providers::{ChatMessage, ChatRequest, Extras, Requirement, ResponseFormat, Role, ToolChoice, ToolSpec};
use serde_json::Value;
use std::sync::Arc;

/// Longest `stop` list OpenAI accepts.
const MAX_STOP: usize = 4;

/// A chat request that passed validation: what providers are sent, plus how the client
/// wants the answer delivered and routed.
#[derive(Debug, Clone)]
pub struct ChatInput {
    /// `model` is still the name the client asked for (`auto`, `auto:<policy>` or an id).
    pub request: ChatRequest,
    pub stream: bool,
    pub include_usage: bool,
    /// Where the request goes: the router (with its policy and limits) or a named model.
    pub target: Target,
}

impl ChatInput {
    /// The text the router looks at: the last user message (what is being asked now),
    /// with earlier turns as context when there is no user message.
    pub fn routing_text(&self) -> String {
        let messages = &self.request.messages;
        messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.clone())
            .unwrap_or_else(|| messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n"))
    }

    /// Total bytes of the conversation (for token estimates and bounds).
    pub fn prompt_bytes(&self) -> usize {
        self.request.messages.iter().map(|m| m.content.len()).sum()
    }

    /// Upper bound of prompt tokens: a byte-level tokenizer never produces more tokens than
    /// bytes; the chat template adds a few per message.
    pub fn prompt_token_bound(&self) -> usize {
        self.prompt_bytes() + 16 * self.request.messages.len() + 64
    }

    /// Every message's text, joined (for token estimates).
    pub fn all_text(&self) -> String {
        self.request.messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n")
    }
}

/// Parses and validates a chat request; `config` gives what `auto` means when the client
/// does not say (its policy and verification defaults).
pub fn parse_chat(body: &[u8], config: &Config) -> Result<ChatInput, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("invalid_body", "request body is empty; expected a JSON object"));
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request("invalid_body", format!("request body is not valid UTF-8 (at byte {})", e.valid_up_to()))
    })?;
    let raw: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("invalid request body: {e}")))?;
    let req: ChatCompletionRequest = serde_path_to_error::deserialize(&raw).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = if path == "." || path.is_empty() {
            format!("invalid request body: {inner}")
        } else {
            format!("invalid value for `{path}`: {inner}")
        };
        let mut err = ApiError::bad_request("invalid_body", msg);
        if path != "." && !path.is_empty() {
            err = err.with_param(path);
        }
        err
    })?;
    let Value::Object(mut passthrough) = raw else {
        return Err(ApiError::bad_request("invalid_body", "request body must be a JSON object"));
    };
    passthrough.remove("conductor");
    let mut input = validate(req, config)?;
    input.request.passthrough = Some(Arc::new(passthrough));
    Ok(input)
}

/// Whether a field's value asks for anything (`false`, `null`, `0`, `[]` and `{}` are
/// the defaults OpenAI's SDKs send when a feature is off).
fn asks(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// Tool-calling fields: one capability (`tools`) covers them all; `tool_choice` and
/// `parallel_tool_calls` only qualify `tools`.
const TOOL_FIELDS: [&str; 3] = ["tools", "tool_choice", "parallel_tool_calls"];

/// `tools`, `tool_choice` and `parallel_tool_calls`, typed.
type ToolFields = (Vec<ToolSpec>, Option<ToolChoice>, Option<bool>);

/// The typed tool fields (they are also forwarded as sent to OpenAI-compatible upstreams).
fn tool_fields(x: &serde_json::Map<String, Value>) -> Result<ToolFields, ApiError> {
    let bad = |param: String, msg: String| ApiError::bad_request("invalid_value", msg).with_param(param);
    let tools = match x.get("tools") {
        None | Some(Value::Null) => vec![],
        Some(v) => parse_tools(v).map_err(|(param, msg)| bad(param, msg))?,
    };
    let choice = match x.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_tool_choice(v).map_err(|m| bad("tool_choice".into(), m))?),
    };
    // As OpenAI: the fields that qualify `tools` mean nothing without it.
    for k in ["tool_choice", "parallel_tool_calls"] {
        if tools.is_empty() && x.get(k).is_some_and(|v| !v.is_null()) {
            return Err(bad(k.into(), format!("`{k}` is only allowed when `tools` are given")));
        }
    }
    match &choice {
        Some(ToolChoice::Function(n)) if !tools.iter().any(|t| &t.name == n) => {
            return Err(bad("tool_choice".into(), format!("`tool_choice` names `{n}`, which is not among `tools`")))
        }
        _ => {}
    }
    let parallel = match x.get("parallel_tool_calls") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(bad("parallel_tool_calls".into(), "`parallel_tool_calls` must be true or false".into())),
    };
    Ok((tools, choice, parallel))
}

/// What the request asks for beyond the core chat fields, each with the capability a
/// model needs to honour it.
fn requirements(req: &ChatCompletionRequest) -> Vec<Requirement> {
    let mut out: Vec<Requirement> = req
        .extra
        .iter()
        .filter(|(k, v)| asks(v) && !(k.as_str() == "response_format" && v["type"] == "text"))
        .filter(|(k, _)| !TOOL_FIELDS.contains(&k.as_str()) || k.as_str() == "tools")
        .map(|(k, _)| Requirement { field: k.clone(), capability: k.clone() })
        .collect();
    for (i, m) in req.messages.iter().enumerate() {
        if m.name.as_deref().is_some_and(|n| !n.is_empty()) {
            out.push(Requirement { field: format!("messages[{i}].name"), capability: "message.name".into() });
        }
        // A conversation with tool turns needs a model that reads them.
        if m.tool_calls.as_ref().is_some_and(|c| !c.is_empty()) || m.role == "tool" {
            let field = if m.role == "tool" { "tool_call_id" } else { "tool_calls" };
            out.push(Requirement { field: format!("messages[{i}].{field}"), capability: "tools".into() });
        }
        for (k, _) in m.extra.iter().filter(|(_, v)| asks(v)) {
            out.push(Requirement { field: format!("messages[{i}].{k}"), capability: format!("message.{k}") });
        }
    }
    out
}

/// The typed form of the generation controls among the extra fields (they are forwarded
/// as sent to OpenAI-compatible upstreams; the local engine reads these).
fn extras(x: &serde_json::Map<String, Value>) -> Result<Extras, ApiError> {
    let bad = |param: &str, msg: String| ApiError::bad_request("invalid_value", msg).with_param(param);
    let num = |k: &str, lo: f64, hi: f64| -> Result<f32, ApiError> {
        match x.get(k) {
            None | Some(Value::Null) => Ok(0.0),
            Some(v) => v
                .as_f64()
                .filter(|f| (lo..=hi).contains(f))
                .map(|f| f as f32)
                .ok_or_else(|| bad(k, format!("`{k}` must be a number between {lo} and {hi}"))),
        }
    };
    let mut e = Extras {
        frequency_penalty: num("frequency_penalty", -2.0, 2.0)?,
        presence_penalty: num("presence_penalty", -2.0, 2.0)?,
        ..Default::default()
    };
    match x.get("logit_bias") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let t = k
                    .parse::<u32>()
                    .map_err(|_| bad("logit_bias", format!("`logit_bias` key `{k}` is not a token id")))?;
                let b = v.as_f64().filter(|b| (-100.0..=100.0).contains(b)).ok_or_else(|| {
                    bad("logit_bias", format!("`logit_bias[{k}]` must be a number between -100 and 100"))
                })?;
                e.logit_bias.push((t, b as f32));
            }
        }
        Some(_) => return Err(bad("logit_bias", "`logit_bias` must be an object of token id → bias".into())),
    }
    let logprobs = match x.get("logprobs") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("logprobs", "`logprobs` must be true or false".into())),
    };
    let top = match x.get("top_logprobs") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|k| *k <= 20)
                .ok_or_else(|| bad("top_logprobs", "`top_logprobs` must be an integer from 0 to 20".into()))?
                as usize,
        ),
    };
    if top.is_some_and(|k| k > 0) && !logprobs {
        return Err(bad("top_logprobs", "`top_logprobs` needs `logprobs: true`".into()));
    }
    e.logprobs = logprobs.then(|| top.unwrap_or(0));
    e.response_format = match x.get("response_format") {
        None | Some(Value::Null) => None,
        Some(v) => match v.get("type").and_then(Value::as_str) {
            Some("text") => None,
            Some("json_object") => Some(ResponseFormat::JsonObject),
            Some("json_schema") => {
                let schema = v.get("json_schema").and_then(|j| j.get("schema")).filter(|s| s.is_object());
                let Some(s) = schema else {
                    return Err(bad(
                        "response_format",
                        "`response_format.json_schema.schema` must be a JSON Schema object".into(),
                    ));
                };
                Some(ResponseFormat::JsonSchema(s.clone()))
            }
            _ => {
                return Err(bad(
                    "response_format",
                    "`response_format.type` must be \"text\", \"json_object\" or \"json_schema\"".into(),
                ))
            }
        },
    };
    Ok(e)
}

fn validate(req: ChatCompletionRequest, defaults: &Config) -> Result<ChatInput, ApiError> {
    let requires = requirements(&req);
    let extras = extras(&req.extra)?;
    let (tools, tool_choice, parallel_tool_calls) = tool_fields(&req.extra)?;
    let bad = |param: &str, msg: String| Err(ApiError::bad_request("invalid_value", msg).with_param(param));
    if req.model.trim().is_empty() {
        return bad("model", "`model` must be a model id or \"auto\"".into());
    }
    if req.messages.is_empty() {
        return bad("messages", "`messages` must contain at least one message".into());
    }
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        let Some(role) = Role::parse(&m.role) else {
            return bad(
                &format!("messages[{i}].role"),
                format!(
                    "messages[{i}].role \"{}\" is not supported; use system, developer, user, assistant or tool",
                    m.role.chars().take(40).collect::<String>()
                ),
            );
        };
        let content = match &m.content {
            None => String::new(),
            Some(c) => match c.to_text() {
                Ok(t) => t,
                Err(msg) => return bad(&format!("messages[{i}].content"), format!("messages[{i}].content: {msg}")),
            },
        };
        let tool_calls: Vec<conductor_providers::ToolCall> =
            m.tool_calls.clone().unwrap_or_default().into_iter().map(Into::into).collect();
        if role != Role::Assistant && !tool_calls.is_empty() {
            return bad(
                &format!("messages[{i}].tool_calls"),
                format!("messages[{i}]: only assistant turns call tools"),
            );
        }
        for (j, c) in tool_calls.iter().enumerate() {
            if !serde_json::from_str::<Value>(&c.arguments).is_ok_and(|v| v.is_object()) {
                return bad(
                    &format!("messages[{i}].tool_calls[{j}].function.arguments"),
                    format!("messages[{i}].tool_calls[{j}].function.arguments must be the JSON text of an object"),
                );
            }
        }
        let tool_call_id = m.tool_call_id.clone();
        if role == Role::Tool {
            let Some(id) = tool_call_id.as_deref() else {
                return bad(
                    &format!("messages[{i}].tool_call_id"),
                    format!("messages[{i}]: a tool message needs `tool_call_id`"),
                );
            };
            let asked = messages[..].iter().rev().any(|p: &ChatMessage| p.tool_calls.iter().any(|c| c.id == id));
            if !asked {
                return bad(
                    &format!("messages[{i}].tool_call_id"),
                    format!("messages[{i}].tool_call_id `{id}` answers no earlier assistant tool call"),
                );
            }
        }
        messages.push(ChatMessage { role, content, tool_calls, tool_call_id });
    }
    if !messages.iter().any(|m| m.role == Role::User) {
        return bad("messages", "`messages` must contain at least one user message".into());
    }
    if let Some(t) = req.temperature {
        if !(0.0..=2.0).contains(&t) {
            return bad("temperature", format!("`temperature` must be between 0 and 2, got {t}"));
        }
    }
    if let Some(p) = req.top_p {
        if !(p > 0.0 && p <= 1.0) {
            return bad("top_p", format!("`top_p` must be in (0, 1], got {p}"));
        }
    }
    let max_tokens = req.max_completion_tokens.or(req.max_tokens);
    if max_tokens == Some(0) {
        return bad("max_tokens", "`max_tokens` must be at least 1".into());
    }
    if let Some(n) = req.n {
        if n != 1 {
            return bad("n", "only `n = 1` is supported".into());
        }
    }
    let stop = req.stop.map(|s| s.into_vec()).unwrap_or_default();
    if stop.len() > MAX_STOP {
        return bad("stop", format!("`stop` may hold at most {MAX_STOP} sequences"));
    }
    if stop.iter().any(|s| s.is_empty()) {
        return bad("stop", "`stop` sequences must be non-empty".into());
    }
    let stream = req.stream.unwrap_or(false);
    let include_usage = stream && req.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
    let knobs = req.conductor.as_ref().filter(|v| !v.is_null());
    let target = target(&req.model, knobs, defaults)?;
    Ok(ChatInput {
        request: ChatRequest {
            model: req.model,
            messages,
            max_tokens,
            temperature: req.temperature,
            top_p: req.top_p,
            stop,
            seed: req.seed.map(|s| s as u64),
            user: req.user,
            extras,
            requires,
            tools,
            tool_choice,
            parallel_tool_calls,
            passthrough: None,
        },
        stream,
        include_usage,
        target,
    })
}

fn is_auto(model: &str) -> bool {
    model == "auto" || model.starts_with("auto:")
}

/// The routing options a request may set in its `conductor` field.
const KNOBS: [&str; 8] = ["policy", "lambda", "tau", "max_cost_usd", "min_quality", "verify", "max_risk", "abstain"];

/// Routing knobs of one request: `auto:<policy>`, `auto:verify` or `auto:cascade` in the
/// model name and/or the `conductor` body field (`policy`, `lambda`, `tau`, `max_cost_usd`,
/// `min_quality`; `verify` — false, true, "verify" or "cascade" —, `max_risk`, `abstain`).
/// Knobs sent with a concrete model id are validated too, so typos surface.
fn target(model: &str, knobs: Option<&Value>, defaults: &Config) -> Result<Target, ApiError> {
    let bad = |param: &str, m: String| ApiError::bad_request("invalid_routing_option", m).with_param(param);
    let v = &defaults.verify;
    let mut strategy = v.strategy.strategy();
    let mut policy = defaults.policy.default.clone();
    match model.strip_prefix("auto:") {
        Some(s) if Strategy::parse(s).is_some() => strategy = Strategy::parse(s),
        Some(p) => policy = p.parse::<Policy>().map_err(|e| bad("model", e.to_string()))?,
        None => {}
    }
    let (mut max_risk, mut abstain) = (v.max_risk, v.abstain);
    let mut c = Constraints {
        max_cost_usd: defaults.policy.max_cost_usd,
        min_quality: defaults.policy.min_quality,
        allowed_models: None,
    };
    if let Some(v) = knobs {
        let Value::Object(o) = v else {
            return Err(bad("conductor", "`conductor` must be an object of routing options".into()));
        };
        for k in o.keys() {
            if !KNOBS.contains(&k.as_str()) {
                return Err(bad(
                    &format!("conductor.{k}"),
                    format!("unknown routing option `conductor.{k}` ({})", KNOBS.join(", ")),
                ));
            }
        }
        let num = |k: &str| -> Result<Option<f64>, ApiError> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_f64().filter(|x| x.is_finite() && *x >= 0.0).map(Some).ok_or_else(|| {
                    bad(&format!("conductor.{k}"), format!("`conductor.{k}` must be a non-negative number"))
                }),
            }
        };
        if let Some(p) = o.get("policy") {
            let name =
                p.as_str().ok_or_else(|| bad("conductor.policy", "`conductor.policy` must be a string".into()))?;
            policy = name.parse().map_err(|e: anyhow::Error| bad("conductor.policy", e.to_string()))?;
        }
        // A knob for the policy's parameter re-reads the policy with it, so the policy's
        // own range checks apply (τ in [0, 1]).
        let base = match policy {
            Policy::MaxQuality => "quality",
            Policy::CostTradeoff { .. } => "cost",
            Policy::Threshold { .. } => "threshold",
        };
        for k in ["lambda", "tau"] {
            if let Some(x) = num(k)? {
                policy = format!("{base}:{x}")
                    .parse()
                    .map_err(|e: anyhow::Error| bad(&format!("conductor.{k}"), e.to_string()))?;
            }
        }
        if let Some(m) = num("max_cost_usd")? {
            c.max_cost_usd = Some(m);
        }
        if let Some(q) = num("min_quality")? {
            if q > 1.0 {
                return Err(bad("conductor.min_quality", "`conductor.min_quality` must be in [0, 1]".into()));
            }
            c.min_quality = Some(q);
        }
        match o.get("verify") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(false)) => strategy = None,
            Some(Value::Bool(true)) => strategy = strategy.or(Some(Strategy::Verify)),
            Some(Value::String(s)) if Strategy::parse(s).is_some() => strategy = Strategy::parse(s),
            Some(_) => {
                return Err(bad(
                    "conductor.verify",
                    "`conductor.verify` must be false, true, \"verify\" or \"cascade\"".into(),
                ))
            }
        }
        if let Some(r) = num("max_risk")? {
            if !(r > 0.0 && r < 1.0) {
                return Err(bad(
                    "conductor.max_risk",
                    "`conductor.max_risk` must be between 0 and 1 (exclusive)".into(),
                ));
            }
            max_risk = r;
        }
        match o.get("abstain") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => abstain = *b,
            Some(_) => return Err(bad("conductor.abstain", "`conductor.abstain` must be true or false".into())),
        }
        // Verification knobs without verification would silently do nothing.
        if strategy.is_none() && (o.contains_key("max_risk") || o.get("abstain") == Some(&Value::Bool(true))) {
            let k = if o.contains_key("max_risk") { "max_risk" } else { "abstain" };
            return Err(bad(
                &format!("conductor.{k}"),
                format!("`conductor.{k}` needs verification: use model \"auto:verify\" or \"auto:cascade\", or `conductor.verify`"),
            ));
        }
    }
    let check = strategy.map(|strategy| Check { strategy, max_risk, abstain });
    Ok(if is_auto(model) {
        Target::Auto { policy, constraints: c, check }
    } else {
        if check.is_some() && knobs.is_some_and(|k| k.get("verify").is_some_and(|v| v != &Value::Bool(false))) {
            return Err(bad(
                "conductor.verify",
                "verification climbs a ladder of models chosen by the router; use model \"auto\" (a named model is answered as it is)".into(),
            ));
        }
        Target::Direct(model.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &[u8]) -> Result<ChatInput, ApiError> {
        parse_chat(body, &Config::default())
    }

    fn err(body: &str) -> ApiError {
        parse(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn names_the_bad_field() {
        let e = err(r#"{"model":"auto","messages":[{"role":"user","content":"hi"}],"temperature":"hot"}"#);
        assert_eq!(e.param.as_deref(), Some("temperature"));
        let e = err(r#"{"model":"auto"}"#);
        assert!(e.message.contains("messages"), "{}", e.message);
        let e = err(r#"{"model":"auto","messages":[]}"#);
        assert_eq!(e.param.as_deref(), Some("messages"));
        let e = err(r#"{"model":"auto","messages":[{"role":"wizard","content":"x"}]}"#);
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
        let e = err(r#"{"model":5,"messages":[]}"#);
        assert_eq!(e.param.as_deref(), Some("model"));
        assert!(parse(b"{\"model\":\"a\xff\"}").is_err());
        assert!(parse(b"[1,2]").is_err());
    }

    #[test]
    fn accepts_openai_shapes() {
        let ok = parse(
            br#"{"model":"auto","messages":[{"role":"developer","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"}]}],
                "stop":"\n","max_completion_tokens":5,"stream":true,"stream_options":{"include_usage":true},"seed":1,"logit_bias":{}}"#,
        )
        .unwrap();
        assert_eq!(ok.request.messages[0].role, Role::System);
        assert_eq!(ok.request.messages[1].content, "hi");
        assert_eq!(ok.request.stop, vec!["\n".to_string()]);
        assert_eq!(ok.request.max_tokens, Some(5));
        assert!(ok.include_usage);
    }

    #[test]
    fn fields_beyond_plain_chat_are_requirements_and_the_body_passes_through() {
        let i = parse(
            br#"{"model":"m","messages":[{"role":"user","content":"hi","name":"ann"}],"max_completion_tokens":7,
                "tools":[{"type":"function","function":{"name":"f"}}],"logprobs":false,"logit_bias":{},
                "frequency_penalty":0,"response_format":{"type":"json_object"},"conductor":{"policy":"quality"}}"#,
        )
        .unwrap();
        let fields: Vec<&str> = i.request.requires.iter().map(|r| r.field.as_str()).collect();
        assert_eq!(fields, ["response_format", "tools", "messages[0].name"]);
        assert_eq!(i.request.tools[0].name, "f");
        let p = i.request.passthrough.unwrap();
        assert!(p.get("conductor").is_none(), "routing knobs are never forwarded");
        assert_eq!(p["max_completion_tokens"], 7, "the limit keeps the name the client used");
        assert!(p.contains_key("logit_bias") && p.contains_key("tools"));
    }

    #[test]
    fn tool_turns_are_typed_and_checked() {
        let ok = parse(
            br#"{"model":"auto","messages":[{"role":"user","content":"2+2?"},
                {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"calc","arguments":"{\"e\":\"2+2\"}"}}]},
                {"role":"tool","tool_call_id":"c1","content":"4"}],
                "tools":[{"type":"function","function":{"name":"calc","parameters":{"type":"object"}}}],
                "tool_choice":{"type":"function","function":{"name":"calc"}},"parallel_tool_calls":false}"#,
        )
        .unwrap();
        let r = &ok.request;
        assert_eq!(r.messages[1].tool_calls[0].name, "calc");
        assert_eq!(r.messages[2].role, Role::Tool);
        assert_eq!(r.tool_choice, Some(ToolChoice::Function("calc".into())));
        assert_eq!(r.parallel_tool_calls, Some(false));
        assert!(r.requires.iter().all(|q| q.capability == "tools"), "{:?}", r.requires);
        let e = err(
            r#"{"model":"auto","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"nope","content":"4"}]}"#,
        );
        assert_eq!(e.param.as_deref(), Some("messages[1].tool_call_id"));
        let e = err(
            r#"{"model":"auto","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"function","function":{"name":"b"}}}"#,
        );
        assert_eq!(e.param.as_deref(), Some("tool_choice"));
        let e = err(
            r#"{"model":"auto","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a b"}}]}"#,
        );
        assert_eq!(e.param.as_deref(), Some("tools[0].function.name"));
        let e = err(
            r#"{"model":"auto","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"a","arguments":"{oops"}}]}]}"#,
        );
        assert_eq!(e.param.as_deref(), Some("messages[1].tool_calls[0].function.arguments"));
    }

    #[test]
    fn routing_knobs_become_a_target() {
        let body = |model: &str, knobs: &str| {
            format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]{knobs}}}"#)
        };
        let t = parse(body("auto:cost:0.5", r#","conductor":{"min_quality":0.4}"#).as_bytes()).unwrap().target;
        let Target::Auto { policy, constraints, check } = t else { panic!("auto") };
        assert_eq!(check, None, "no verification unless asked");
        assert_eq!(policy, Policy::CostTradeoff { lambda: 0.5 });
        assert_eq!(constraints.min_quality, Some(0.4));
        let t = parse(body("auto", r#","conductor":{"policy":"threshold","tau":0.9}"#).as_bytes()).unwrap().target;
        assert!(matches!(t, Target::Auto { policy: Policy::Threshold { tau } , .. } if tau == 0.9));
        assert_eq!(parse(body("m1", "").as_bytes()).unwrap().target, Target::Direct("m1".into()));
        let e = err(&body("auto", r#","conductor":{"tau":3}"#));
        assert_eq!(e.param.as_deref(), Some("conductor.tau"));
        let e = err(&body("m1", r#","conductor":{"lamda":1}"#));
        assert_eq!(e.param.as_deref(), Some("conductor.lamda"));
        let e = err(&body("auto:fastest", ""));
        assert_eq!(e.param.as_deref(), Some("model"));
    }

    #[test]
    fn verification_knobs() {
        let body = |model: &str, knobs: &str| {
            format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]{knobs}}}"#)
        };
        let check = |b: String| match parse(b.as_bytes()).unwrap().target {
            Target::Auto { check, .. } => check,
            Target::Direct(_) => panic!("auto"),
        };
        let c = check(body("auto:verify", "")).unwrap();
        assert_eq!((c.strategy, c.max_risk, c.abstain), (Strategy::Verify, 0.2, false));
        let c = check(body("auto:cascade", r#","conductor":{"max_risk":0.05,"abstain":true}"#)).unwrap();
        assert_eq!((c.strategy, c.max_risk, c.abstain), (Strategy::Cascade, 0.05, true));
        assert_eq!(check(body("auto", r#","conductor":{"verify":"cascade"}"#)).unwrap().strategy, Strategy::Cascade);
        assert_eq!(check(body("auto:verify", r#","conductor":{"verify":false}"#)), None, "a client may opt out");
        for (knobs, param) in [
            (r#","conductor":{"max_risk":1.5}"#, "conductor.max_risk"),
            (r#","conductor":{"abstain":"yes"}"#, "conductor.abstain"),
            (r#","conductor":{"verify":"maybe"}"#, "conductor.verify"),
        ] {
            assert_eq!(err(&body("auto:verify", knobs)).param.as_deref(), Some(param), "{knobs}");
        }
        // Knobs that would do nothing are refused rather than ignored.
        assert_eq!(err(&body("auto", r#","conductor":{"max_risk":0.1}"#)).param.as_deref(), Some("conductor.max_risk"));
        assert_eq!(err(&body("m1", r#","conductor":{"verify":true}"#)).param.as_deref(), Some("conductor.verify"));
    }
}
