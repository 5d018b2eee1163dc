//! A run's state (everything needed to continue it) and the steps of its activity log.

use crate::loop_guard::LoopGuard;
use crate::spec::{Role, RoleModels, RunSpec};
use conductor_providers::{ChatMessage, ToolCall};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    Running,
    /// Paused until a person approves or denies `call`.
    AwaitingApproval {
        call: ToolCall,
    },
    Succeeded,
    /// Ended by a limit, the loop guard, a denied-only path or an error; `kind` says which.
    Stopped {
        kind: String,
        reason: String,
    },
    Cancelled,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::AwaitingApproval { .. } => "awaiting_approval",
            Status::Succeeded => "succeeded",
            Status::Stopped { .. } => "stopped",
            Status::Cancelled => "cancelled",
        }
    }

    /// Whether the run can go on (after a restart, an approval or a resume).
    pub fn is_open(&self) -> bool {
        matches!(self, Status::Running | Status::AwaitingApproval { .. })
    }
}

/// One planned ReWOO call: `args` may hold `#E<k>` for the k-th result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanStep {
    pub tool: String,
    pub args: Value,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub id: String,
    pub spec: RunSpec,
    pub status: Status,
    /// The models each role goes to now (escalated after a failed judgement).
    pub models: RoleModels,
    /// The conversation so far (ReAct), or the solver's inputs (ReWOO).
    pub messages: Vec<ChatMessage>,
    /// Tool calls the model made that have not run yet, in order.
    pub pending: Vec<ToolCall>,
    /// ReWOO: the plan, and the results of the calls run so far.
    pub plan: Option<Vec<PlanStep>>,
    pub evidence: Vec<String>,
    pub guard: LoopGuard,
    /// Steps taken (model calls and tool calls).
    pub steps: u32,
    pub tokens: u64,
    pub cost_usd: f64,
    /// Wall time spent in earlier sessions of this run (a resumed run keeps counting).
    pub wall_secs: f64,
    pub answer: Option<String>,
    /// The judge's last grade and reason.
    pub judgement: Option<(f64, String)>,
    /// Whether the run already retried after a low grade.
    pub escalated: bool,
    /// Decisions made on approvals, by call id (true = approved).
    pub approvals: Vec<(String, bool)>,
    /// Entries in the activity log so far (the next step's number).
    pub logged: u32,
}

impl RunState {
    pub fn new(id: String, spec: RunSpec) -> RunState {
        RunState {
            id,
            models: spec.models.clone(),
            guard: LoopGuard::new(spec.limits.max_repeats),
            spec,
            status: Status::Running,
            messages: Vec::new(),
            pending: Vec::new(),
            plan: None,
            evidence: Vec::new(),
            steps: 0,
            tokens: 0,
            cost_usd: 0.0,
            wall_secs: 0.0,
            answer: None,
            judgement: None,
            escalated: false,
            approvals: Vec::new(),
            logged: 0,
        }
    }

    pub fn approval_for(&self, call_id: &str) -> Option<bool> {
        self.approvals.iter().find(|(id, _)| id == call_id).map(|(_, ok)| *ok)
    }
}

/// Why a model call went where it went: the gateway's decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    pub decision_id: String,
    pub model: String,
    pub policy: String,
    pub reason: String,
    /// Every candidate's predicted success and estimated cost, as the gateway reported them.
    pub candidates: Value,
}

/// One entry of the activity log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub n: u32,
    pub at_ms: i64,
    #[serde(flatten)]
    pub kind: StepKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    /// A model call: what it thought or answered, the calls it made, where it went and why.
    Model {
        role: Role,
        asked: String,
        routing: Routing,
        content: String,
        tool_calls: Vec<ToolCall>,
        prompt_tokens: u64,
        completion_tokens: u64,
        cost_usd: f64,
        latency_ms: u64,
    },
    /// A tool call and its result (or error), digested.
    Tool {
        call: ToolCall,
        ok: bool,
        /// The result or error text (cut to a few KB).
        result: String,
        /// sha256 of the whole result.
        digest: String,
        latency_ms: u64,
        /// `auto`, `approved` or `denied` (and by which rule).
        approval: String,
    },
    /// The run paused for a person, or was answered.
    Approval { call: ToolCall, decision: String },
    /// The loop guard spoke.
    Guard { message: String, stopped: bool },
    /// The judge's grade of the answer.
    Judgement { score: f64, reason: String, passed: bool },
    /// The end: answer or why not.
    End { status: String, answer: Option<String>, reason: Option<String> },
}
