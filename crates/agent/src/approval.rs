//! Approval gates: before a tool call runs, the first [`Rule`] that matches it decides
//! whether it runs ([`Gate::Auto`]), waits for a person's yes ([`Gate::Ask`]) or is refused
//! ([`Gate::Deny`]); no matching rule means the default gate (`auto` unless set).
//!
//! A rule matches a tool by name (`"*"`: any tool) and, optionally, its arguments by a
//! **glob** (globset syntax: `*` any run of characters, `/` included; `?` one character;
//! `[abc]` a class; `{a,b}` alternatives; case-sensitive), in one of two forms:
//! - `field=glob` (the text before the first `=` is a plain identifier): the glob is
//!   matched against the top-level argument `field` — a string as it is, any other value
//!   as compact JSON; a call without that field does not match. `path=*.sh`.
//! - anything else: the glob is matched against the whole arguments as compact JSON with
//!   sorted keys, e.g. `*rm -rf*` for `{"code":"import os; os.system('rm -rf /')"}`
//!   (a literal `{` or `}` in such a pattern is written `[{]`, `[}]`).
//!
//! Patterns are compiled when [`Approvals`] is built, so a bad one is an error at startup
//! naming its rule, never a surprise mid-run.

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::loop_guard::canonical_json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gate {
    /// Run without asking.
    #[default]
    Auto,
    /// Run only after a person approves this call.
    Ask,
    /// Never run; the model is told the call was refused.
    Deny,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A tool name, or `"*"` for every tool.
    pub tool: String,
    /// An argument pattern (see the module doc); none matches any arguments.
    #[serde(default)]
    pub args: Option<String>,
    pub gate: Gate,
}

/// A rule's argument pattern, compiled.
#[derive(Debug, Clone)]
enum Pattern {
    Any,
    Whole(GlobMatcher),
    Field { name: String, glob: GlobMatcher },
}

impl Pattern {
    fn parse(text: Option<&str>) -> Result<Self, String> {
        let Some(text) = text else { return Ok(Self::Any) };
        let glob = |p: &str| {
            GlobBuilder::new(p)
                .literal_separator(false)
                .build()
                .map(|g| g.compile_matcher())
                .map_err(|e| format!("invalid pattern `{text}`: {e}"))
        };
        match text.split_once('=') {
            Some((name, rest)) if is_identifier(name) => Ok(Self::Field { name: name.to_string(), glob: glob(rest)? }),
            _ => Ok(Self::Whole(glob(text)?)),
        }
    }

    fn matches(&self, args: &Value) -> bool {
        match self {
            Self::Any => true,
            Self::Whole(glob) => glob.is_match(canonical_json(args)),
            Self::Field { name, glob } => match args.get(name) {
                Some(Value::String(s)) => glob.is_match(s),
                Some(other) => glob.is_match(canonical_json(other)),
                None => false,
            },
        }
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The rules of one deployment, checked and compiled.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "ApprovalsConfig")]
pub struct Approvals {
    rules: Vec<(Rule, Pattern)>,
    default: Gate,
}

/// How approvals are written in a config file: `rules = [{ tool, args?, gate }, ...]`,
/// `default = "auto" | "ask" | "deny"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalsConfig {
    #[serde(default)]
    rules: Vec<Rule>,
    #[serde(default)]
    default: Gate,
}

impl TryFrom<ApprovalsConfig> for Approvals {
    type Error = String;
    fn try_from(config: ApprovalsConfig) -> Result<Self, String> {
        Approvals::new(config.rules, config.default)
    }
}

