//! `conductor agent eval`: the agent on benchmark problems, scored automatically — with its
//! steps routed by role, with every step pinned to one model, and that model answering
//! directly without tools. Prints (and writes) quality, cost, steps, wall time and how
//! many runs the loop guard or a budget stopped.

use super::agent::{local_gateway, Gateway};
use anyhow::Context;
use conductor_agent::{RoleModels, RunSpec};
use conductor_evals::score::{self, sandbox::Limits};
use conductor_evals::tasks::{self, Check, Task};
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Task set: gsm8k or humaneval.
    #[arg(long, default_value = "gsm8k")]
    pub tasks: String,
    /// Problems (the first N of the set).
    #[arg(long, default_value_t = 20)]
    pub n: usize,
    /// Modes, comma-separated: routed (steps routed by role), pinned (every step to --pin), direct (--pin, no tools).
    #[arg(long, value_delimiter = ',', default_value = "routed,pinned,direct")]
    pub modes: Vec<String>,
    #[arg(long, default_value = "qwen2.5-coder-1.5b")]
    pub pin: String,
    #[arg(long, default_value_t = 8)]
    pub max_steps: u32,
    /// Per-run wall-time budget in seconds.
    #[arg(long, default_value_t = 600.0)]
    pub max_secs: f64,
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// Markdown table and one JSON line per run go here.
    #[arg(long, default_value = "out/agent_eval")]
    pub out: PathBuf,
    #[command(flatten)]
    pub gateway: Gateway,
}

#[derive(Default)]
struct Tally {
    n: usize,
    right: f64,
    cost: f64,
    steps: u64,
    wall: f64,
    guard_stops: usize,
    budget_stops: usize,
    errors: usize,
}

fn goal(t: &Task) -> String {
    match &t.check {
        Check::Python { .. } => format!(
            "Complete this Python function. You may run code with the python tool, e.g. to try the docstring's \
             examples. Reply with the whole function in a ```python block.\n\n{}",
            t.question
        ),
        _ => format!("{}\n\nEnd your reply with the final number.", t.question),
    }
}

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    let all = tasks::load(&a.tasks, &a.data)?;
    let problems: Vec<Task> = all.into_iter().take(a.n).collect();
    let tools: Vec<String> = match a.tasks.as_str() {
        "humaneval" => vec!["python".into()],
        _ => vec!["python".into(), "calculator".into()],
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let runs_path = a.out.join(format!("{}_runs.jsonl", a.tasks));
    let mut runs_file = std::fs::File::create(&runs_path)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let tallies = rt.block_on(async {
        let config = match &a.gateway.config {
            Some(p) => conductor_gateway::Config::load(p)?,
            None => conductor_gateway::Config::default(),
        };
        let (base, _server) = match &a.gateway.url {
            Some(u) => (u.trim_end_matches('/').to_string(), None),
            None => {
                let (b, s) = local_gateway(config).await?;
                (b, Some(s))
            }
        };
        let http = reqwest::Client::new();
        let mut tallies: Vec<(String, Tally)> = a.modes.iter().map(|m| (m.clone(), Tally::default())).collect();
        for (i, t) in problems.iter().enumerate() {
            for (mode, tally) in tallies.iter_mut() {
                let started = Instant::now();
                let outcome = match mode.as_str() {
                    "direct" => direct(&http, &base, &a.pin, t).await,
                    "routed" | "pinned" => {
                        let mut spec = RunSpec::new(goal(t));
                        spec.tools = tools.clone();
                        spec.limits.max_steps = a.max_steps;
                        spec.limits.max_wall_secs = Some(a.max_secs);
                        if mode == "pinned" {
                            spec.models = RoleModels::pinned(&a.pin);
                        }
                        agent(&http, &base, &spec).await
                    }
                    other => anyhow::bail!("unknown mode `{other}` (routed, pinned, direct)"),
                };
                let wall = started.elapsed().as_secs_f64();
                let (answer, cost, steps, stop) = match outcome {
                    Ok(o) => o,
                    Err(e) => {
                        tally.errors += 1;
                        (String::new(), 0.0, 0, format!("error: {e:#}"))
                    }
                };
                let verdict = score::score(t, &answer, &Limits::default())?;
                tally.n += 1;
                tally.right += verdict.score;
                tally.cost += cost;
                tally.steps += steps;
                tally.wall += wall;
                tally.guard_stops += usize::from(stop == "loop_guard");
                tally.budget_stops += usize::from(stop.starts_with("budget") || stop == "max_steps");
                let line = json!({"task": t.id, "mode": mode, "score": verdict.score, "detail": verdict.detail,
                    "cost_usd": cost, "steps": steps, "wall_secs": wall, "stop": stop});
                writeln!(runs_file, "{line}")?;
                eprintln!(
                    "[{}/{}] {} {mode}: {} ({:.1} s, {steps} steps)",
                    i + 1,
                    problems.len(),
                    t.id,
                    verdict.score,
                    wall
                );
            }
        }
        Ok::<_, anyhow::Error>(tallies)
    })?;
    let mut md = format!(
        "| {} ({} problems) | quality | cost $ per problem | steps | wall s | loop-guard stops | budget stops | errors |\n|---|---|---|---|---|---|---|---|\n",
        a.tasks,
        problems.len()
    );
    for (mode, t) in &tallies {
        let n = t.n.max(1) as f64;
        let label = match mode.as_str() {
            "routed" => "agent, steps routed by role".to_string(),
            "pinned" => format!("agent pinned to {}", a.pin),
            _ => format!("{} directly", a.pin),
        };
        md.push_str(&format!(
            "| {label} | {:.3} | {:.7} | {:.1} | {:.1} | {} | {} | {} |\n",
            t.right / n,
            t.cost / n,
            t.steps as f64 / n,
            t.wall / n,
            t.guard_stops,
            t.budget_stops,
            t.errors
        ));
    }
    print!("{md}");
    std::fs::write(a.out.join(format!("{}.md", a.tasks)), &md)?;
    eprintln!("runs: {}", runs_path.display());
    Ok(())
}

