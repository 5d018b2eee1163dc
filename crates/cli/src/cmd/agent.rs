//! `conductor agent run|resume|approve|cancel|log|list`: agent runs from the terminal. `run` and
//! `resume` talk to a gateway's `/v1/agent/runs` API — the one at `--url`, or one started
//! in this process from the config (the local library by default) — print each step as it
//! happens, ask at the prompt when a tool call needs approval, and cancel the run on
//! Ctrl-C. `log` and `list` read the run store directly.

use anyhow::{bail, Context};
use conductor_agent::approval::{Gate, Rule};
use conductor_agent::run::{Step, StepKind};
use conductor_agent::store::Store;
use conductor_agent::{RoleModels, RunSpec, Strategy};
use conductor_gateway::Config;
use futures::StreamExt;
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: AgentCommand,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Gateway {
    /// A running conductor to use (e.g. http://127.0.0.1:8080). Default: start one here
    /// from `--config` (the local model library when none).
    #[arg(long)]
    pub url: Option<String>,
    /// TOML config for the gateway started here (and where the run store is).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// API key for a gateway with keys (or CONDUCTOR_API_KEY).
    #[arg(long, env = "CONDUCTOR_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
pub enum AgentCommand {
    /// Run an agent on a goal, showing each step live.
    Run {
        goal: String,
        #[arg(long, default_value = "react")]
        strategy: Strategy,
        /// Built-in tools, comma-separated (python, calculator, read_file, write_file, list_dir, http_get).
        #[arg(long, value_delimiter = ',', default_value = "python,calculator")]
        tools: Vec<String>,
        /// Send every step to this model instead of routing each by its role.
        #[arg(long)]
        pin: Option<String>,
        #[arg(long, default_value_t = 16)]
        max_steps: u32,
        #[arg(long)]
        max_usd: Option<f64>,
        #[arg(long)]
        max_tokens: Option<u64>,
        #[arg(long)]
        max_secs: Option<f64>,
        /// Grade the answer with a judge step; below this score (0–1) retry once with stronger models.
        #[arg(long)]
        judge: Option<f64>,
        /// Approval gate, repeatable: TOOL=GATE or TOOL:ARGS_GLOB=GATE, GATE one of auto, ask, deny.
        #[arg(long = "gate")]
        gates: Vec<String>,
        /// Hosts http_get may fetch from, comma-separated.
        #[arg(long, value_delimiter = ',')]
        allow_host: Vec<String>,
        /// Print the final state as JSON instead of a transcript.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        gateway: Gateway,
    },
    /// Continue a run stopped by a crash, Ctrl-C or a restart.
    Resume {
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        gateway: Gateway,
    },
    /// Print a run's activity log.
    Log {
        id: String,
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// One JSON object per step.
        #[arg(long)]
        json: bool,
    },
    /// The agent on benchmark problems: routed steps vs pinned to one model vs that model alone.
    #[cfg(feature = "local")]
    Eval(super::agent_eval::EvalArgs),
    /// The most recent runs.
    List {
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    match args.command {
        AgentCommand::Log { id, config, json } => log(&id, config, json),
        AgentCommand::List { config, limit } => list(config, limit),
        #[cfg(feature = "local")]
        AgentCommand::Eval(a) => super::agent_eval::run(a),
        AgentCommand::Run {
            goal,
            strategy,
            tools,
            pin,
            max_steps,
            max_usd,
            max_tokens,
            max_secs,
            judge,
            gates,
            allow_host,
            json,
            gateway,
        } => {
            let mut spec = RunSpec::new(goal);
            spec.strategy = strategy;
            spec.tools = tools;
            if let Some(m) = pin {
                spec.models = RoleModels::pinned(&m);
            }
            spec.limits.max_steps = max_steps;
            spec.limits.max_usd = max_usd;
            spec.limits.max_tokens = max_tokens;
            spec.limits.max_wall_secs = max_secs;
            spec.judge_threshold = judge;
            spec.approvals = gates.iter().map(|g| parse_gate(g)).collect::<anyhow::Result<_>>()?;
            spec.http_allowlist = allow_host;
            spec.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
            drive(gateway, Start::New(Box::new(spec)), json)
        }
        AgentCommand::Resume { id, json, gateway } => drive(gateway, Start::Resume(id), json),
    }
}

/// `TOOL=GATE` or `TOOL:ARGS_GLOB=GATE`.
fn parse_gate(s: &str) -> anyhow::Result<Rule> {
    let (head, gate) = s.rsplit_once('=').with_context(|| format!("--gate {s}: expected TOOL=GATE"))?;
    let gate: Gate = serde_json::from_value(json!(gate))
        .map_err(|_| anyhow::anyhow!("--gate {s}: the gate must be auto, ask or deny"))?;
    let (tool, args) = match head.split_once(':') {
        Some((t, a)) => (t.to_string(), Some(a.to_string())),
        None => (head.to_string(), None),
    };
    Ok(Rule { tool, args, gate })
}

fn load_config(path: &Option<PathBuf>) -> anyhow::Result<Config> {
    let c = match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    c.validate().map_err(|m| anyhow::anyhow!("invalid settings: {m}"))?;
    Ok(c)
}

fn store(config: &Option<PathBuf>) -> anyhow::Result<Store> {
    let c = load_config(config)?;
    let path = c.agent.store_path(&c.books.path);
    if !path.is_file() {
        bail!("no agent runs yet: {} does not exist", path.display());
    }
    Store::open(&path)
}

enum Start {
    New(Box<RunSpec>),
    Resume(String),
}

fn drive(gw: Gateway, start: Start, json_out: bool) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let (base, _server) = match &gw.url {
            Some(u) => (u.trim_end_matches('/').to_string(), None),
            None => {
                let (b, s) = local_gateway(load_config(&gw.config)?).await?;
                (b, Some(s))
            }
        };
        let http = reqwest::Client::new();
        let auth = gw.api_key.as_ref().map(|k| format!("Bearer {k}"));
        let with_auth = |rb: reqwest::RequestBuilder| match &auth {
            Some(a) => rb.header("authorization", a),
            None => rb,
        };
        let resp = match &start {
            Start::New(spec) => with_auth(http.post(format!("{base}/v1/agent/runs")).json(spec)).send().await?,
            Start::Resume(id) => with_auth(http.post(format!("{base}/v1/agent/runs/{id}/resume"))).send().await?,
        };
        if !resp.status().is_success() {
            let status = resp.status();
            let v: Value = resp.json().await.unwrap_or_default();
            bail!("the gateway refused the run ({status}): {}", v["error"]["message"].as_str().unwrap_or("no message"));
        }
        let mut events = resp.bytes_stream();
        let mut buf = String::new();
        let mut id = match &start {
            Start::Resume(id) => id.clone(),
            Start::New(_) => String::new(),
        };
        let mut interrupted = false;
        let mut end = Value::Null;
        loop {
            let chunk = tokio::select! {
                c = events.next() => c,
                _ = tokio::signal::ctrl_c(), if !interrupted && !id.is_empty() => {
                    interrupted = true;
                    eprintln!("\n^C: cancelling run {id} (resume it with `conductor agent resume {id}`)");
                    let _ = with_auth(http.post(format!("{base}/v1/agent/runs/{id}/cancel"))).send().await;
                    continue;
                }
            };
            let Some(chunk) = chunk else { break };
            buf.push_str(&String::from_utf8_lossy(&chunk?));
            while let Some(at) = buf.find("\n\n") {
                let block: String = buf.drain(..at + 2).collect();
                let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else { continue };
                let ev: Value = serde_json::from_str(data)?;
                match ev["type"].as_str() {
                    Some("run") => {
                        id = ev["id"].as_str().unwrap_or_default().to_string();
                        if !json_out {
                            println!("run {id}");
                        }
                    }
                    Some("step") => {
                        let step: Step = serde_json::from_value(ev["step"].clone())?;
                        if !json_out {
                            println!("{}", describe(&step));
                        }
                        if let StepKind::Approval { call, decision } = &step.kind {
                            if decision == "asked" {
                                let ok = ask(&call.name, &call.arguments).await?;
                                let body = json!({"approve": ok});
                                let url = format!("{base}/v1/agent/runs/{id}/approvals");
                                with_auth(http.post(url).json(&body)).send().await?.error_for_status()?;
                            }
                        }
                    }
                    Some("end") => end = ev.clone(),
                    _ => {}
                }
            }
        }
        if json_out {
            let run: Value = with_auth(http.get(format!("{base}/v1/agent/runs/{id}"))).send().await?.json().await?;
            println!("{}", serde_json::to_string(&run)?);
        } else if let Some(a) = end["answer"].as_str() {
            println!("\nanswer: {a}");
        }
        if end["status"] != "succeeded" {
            eprintln!("run {id} ended {}", end["status"].as_str().unwrap_or("without an end event"));
        }
        Ok(())
    })
}

