//! Fault tests: the gateway in front of a deliberately misbehaving upstream (hang, 500,
//! 429, garbage JSON, connection reset, stream cut mid-way). With `model: "auto"` the
//! router's next model answers; with the broken model named directly the client gets a
//! clear OpenAI-shaped error. Never a panic, never a hung request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::*;
use serde_json::Value;

const FAULTS: [&str; 6] = ["hang", "500", "429", "garbage", "reset", "cut"];

/// Expected status when the broken model is asked directly.
fn direct_status(fault: &str) -> u16 {
    match fault {
        "hang" => 504,
        "429" => 429,
        _ => 502,
    }
}

async fn sse_text(resp: reqwest::Response) -> String {
    resp.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_fault_falls_back_or_fails_cleanly() {
    let up = start_upstream().await;
    let http = client();
    // One gateway per fault; the broken model is "large" so the quality policy tries it first.
    let servers: Vec<(String, Server)> = FAULTS
        .iter()
        .map(|f| {
            let cfg = upstream_config(
                &up,
                &[("broken", f, "large"), ("good", "ok", "small")],
                "[policy]\ndefault = \"quality\"\n",
            );
            (f.to_string(), Server::start(&cfg))
        })
        .collect();

    for (fault, s) in &servers {
        // auto, non-streaming: falls back to the good model.
        let r = http.post(s.url("/v1/chat/completions")).json(&chat_body("auto", "hello", false)).send().await.unwrap();
        assert_eq!(r.status(), 200, "fault {fault}: auto should fall back");
        assert_eq!(r.headers()["x-conductor-model"], "good", "fault {fault}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["model"], "good");
        assert_eq!(body["choices"][0]["message"]["content"], "fake answer");
        let attempts = body["conductor"]["attempts"].as_array().unwrap();
        assert_eq!(attempts[0]["model"], "broken", "fault {fault}: broken model tried first: {attempts:?}");
        assert_ne!(attempts[0]["outcome"], "ok");
        assert_eq!(attempts.last().unwrap()["outcome"], "ok");

        // auto, streaming: the fallback is invisible, the stream is complete.
        let r = http.post(s.url("/v1/chat/completions")).json(&chat_body("auto", "hello", true)).send().await.unwrap();
        assert_eq!(r.status(), 200, "fault {fault}: auto stream should fall back");
        if fault == "cut" {
            // Tokens already went to the client when the cut came: no silent fallback is
            // possible any more, so the stream ends with an OpenAI-shaped error event.
            assert_eq!(r.headers()["x-conductor-model"], "broken");
            let text = sse_text(r).await;
            let err_line =
                text.lines().find(|l| l.contains("\"error\"")).unwrap_or_else(|| panic!("no error event: {text}"));
            let err: Value = serde_json::from_str(err_line.trim_start_matches("data: ")).unwrap();
            assert_error_shape(&err);
            assert!(!text.contains("[DONE]"));
        } else {
            assert_eq!(r.headers()["x-conductor-model"], "good", "fault {fault}");
            let text = sse_text(r).await;
            assert!(text.contains("fake") && text.trim_end().ends_with("data: [DONE]"), "fault {fault}: {text}");
        }

        // Direct, non-streaming: a clear OpenAI-shaped error.
        let r =
            http.post(s.url("/v1/chat/completions")).json(&chat_body("broken", "hello", false)).send().await.unwrap();
        let status = r.status().as_u16();
        assert!(r.headers().contains_key("x-conductor-decision-id"));
        let body: Value = r.json().await.unwrap();
        assert_error_shape(&body);
        // After a few failures the breaker may already be open (503) — also a clean error.
        assert!(status == direct_status(fault) || status == 503, "fault {fault}: status {status}, body {body}");

        // Direct, streaming.
        let r =
            http.post(s.url("/v1/chat/completions")).json(&chat_body("broken", "hello", true)).send().await.unwrap();
        if fault == "cut" && r.status() == 200 {
            // The first tokens went out before the cut: the stream ends with an error event.
            let text = sse_text(r).await;
            assert!(text.contains("\"error\"") && !text.contains("[DONE]"), "cut stream: {text}");
        } else {
            assert!(r.status().is_client_error() || r.status().is_server_error(), "fault {fault}");
            let body: Value = r.json().await.unwrap();
            assert_error_shape(&body);
        }

        // Still up.
        assert_eq!(http.get(s.url("/healthz")).send().await.unwrap().status(), 200);
    }
    // Retryable faults were retried (1 retry configured) before falling back.
    assert!(up.hits("500") >= 4, "500s retried: {}", up.hits("500"));
    assert!(up.hits("429") >= 4, "429s retried: {}", up.hits("429"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn circuit_breaker_takes_a_failing_model_out_of_rotation() {
    let up = start_upstream().await;
    let http = client();
    let cfg = upstream_config(
        &up,
        &[("broken", "500", "large"), ("good", "ok", "small")],
        "breaker_failures = 2\nbreaker_cooldown_ms = 600000\n[policy]\ndefault = \"quality\"\n",
    );
    let s = Server::start(&cfg);
    for _ in 0..3 {
        let r = http.post(s.url("/v1/chat/completions")).json(&chat_body("auto", "hi", false)).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let hits_before = up.hits("500");
    let r = http.post(s.url("/v1/chat/completions")).json(&chat_body("auto", "hi", false)).send().await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["conductor"]["attempts"][0]["outcome"], "skipped", "{body}");
    assert_eq!(up.hits("500"), hits_before, "an open breaker sends nothing upstream");
    let metrics = http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("conductor_circuit_state{model=\"broken\"} 1"), "{metrics}");
    assert!(metrics.contains("conductor_errors_total{model=\"broken\",kind=\"upstream_5xx\"}"), "{metrics}");
    let r = http.post(s.url("/v1/chat/completions")).json(&chat_body("broken", "hi", false)).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "circuit_open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_queue_answers_429_with_retry_after() {
    let up = start_upstream().await;
    let http = client();
    let mut cfg = upstream_config(&up, &[("slow", "slow", "small")], "");
    cfg.push_str("max_concurrency = 1\nmax_queue = 1\n");
    let s = Server::start(&cfg);
    let reqs = (0..6).map(|_| http.post(s.url("/v1/chat/completions")).json(&chat_body("slow", "hi", false)).send());
    let resps = futures::future::join_all(reqs).await;
    let mut ok = 0;
    let mut limited = 0;
    for r in resps {
        let r = r.unwrap();
        match r.status().as_u16() {
            200 => ok += 1,
            429 => {
                assert!(r.headers().contains_key("retry-after"));
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["error"]["code"], "queue_full");
                limited += 1;
            }
            s => panic!("unexpected status {s}"),
        }
    }
    assert!(ok >= 2, "one running + one queued succeed: ok={ok}");
    assert!(limited >= 1, "the rest are refused: limited={limited}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_finishes_inflight_stream() {
    let up = start_upstream().await;
    let cfg = upstream_config(&up, &[("slow", "slow", "small")], "");
    let mut s = Server::start(&cfg);
    let http = client();
    let r = http.post(s.url("/v1/chat/completions")).json(&chat_body("slow", "hi", true)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Headers are in, the stream is running: ask the server to stop.
    let pid = s.child.id().to_string();
    std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let text = r.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "stream finished despite shutdown: {text}");
    let status = s.child.wait().unwrap();
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_rejecting_a_request_is_a_400_and_does_not_trip_the_breaker() {
    let up = start_upstream().await;
    let http = client();
    let cfg = upstream_config(
        &up,
        &[("picky", "400", "large"), ("good", "ok", "small")],
        "breaker_failures = 2\n[policy]\ndefault = \"quality\"\n",
    );
    let s = Server::start(&cfg);
    for _ in 0..4 {
        let r = http.post(s.url("/v1/chat/completions")).json(&chat_body("picky", "hi", false)).send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "upstream_rejected_request");
    }
    assert_eq!(up.hits("400"), 4, "a rejected request is not retried");
    // auto falls back to the next model.
    let r = http.post(s.url("/v1/chat/completions")).json(&chat_body("auto", "hi", false)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-conductor-model"], "good");
    let metrics = http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("conductor_circuit_state{model=\"picky\"} 0"), "{metrics}");
}

async fn metrics_text(http: &reqwest::Client, s: &Server) -> String {
    http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_breaker_counts_requests_and_treats_429_as_back_pressure() {
    let up = start_upstream().await;
    let http = client();
    // Two failures open the breaker; one request makes two attempts (one retry).
    let cfg = upstream_config(
        &up,
        &[("flaky", "500", "large"), ("busy", "429", "medium"), ("good", "ok", "small")],
        "breaker_failures = 2\nbreaker_cooldown_ms = 600000\n",
    );
    let s = Server::start(&cfg);
    let r = http.post(s.url("/v1/chat/completions")).json(&chat_body("flaky", "hi", false)).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let attempts = up.hits("500");
    assert_eq!(attempts, 2, "one retry");
    let m = metrics_text(&http, &s).await;
    assert!(m.contains("conductor_circuit_state{model=\"flaky\"} 0"), "one request is one failure: {m}");
    // A rate-limited upstream is healthy: any number of 429s leave its breaker closed.
    for _ in 0..3 {
        let r = http.post(s.url("/v1/chat/completions")).json(&chat_body("busy", "hi", false)).send().await.unwrap();
        assert_eq!(r.status(), 429);
    }
    let m = metrics_text(&http, &s).await;
    assert!(m.contains("conductor_circuit_state{model=\"busy\"} 0"), "{m}");
    // The second failing request opens it; the 503 says when to come back.
    let _ = http.post(s.url("/v1/chat/completions")).json(&chat_body("flaky", "hi", false)).send().await.unwrap();
    let r = http.post(s.url("/v1/chat/completions")).json(&chat_body("flaky", "hi", false)).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((500..=600).contains(&retry), "Retry-After {retry} should be the cooldown left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_first_token_timeout_falls_back_instead_of_retrying() {
    let up = start_upstream().await;
    let http = client();
    let cfg = upstream_config(
        &up,
        &[("stuck", "hang", "large"), ("good", "ok", "small")],
        "[policy]\ndefault = \"quality\"\n",
    );
    let s = Server::start(&cfg);
    let r = http.post(s.url("/v1/chat/completions")).json(&chat_body("auto", "hi", true)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-conductor-model"], "good");
    let _ = r.text().await.unwrap();
    assert_eq!(up.hits("hang"), 1, "a slow upstream is not sent the same request again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_says_how_long_the_work_ahead_takes() {
    let up = start_upstream().await;
    let http = client();
    let mut cfg = upstream_config(&up, &[("slow", "slow", "small")], "");
    cfg.push_str("max_concurrency = 1\nmax_queue = 10\n");
    let s = Server::start(&cfg);
    // One call teaches the queue how long a call takes (300 ms).
    let r = http.post(s.url("/v1/chat/completions")).json(&chat_body("slow", "hi", false)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let reqs = (0..14).map(|_| http.post(s.url("/v1/chat/completions")).json(&chat_body("slow", "hi", false)).send());
    let mut hints = Vec::new();
    for r in futures::future::join_all(reqs).await {
        let r = r.unwrap();
        if r.status() == 429 {
            hints.push(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap());
        }
    }
    assert!(!hints.is_empty(), "11 fit (1 running + 10 waiting), the rest are refused");
    // Ten waiting ahead at 0.3 s each: about 3 s, not a fixed guess.
    assert!(hints.iter().all(|&h| h >= 3), "{hints:?}");
}
