//! Agent runs through the real gateway binary: a scripted agent model (the `agent` upstream
//! behaviour follows the script written in the goal, misbehaving on cue), real tools (the
//! Python sandbox, the workspace-confined file tools), the HTTP API. Approval pause →
//! approve → continue, and deny; the loop guard; cancel during a running tool; kill -9 then
//! resume; budget stops; path traversal refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn config(up: &Upstream) -> String {
    upstream_config(up, &[("agent-model", "agent", "small")], "")
        .replace("total_timeout_ms = 1500", "total_timeout_ms = 20000")
        .replace("first_token_timeout_ms = 700", "first_token_timeout_ms = 10000")
}

/// A run spec whose goal carries the scripted model's script.
fn spec(script: Value, extra: Value) -> Value {
    let mut s = json!({"goal": format!("Scripted run. SCRIPT: {script}"), "tools": ["python", "calculator", "read_file", "write_file", "http_get"], "stream": false});
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    s
}

async fn start(s: &Server, body: &Value) -> String {
    let r = client().post(s.url("/v1/agent/runs")).json(body).send().await.unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
}

async fn get(s: &Server, id: &str) -> Value {
    client().get(s.url(&format!("/v1/agent/runs/{id}"))).send().await.unwrap().json().await.unwrap()
}

