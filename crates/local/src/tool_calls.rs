//! Turns a local model's text into OpenAI tool calls as it streams. Qwen2.5's chat
//! template tells the model to answer a call as `<tool_call>\n{"name": ..., "arguments":
//! {...}}\n</tool_call>`; text outside those tags is the reply's content. Small models
//! also write a call as a bare JSON object (sometimes in a ```json fence), so an output
//! that *starts* like JSON is held back until the end and taken as a call only if the
//! whole of it is one. A call whose JSON does not parse is an error naming what was
//! written — never passed on half-parsed.

use conductor_providers::ToolCall;
use serde_json::Value;

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

/// One piece of parsed output.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Text(String),
    Call(ToolCall),
}

/// A model's tool call that is not a JSON object with a `name` and object `arguments`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the model wrote a tool call that is not valid ({reason}): {raw}")]
pub struct BadToolCall {
    pub reason: String,
    /// What the model wrote (its first 300 characters).
    pub raw: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Nothing but whitespace yet: the output may still turn out to be a bare JSON call.
    Start,
    /// A bare JSON object (or fenced block) from the start: held back until the end.
    Bare,
    Text,
    InCall,
}

/// Incremental parser for one generation.
#[derive(Debug)]
pub struct ToolCallParser {
    state: State,
    buf: String,
}

impl Default for ToolCallParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ToolCallParser {
    pub fn new() -> Self {
        Self { state: State::Start, buf: String::new() }
    }

    /// Feeds the next piece of generated text; returns what is final so far.
    pub fn feed(&mut self, piece: &str) -> Result<Vec<Parsed>, BadToolCall> {
        self.buf.push_str(piece);
        let mut out = Vec::new();
        loop {
            match self.state {
                State::Start => {
                    let t = self.buf.trim_start();
                    if t.is_empty() {
                        return Ok(out);
                    }
                    self.state = if t.starts_with('{') || t.starts_with("```") { State::Bare } else { State::Text };
                }
                State::Bare => return Ok(out),
                State::Text => match self.buf.find(OPEN) {
                    Some(at) => {
                        push_text(&mut out, &self.buf[..at]);
                        self.buf.drain(..at + OPEN.len());
                        self.state = State::InCall;
                    }
                    None => {
                        // Keep back a tail that may be the start of `<tool_call>`.
                        let keep = partial_suffix(&self.buf, OPEN);
                        let cut = self.buf.len() - keep;
                        push_text(&mut out, &self.buf[..cut]);
                        self.buf.drain(..cut);
                        return Ok(out);
                    }
                },
                State::InCall => match self.buf.find(CLOSE) {
                    Some(at) => {
                        let call = parse_call(&self.buf[..at])?;
                        out.push(Parsed::Call(call));
                        self.buf.drain(..at + CLOSE.len());
                        self.state = State::Text;
                    }
                    None => return Ok(out),
                },
            }
        }
    }

    /// The end of the generation; `cut_off` when it stopped at the token limit.
    pub fn finish(&mut self, cut_off: bool) -> Result<Vec<Parsed>, BadToolCall> {
        let rest = std::mem::take(&mut self.buf);
        match self.state {
            State::Start | State::Text => Ok(if rest.is_empty() { vec![] } else { vec![Parsed::Text(rest)] }),
            // A call whose closing tag never came: complete JSON is still a call (a
            // `</tool_call>` stop sequence ends it that way), a cut-off one is not.
            State::InCall => {
                if cut_off && serde_json::from_str::<Value>(rest.trim()).is_err() {
                    return Err(bad("cut off by max_tokens before the call was complete", &rest));
                }
                Ok(vec![Parsed::Call(parse_call(&rest)?)])
            }
            State::Bare => match bare_calls(&rest, cut_off)? {
                Some(calls) => Ok(calls.into_iter().map(Parsed::Call).collect()),
                None => Ok(vec![Parsed::Text(rest)]),
            },
        }
    }
}

fn push_text(out: &mut Vec<Parsed>, s: &str) {
    if !s.is_empty() {
        out.push(Parsed::Text(s.to_string()));
    }
}

/// Length of the longest suffix of `s` that is a proper prefix of `pat`.
fn partial_suffix(s: &str, pat: &str) -> usize {
    (1..pat.len().min(s.len() + 1))
        .rev()
        .find(|&n| s.is_char_boundary(s.len() - n) && pat.starts_with(&s[s.len() - n..]))
        .unwrap_or(0)
}

fn bad(reason: &str, raw: &str) -> BadToolCall {
    BadToolCall { reason: reason.to_string(), raw: raw.trim().chars().take(300).collect() }
}

/// `{"name": ..., "arguments": {...}}` (arguments may also be JSON text of an object).
fn parse_call(body: &str) -> Result<ToolCall, BadToolCall> {
    let v: Value = serde_json::from_str(body.trim()).map_err(|e| bad(&format!("not JSON: {e}"), body))?;
    let name =
        v.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).ok_or_else(|| bad("no string `name`", body))?;
    let arguments = match v.get("arguments").or_else(|| v.get("parameters")) {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(Value::String(s)) => serde_json::from_str::<Value>(s)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| bad("`arguments` is text that is not a JSON object", body))?,
        Some(o @ Value::Object(_)) => o.clone(),
        Some(_) => return Err(bad("`arguments` is not an object", body)),
    };
    Ok(ToolCall { id: ToolCall::new_id(), name: name.to_string(), arguments: arguments.to_string() })
}

