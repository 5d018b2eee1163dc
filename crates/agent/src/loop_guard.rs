//! The loop guard: small models stuck on a task repeat the same call and get the same
//! answer, forever. The guard counts each (tool, arguments, result) triple — arguments as
//! JSON with sorted keys, the result by its sha256, errors included as their text. When a
//! triple is seen for the `max_repeats`-th time the model is steered (told to change
//! course or answer); when it is seen again after that, the run is stopped.
//!
//! The state is plain data (serde), saved with a run so a resumed run keeps its counts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What the caller does after a tool call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "message", rename_all = "snake_case")]
pub enum Verdict {
    Continue,
    /// Append this message to the conversation (as a user or system turn) and go on.
    Steer(String),
    /// End the run; the reason says why.
    Stop(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    tool: String,
    count: usize,
    steered: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopGuard {
    max_repeats: usize,
    /// By the sha256 of the triple: arguments can be long programs, keys stay short.
    seen: BTreeMap<String, Seen>,
}

impl Default for LoopGuard {
    fn default() -> Self {
        Self::new(3)
    }
}

impl LoopGuard {
    /// A guard that steers at the `max_repeats`-th identical call (at least 2: a first
    /// call is never a repeat).
    pub fn new(max_repeats: usize) -> Self {
        Self { max_repeats: max_repeats.max(2), seen: BTreeMap::new() }
    }

    pub fn max_repeats(&self) -> usize {
        self.max_repeats
    }

    /// Record that calling `tool` with `args` gave `result` (for a failed call, the error
    /// text), and say what to do next.
    pub fn observe(&mut self, tool: &str, args: &Value, result: &str) -> Verdict {
        let key = triple_key(tool, args, result);
        let seen = self.seen.entry(key).or_insert_with(|| Seen { tool: tool.to_string(), count: 0, steered: false });
        seen.count += 1;
        if seen.count < self.max_repeats {
            return Verdict::Continue;
        }
        let n = seen.count;
        if seen.steered {
            return Verdict::Stop(format!(
                "`{}` was called {n} times with the same arguments and gave the same result each time, \
                 and the model kept calling it after being told to stop",
                seen.tool
            ));
        }
        seen.steered = true;
        Verdict::Steer(format!(
            "You have called `{}` {n} times with the same arguments and got the same result each time. \
             Calling it again will not change the result. Do something different, or give your final answer now.",
            seen.tool
        ))
    }
}

fn triple_key(tool: &str, args: &Value, result: &str) -> String {
    let result_hash = Sha256::digest(result.as_bytes());
    let mut h = Sha256::new();
    h.update(tool.as_bytes());
    h.update([0]);
    h.update(canonical_json(args).as_bytes());
    h.update([0]);
    h.update(result_hash);
    hex::encode(h.finalize())
}

/// `value` as compact JSON with every object's keys sorted, so equal arguments give equal
/// text however the model ordered them.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v: Value = serde_json::from_str(r#"{"b": 1, "a": {"d": [{"y": 1, "x": "é\""}], "c": null}}"#).unwrap();
        assert_eq!(canonical_json(&v), r#"{"a":{"c":null,"d":[{"x":"é\"","y":1}]},"b":1}"#);
    }

    #[test]
    fn steers_at_the_limit_then_stops() {
        let mut g = LoopGuard::default();
        let args = json!({"expression": "1+1", "x": 1});
        let reordered: Value = serde_json::from_str(r#"{"x": 1, "expression": "1+1"}"#).unwrap();
        assert_eq!(g.observe("calculator", &args, "2"), Verdict::Continue);
        assert_eq!(g.observe("calculator", &reordered, "2"), Verdict::Continue);
        let Verdict::Steer(message) = g.observe("calculator", &args, "2") else { panic!() };
        assert!(message.starts_with("You have called `calculator` 3 times with the same arguments"), "{message}");
        let Verdict::Stop(reason) = g.observe("calculator", &args, "2") else { panic!() };
        assert!(reason.contains("`calculator` was called 4 times"), "{reason}");
    }

    #[test]
    fn a_different_tool_arguments_or_result_is_a_different_triple() {
        let mut g = LoopGuard::new(2);
        let a = json!({"code": "print(1)"});
        assert_eq!(g.observe("python", &a, "1"), Verdict::Continue);
        assert_eq!(g.observe("python", &a, "2"), Verdict::Continue);
        assert_eq!(g.observe("python", &json!({"code": "print(2)"}), "1"), Verdict::Continue);
        assert_eq!(g.observe("other", &a, "1"), Verdict::Continue);
        assert!(matches!(g.observe("python", &a, "1"), Verdict::Steer(_)));
    }

    #[test]
    fn errors_count_as_results() {
        let mut g = LoopGuard::new(2);
        let args = json!({"path": "missing.txt"});
        let err = "failed: there is no file `missing.txt`";
        assert_eq!(g.observe("read_file", &args, err), Verdict::Continue);
        assert!(matches!(g.observe("read_file", &args, err), Verdict::Steer(_)));
        assert!(matches!(g.observe("read_file", &args, err), Verdict::Stop(_)));
    }

    #[test]
    fn state_survives_a_round_trip() {
        let mut g = LoopGuard::default();
        let args = json!({"a": 1});
        g.observe("t", &args, "r");
        g.observe("t", &args, "r");
        let mut resumed: LoopGuard = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert_eq!(resumed, g);
        assert!(matches!(resumed.observe("t", &args, "r"), Verdict::Steer(_)));
        let verdict = serde_json::to_value(Verdict::Steer("m".into())).unwrap();
        assert_eq!(verdict, json!({"verdict": "steer", "message": "m"}));
    }

    #[test]
    fn fewer_than_two_repeats_means_two() {
        assert_eq!(LoopGuard::new(0).max_repeats(), 2);
        let mut g = LoopGuard::new(1);
        assert_eq!(g.observe("t", &json!({}), ""), Verdict::Continue);
    }
}