/// Asks at the terminal whether a tool call may run.
async fn ask(tool: &str, arguments: &str) -> anyhow::Result<bool> {
    let question = format!("approve calling `{tool}` with {arguments}? [y/N] ");
    tokio::task::spawn_blocking(move || {
        let mut out = std::io::stderr();
        let _ = write!(out, "{question}");
        let _ = out.flush();
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(matches!(line.trim(), "y" | "Y" | "yes"))
    })
    .await?
}

/// A gateway on 127.0.0.1 (a free port) in this process, on its own thread and runtime
/// (its future is not `Send`); it stops when the returned sender drops.
pub async fn local_gateway(mut config: Config) -> anyhow::Result<(String, tokio::sync::oneshot::Sender<()>)> {
    config.server.listen = "127.0.0.1:0".parse()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (bound_tx, bound) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => return eprintln!("error: starting the gateway's runtime: {e}"),
        };
        let shutdown = async move {
            let _ = stopped.await;
        };
        let r = rt.block_on(conductor_gateway::serve(config, shutdown, move |addr| {
            let _ = bound_tx.send(addr);
        }));
        if let Err(e) = r {
            eprintln!("error: the gateway could not start: {e:#}");
        }
        rt.shutdown_timeout(std::time::Duration::from_secs(1));
    });
    let addr = bound.await.context("the gateway did not start")?;
    Ok((format!("http://{addr}"), stop))
}