/// A whole output that is one or more calls written without tags (one after another, or
/// one in a code fence); `None` when it is anything else (it is then text). Small models
/// sometimes repeat a bare call until the token limit: the complete ones are calls, and a
/// cut-off one at the end is an error rather than a call made of half its JSON.
fn bare_calls(text: &str, cut_off: bool) -> Result<Option<Vec<ToolCall>>, BadToolCall> {
    let t = text.trim();
    let t = match t.strip_prefix("```") {
        Some(rest) => match rest.trim_start_matches("json").trim_start_matches("JSON").trim_end().strip_suffix("```") {
            Some(inner) => inner.trim(),
            None => return Ok(None),
        },
        None => t,
    };
    let mut values = serde_json::Deserializer::from_str(t).into_iter::<Value>();
    let mut calls = Vec::new();
    while let Some(Ok(v)) = values.next() {
        if v.get("name").and_then(Value::as_str).is_none() || v.get("arguments").is_none() {
            return Ok(None);
        }
        match parse_call(&v.to_string()) {
            Ok(c) => calls.push(c),
            Err(_) => return Ok(None),
        }
    }
    let rest = t[values.byte_offset()..].trim();
    match (calls.is_empty(), rest.is_empty()) {
        (true, _) => Ok(None),
        (false, true) => Ok(Some(calls)),
        (false, false) if cut_off => Err(bad("cut off by max_tokens in the middle of a call", rest)),
        (false, false) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pieces: &[&str], cut_off: bool) -> Result<Vec<Parsed>, BadToolCall> {
        let mut p = ToolCallParser::new();
        let mut out = Vec::new();
        for piece in pieces {
            out.extend(p.feed(piece)?);
        }
        out.extend(p.finish(cut_off)?);
        Ok(out)
    }

    fn call(p: &Parsed) -> (&str, Value) {
        match p {
            Parsed::Call(c) => (c.name.as_str(), serde_json::from_str(&c.arguments).unwrap()),
            Parsed::Text(t) => panic!("text {t:?}"),
        }
    }

    #[test]
    fn tagged_calls_split_across_pieces() {
        let out = run(
            &[
                "Let me ",
                "check.\n<tool",
                "_call>\n{\"name\": \"calc",
                "\", \"arguments\": {\"x\": 1}}\n</tool_",
                "call>",
            ],
            false,
        )
        .unwrap();
        assert_eq!(out[0], Parsed::Text("Let me ".into()));
        assert_eq!(out[1], Parsed::Text("check.\n".into()));
        assert_eq!(call(&out[2]), ("calc", serde_json::json!({"x": 1})));
        assert_eq!(out.len(), 3);
        let two = run(&["<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call>\n<tool_call>{\"name\":\"b\",\"arguments\":\"{\\\"y\\\":2}\"}</tool_call>"], false).unwrap();
        let calls: Vec<_> = two.iter().filter(|p| matches!(p, Parsed::Call(_))).map(call).collect();
        assert_eq!(calls, [("a", serde_json::json!({})), ("b", serde_json::json!({"y": 2}))]);
    }

    #[test]
    fn plain_text_passes_through_and_a_lone_angle_bracket_is_released() {
        let out = run(&["x < y and ", "<b>bold</b>"], false).unwrap();
        let text: String = out.iter().map(|p| if let Parsed::Text(t) = p { t.as_str() } else { "" }).collect();
        assert_eq!(text, "x < y and <b>bold</b>");
    }

    #[test]
    fn bare_and_fenced_json_calls() {
        let out =
            run(&["```json\n{\"name\": \"python\", \"arguments\": {\"code\": \"print(1)\"}}\n```"], false).unwrap();
        assert_eq!(call(&out[0]).0, "python");
        let out = run(&["{\"answer\": 4}"], false).unwrap();
        assert_eq!(out, [Parsed::Text("{\"answer\": 4}".into())], "JSON that is not a call stays text");
    }

    #[test]
    fn repeated_bare_calls_are_calls_and_a_cut_off_tail_is_an_error() {
        let two = r#"{"name": "calc", "arguments": {"x": 1}} {"name": "calc", "arguments": {"x": 2}}"#;
        let out = run(&[two], false).unwrap();
        assert_eq!(
            out.iter().map(|p| call(p).1).collect::<Vec<_>>(),
            [serde_json::json!({"x": 1}), serde_json::json!({"x": 2})]
        );
        let cut = format!("{two} {{\"name\": \"calc\", \"argu");
        assert!(run(&[&cut], true).unwrap_err().reason.contains("max_tokens"));
        let mixed = r#"{"name": "calc", "arguments": {}} and then some words"#;
        assert!(matches!(run(&[mixed], false).unwrap()[..], [Parsed::Text(_)]), "a call followed by prose stays text");
    }

    #[test]
    fn unclosed_call_at_a_stop_sequence_is_complete_but_a_cut_off_one_is_an_error() {
        let out = run(&["<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n"], false).unwrap();
        assert_eq!(call(&out[0]).0, "a");
        let e = run(&["<tool_call>\n{\"name\": \"a\", \"argu"], true).unwrap_err();
        assert!(e.reason.contains("max_tokens"), "{e}");
    }

    #[test]
    fn invalid_json_is_reported_with_what_was_written() {
        let e = run(&["<tool_call>{\"name\": \"a\", arguments: }</tool_call>"], false).unwrap_err();
        assert!(e.to_string().contains("not JSON") && e.raw.contains("arguments: }"), "{e}");
        let e = run(&["<tool_call>{\"arguments\": {}}</tool_call>"], false).unwrap_err();
        assert!(e.reason.contains("name"), "{e}");
    }
}
