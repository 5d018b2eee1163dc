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

async fn auto(http: &reqwest::Client, s: &Server, prompt: &str) -> (String, f64) {
    let r = http.post(s.url("/v1/chat/completions")).json(&chat_body("auto", prompt, false)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let p_small = v["conductor"]["candidates"].as_array().unwrap().iter().find(|c| c["model"] == "small").unwrap()
        ["p_success"]
        .as_f64()
        .unwrap();
    (v["model"].as_str().unwrap().to_string(), p_small)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn feedback_applies_live_and_survives_restart() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up));
    let http = client();
    let prompt = "Write a function that reverses a linked list";
    let (model, p_before) = auto(&http, &s, prompt).await;
    assert_eq!(model, "large", "cold start: only the large model clears τ = 0.7");

    // The small model answered this prompt well: say so.
    let r = http.post(s.url("/v1/chat/completions")).json(&chat_body("small", prompt, false)).send().await.unwrap();
    let decision = r.headers()["x-conductor-decision-id"].to_str().unwrap().to_string();
    let r =
        http.post(s.url("/v1/feedback")).json(&json!({"decision_id": decision, "score": 1.0})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["applied"], true);

    // No restart: the very next request sees it.
    let (model, p_after) = auto(&http, &s, prompt).await;
    assert!(p_after > p_before, "feedback raised the small model's prediction: {p_before} -> {p_after}");
    assert_eq!(model, "small", "now the cheaper model clears τ");

    // Restart on the same books: the router learns it again from the feedback table.
    let dir = s.stop();
    let s = Server::start_in(&config(&up), dir);
    let (model, p_restart) = auto(&http, &s, prompt).await;
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
    let mut s = Server::start(&config(&up));
    let http = client();
    let mut decisions = Vec::new();
    for i in 0..20 {
        let r = http
            .post(s.url("/v1/chat/completions"))
            .json(&chat_body("small", &format!("question {i}"), false))
            .send()
            .await
            .unwrap();
        decisions.push(r.headers()["x-conductor-decision-id"].to_str().unwrap().to_string());
    }
    let decisions = Arc::new(decisions);
    let acked: Arc<Mutex<Vec<(String, f64)>>> = Arc::default();
    let url = s.url("/v1/feedback");
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let (http, url, decisions, acked) = (http.clone(), url.clone(), decisions.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..10_000u64 {
                let n = t * 10_000 + i;
                let d = decisions[(n % 20) as usize].clone();
                // Dyadic fractions print and parse exactly, so scores compare bit for bit.
                let score = (n % 1024) as f64 / 1024.0;
                let Ok(r) = http.post(&url).json(&json!({"decision_id": d, "score": score})).send().await else {
                    break;
                };
                if r.status().is_success() {
                    acked.lock().unwrap().push((d, score));
                }
            }
        }));
    }
    // Kill while feedback is flowing.
    while acked.lock().unwrap().len() < 300 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    s.signal("KILL");
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let export = logs(&s.books(), &["export"]);
    let mut stored: std::collections::HashMap<(String, u64), usize> = Default::default();
    for l in export.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let d = v["prompt_id"].as_str().unwrap().trim_start_matches("gateway/").to_string();
        *stored.entry((d, v["score"].as_f64().unwrap().to_bits())).or_default() += 1;
    }
    let mut want: std::collections::HashMap<(String, u64), usize> = Default::default();
    for (d, score) in &acked {
        *want.entry((d.clone(), score.to_bits())).or_default() += 1;
    }
    for (k, n) in &want {
        let have = stored.get(k).copied().unwrap_or(0);
        assert!(have >= *n, "acknowledged feedback lost: {k:?} acked {n}×, stored {have}×");
    }
    eprintln!("acknowledged {} feedback, {} stored before SIGKILL", acked.len(), stored.values().sum::<usize>());
}