fn log(id: &str, config: Option<PathBuf>, json_out: bool) -> anyhow::Result<()> {
    let store = store(&config)?;
    let run = store.load(id)?.with_context(|| format!("no run `{id}`"))?;
    let steps = store.steps(id)?;
    if json_out {
        for s in &steps {
            println!("{}", serde_json::to_string(s)?);
        }
        return Ok(());
    }
    println!("run {id}: {}", run.spec.goal);
    println!(
        "strategy {:?}, status {}, {} steps, {} tokens, ${:.6}",
        run.spec.strategy,
        run.status.as_str(),
        run.steps,
        run.tokens,
        run.cost_usd
    );
    for s in &steps {
        println!("{}", describe(s));
    }
    Ok(())
}

fn list(config: Option<PathBuf>, limit: usize) -> anyhow::Result<()> {
    let store = store(&config)?;
    println!("{:<22} {:<18} {:>5} {:>10}  goal", "id", "status", "steps", "cost $");
    for r in store.list(limit)? {
        let goal: String = r.goal.chars().take(60).collect();
        println!("{:<22} {:<18} {:>5} {:>10.6}  {goal}", r.id, r.status, r.steps, r.cost_usd);
    }
    Ok(())
}

fn one_line(s: &str, n: usize) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > n {
        format!("{}…", flat.chars().take(n).collect::<String>())
    } else {
        flat
    }
}

/// A step as one readable line (two for a model step's routing).
fn describe(s: &Step) -> String {
    let n = s.n;
    match &s.kind {
        StepKind::Model {
            role,
            asked,
            routing,
            content,
            tool_calls,
            prompt_tokens,
            completion_tokens,
            cost_usd,
            latency_ms,
        } => {
            let calls: Vec<String> =
                tool_calls.iter().map(|c| format!("{}({})", c.name, one_line(&c.arguments, 80))).collect();
            let said = if calls.is_empty() { one_line(content, 160) } else { format!("calls {}", calls.join(", ")) };
            format!(
                "[{n}] {} → {} (asked {asked}; {}) {}+{} tok ${cost_usd:.6} {latency_ms} ms\n      {said}",
                role.as_str(),
                routing.model,
                one_line(&routing.reason, 80),
                prompt_tokens,
                completion_tokens
            )
        }
        StepKind::Tool { call, ok, result, latency_ms, approval, .. } => format!(
            "[{n}] tool {}({}) [{approval}] {} in {latency_ms} ms: {}",
            call.name,
            one_line(&call.arguments, 100),
            if *ok { "ok" } else { "failed" },
            one_line(result, 120)
        ),
        StepKind::Approval { call, decision } => {
            format!("[{n}] approval for {}({}): {decision}", call.name, one_line(&call.arguments, 100))
        }
        StepKind::Guard { message, stopped } => {
            format!(
                "[{n}] loop guard {}: {}",
                if *stopped { "stopped the run" } else { "steered" },
                one_line(message, 160)
            )
        }
        StepKind::Judgement { score, reason, passed } => {
            format!(
                "[{n}] judge: {score:.2} ({}) {}",
                if *passed { "pass" } else { "below threshold" },
                one_line(reason, 120)
            )
        }
        StepKind::End { status, answer, reason } => format!(
            "[{n}] end: {status}{}{}",
            answer.as_deref().map(|a| format!(" — {}", one_line(a, 160))).unwrap_or_default(),
            reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        ),
    }
}
