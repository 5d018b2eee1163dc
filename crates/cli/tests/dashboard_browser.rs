//! The dashboard (`/ui`) in a real headless Chromium (Debian's package, driven by
//! Playwright from `tests/python/dashboard_browser.py`) against the real binary with real
//! books: every page loads without a console error, a decision's "why" matches its row in
//! the books, a request made during the test appears in the open table, approve and deny
//! work end to end, and with keys configured nobody without an admin key gets anything.
//! Screenshots land in `out/ui/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use conductor_gateway::books::{DecisionRow, Reader};
use gateway_support::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn out_dir() -> PathBuf {
    workspace_root().join("out/ui")
}

/// Runs the browser script; returns its JSON lines (the last one says it finished cleanly).
async fn browser(mode: &str, base: &str, args: Value) -> Vec<Value> {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is not installed: run `bash scripts/setup.sh`"
    );
    let out = out_dir().display().to_string();
    let run = python_script("dashboard_browser.py", vec![mode.into(), base.into(), out, args.to_string()]).await;
    let (stdout, stderr) = (&run.stdout, &run.stderr);
    assert!(run.ok, "browser script failed:\n{stdout}\n{stderr}");
    let lines = run.json_lines();
    let last = lines.last().unwrap_or_else(|| panic!("no output:\n{stdout}\n{stderr}"));
    assert_eq!(last["done"], true, "{stdout}");
    assert_eq!(last["console_errors"], json!([]), "{stdout}");
    lines
}

fn page<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines.iter().find(|l| l["page"] == name).unwrap_or_else(|| panic!("no `{name}` in {lines:#?}"))
}

/// The books once they stop changing (decisions are written a moment after the answer).
async fn settled(books: &std::path::Path) -> Vec<DecisionRow> {
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rows = Reader::open(books).unwrap().recent(100_000, 0).unwrap();
        if rows.len() == last {
            return rows;
        }
        last = rows.len();
    }
}

fn config(up: &Upstream, extra: &str) -> String {
    let model = |id: &str, behaviour: &str, tier: &str, price: f64| {
        format!(
            "\n[[models]]\nid = \"{id}\"\nprovider = \"openai\"\nbase_url = \"{}\"\nupstream_model = \"fake\"\n\
             input_usd_per_mtok = {price}\noutput_usd_per_mtok = {price}\ntier = \"{tier}\"\nmax_retries = 1\n\
             first_token_timeout_ms = 10000\ntotal_timeout_ms = 20000\n",
            up.base(behaviour)
        )
    };
    format!(
        "[local]\nenabled = false\n[books]\npath = \"{{dir}}/books.sqlite\"\n\
         [reliability]\nretry_base_ms = 5\nretry_max_ms = 20\nbreaker_failures = 3\nbreaker_cooldown_ms = 600000\n{extra}{}{}{}{}",
        model("tiny-broken", "500", "small", 0.1),
        model("mid", "ok", "medium", 1.0),
        model("agent-model", "agent", "medium", 5.0),
        model("big", "ok", "large", 20.0),
    )
}

async fn chat(s: &Server, key: Option<&str>, body: Value) -> Value {
    let mut r = client().post(s.url("/v1/chat/completions")).json(&body);
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 200);
    if body["stream"] == true {
        let text = r.text().await.unwrap();
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        return Value::Null;
    }
    r.json().await.unwrap()
}

