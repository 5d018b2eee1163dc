//! Several replicas sharing one real PostgreSQL (`[store] url`): budgets exact under 200
//! concurrent clients spread over three replicas, feedback on one replica routing the next
//! request on another, a replica killed with SIGKILL under load losing nothing it
//! acknowledged, and the store going away and coming back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::postgres::Postgres;
use gateway_support::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEYS: &str = r#"
[[keys]]
id = "team"
key = "sk-team"
budget_usd = 0.003
budget_period = "day"

[[keys]]
id = "free"
key = "sk-free"

[[keys]]
id = "ops"
key = "sk-ops"
admin = true
"#;

fn config(up: &Upstream, pg: &Postgres, extra: &str) -> String {
    let store = format!("[store]\nurl = \"{}\"\nreplica_timeout_ms = 3000\n{extra}", pg.url());
    upstream_config(up, &[("small", "ok", "small"), ("large", "ok", "large")], &store)
}

fn replicas(n: usize, cfg: &str) -> Vec<Server> {
    (0..n).map(|_| Server::start(cfg)).collect()
}

async fn chat(http: &reqwest::Client, s: &Server, key: &str, model: &str, prompt: &str) -> reqwest::Response {
    http.post(s.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat_body(model, prompt, false))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn two_hundred_clients_on_three_replicas_never_overspend() {
    let up = start_upstream().await;
    let pg = Postgres::start();
    let cfg = format!("{}{KEYS}", config(&up, &pg, ""));
    let rs = Arc::new(replicas(3, &cfg));
    let http = client();
    // Each call costs (10 + 10 tokens) at $1/$2 per Mtok = $0.00003: about 100 fit in $0.003.
    // 200 clients, each going round the replicas until the budget refuses it.
    let clients = (0..200).map(|c| {
        let (http, rs) = (http.clone(), rs.clone());
        async move {
            let (mut ok, mut refused) = (0u32, 0u32);
            for i in 0..10 {
                let r = chat(&http, &rs[(c + i) % 3], "sk-team", "small", &format!("client {c} call {i}")).await;
                match r.status().as_u16() {
                    200 => ok += 1,
                    429 => {
                        let v: Value = r.json().await.unwrap();
                        assert_eq!(assert_error_shape(&v)["code"], "budget_exceeded");
                        refused += 1;
                        break;
                    }
                    s => panic!("client {c}: status {s}: {}", r.text().await.unwrap()),
                }
            }
            (ok, refused)
        }
    });
    let results = futures::future::join_all(clients).await;
    let mut ok: u32 = results.iter().map(|r| r.0).sum();
    let refused: u32 = results.iter().map(|r| r.1).sum();
    assert!(refused > 0, "the budget ran out");
    // Refusals in the storm can come from money held by calls still in flight; once they
    // have settled, one client alone spends what is left until a call no longer fits.
    let needed = loop {
        let r = chat(&http, &rs[ok as usize % 3], "sk-team", "small", "the last calls").await;
        if r.status() == 200 {
            ok += 1;
            continue;
        }
        assert_eq!(r.status(), 429);
        let m = assert_error_shape(&r.json::<Value>().await.unwrap())["message"].as_str().unwrap().to_string();
        let up_to = m.split("may cost up to $").nth(1).and_then(|s| s.split(',').next()).unwrap();
        break up_to.parse::<f64>().unwrap();
    };

    let db = pg.client().await;
    let row = db
        .query_one(
            "SELECT spent_usd, reserved_usd, limit_usd, (SELECT COUNT(*) FROM reservations) FROM budget_accounts WHERE key_id = 'team'",
            &[],
        )
        .await
        .unwrap();
    let (spent, reserved, limit, open): (f64, f64, f64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
    let booked: f64 = db
        .query_one("SELECT COALESCE(SUM(cost_usd), 0) FROM decisions WHERE key_id = 'team'", &[])
        .await
        .unwrap()
        .get(0);
    let per_replica: Vec<i64> = db
        .query("SELECT COUNT(*) FROM decisions WHERE key_id = 'team' AND outcome = 'ok' GROUP BY replica", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    eprintln!("{ok} answered, {refused} refused; spent ${spent:.6} of ${limit}; per replica {per_replica:?}");
    assert_eq!(limit, 0.003);
    assert!(spent <= limit + 1e-12, "overspent: {spent} of {limit}");
    assert_eq!(open, 0, "every reservation settled");
    assert!(reserved.abs() < 1e-12, "nothing left reserved: {reserved}");
    assert!((spent - booked).abs() < 1e-12, "the account's spend is the booked decisions' cost: {spent} vs {booked}");
    assert!((spent - ok as f64 * 0.00003).abs() < 1e-9, "spend = answered calls × real cost: {spent} vs {ok}");
    // Refused only when the budget was used: what is left is less than one call may cost.
    assert!(limit - spent < needed, "left unspent: {} although a call needs only {needed}", limit - spent);
    assert_eq!(per_replica.len(), 3, "all three replicas spent from the one budget");
    // Every replica's /metrics reports the shared account.
    for s in rs.iter() {
        let m = http.get(s.url("/metrics")).bearer_auth("sk-ops").send().await.unwrap().text().await.unwrap();
        let shown: f64 = m
            .lines()
            .find_map(|l| l.strip_prefix("conductor_budget_spent_usd{key=\"team\"} "))
            .unwrap_or_else(|| panic!("no spend of team in /metrics"))
            .parse()
            .unwrap();
        assert_eq!(shown, spent);
    }

    // `conductor store check` finds the shared books sound, and notices when they are not.
    let check = |url: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_conductor"))
            .args(["store", "check", "--json", "--books"])
            .arg(rs[0].books())
            .args(["--store-url", url])
            .output()
            .unwrap()
    };
    let out = check(&pg.url());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}{}", String::from_utf8_lossy(&out.stderr));
    let shared: Value = serde_json::from_str(report.lines().last().unwrap()).unwrap();
    assert_eq!(
        shared["decisions"],
        ok as i64 + refused as i64 + 1,
        "every request, answered or refused, is a decision"
    );
    assert_eq!(shared["open_reservations"], 0);
    assert_eq!(shared["live_replicas"], 3);
    db.execute("UPDATE budget_accounts SET reserved_usd = 0.5 WHERE key_id = 'team'", &[]).await.unwrap();
    let out = check(&pg.url());
    assert!(!out.status.success(), "a reservation total that does not add up is a problem");
    assert!(String::from_utf8_lossy(&out.stdout).contains("0.5 reserved, but its open reservations hold 0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn feedback_on_one_replica_routes_the_next_request_on_another() {
    let up = start_upstream().await;
    let pg = Postgres::start();
    let cfg = config(&up, &pg, "[policy]\ndefault = \"threshold:0.7\"\n");
    let (a, b) = (Server::start(&cfg), Server::start(&cfg));
    let http = client();
    let prompt = "Write a function that reverses a linked list";
    let (model, p_before) = routed(&http, &b, prompt).await;
    assert_eq!(model, "large", "cold start: only the large model clears τ = 0.7");

    // On A: the small model answered this prompt well.
    let r = http.post(a.url("/v1/chat/completions")).json(&chat_body("small", prompt, false)).send().await.unwrap();
    let decision = r.headers()["x-conductor-decision-id"].to_str().unwrap().to_string();
    let r =
        http.post(a.url("/v1/feedback")).json(&json!({"decision_id": decision, "score": 1.0})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let sent = Instant::now();
    // On B, within two seconds, the same prompt goes to the small model.
    let (model, p_after) = loop {
        let (model, p) = routed(&http, &b, prompt).await;
        if model == "small" || sent.elapsed() > Duration::from_secs(2) {
            break (model, p);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = sent.elapsed();
    eprintln!("replica B routed with A's feedback after {} ms", took.as_millis());
    assert_eq!(model, "small", "B did not learn A's feedback within 2 s (p {p_before} -> {p_after})");
    assert!(p_after > p_before);

    // A replica started afterwards replays it before serving.
    let c = Server::start(&cfg);
    let (model, p_late) = routed(&http, &c, prompt).await;
    assert_eq!(model, "small", "a late replica replays the shared feedback");
    assert!((p_late - p_after).abs() < 1e-9, "{p_late} vs {p_after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn sigkill_of_a_replica_under_load_loses_nothing_acknowledged() {
    let up = start_upstream().await;
    let pg = Postgres::start();
    let keys = KEYS.replace("budget_usd = 0.003", "budget_usd = 100.0");
    let cfg = format!("{}{keys}", config(&up, &pg, "[feedback]\nper_key_per_minute = 0\n"));
    let rs: Vec<Arc<Mutex<Server>>> = replicas(3, &cfg).into_iter().map(|s| Arc::new(Mutex::new(s))).collect();
    let urls: Vec<String> = rs.iter().map(|s| s.lock().unwrap().url("")).collect();
    let http = client();
    // What the clients were told: answered (budgeted, so spent) decisions and acknowledged ratings.
    let answered: Arc<Mutex<Vec<String>>> = Arc::default();
    let rated: Arc<Mutex<HashMap<String, f64>>> = Arc::default();
    // Requests to the survivors after the kill, and how many of them failed.
    let after_kill: Arc<Mutex<(u32, u32)>> = Arc::default();
    let killed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..24usize {
        let (http, urls, answered, rated, after_kill, killed, stop) = (
            http.clone(),
            urls.clone(),
            answered.clone(),
            rated.clone(),
            after_kill.clone(),
            killed.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let at = (t + i) % 3;
                let was_killed = killed.load(Ordering::SeqCst);
                let r = http
                    .post(format!("{}/v1/chat/completions", urls[at]))
                    .bearer_auth("sk-team")
                    .json(&chat_body("small", &format!("task {t} call {i}"), false))
                    .send()
                    .await;
                if was_killed && at != 0 {
                    let mut a = after_kill.lock().unwrap();
                    a.0 += 1;
                    if !matches!(&r, Ok(r) if r.status() == 200) {
                        a.1 += 1;
                    }
                }
                let Ok(r) = r else { continue };
                if r.status() != 200 {
                    continue;
                }
                let d = r.headers()["x-conductor-decision-id"].to_str().unwrap().to_string();
                let _ = r.bytes().await;
                answered.lock().unwrap().push(d.clone());
                // Rate it on the next replica round.
                let score = (i % 8) as f64 / 8.0;
                let f = http
                    .post(format!("{}/v1/feedback", urls[(at + 1) % 3]))
                    .bearer_auth("sk-team")
                    .json(&json!({"decision_id": d, "score": score}))
                    .send()
                    .await;
                if matches!(&f, Ok(f) if f.status() == 200) {
                    rated.lock().unwrap().insert(d, score);
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while rated.lock().unwrap().len() < 150 {
        assert!(Instant::now() < deadline, "no load: {} answered", answered.lock().unwrap().len());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    killed.store(true, Ordering::SeqCst);
    rs[0].lock().unwrap().signal("KILL");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    let rated = rated.lock().unwrap().clone();
    let (survivor_calls, survivor_failures) = *after_kill.lock().unwrap();
    eprintln!(
        "{} answered, {} rated; after the kill {survivor_calls} calls to the survivors, {survivor_failures} failed",
        answered.len(),
        rated.len()
    );
    assert!(survivor_calls > 20, "the survivors were asked");
    assert_eq!(survivor_failures, 0, "the other replicas kept serving");

    let db = pg.client().await;
    let stored: HashMap<String, f64> = db
        .query("SELECT id, cost_usd FROM decisions WHERE key_id = 'team'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for d in &answered {
        let cost = stored.get(d).unwrap_or_else(|| panic!("answered decision {d} (spend) not in the store"));
        assert!((cost - 0.00003).abs() < 1e-12, "{d} cost {cost}");
    }
    let ratings: HashMap<String, f64> = db
        .query("SELECT decision_id, score FROM feedback", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (d, score) in &rated {
        assert_eq!(ratings.get(d), Some(score), "acknowledged rating of {d} lost");
    }
    // What the dead replica held in reserve is charged once its heartbeat is stale (3 s here).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = db
            .query_one(
                "SELECT (SELECT COUNT(*) FROM reservations), spent_usd, reserved_usd FROM budget_accounts WHERE key_id = 'team'",
                &[],
            )
            .await
            .unwrap();
        let (open, spent, reserved): (i64, f64, f64) = (r.get(0), r.get(1), r.get(2));
        if open == 0 {
            let booked: f64 = stored.values().sum();
            assert!(reserved.abs() < 1e-9, "{reserved}");
            assert!(spent + 1e-12 >= booked, "spent {spent} covers the booked {booked}");
            break;
        }
        assert!(Instant::now() < deadline, "the dead replica's {open} reservations were never charged");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_outage_gives_503s_then_service_resumes_with_nothing_lost() {
    let up = start_upstream().await;
    let pg = Postgres::start();
    let cfg = format!("{}{KEYS}", config(&up, &pg, ""));
    let (a, b) = (Server::start(&cfg), Server::start(&cfg));
    let http = client();
    assert_eq!(http.get(a.url("/readyz")).send().await.unwrap().status(), 200);
    // A NUL character: fine in SQLite, refused by PostgreSQL's text; stored as U+FFFD.
    let before = chat(&http, &a, "sk-free", "small", "before\u{0}the outage").await;
    assert_eq!(before.status(), 200);
    let rated_before = before.headers()["x-conductor-decision-id"].to_str().unwrap().to_string();

    pg.down();
    // Budgeted: cannot be checked, so refused with a clear 503.
    let r = chat(&http, &a, "sk-team", "small", "during").await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(assert_error_shape(&v)["code"], "store_unavailable");
    // Feedback: not recorded, said so.
    let r = http
        .post(b.url("/v1/feedback"))
        .bearer_auth("sk-free")
        .json(&json!({"decision_id": rated_before, "score": 0.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(assert_error_shape(&r.json::<Value>().await.unwrap())["code"], "store_unavailable");
    // Not ready: load balancers move traffic away.
    let r = http.get(b.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()["checks"]["shared_store"], false);
    // Unbudgeted requests are answered; their decisions are kept and written later.
    let r = chat(&http, &b, "sk-free", "small", "during the outage").await;
    assert_eq!(r.status(), 200);
    let during = r.headers()["x-conductor-decision-id"].to_str().unwrap().to_string();

    tokio::time::sleep(Duration::from_secs(1)).await;
    pg.up();
    let deadline = Instant::now() + Duration::from_secs(15);
    for s in [&a, &b] {
        while http.get(s.url("/readyz")).send().await.unwrap().status() != 200 {
            assert!(Instant::now() < deadline, "not ready again after the store came back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let r = chat(&http, &a, "sk-team", "small", "after").await;
    assert_eq!(r.status(), 200, "budgeted requests are served again");
    // The decision answered during the outage reached the store, and can be rated.
    let r = http
        .post(a.url("/v1/feedback"))
        .bearer_auth("sk-free")
        .json(&json!({"decision_id": during, "score": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let db = pg.client().await;
    let n: i64 = db
        .query_one("SELECT COUNT(*) FROM decisions WHERE id = ANY($1)", &[&vec![rated_before.clone(), during]])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    let prompt: String =
        db.query_one("SELECT prompt FROM decisions WHERE id = $1", &[&rated_before]).await.unwrap().get(0);
    assert!(prompt.contains("before\u{fffd}the outage"), "{prompt:?}");
    let spent: f64 =
        db.query_one("SELECT spent_usd FROM budget_accounts WHERE key_id = 'team'", &[]).await.unwrap().get(0);
    assert!((spent - 0.00003).abs() < 1e-12, "only the answered budgeted call is spent: {spent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_keys_request_rate_limit_is_counted_across_replicas() {
    let up = start_upstream().await;
    let pg = Postgres::start();
    let keys = "\n[[keys]]\nid = \"capped\"\nkey = \"sk-capped\"\nrequests_per_minute = 10\n";
    let cfg = format!("{}{keys}", config(&up, &pg, ""));
    let (a, b) = (Server::start(&cfg), Server::start(&cfg));
    let http = client();
    let minute = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 60;
    let started = minute();
    let mut ok = 0;
    let mut limited = Vec::new();
    for i in 0..20 {
        let r = chat(&http, if i % 2 == 0 { &a } else { &b }, "sk-capped", "small", &format!("q{i}")).await;
        match r.status().as_u16() {
            200 => ok += 1,
            429 => {
                assert!(r.headers().contains_key("retry-after"));
                limited.push(r.json::<Value>().await.unwrap());
            }
            s => panic!("status {s}"),
        }
    }
    // Ten a minute between the two replicas (a fixed window: twenty if the minute turned).
    if minute() == started {
        assert_eq!(ok, 10, "the two replicas together let exactly the limit through");
    } else {
        assert!((10..=20).contains(&ok), "{ok}");
    }
    for v in &limited {
        assert_eq!(assert_error_shape(v)["code"], "rate_limit_exceeded");
        assert!(v["error"]["message"].as_str().unwrap().contains("more than 10 requests a minute"));
    }
}
