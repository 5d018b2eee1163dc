//! What a run is asked to do: a goal, a strategy, a tool set, limits, and which model (or
//! routing policy) each role of step goes to.

use crate::approval::{Gate, Rule};
use serde::{Deserialize, Serialize};

/// How the run reaches its goal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Reason, call a tool, observe, repeat.
    #[default]
    React,
    /// A planner writes every tool call up front (with `#E1`-style references to earlier
    /// results), workers run them with no model in between, a solver answers.
    Rewoo,
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "react" => Ok(Strategy::React),
            "rewoo" => Ok(Strategy::Rewoo),
            _ => Err(format!("unknown strategy `{s}` (react, rewoo)")),
        }
    }
}

/// The role of a model call; each role is routed with its own model or policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Planner,
    Worker,
    Solver,
    Judge,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Planner => "planner",
            Role::Worker => "worker",
            Role::Solver => "solver",
            Role::Judge => "judge",
        }
    }
}

/// The `model` each role asks the gateway for: `auto`, `auto:<policy>` (the router picks
/// per step) or a model id (pinned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoleModels {
    pub planner: String,
    pub worker: String,
    pub solver: String,
    pub judge: String,
}

impl Default for RoleModels {
    /// Planning and judging matter most; a worker step is usually an easy tool call.
    fn default() -> Self {
        RoleModels {
            planner: "auto:quality".into(),
            worker: "auto".into(),
            solver: "auto".into(),
            judge: "auto:quality".into(),
        }
    }
}

impl RoleModels {
    /// Every role to one model.
    pub fn pinned(model: &str) -> Self {
        RoleModels { planner: model.into(), worker: model.into(), solver: model.into(), judge: model.into() }
    }

    pub fn for_role(&self, role: Role) -> &str {
        match role {
            Role::Planner => &self.planner,
            Role::Worker => &self.worker,
            Role::Solver => &self.solver,
            Role::Judge => &self.judge,
        }
    }

    /// The stronger setting a judged-insufficient run retries with: routed roles ask for
    /// the best predicted model; pinned roles stay pinned.
    pub fn escalated(&self) -> Self {
        let up = |m: &str| if m.starts_with("auto") { "auto:quality".to_string() } else { m.to_string() };
        RoleModels {
            planner: up(&self.planner),
            worker: up(&self.worker),
            solver: up(&self.solver),
            judge: self.judge.clone(),
        }
    }
}

/// Limits of one run, checked before every step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Model calls and tool calls together.
    pub max_steps: u32,
    pub max_usd: Option<f64>,
    /// Prompt and completion tokens of every model call.
    pub max_tokens: Option<u64>,
    pub max_wall_secs: Option<f64>,
    /// One tool call's time limit.
    pub tool_timeout_secs: f64,
    /// Completion tokens per model call.
    pub max_tokens_per_call: u32,
    /// The loop guard steers at this many identical calls with identical results, stops after.
    pub max_repeats: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_steps: 16,
            max_usd: None,
            max_tokens: None,
            max_wall_secs: None,
            tool_timeout_secs: 30.0,
            max_tokens_per_call: 512,
            max_repeats: 3,
        }
    }
}

/// One run's request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub goal: String,
    #[serde(default)]
    pub strategy: Strategy,
    /// Built-in tool names (`python`, `calculator`, `read_file`, `write_file`, `list_dir`, `http_get`).
    #[serde(default = "default_tools")]
    pub tools: Vec<String>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub models: RoleModels,
    /// Grade the final answer (0–1) with a judge step; below this, retry once with the
    /// escalated models, then report the doubt.
    #[serde(default)]
    pub judge_threshold: Option<f64>,
    /// Approval gates, first match wins; unmatched calls get `default_gate`.
    #[serde(default)]
    pub approvals: Vec<Rule>,
    #[serde(default = "default_gate")]
    pub default_gate: Gate,
    /// The agent whose long-term memory this run reads and adds to (`remember` and
    /// `recall` tools); none: no memory.
    #[serde(default)]
    pub memory: Option<String>,
    /// Hosts `http_get` may reach: a subset of the server's `[agent] http_allowlist`
    /// (empty: the server's list).
    #[serde(default)]
    pub http_allowlist: Vec<String>,
}

fn default_tools() -> Vec<String> {
    vec!["python".into(), "calculator".into()]
}

fn default_gate() -> Gate {
    Gate::Auto
}

impl RunSpec {
    pub fn new(goal: impl Into<String>) -> Self {
        RunSpec {
            goal: goal.into(),
            strategy: Strategy::default(),
            tools: default_tools(),
            limits: Limits::default(),
            models: RoleModels::default(),
            judge_threshold: None,
            approvals: Vec::new(),
            default_gate: Gate::Auto,
            memory: None,
            http_allowlist: Vec::new(),
        }
    }

    /// Checks what a client may get wrong, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.goal.trim().is_empty() {
            return Err("`goal` must not be empty".into());
        }
        if self.limits.max_steps == 0 {
            return Err("`limits.max_steps` must be at least 1".into());
        }
        if !(self.limits.tool_timeout_secs > 0.0 && self.limits.tool_timeout_secs <= 3600.0) {
            return Err("`limits.tool_timeout_secs` must be in (0, 3600]".into());
        }
        if self.limits.max_repeats < 2 {
            return Err("`limits.max_repeats` must be at least 2".into());
        }
        if self.memory.as_deref().is_some_and(|m| m.trim().is_empty() || m.len() > 100) {
            return Err("`memory` must name an agent (1-100 characters)".into());
        }
        if let Some(t) = self.judge_threshold {
            if !(0.0..=1.0).contains(&t) {
                return Err("`judge_threshold` must be in [0, 1]".into());
            }
        }
        let names: Vec<&str> = self.tools.iter().map(String::as_str).collect();
        crate::tools::ToolSet::builtin(&names).map(|_| ()).map_err(|e| format!("`tools`: {e}"))?;
        crate::approval::Approvals::new(self.approvals.clone(), self.default_gate)
            .map(|_| ())
            .map_err(|e| format!("`approvals`: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_fields_are_named() {
        let s: RunSpec = serde_json::from_str(r#"{"goal": "add 2 and 2"}"#).unwrap();
        assert_eq!(s.strategy, Strategy::React);
        assert_eq!(s.tools, ["python", "calculator"]);
        s.validate().unwrap();
        let mut bad = s.clone();
        bad.tools.push("rm_rf".into());
        assert!(bad.validate().unwrap_err().contains("tools"));
        let mut bad = s.clone();
        bad.limits.max_steps = 0;
        assert!(bad.validate().unwrap_err().contains("max_steps"));
        assert!(serde_json::from_str::<RunSpec>(r#"{"goal": "x", "limts": {}}"#).is_err());
    }

    #[test]
    fn escalation_moves_routed_roles_to_the_best_model_only() {
        let m = RoleModels { worker: "qwen2.5-coder-1.5b".into(), ..RoleModels::default() }.escalated();
        assert_eq!(m.planner, "auto:quality");
        assert_eq!(m.solver, "auto:quality");
        assert_eq!(m.worker, "qwen2.5-coder-1.5b");
    }
}