async fn direct(
    http: &reqwest::Client,
    base: &str,
    model: &str,
    t: &Task,
) -> anyhow::Result<(String, f64, u64, String)> {
    let body = json!({"model": model, "temperature": 0, "max_tokens": 512,
        "messages": [{"role": "user", "content": goal(t)}]});
    let v: Value =
        http.post(format!("{base}/v1/chat/completions")).json(&body).send().await?.error_for_status()?.json().await?;
    let answer = v["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_string();
    Ok((answer, v["conductor"]["cost_usd"].as_f64().unwrap_or(0.0), 1, String::new()))
}

/// Runs the agent to its end; (answer, cost, steps, how it stopped).
async fn agent(http: &reqwest::Client, base: &str, spec: &RunSpec) -> anyhow::Result<(String, f64, u64, String)> {
    let mut body = serde_json::to_value(spec)?;
    body["stream"] = json!(true);
    let text = http.post(format!("{base}/v1/agent/runs")).json(&body).send().await?.error_for_status()?.text().await?;
    let first = text.lines().find_map(|l| l.strip_prefix("data: ")).context("no events")?;
    let id = serde_json::from_str::<Value>(first)?["id"].as_str().unwrap_or_default().to_string();
    let v: Value = http.get(format!("{base}/v1/agent/runs/{id}")).send().await?.json().await?;
    let run = &v["run"];
    let stop = run["status"]["kind"].as_str().unwrap_or(v["status"].as_str().unwrap_or("")).to_string();
    Ok((
        run["answer"].as_str().unwrap_or_default().to_string(),
        run["cost_usd"].as_f64().unwrap_or(0.0),
        run["steps"].as_u64().unwrap_or(0),
        stop,
    ))
}
