//! Feedback: applied to the running router at once, kept across a restart, and durable —
//! a SIGKILL in the middle of a feedback load loses nothing that was acknowledged with 2xx.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::*;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

fn config(up: &Upstream) -> String {
    upstream_config(
        up,
        &[("small", "ok", "small"), ("large", "ok", "large")],
        "[policy]\ndefault = \"threshold:0.7\"\n",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn feedback_applies_live_and_survives_restart() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up));
    let http = client();
    let prompt = "Write a function that reverses a linked list";
    let (model, p_before) = routed(&http, &s, prompt).await;
    assert_eq!(model, "large", "cold start: only the large model clears τ = 0.7");

    // The small model answered this prompt well: say so.
    let r = http.post(s.url("/v1/chat/completions")).json(&chat_body("small", prompt, false)).send().await.unwrap();
    let decision = r.headers()["x-conductor-decision-id"].to_str().unwrap().to_string();
    let r =
        http.post(s.url("/v1/feedback")).json(&json!({"decision_id": decision, "score": 1.0})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["applied"], true);

    // No restart: the very next request sees it.
    let (model, p_after) = routed(&http, &s, prompt).await;
    assert!(p_after > p_before, "feedback raised the small model's prediction: {p_before} -> {p_after}");
    assert_eq!(model, "small", "now the cheaper model clears τ");

    // Restart on the same books: the router learns it again from the feedback table.
    let dir = s.stop();
    let s = Server::start_in(&config(&up), dir);
    let (model, p_restart) = routed(&http, &s, prompt).await;
    assert_eq!(model, "small");
    assert!((p_restart - p_after).abs() < 1e-9, "{p_restart} vs {p_after}");
    let export = logs(&s.books(), &["export"]);
    let rec: Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    assert_eq!(rec["model"], "small");
    assert_eq!(rec["score"], 1.0);
    assert_eq!(rec["prompt"], prompt);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn sigkill_during_feedback_load_loses_nothing_acknowledged() {
    let up = start_upstream().await;
    // No rate limit: this test is about durability under load.
    let cfg = upstream_config(&up, &[("small", "ok", "small")], "[feedback]\nper_key_per_minute = 0\n");
    let mut s = Server::start(&cfg);
    let http = client();
    const TASKS: usize = 8;
    const PER_TASK: usize = 20;
    let mut decisions = Vec::new();
    for i in 0..TASKS * PER_TASK {
        let r = http
            .post(s.url("/v1/chat/completions"))
            .json(&chat_body("small", &format!("question {i}"), false))
            .send()
            .await
            .unwrap();
        decisions.push(r.headers()["x-conductor-decision-id"].to_str().unwrap().to_string());
    }
    let decisions = Arc::new(decisions);
    // Each task rates its own decisions one after another, so for every decision the
    // ratings are ordered: (decision, score, acknowledged) in the order they were sent.
    let sent: Arc<Mutex<Vec<(String, f64, bool)>>> = Arc::default();
    let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let url = s.url("/v1/feedback");
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (http, url, decisions, sent, acked) =
            (http.clone(), url.clone(), decisions.clone(), sent.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..10_000usize {
                let d = decisions[t * PER_TASK + i % PER_TASK].clone();
                // Dyadic fractions print and parse exactly, so scores compare bit for bit.
                let score = ((t * 10_000 + i) % 1024) as f64 / 1024.0;
                let idx = {
                    let mut v = sent.lock().unwrap();
                    v.push((d.clone(), score, false));
                    v.len() - 1
                };
                let Ok(r) = http.post(&url).json(&json!({"decision_id": d, "score": score})).send().await else {
                    break;
                };
                if r.status().is_success() {
                    sent.lock().unwrap()[idx].2 = true;
                    acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }));
    }
    // Kill while feedback is flowing.
    while acked.load(std::sync::atomic::Ordering::SeqCst) < 300 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    s.signal("KILL");
    for t in tasks {
        t.await.unwrap();
    }
    let sent = sent.lock().unwrap().clone();
    let export = logs(&s.books(), &["export"]);
    let mut stored: std::collections::HashMap<String, f64> = Default::default();
    for l in export.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let d = v["prompt_id"].as_str().unwrap().trim_start_matches("gateway/").to_string();
        assert!(stored.insert(d, v["score"].as_f64().unwrap()).is_none(), "one rating per decision and key");
    }
    // For every decision: the stored rating is the last acknowledged one, or the one that
    // was in flight after it when the server died — never an older one.
    let mut checked = 0;
    for d in decisions.iter() {
        let mine: Vec<&(String, f64, bool)> = sent.iter().filter(|(x, _, _)| x == d).collect();
        let Some(last_ack) = mine.iter().rposition(|(_, _, a)| *a) else { continue };
        let allowed: Vec<u64> = mine[last_ack..].iter().take(2).map(|(_, s, _)| s.to_bits()).collect();
        let have = stored.get(d).unwrap_or_else(|| panic!("acknowledged feedback for {d} lost"));
        assert!(allowed.contains(&have.to_bits()), "{d}: stored {have}, last acknowledged {}", mine[last_ack].1);
        checked += 1;
    }
    assert!(checked > 0);
    eprintln!(
        "{} ratings acknowledged over {checked} decisions before SIGKILL",
        acked.load(std::sync::atomic::Ordering::SeqCst)
    );
}
