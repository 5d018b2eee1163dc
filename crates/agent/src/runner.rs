//! Runs agents: starts, drives, pauses for approval, cancels and resumes them. A run is
//! driven one step at a time (one model call or one tool call); before each step the
//! limits are checked, after each the step and the whole state are saved in one
//! transaction and announced to subscribers. Cancelling fires the run's token: a model
//! call in flight is dropped (the gateway stops the generation), a running tool's process
//! group is killed.

use crate::approval::{Approvals, Gate};
use crate::backend::{Backend, ModelCall, ModelReply};
use crate::loop_guard::Verdict;
use crate::memory::Memory;
use crate::run::{RunState, Status, Step, StepKind};
use crate::spec::{Role, RunSpec, Strategy};
use crate::store::{now_ms, Store};
use crate::tools::{ToolContext, ToolError, ToolSet};
use crate::{react, rewoo};
use conductor_providers::{ChatMessage, ToolCall};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// Most result text kept in a step of the activity log.
const LOGGED_RESULT: usize = 4 << 10;

/// A run's live handles while a task drives it.
struct Live {
    cancel: CancellationToken,
    events: broadcast::Sender<Value>,
    approvals: mpsc::UnboundedSender<(String, bool)>,
}

pub struct Runner {
    store: Arc<Store>,
    backend: Arc<dyn Backend>,
    /// Each run gets `<workspaces>/<run id>` for its files.
    workspaces: PathBuf,
    /// Hosts `http_get` may ever reach (the server's `[agent] http_allowlist`); a run may
    /// narrow it, never widen it.
    http_allowlist: Vec<String>,
    live: Mutex<HashMap<String, Live>>,
    observer: std::sync::OnceLock<Arc<dyn RunObserver>>,
}

/// Told when a run's session ends (finished, paused with nobody to ask, cancelled): the
/// gateway turns it into a trace. `session_start_ms` is when this session began; `steps`
/// are the steps it logged.
pub trait RunObserver: Send + Sync {
    fn session_ended(&self, run: &RunState, steps: &[Step], session_start_ms: i64);
}

/// What one step did to the run.
pub(crate) enum Next {
    Continue,
    /// Waiting for a person's decision on this call.
    Paused(ToolCall),
    /// The run's token fired during the step.
    Cancelled,
}

/// A step's failure that ends the run (a model call refused, a plan that does not parse).
pub(crate) struct Halt {
    pub kind: &'static str,
    pub reason: String,
}

impl Runner {
    pub fn new(
        store: Arc<Store>,
        backend: Arc<dyn Backend>,
        workspaces: PathBuf,
        http_allowlist: Vec<String>,
    ) -> Arc<Runner> {
        Arc::new(Runner {
            store,
            backend,
            workspaces,
            http_allowlist,
            live: Mutex::new(HashMap::new()),
            observer: std::sync::OnceLock::new(),
        })
    }

    /// Sets who hears about ended sessions (once; later calls are ignored).
    pub fn observe(&self, observer: Arc<dyn RunObserver>) {
        let _ = self.observer.set(observer);
    }