/// An agent run that stops for approval of its one `python` call.
async fn waiting_run(s: &Server) -> String {
    let script = json!([{"name": "python", "arguments": {"code": "print(6*7)"}}]);
    let all = "agent-model";
    let spec = json!({
        "goal": format!("Scripted run. SCRIPT: {script}"), "tools": ["python"], "stream": false,
        "models": {"planner": all, "worker": all, "solver": all, "judge": all},
        "approvals": [{"tool": "python", "gate": "ask"}],
    });
    let r = client().post(s.url("/v1/agent/runs")).json(&spec).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let t = Instant::now();
    loop {
        let v: Value = client().get(s.url(&format!("/v1/agent/runs/{id}"))).send().await.unwrap().json().await.unwrap();
        if v["status"] == "awaiting_approval" {
            return id;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{v:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_page_in_chromium_against_real_books() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up, ""));
    let ask = |model: &str, prompt: &str| json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": prompt}]});
    let mut routed = Vec::new();
    for p in ["What is the capital of France?", "Write a haiku about tea.", "Sum 2 and 40.", "Name a prime."] {
        routed.push(chat(&s, None, ask("auto", p)).await["conductor"]["decision_id"].as_str().unwrap().to_string());
    }
    // The cheapest model fails: each of these falls back to the next one.
    let mut fallbacks = Vec::new();
    for p in ["Translate 'cat' to German.", "Spell 'banana' backwards."] {
        let v = chat(&s, None, ask("auto:threshold:0", p)).await;
        assert_eq!(v["conductor"]["model"], "mid", "{v}");
        fallbacks.push(v["conductor"]["decision_id"].as_str().unwrap().to_string());
    }
    for p in ["Stream one.", "Stream two."] {
        let mut b = ask("mid", p);
        b["stream"] = json!(true);
        chat(&s, None, b).await;
    }
    chat(&s, None, ask("big", "Explain entropy in one line.")).await;
    for (id, score) in routed.iter().zip([1.0, 0.0, 1.0, 1.0]) {
        let r = client()
            .post(s.url("/v1/feedback"))
            .json(&json!({"decision_id": id, "score": score}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let approve_run = waiting_run(&s).await;
    let deny_run = waiting_run(&s).await;
    let books = settled(&s.books()).await;

    let args =
        json!({"decision_id": fallbacks[0], "live_model": "mid", "approve_run": approve_run, "deny_run": deny_run});
    let lines = browser("open", &s.base, args).await;

    // Overview: the request count the books have (24 h window).
    assert_eq!(page(&lines, "overview")["requests"], books.len().to_string(), "{lines:#?}");
    assert_eq!(page(&lines, "decisions")["rows"], books.len().min(50));

    // The why, read off the page, is the decision's row in the books.
    let row = books.iter().find(|d| d.id == fallbacks[0]).unwrap();
    let why = page(&lines, "decision");
    let facts = &why["facts"];
    assert_eq!(facts["decision"], row.id);
    assert_eq!(facts["answered by"], row.chosen_model.clone().unwrap());
    assert_eq!(facts["requested"], row.requested_model);
    assert_eq!(facts["policy"], row.policy);
    assert_eq!(facts["reason"], row.reason);
    assert_eq!(facts["outcome"], row.outcome);
    assert_eq!(facts["key"], row.key_id);
    let mut candidates: Vec<_> = row.candidates.clone();
    candidates.sort_by(|a, b| a.est_cost_usd.total_cmp(&b.est_cost_usd));
    let shown: Vec<(String, String)> = why["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_str().unwrap().to_string()))
        .collect();
    let booked: Vec<(String, String)> =
        candidates.iter().map(|c| (c.model.clone(), format!("{:.3}", c.p_success))).collect();
    assert_eq!(shown, booked, "every candidate with its predicted success");
    let attempts: Vec<(String, String)> = why["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[1].as_str().unwrap().to_string(), r[2].as_str().unwrap().to_string()))
        .collect();
    let booked: Vec<(String, String)> = row
        .attempts
        .iter()
        .map(|a| (a.model.clone(), serde_json::to_value(a.outcome).unwrap().as_str().unwrap().to_string()))
        .collect();
    assert_eq!(attempts, booked, "attempts and fallbacks in order");
    assert_eq!(attempts.first().map(|a| a.1.as_str()), Some("error"), "the broken model was tried first");

    // Live: the request made while the table was open appeared in it, without a reload,
    // and it is a real decision in the books.
    let live = page(&lines, "live");
    assert_eq!(live["same_page"], true);
    let live_id = live["id"].as_str().unwrap();
    assert!(settled(&s.books()).await.iter().any(|d| d.id == live_id));

    assert_eq!(page(&lines, "quality")["ratings"], "4");
    assert!(page(&lines, "quality")["bins"].as_u64().unwrap() >= 1);
    let health: Value = client().get(s.url("/ui/api/health")).send().await.unwrap().json().await.unwrap();
    for m in health["models"].as_array().unwrap() {
        assert_eq!(page(&lines, "health")["breakers"][m["model"].as_str().unwrap()], m["breaker"], "{health}");
    }

    // Approve and deny with the buttons; the runs record the person's decision.
    assert_eq!(page(&lines, "agents")["runs"], 2);
    for (run, approved) in [(&approve_run, true), (&deny_run, false)] {
        let v: Value =
            client().get(s.url(&format!("/v1/agent/runs/{run}"))).send().await.unwrap().json().await.unwrap();
        assert_eq!(v["status"], "succeeded", "{v:#}");
        let tool = v["steps"].as_array().unwrap().iter().find(|s| s["kind"] == "tool").unwrap();
        let approval = tool["approval"].as_str().unwrap();
        assert!(approval.starts_with(if approved { "approved" } else { "denied" }), "{v:#}");
        assert_eq!(tool["ok"], approved);
    }
    for name in
        ["overview", "decisions", "decision", "live", "quality", "health", "agents", "agent-awaiting", "agent-run"]
    {
        let p = out_dir().join(format!("{name}.png"));
        assert!(std::fs::metadata(&p).map(|m| m.len() > 10_000).unwrap_or(false), "{}", p.display());
    }
}

const ADMIN: &str = "sk-admin-ui-3b9f1c";
const USER: &str = "sk-app-ui-77d2e0";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_keys_only_an_admin_key_sees_anything() {
    let up = start_upstream().await;
    let keys = format!(
        "[[keys]]\nid = \"ops\"\nkey = \"{ADMIN}\"\nadmin = true\n\n[[keys]]\nid = \"app\"\nkey = \"{USER}\"\nbudget_usd = 1.0\nbudget_period = \"day\"\n"
    );
    let s = Server::start(&config(&up, &keys));
    chat(&s, Some(USER), json!({"model": "mid", "max_tokens": 8, "messages": [{"role": "user", "content": "hello"}]}))
        .await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    // Without a key: the page sends you to sign in; every data endpoint is a 401 with nothing in it.
    let r = http.get(s.url("/ui")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/login");
    for path in [
        "/ui/api/options",
        "/ui/api/overview",
        "/ui/api/decisions",
        "/ui/api/quality",
        "/ui/api/health",
        "/ui/api/agents",
        "/ui/api/live",
        "/ui/assets/app.js",
    ] {
        let r = http.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_error_shape(&v);
        assert_eq!(v.as_object().unwrap().len(), 1, "{path}: only the error: {v}");
        // A key that is not an admin key gets a 403, and nothing either.
        let r = http.get(s.url(path)).bearer_auth(USER).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
        let r = http.get(s.url(path)).bearer_auth("sk-wrong").send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let r = http.get(s.url("/ui/api/overview?window=1h")).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["totals"]["requests"], 1);

    // The login form: an admin key opens an HttpOnly, SameSite=Strict session; a user key does not.
    let r = http.post(s.url("/ui/login")).form(&[("key", USER)]).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());
    let r = http.post(s.url("/ui/login")).form(&[("key", ADMIN)]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains(ADMIN), "the cookie is a session token, not the key");
    let session = cookie.split(';').next().unwrap().to_string();
    let r = http.get(s.url("/ui/api/health")).header("cookie", &session).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let health = r.text().await.unwrap();
    assert!(health.contains("\"app\"") && !health.contains(USER) && !health.contains(ADMIN), "{health}");
    let r = http.post(s.url("/ui/logout")).header("cookie", &session).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let r = http.get(s.url("/ui/api/health")).header("cookie", &session).send().await.unwrap();
    assert_eq!(r.status(), 401, "a session ends at logout");

    // The same in the browser, and no key ever appears in a page.
    let lines = browser("keys", &s.base, json!({"admin_key": ADMIN, "user_key": USER})).await;
    assert!(page(&lines, "login")["url"].as_str().unwrap().ends_with("/ui/login"));
    assert!(page(&lines, "login-refused")["message"].as_str().unwrap().contains("not an admin key"), "{lines:#?}");
    let signed_in = page(&lines, "signed-in");
    assert_eq!(signed_in["leaks"], json!([]));
    assert_eq!(signed_in["script_cookies"], "", "page scripts cannot read the session");
    assert_eq!(signed_in["requests"], "1");
    assert_eq!(page(&lines, "signed-out")["api_status"], 401);

    // Guessing at the form is slowed: after the burst every attempt, the right key too, is a
    // 429 with Retry-After (a header key still works).
    let mut limited = None;
    for i in 0..25 {
        let r = http.post(s.url("/ui/login")).form(&[("key", format!("sk-guess-{i}"))]).send().await.unwrap();
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("no limit on sign-in attempts");
    assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert!(r.text().await.unwrap().contains("too many sign-in attempts"));
    let r = http.post(s.url("/ui/login")).form(&[("key", ADMIN)]).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let r = http.get(s.url("/ui/api/health")).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
