//! `conductor serve` with nothing configured but the books serves the whole local library
//! behind the router shipped in `routers/local.router` (trained on `records/local.jsonl`),
//! not a cold-start guess: `/healthz` names it, and it routes a coding task and an
//! arithmetic word problem differently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::*;
use serde_json::Value;

/// Prompts in `records/local.jsonl` answered by all three models.
fn complete_prompts() -> usize {
    let mut models: std::collections::HashMap<String, usize> = Default::default();
    for l in std::fs::read_to_string(workspace_root().join("records/local.jsonl")).unwrap().lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        *models.entry(v["prompt_id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    models.values().filter(|&&n| n == 3).count()
}

async fn routed_model(http: &reqwest::Client, s: &Server, prompt: &str) -> String {
    let mut body = chat_body("auto", prompt, false);
    body["max_tokens"] = 1.into();
    let r = http.post(s.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let header = r.headers()["x-conductor-model"].to_str().unwrap().to_string();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], header.as_str());
    header
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_config_uses_the_shipped_router() {
    let s = Server::start("[books]\npath = \"{dir}/books.sqlite\"\n");
    let http = client();
    let h: Value = http.get(s.url("/healthz")).send().await.unwrap().json().await.unwrap();
    let router = &h["router"];
    // Found in the installation (the checkout), not relative to the working directory.
    let source = router["source"].as_str().unwrap();
    assert!(source.ends_with("routers/local.router") && std::path::Path::new(source).is_absolute(), "{h}");
    // Trained on (most of) the committed records: `lab train` holds 20% out for calibration.
    let complete = complete_prompts();
    assert!(
        router["train_prompts"].as_u64().unwrap() as f64 >= 0.7 * complete as f64,
        "{complete} complete prompts; {h}"
    );
    assert_eq!(
        router["models"],
        serde_json::json!(["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]),
        "{h}"
    );

    let code = routed_model(
        &http,
        &s,
        "from typing import List\n\ndef below_zero(operations: List[int]) -> bool:\n    \"\"\" Given a list of deposit and withdrawal operations on a bank account that starts with zero balance, detect if at any point the balance falls below zero.\n    >>> below_zero([1, 2, -4, 5])\n    True\n    \"\"\"\n",
    )
    .await;
    let math = routed_model(
        &http,
        &s,
        "A bakery sells 3 trays of 24 muffins each morning and 2 trays of 18 muffins each afternoon. Each muffin costs $2, and a quarter of the afternoon muffins are sold at half price. How many dollars does the bakery take in per day?",
    )
    .await;
    assert_ne!(code, math, "a trained router tells a coding task from a multi-step word problem");
}