    /// The hosts a run may fetch from: its own list within the server's, or the server's.
    fn allowlist(&self, spec: &RunSpec) -> Result<Vec<String>, String> {
        if spec.http_allowlist.is_empty() {
            return Ok(self.http_allowlist.clone());
        }
        match spec.http_allowlist.iter().find(|h| !self.http_allowlist.contains(h)) {
            Some(h) => Err(format!(
                "`http_allowlist`: host `{h}` is not in the server's `[agent] http_allowlist` ({})",
                if self.http_allowlist.is_empty() { "empty".to_string() } else { self.http_allowlist.join(", ") }
            )),
            None => Ok(spec.http_allowlist.clone()),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a run; returns its id and a subscription to its events. `authorization` is
    /// sent with the run's model calls (see [`ModelCall::authorization`]).
    pub fn start(
        self: &Arc<Self>,
        spec: RunSpec,
        authorization: Option<String>,
    ) -> Result<(String, broadcast::Receiver<Value>), String> {
        spec.validate()?;
        self.allowlist(&spec)?;
        let id = format!("run_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let state = RunState::new(id.clone(), spec);
        self.store.save(&state, None).map_err(|e| format!("saving the run: {e:#}"))?;
        let rx = self.spawn(state, authorization);
        Ok((id, rx))
    }

    /// Continues a run that was interrupted (a crash, a cancel, a restart while it waited
    /// for approval). A finished run is not resumed.
    pub fn resume(
        self: &Arc<Self>,
        id: &str,
        authorization: Option<String>,
    ) -> Result<broadcast::Receiver<Value>, String> {
        if let Some(rx) = self.subscribe(id) {
            return Ok(rx);
        }
        let mut state = self.store.load(id).map_err(|e| format!("{e:#}"))?.ok_or_else(|| format!("no run `{id}`"))?;
        match &state.status {
            Status::Succeeded | Status::Stopped { .. } => {
                return Err(format!("run `{id}` is {}; only an unfinished run can be resumed", state.status.as_str()))
            }
            Status::Cancelled => state.status = Status::Running,
            Status::Running | Status::AwaitingApproval { .. } => {}
        }
        Ok(self.spawn(state, authorization))
    }

    pub fn subscribe(&self, id: &str) -> Option<broadcast::Receiver<Value>> {
        self.live().get(id).map(|l| l.events.subscribe())
    }

    /// Stops a run now; `false` when no task drives it here.
    pub fn cancel(&self, id: &str) -> bool {
        self.live().get(id).map(|l| l.cancel.cancel()).is_some()
    }

    /// A person's decision on the call a run waits for. A run waiting in the store (no task
    /// here, e.g. after a restart) is resumed with the decision.
    pub fn decide(self: &Arc<Self>, id: &str, approve: bool, authorization: Option<String>) -> Result<(), String> {
        let state = self.store.load(id).map_err(|e| format!("{e:#}"))?.ok_or_else(|| format!("no run `{id}`"))?;
        let Status::AwaitingApproval { call } = &state.status else {
            return Err(format!("run `{id}` is {}, not awaiting approval", state.status.as_str()));
        };
        if let Some(l) = self.live().get(id) {
            return l.approvals.send((call.id.clone(), approve)).map_err(|_| "the run just ended".to_string());
        }
        let mut state = state.clone();
        let call_id = call.id.clone();
        state.approvals.push((call_id, approve));
        state.status = Status::Running;
        self.store.save(&state, None).map_err(|e| format!("{e:#}"))?;
        self.spawn(state, authorization);
        Ok(())
    }

    fn spawn(self: &Arc<Self>, state: RunState, authorization: Option<String>) -> broadcast::Receiver<Value> {
        let (events, rx) = broadcast::channel(1024);
        let (approvals, approvals_rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        self.live().insert(state.id.clone(), Live { cancel: cancel.clone(), events: events.clone(), approvals });
        let me = self.clone();
        tokio::spawn(async move {
            let id = state.id.clone();
            let started_ms = now_ms();
            let mut driver = Driver { runner: me.clone(), cancel, events, approvals: approvals_rx, authorization };
            driver.drive(state).await;
            me.live().remove(&id);
            if let Some(o) = me.observer.get() {
                if let (Ok(Some(run)), Ok(steps)) = (me.store.load(&id), me.store.steps(&id)) {
                    let session: Vec<Step> = steps.into_iter().filter(|s| s.at_ms >= started_ms).collect();
                    o.session_ended(&run, &session, started_ms);
                }
            }
        });
        rx
    }

    /// Runs to the end (or to a pause for approval with nobody to ask) and returns the
    /// final state: for the CLI and tests.
    pub async fn wait(&self, id: &str, mut rx: broadcast::Receiver<Value>) -> Option<RunState> {
        loop {
            match rx.recv().await {
                Ok(ev) if ev["type"] == "end" => break,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
        self.store.load(id).ok().flatten()
    }
}

/// Drives one run inside its task.
pub(crate) struct Driver {
    runner: Arc<Runner>,
    cancel: CancellationToken,
    events: broadcast::Sender<Value>,
    approvals: mpsc::UnboundedReceiver<(String, bool)>,
    authorization: Option<String>,
}

impl Driver {
    async fn drive(&mut self, mut st: RunState) {
        let session = Instant::now();
        let wall_before = st.wall_secs;
        let tools = match ToolSet::builtin(&st.spec.tools.iter().map(String::as_str).collect::<Vec<_>>()) {
            Ok(mut t) => {
                if let Some(agent) = &st.spec.memory {
                    let memory = Memory {
                        agent: agent.clone(),
                        store: self.runner.store.clone(),
                        backend: self.runner.backend.clone(),
                        authorization: self.authorization.clone(),
                    };
                    for tool in memory.tools() {
                        t.add(tool);
                    }
                }
                t
            }
            Err(e) => return self.end(&mut st, Status::Stopped { kind: "bad_spec".into(), reason: e }).await,
        };
        let gates = match Approvals::new(st.spec.approvals.clone(), st.spec.default_gate) {
            Ok(a) => a,
            Err(e) => return self.end(&mut st, Status::Stopped { kind: "bad_spec".into(), reason: e }).await,
        };
        let http_allowlist = match self.runner.allowlist(&st.spec) {
            Ok(a) => a,
            Err(e) => return self.end(&mut st, Status::Stopped { kind: "bad_spec".into(), reason: e }).await,
        };
        let ctx = Ctx { tools, gates, workspace: self.runner.workspaces.join(&st.id), http_allowlist };
        if let Err(e) = std::fs::create_dir_all(&ctx.workspace) {
            let reason = format!("creating the workspace {}: {e}", ctx.workspace.display());
            return self.end(&mut st, Status::Stopped { kind: "workspace".into(), reason }).await;
        }
        self.announce(json!({"type": "status", "run_id": st.id, "status": st.status.as_str()}));
        loop {
            st.wall_secs = wall_before + session.elapsed().as_secs_f64();
            if self.cancel.is_cancelled() {
                return self.end(&mut st, Status::Cancelled).await;
            }
            if let Status::AwaitingApproval { call } = st.status.clone() {
                match self.await_decision(&mut st, &call).await {
                    Some(()) => continue,
                    None => return self.end(&mut st, Status::Cancelled).await,
                }
            }
            if st.status != Status::Running {
                let status = st.status.clone();
                return self.end(&mut st, status).await;
            }
            if let Some((kind, reason)) = over_limit(&st) {
                return self.end(&mut st, Status::Stopped { kind: kind.into(), reason }).await;
            }
            let step = match st.spec.strategy {
                Strategy::React => react::step(self, &ctx, &mut st).await,
                Strategy::Rewoo => rewoo::step(self, &ctx, &mut st).await,
            };
            match step {
                Ok(Next::Continue) => {}
                Ok(Next::Paused(call)) => {
                    st.status = Status::AwaitingApproval { call: call.clone() };
                    self.record(&mut st, StepKind::Approval { call, decision: "asked".into() });
                }
                Ok(Next::Cancelled) => return self.end(&mut st, Status::Cancelled).await,
                Err(h) => return self.end(&mut st, Status::Stopped { kind: h.kind.into(), reason: h.reason }).await,
            }
        }
    }

    /// Waits for a decision on `call` (or the run's cancel); records it.
    async fn await_decision(&mut self, st: &mut RunState, call: &ToolCall) -> Option<()> {
        loop {
            let got = tokio::select! {
                _ = self.cancel.cancelled() => return None,
                d = self.approvals.recv() => d?,
            };
            if got.0 != call.id {
                continue;
            }
            st.approvals.push(got.clone());
            st.status = Status::Running;
            let decision = if got.1 { "approved" } else { "denied" };
            self.record(st, StepKind::Approval { call: call.clone(), decision: decision.into() });
            return Some(());
        }
    }

    async fn end(&mut self, st: &mut RunState, status: Status) {
        st.status = status;
        let reason = match &st.status {
            Status::Stopped { reason, .. } => Some(reason.clone()),
            Status::Succeeded => {
                st.judgement.as_ref().filter(|(s, _)| st.spec.judge_threshold.is_some_and(|t| *s < t)).map(|(s, r)| {
                    format!("the judge graded the answer {s:.2}, below the threshold, after a retry: {r}")
                })
            }
            _ => None,
        };
        let status = st.status.as_str().to_string();
        self.record(st, StepKind::End { status, answer: st.answer.clone(), reason });
        self.announce(json!({"type": "end", "run_id": st.id, "status": st.status.as_str(), "answer": st.answer}));
    }

    fn announce(&self, ev: Value) {
        let _ = self.events.send(ev);
    }

    /// Appends a step to the log and saves the state with it (one transaction).
    pub(crate) fn record(&self, st: &mut RunState, kind: StepKind) {
        let step = Step { n: st.logged, at_ms: now_ms(), kind };
        st.logged += 1;
        if let Err(e) = self.runner.store.save(st, Some(&step)) {
            // A run that cannot be written down must not go on unrecorded: it stops here and
            // can be resumed from its last saved step once the store is writable again.
            tracing::error!(run = %st.id, "saving a step failed, cancelling the run: {e:#}");
            self.cancel.cancel();
        }
        self.announce(json!({"type": "step", "run_id": st.id, "status": st.status.as_str(), "step": step}));
    }

    /// One model call, raced against the run's cancel; counted and logged as a step.
    pub(crate) async fn model(&self, st: &mut RunState, mut call: ModelCall) -> Result<Option<ModelReply>, Halt> {
        call.authorization = self.authorization.clone();
        let (role, asked) = (call.role, call.model.clone());
        let reply = tokio::select! {
            _ = self.cancel.cancelled() => return Ok(None),
            r = self.runner.backend.chat(call) => r,
        };
        let reply = reply.map_err(|reason| Halt { kind: "model_error", reason })?;
        st.steps += 1;
        st.tokens += reply.prompt_tokens + reply.completion_tokens;
        st.cost_usd += reply.cost_usd;
        self.record(
            st,
            StepKind::Model {
                role,
                asked,
                routing: reply.routing.clone(),
                content: reply.content.clone(),
                tool_calls: reply.tool_calls.clone(),
                prompt_tokens: reply.prompt_tokens,
                completion_tokens: reply.completion_tokens,
                cost_usd: reply.cost_usd,
                latency_ms: reply.latency_ms,
            },
        );
        Ok(Some(reply))
    }

    /// One tool call through its approval gate; `Err` when the run pauses for approval or
    /// was cancelled instead. The result text (a tool error's message included: the model
    /// reads it) comes back with the step to log: the caller applies the result to the
    /// state first, then [`Driver::log_tool`] saves both in one transaction.
    pub(crate) async fn tool(&self, ctx: &Ctx, st: &mut RunState, call: &ToolCall) -> Result<ToolOutcome, Next> {
        let args: Value = serde_json::from_str(&call.arguments).unwrap_or(Value::Null);
        let (gate, rule) = ctx.gates.decide(&call.name, &args);
        let rule = rule.map_or_else(|| "default".to_string(), |i| format!("rule {i}"));
        let approval = match (gate, st.approval_for(&call.id)) {
            (Gate::Auto, _) => "auto".to_string(),
            (Gate::Deny, _) => format!("denied ({rule})"),
            (Gate::Ask, Some(true)) => "approved".into(),
            (Gate::Ask, Some(false)) => "denied (by a person)".into(),
            (Gate::Ask, None) => return Err(Next::Paused(call.clone())),
        };
        let started = Instant::now();
        let result = if approval.starts_with("denied") {
            Err(ToolError::Refused(format!("calling `{}` was {approval}; do not call it again", call.name)))
        } else {
            let tool_ctx = ToolContext {
                workspace: ctx.workspace.clone(),
                http_allowlist: ctx.http_allowlist.clone(),
                timeout: Duration::from_secs_f64(st.spec.limits.tool_timeout_secs),
                cancel: self.cancel.child_token(),
            };
            ctx.tools.run(&call.name, &call.arguments, tool_ctx).await
        };
        if result == Err(ToolError::Cancelled) && self.cancel.is_cancelled() {
            // Not a step: the call runs again when the run is resumed.
            return Err(Next::Cancelled);
        }
        let ok = result.is_ok();
        let text = match result {
            Ok(t) => t,
            Err(e) => format!("error: {e}"),
        };
        st.steps += 1;
        let verdict = st.guard.observe(&call.name, &args, &text);
        if let Verdict::Steer(m) = &verdict {
            st.messages.push(ChatMessage::user(m.clone()));
        }
        let step = StepKind::Tool {
            call: call.clone(),
            ok,
            result: text.chars().take(LOGGED_RESULT).collect(),
            digest: hex::encode(Sha256::digest(text.as_bytes())),
            latency_ms: started.elapsed().as_millis() as u64,
            approval,
        };
        Ok(ToolOutcome { text, step, verdict })
    }

    /// Logs a tool call whose result is already in the state, and what the loop guard said.
    pub(crate) fn log_tool(&self, st: &mut RunState, outcome: ToolOutcome) {
        self.record(st, outcome.step);
        match outcome.verdict {
            Verdict::Continue => {}
            Verdict::Steer(message) => self.record(st, StepKind::Guard { message, stopped: false }),
            Verdict::Stop(reason) => {
                st.status = Status::Stopped { kind: "loop_guard".into(), reason: reason.clone() };
                self.record(st, StepKind::Guard { message: reason, stopped: true });
            }
        }
    }

    /// The run has an answer: grade it when asked, then finish (or retry once, escalated).
    pub(crate) async fn finish(&self, st: &mut RunState, answer: String) -> Result<Next, Halt> {
        st.answer = Some(answer.clone());
        let Some(threshold) = st.spec.judge_threshold else {
            st.status = Status::Succeeded;
            return Ok(Next::Continue);
        };
        let prompt = format!(
            "Goal:\n{}\n\nProposed final answer:\n{answer}\n\nDoes the answer fully and correctly achieve the goal? \
             Reply with JSON: {{\"score\": a number from 0 (wrong) to 1 (certainly right), \"reason\": one sentence}}.",
            st.spec.goal
        );
        let schema = json!({"type": "json_schema", "json_schema": {"name": "grade", "schema": {
            "type": "object",
            "properties": {"score": {"type": "number"}, "reason": {"type": "string"}},
            "required": ["score", "reason"]}}});
        let call = ModelCall {
            role: Role::Judge,
            model: st.models.judge.clone(),
            messages: vec![ChatMessage::user(prompt)],
            tools: vec![],
            tool_choice: None,
            response_format: Some(schema),
            max_tokens: 128,
            authorization: None,
        };
        let Some(reply) = self.model(st, call).await? else { return Ok(Next::Cancelled) };
        let grade: Value = serde_json::from_str(reply.content.trim()).unwrap_or(Value::Null);
        let score = grade["score"].as_f64().map(|s| s.clamp(0.0, 1.0)).unwrap_or(0.0);
        let reason = grade["reason"].as_str().unwrap_or("the judge's grade did not parse").to_string();
        let passed = score >= threshold;
        st.judgement = Some((score, reason.clone()));
        self.record(st, StepKind::Judgement { score, reason, passed });
        if passed || st.escalated {
            st.status = Status::Succeeded;
        } else {
            // Start over with stronger models; what was learnt stays in the log.
            st.escalated = true;
            st.models = st.models.escalated();
            st.messages.clear();
            st.pending.clear();
            st.plan = None;
            st.evidence.clear();
            st.answer = None;
        }
        Ok(Next::Continue)
    }
}

/// A finished tool call, not yet logged.
pub(crate) struct ToolOutcome {
    pub text: String,
    step: StepKind,
    verdict: Verdict,
}

/// What a run's steps share.
pub(crate) struct Ctx {
    pub tools: ToolSet,
    pub gates: Approvals,
    pub workspace: PathBuf,
    pub http_allowlist: Vec<String>,
}

/// The first limit the run has reached, if any.
fn over_limit(st: &RunState) -> Option<(&'static str, String)> {
    let l = &st.spec.limits;
    if st.steps >= l.max_steps {
        return Some(("max_steps", format!("the run took its {} steps without an answer", l.max_steps)));
    }
    if let Some(m) = l.max_usd.filter(|m| st.cost_usd >= *m) {
        return Some(("budget_usd", format!("the run spent ${:.6} of its ${m:.6} budget", st.cost_usd)));
    }
    if let Some(m) = l.max_tokens.filter(|m| st.tokens >= *m) {
        return Some(("budget_tokens", format!("the run used {} of its {m} tokens", st.tokens)));
    }
    if let Some(m) = l.max_wall_secs.filter(|m| st.wall_secs >= *m) {
        return Some(("budget_time", format!("the run took {:.1} s of its {m:.1} s", st.wall_secs)));
    }
    None
}