/// Polls the run until `done` holds (or 30 s pass).
async fn until(s: &Server, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let t = Instant::now();
    loop {
        let v = get(s, id).await;
        if done(&v) {
            return v;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "run never got there: {v:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ended(v: &Value) -> bool {
    !matches!(v["status"].as_str(), Some("running") | Some("awaiting_approval"))
}

fn steps<'a>(v: &'a Value, kind: &str) -> Vec<&'a Value> {
    v["steps"].as_array().unwrap().iter().filter(|s| s["kind"] == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_uses_tools_and_logs_every_step_with_its_routing() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up));
    let script = json!([{"name": "python", "arguments": {"code": "print(6*7)"}}, {"name": "calculator", "arguments": {"expression": "2^10"}}]);
    // Streamed over SSE: run, steps, end.
    let mut body = spec(script, json!({}));
    body["stream"] = json!(true);
    let text = client().post(s.url("/v1/agent/runs")).json(&body).send().await.unwrap().text().await.unwrap();
    let events: Vec<Value> =
        text.lines().filter_map(|l| l.strip_prefix("data: ")).map(|d| serde_json::from_str(d).unwrap()).collect();
    assert_eq!(events[0]["type"], "run");
    let end = events.last().unwrap();
    assert_eq!(end["type"], "end", "{text}");
    assert_eq!(end["status"], "succeeded", "{text}");
    assert_eq!(end["answer"], "done: 1024");
    let id = events[0]["id"].as_str().unwrap();
    let v = get(&s, id).await;
    let models = steps(&v, "model");
    assert_eq!(models.len(), 3, "{v:#}");
    for m in &models {
        assert_eq!(m["role"], "worker");
        assert_eq!(m["routing"]["model"], "agent-model");
        assert!(m["routing"]["decision_id"].as_str().unwrap().len() > 8, "{m}");
        assert!(m["cost_usd"].as_f64().unwrap() > 0.0, "{m}");
    }
    let tools = steps(&v, "tool");
    assert_eq!(tools[0]["result"].as_str().unwrap().trim(), "42");
    assert_eq!(tools[0]["approval"], "auto");
    assert_eq!(v["run"]["steps"], 5);
    // Every model call is in the gateway's books under its decision id.
    let books = s.books();
    let _dir = s.stop();
    let recent = logs(&books, &["recent", "--json", "--limit", "50"]);
    for m in &models {
        assert!(recent.contains(m["routing"]["decision_id"].as_str().unwrap()), "{recent}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approval_pauses_the_run_then_approve_continues_and_deny_refuses() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up));
    let script = json!([{"name": "python", "arguments": {"code": "print(6*7)"}}]);
    let gates = json!({"approvals": [{"tool": "python", "gate": "ask"}]});
    for approve in [true, false] {
        let id = start(&s, &spec(script.clone(), gates.clone())).await;
        let v = until(&s, &id, |v| v["status"] == "awaiting_approval").await;
        // The pause names the tool and its arguments.
        let waiting = &v["run"]["status"]["call"];
        assert_eq!(waiting["name"], "python", "{v:#}");
        assert!(waiting["arguments"].as_str().unwrap().contains("print(6*7)"));
        assert!(steps(&v, "tool").is_empty(), "nothing ran before the decision");
        let r = client()
            .post(s.url(&format!("/v1/agent/runs/{id}/approvals")))
            .json(&json!({"approve": approve}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v = until(&s, &id, ended).await;
        assert_eq!(v["status"], "succeeded", "{v:#}");
        let tool = steps(&v, "tool")[0];
        if approve {
            assert_eq!(tool["approval"], "approved");
            assert_eq!(v["run"]["answer"], "done: 42");
        } else {
            assert_eq!(tool["ok"], false);
            assert!(tool["result"].as_str().unwrap().contains("refused"), "{tool}");
            assert!(v["run"]["answer"].as_str().unwrap().contains("denied"), "{v:#}");
        }
        let decisions: Vec<&str> = steps(&v, "approval").iter().map(|a| a["decision"].as_str().unwrap()).collect();
        assert_eq!(decisions, ["asked", if approve { "approved" } else { "denied" }]);
    }
    // A deny rule refuses without asking, by argument pattern.
    let gates = json!({"approvals": [{"tool": "write_file", "args": "path=*.sh", "gate": "deny"}]});
    let script = json!([{"name": "write_file", "arguments": {"path": "run.sh", "content": "rm -rf /"}}]);
    let id = start(&s, &spec(script, gates)).await;
    let v = until(&s, &id, ended).await;
    let tool = steps(&v, "tool")[0];
    assert!(tool["approval"].as_str().unwrap().starts_with("denied (rule 0)"), "{tool}");
    // A bad decision body is a 400 naming the field.
    let r =
        client().post(s.url(&format!("/v1/agent/runs/{id}/approvals"))).json(&json!({"ok": 1})).send().await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_loop_guard_steers_then_stops_a_model_that_repeats_itself() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up));
    let script = json!({"repeat": {"name": "calculator", "arguments": {"expression": "1+1"}}});
    let id = start(&s, &spec(script, json!({}))).await;
    let v = until(&s, &id, ended).await;
    assert_eq!(v["status"], "stopped", "{v:#}");
    assert_eq!(v["run"]["status"]["kind"], "loop_guard");
    let guard = steps(&v, "guard");
    assert_eq!(guard.len(), 2, "{v:#}");
    assert_eq!(guard[0]["stopped"], false, "steered first");
    assert_eq!(guard[1]["stopped"], true);
    // Steered at the 3rd identical call, stopped at the 4th: far below the step cap.
    assert_eq!(steps(&v, "tool").len(), 4);
    // The model was told: the steering message is in the conversation it saw.
    let bodies = up.bodies("agent");
    assert!(bodies.last().unwrap()["messages"].to_string().contains("same arguments"), "{}", bodies.last().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn budgets_stop_a_run_before_the_step_that_would_exceed_them() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up));
    let script = json!([{"name": "calculator", "arguments": {"expression": "1+1"}}, {"name": "calculator", "arguments": {"expression": "2+2"}}]);
    for (limits, kind) in [
        (json!({"max_tokens": 30}), "budget_tokens"),
        (json!({"max_usd": 0.00002}), "budget_usd"),
        (json!({"max_steps": 2}), "max_steps"),
    ] {
        let id = start(&s, &spec(script.clone(), json!({"limits": limits}))).await;
        let v = until(&s, &id, ended).await;
        assert_eq!(v["status"], "stopped", "{kind}: {v:#}");
        assert_eq!(v["run"]["status"]["kind"], kind, "{v:#}");
        assert!(v["run"]["answer"].is_null());
    }
    // A run cannot widen the server's http allowlist (empty here).
    let r = client()
        .post(s.url("/v1/agent/runs"))
        .json(&json!({"goal": "x", "tools": ["http_get"], "http_allowlist": ["example.com"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("example.com"), "{v}");
    // A bad spec is a 400 naming the field.
    let r = client().post(s.url("/v1/agent/runs")).json(&json!({"goal": "x", "tools": ["rm"]})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(assert_error_shape(&v)["message"].as_str().unwrap().contains("rm"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paths_outside_the_workspace_are_refused_and_logged() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up));
    let script = json!([
        {"name": "read_file", "arguments": {"path": "../../../../etc/passwd"}},
        {"name": "read_file", "arguments": {"path": "/etc/passwd"}},
        {"name": "write_file", "arguments": {"path": "notes/a.txt", "content": "inside"}},
        {"name": "read_file", "arguments": {"path": "notes/a.txt"}},
        {"name": "no_such_tool", "arguments": {}},
        {"name": "calculator", "arguments": {"expr": "1"}},
        {"name": "http_get", "arguments": {"url": format!("http://{}/ok/v1/models", up.addr)}}
    ]);
    let id = start(&s, &spec(script, json!({}))).await;
    let v = until(&s, &id, ended).await;
    assert_eq!(v["status"], "succeeded", "{v:#}");
    let t = steps(&v, "tool");
    for refused in &t[..2] {
        assert_eq!(refused["ok"], false);
        assert!(refused["result"].as_str().unwrap().contains("refused"), "{refused}");
        assert!(!refused["result"].as_str().unwrap().contains("root:"), "nothing leaked: {refused}");
    }
    assert_eq!(t[3]["result"], "inside");
    assert!(t[4]["result"].as_str().unwrap().contains("unknown tool"), "{}", t[4]);
    assert!(t[5]["result"].as_str().unwrap().contains("bad arguments"), "{}", t[5]);
    // No host is allowed unless the server's config allows it.
    assert!(t[6]["result"].as_str().unwrap().contains("refused"), "{}", t[6]);
    assert_eq!(up.hits("ok"), 0, "nothing was fetched");
    assert!(s.dir.path().join(format!("agent_runs/{id}/notes/a.txt")).is_file());
}

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_kills_a_running_tool_within_a_second() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up));
    let code = "import os, time\nopen('pid', 'w').write(str(os.getpid()))\ntime.sleep(60)\n";
    let script = json!([{"name": "python", "arguments": {"code": code}}]);
    let id = start(&s, &spec(script, json!({}))).await;
    let pid_file = s.dir.path().join(format!("agent_runs/{id}/pid"));
    let t = Instant::now();
    while std::fs::read_to_string(&pid_file).map_or(true, |p| p.is_empty()) {
        assert!(t.elapsed() < Duration::from_secs(20), "the tool never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert!(alive(pid));
    let cancelled = Instant::now();
    let r = client().post(s.url(&format!("/v1/agent/runs/{id}/cancel"))).send().await.unwrap();
    assert_eq!(r.status(), 202);
    while alive(pid) {
        assert!(cancelled.elapsed() < Duration::from_secs(1), "the tool's process outlived the cancel by 1 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let v = until(&s, &id, ended).await;
    assert_eq!(v["status"], "cancelled", "{v:#}");
    assert!(steps(&v, "tool").is_empty(), "the interrupted call is not a step");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_run_then_resume_finishes_with_every_earlier_step_intact() {
    let up = start_upstream().await;
    let cfg = config(&up);
    let s = Server::start(&cfg);
    // The second call hangs the first time it runs (a marker file in the workspace
    // remembers), so the server is killed while it runs; on resume it finishes at once.
    let slow = "import os, time\nif not os.path.exists('marker'):\n    open('marker', 'w').write('x')\n    time.sleep(60)\nprint('second')\n";
    let script = json!([
        {"name": "python", "arguments": {"code": "print('first')"}},
        {"name": "python", "arguments": {"code": slow}},
        {"name": "calculator", "arguments": {"expression": "3*3"}}
    ]);
    let id = start(&s, &spec(script, json!({}))).await;
    let marker = s.dir.path().join(format!("agent_runs/{id}/marker"));
    let t = Instant::now();
    while !marker.exists() {
        assert!(t.elapsed() < Duration::from_secs(20), "the second call never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = get(&s, &id).await;
    let before_steps = before["steps"].as_array().unwrap().clone();
    assert_eq!(before_steps.len(), 3, "model, tool, model: {before:#}");
    let dir = s.crash();
    let s = Server::start_in(&cfg, dir);
    let v = get(&s, &id).await;
    assert_eq!(v["status"], "running", "a killed run is still open: {v:#}");
    let r = client().post(s.url(&format!("/v1/agent/runs/{id}/resume"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let events = r.text().await.unwrap();
    assert!(events.contains("\"type\":\"end\""), "{events}");
    let v = until(&s, &id, ended).await;
    assert_eq!(v["status"], "succeeded", "{v:#}");
    assert_eq!(v["run"]["answer"], "done: 9");
    let after = v["steps"].as_array().unwrap();
    assert_eq!(&after[..3], &before_steps[..], "earlier steps unchanged");
    let tools = steps(&v, "tool");
    let results: Vec<&str> = tools.iter().map(|t| t["result"].as_str().unwrap().trim()).collect();
    assert_eq!(results, ["first", "second", "9"]);
    // A finished run cannot be resumed.
    let r = client().post(s.url(&format!("/v1/agent/runs/{id}/resume"))).send().await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rewoo_plans_once_runs_the_calls_without_a_model_then_solves() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up));
    let script = json!([
        {"name": "python", "arguments": {"code": "print(21)"}},
        {"name": "calculator", "arguments": {"expression": "#E1 * 2"}}
    ]);
    let id = start(&s, &spec(script, json!({"strategy": "rewoo"}))).await;
    let v = until(&s, &id, ended).await;
    assert_eq!(v["status"], "succeeded", "{v:#}");
    let kinds: Vec<&str> = v["steps"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["model", "tool", "tool", "model", "end"], "{v:#}");
    let roles: Vec<&str> = steps(&v, "model").iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["planner", "solver"]);
    // The planner's model was asked for the best model, the solver's by the default policy.
    assert_eq!(steps(&v, "model")[0]["asked"], "auto:quality");
    // #E1 became the first call's result.
    assert_eq!(steps(&v, "tool")[1]["call"]["arguments"], r#"{"expression":"21 * 2"}"#);
    assert_eq!(v["run"]["answer"], "solved: 42");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_judge_below_the_threshold_retries_once_with_stronger_models_then_reports_its_doubt() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up));
    let script = json!([{"name": "calculator", "arguments": {"expression": "2+2"}}]);
    let mut body = spec(script, json!({"judge_threshold": 0.5}));
    body["goal"] = json!(format!("{} GRADE: 0.2", body["goal"].as_str().unwrap()));
    let id = start(&s, &body).await;
    let v = until(&s, &id, ended).await;
    assert_eq!(v["status"], "succeeded", "{v:#}");
    let grades = steps(&v, "judgement");
    assert_eq!(grades.len(), 2, "graded, retried, graded again: {v:#}");
    assert!(grades.iter().all(|g| g["passed"] == false && g["score"] == 0.2));
    let asked: Vec<&str> =
        steps(&v, "model").iter().filter(|m| m["role"] == "worker").map(|m| m["asked"].as_str().unwrap()).collect();
    assert_eq!(asked, ["auto", "auto", "auto:quality", "auto:quality"], "the retry asks for the best model");
    let end = steps(&v, "end")[0];
    assert!(end["reason"].as_str().unwrap().contains("0.20"), "the doubt is reported: {end}");
    // Graded above the threshold, the run ends at once.
    let mut body = spec(json!([]), json!({"judge_threshold": 0.5}));
    body["goal"] = json!(format!("{} GRADE: 0.9", body["goal"].as_str().unwrap()));
    let id = start(&s, &body).await;
    let v = until(&s, &id, ended).await;
    assert_eq!(steps(&v, "judgement").len(), 1);
    assert!(steps(&v, "end")[0]["reason"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_runs_an_agent_asks_for_approval_at_the_prompt_and_prints_the_log() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let up = start_upstream().await;
    let s = Server::start(&config(&up));
    let script = json!([{"name": "python", "arguments": {"code": "print(6*7)"}}]);
    let goal = format!("Scripted run. SCRIPT: {script}");
    let base = s.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_conductor"))
            .args(["agent", "run", "--url", &base, "--tools", "python", "--gate", "python=ask", &goal])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"y\n").unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("approve calling `python` with"), "the prompt names the call: {stderr}");
    assert!(stdout.contains("approval for python"), "{stdout}");
    assert!(stdout.contains("[approved] ok"), "{stdout}");
    assert!(stdout.contains("worker → agent-model"), "each step shows the model it went to: {stdout}");
    assert!(stdout.contains("answer: done: 42"), "{stdout}");
    // The log, read from the run store by id.
    let id = stdout.lines().next().unwrap().strip_prefix("run ").unwrap().to_string();
    let cfg = s.dir.path().join("conductor.toml");
    let log =
        Command::new(env!("CARGO_BIN_EXE_conductor")).args(["agent", "log", &id, "-c"]).arg(&cfg).output().unwrap();
    let text = String::from_utf8_lossy(&log.stdout);
    assert!(log.status.success(), "{text} {}", String::from_utf8_lossy(&log.stderr));
    assert!(text.contains("status succeeded") && text.contains("tool python"), "{text}");
    let list = Command::new(env!("CARGO_BIN_EXE_conductor")).args(["agent", "list", "-c"]).arg(&cfg).output().unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains(&id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_term_memory_recalls_an_agents_facts_by_similarity_in_a_later_run() {
    let up = start_upstream().await;
    // The local library serves the MiniLM embeddings; every step is pinned to the scripted model.
    let cfg = config(&up).replace("[local]\nenabled = false\n", "[local]\nmodels = [\"smollm2-135m\"]\n");
    let s = Server::start(&cfg);
    let pinned = json!({"models": {"planner": "agent-model", "worker": "agent-model", "solver": "agent-model", "judge": "agent-model"}});
    let run = |script: Value, agent: &str| {
        let mut b = spec(script, pinned.clone());
        b["memory"] = json!(agent);
        b
    };
    let facts = json!([
        {"name": "remember", "arguments": {"fact": "The launch code for project Falcon is 7421."}},
        {"name": "remember", "arguments": {"fact": "Cats purr when they are content."}},
        {"name": "remember", "arguments": {"fact": "The office closes at 6 pm on Fridays."}}
    ]);
    let id = start(&s, &run(facts, "ann")).await;
    let v = until(&s, &id, ended).await;
    assert_eq!(v["status"], "succeeded", "{v:#}");
    assert!(v["run"]["answer"].as_str().unwrap().contains("3 facts"), "{v:#}");
    let ask = json!([{"name": "recall", "arguments": {"query": "What is Falcon's launch code?", "k": 1}}]);
    let id = start(&s, &run(ask.clone(), "ann")).await;
    let v = until(&s, &id, ended).await;
    let answer = v["run"]["answer"].as_str().unwrap();
    assert!(answer.contains("7421") && !answer.contains("Cats"), "{answer}");
    // Another agent's memory is its own.
    let id = start(&s, &run(ask, "bob")).await;
    let v = until(&s, &id, ended).await;
    assert_eq!(v["run"]["answer"], "done: nothing in memory yet");
}