impl Approvals {
    /// Compile `rules`; an empty tool name or an invalid pattern is an error naming the
    /// rule by its index (from 0).
    pub fn new(rules: Vec<Rule>, default: Gate) -> Result<Self, String> {
        let rules = rules
            .into_iter()
            .enumerate()
            .map(|(i, rule)| {
                if rule.tool.is_empty() {
                    return Err(format!("approval rule {i}: `tool` is empty; name a tool or write \"*\""));
                }
                let pattern = Pattern::parse(rule.args.as_deref()).map_err(|e| format!("approval rule {i}: {e}"))?;
                Ok((rule, pattern))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { rules, default })
    }

    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|(rule, _)| rule)
    }

    pub fn default_gate(&self) -> Gate {
        self.default
    }

    /// The gate for calling `tool` with `args`, and the index of the rule that set it
    /// (none: the default).
    pub fn decide(&self, tool: &str, args: &Value) -> (Gate, Option<usize>) {
        self.rules
            .iter()
            .position(|(rule, pattern)| (rule.tool == "*" || rule.tool == tool) && pattern.matches(args))
            .map_or((self.default, None), |i| (self.rules[i].0.gate, Some(i)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(tool: &str, args: Option<&str>, gate: Gate) -> Rule {
        Rule { tool: tool.into(), args: args.map(String::from), gate }
    }

    fn approvals() -> Approvals {
        Approvals::new(
            vec![
                rule("python", Some("*rm -rf*"), Gate::Deny),
                rule("python", None, Gate::Auto),
                rule("write_file", Some("path=*.sh"), Gate::Deny),
                rule("write_file", None, Gate::Ask),
                rule("*", None, Gate::Deny),
            ],
            Gate::Auto,
        )
        .unwrap()
    }

    #[test]
    fn first_matching_rule_wins() {
        let a = approvals();
        assert_eq!(a.decide("python", &json!({"code": "print(1)"})), (Gate::Auto, Some(1)));
        assert_eq!(a.decide("python", &json!({"code": "import os; os.system('rm -rf /')"})), (Gate::Deny, Some(0)));
        assert_eq!(a.decide("write_file", &json!({"path": "notes.txt", "content": "x"})), (Gate::Ask, Some(3)));
        assert_eq!(a.decide("write_file", &json!({"path": "bin/run.sh", "content": "x"})), (Gate::Deny, Some(2)));
        assert_eq!(a.decide("http_get", &json!({"url": "http://x"})), (Gate::Deny, Some(4)));
    }

    #[test]
    fn no_rules_means_the_default() {
        assert_eq!(Approvals::default().decide("python", &json!({})), (Gate::Auto, None));
        let ask = Approvals::new(vec![rule("python", None, Gate::Auto)], Gate::Ask).unwrap();
        assert_eq!(ask.decide("calculator", &json!({})), (Gate::Ask, None));
    }

    #[test]
    fn field_patterns_need_the_field_and_see_non_strings_as_json() {
        let a = Approvals::new(vec![rule("t", Some("n=4?"), Gate::Deny)], Gate::Auto).unwrap();
        assert_eq!(a.decide("t", &json!({"n": 42})).0, Gate::Deny);
        assert_eq!(a.decide("t", &json!({"n": 5})).0, Gate::Auto);
        assert_eq!(a.decide("t", &json!({"m": 42})).0, Gate::Auto);
        // Not an identifier before `=`: the whole arguments text is matched.
        let a = Approvals::new(vec![rule("t", Some("*\"a\":\"b=c\"*"), Gate::Deny)], Gate::Auto).unwrap();
        assert_eq!(a.decide("t", &json!({"z": 1, "a": "b=c"})).0, Gate::Deny);
    }

    #[test]
    fn invalid_patterns_are_rejected_naming_the_rule() {
        let err =
            Approvals::new(vec![rule("python", None, Gate::Auto), rule("x", Some("path=[a"), Gate::Ask)], Gate::Auto)
                .unwrap_err();
        assert!(err.starts_with("approval rule 1: invalid pattern `path=[a`"), "{err}");
        let err = Approvals::new(vec![rule("", None, Gate::Ask)], Gate::Auto).unwrap_err();
        assert!(err.starts_with("approval rule 0: `tool` is empty"), "{err}");
    }

    #[test]
    fn reads_from_config_checking_patterns() {
        let a: Approvals = serde_json::from_value(json!({
            "rules": [{"tool": "write_file", "args": "path=*.sh", "gate": "deny"}, {"tool": "*", "gate": "ask"}],
        }))
        .unwrap();
        assert_eq!(a.default_gate(), Gate::Auto);
        assert_eq!(a.decide("write_file", &json!({"path": "x.sh"})), (Gate::Deny, Some(0)));
        assert_eq!(a.decide("python", &json!({})), (Gate::Ask, Some(1)));
        let err = serde_json::from_value::<Approvals>(json!({"rules": [{"tool": "a", "args": "{", "gate": "ask"}]}))
            .unwrap_err();
        assert!(err.to_string().contains("approval rule 0"), "{err}");
        let err = serde_json::from_value::<Approvals>(json!({"default": "maybe"})).unwrap_err();
        assert!(err.to_string().contains("unknown variant `maybe`"), "{err}");
    }
}
