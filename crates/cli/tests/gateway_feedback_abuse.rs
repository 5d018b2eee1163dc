//! Feedback spam is bounded: one rating per decision per key (a later one replaces it, in
//! the books and in the router's memory), a rate limit per key, and a server without keys
//! may refuse anonymous feedback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::*;
use serde_json::{json, Value};

async fn p_success(http: &reqwest::Client, s: &Server, key: &str, prompt: &str, model: &str) -> (f64, String) {
    let r = http
        .post(s.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat_body("auto:quality", prompt, false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let c = v["conductor"]["candidates"].as_array().unwrap().iter().find(|c| c["model"] == model).unwrap().clone();
    (c["p_success"].as_f64().unwrap(), v["conductor"]["decision_id"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_rating_per_decision_and_a_rate_limit_per_key() {
    let up = start_upstream().await;
    let mut cfg = upstream_config(
        up.as_ref(),
        &[("small", "ok", "small"), ("large", "ok", "large")],
        "[feedback]\nper_key_per_minute = 5\n",
    );
    cfg.push_str("\n[[keys]]\nid = \"spammer\"\nkey = \"sk-spam\"\n");
    let s = Server::start(&cfg);
    let http = client();
    let prompt = "Translate 'good morning' into French";
    let (before, d) = p_success(&http, &s, "sk-spam", prompt, "large").await;
    let rate = |score: f64| {
        http.post(s.url("/v1/feedback")).bearer_auth("sk-spam").json(&json!({"decision_id": d, "score": score})).send()
    };
    let first: Value = rate(0.0).await.unwrap().json().await.unwrap();
    assert_eq!(first["replaced"], false, "{first}");
    let (once, _) = p_success(&http, &s, "sk-spam", prompt, "large").await;
    assert!(once < before, "a rating of 0 lowers the prediction: {before} → {once}");
    // Four more ratings of the same decision replace the first: nothing moves further.
    for _ in 0..4 {
        let r: Value = rate(0.0).await.unwrap().json().await.unwrap();
        assert_eq!(r["replaced"], true, "{r}");
    }
    let (after, _) = p_success(&http, &s, "sk-spam", prompt, "large").await;
    assert!((after - once).abs() < 1e-9, "re-rating one decision must not add weight: {once} → {after}");
    // The sixth rating within a minute is refused, with a hint when to retry.
    let r = rate(0.0).await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(assert_error_shape(&r.json::<Value>().await.unwrap())["code"], "feedback_rate_limited");
    // The books hold one rating, the last accepted one; a restart replays just that.
    let books = s.books();
    let dir = s.stop();
    let exported = logs(&books, &["export"]);
    assert_eq!(exported.lines().count(), 1, "{exported}");
    let s = Server::start_in(&cfg, dir);
    let (replayed, _) = p_success(&http, &s, "sk-spam", prompt, "large").await;
    assert!((replayed - once).abs() < 1e-9, "{once} vs {replayed} after restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_keys_may_refuse_anonymous_feedback() {
    let up = start_upstream().await;
    let cfg = upstream_config(up.as_ref(), &[("small", "ok", "small")], "[feedback]\nopen_mode = \"refuse\"\n");
    let s = Server::start(&cfg);
    let http = client();
    let r = http.post(s.url("/v1/chat/completions")).json(&chat_body("auto", "hi", false)).send().await.unwrap();
    let d = r.headers()["x-conductor-decision-id"].to_str().unwrap().to_string();
    let r = http.post(s.url("/v1/feedback")).json(&json!({"decision_id": d, "score": 1.0})).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(assert_error_shape(&r.json::<Value>().await.unwrap())["code"], "feedback_disabled");
}
