//! The Anthropic provider behind the OpenAI API: a client speaking OpenAI's format gets
//! answers from a (fake, local) Anthropic Messages API — request translated (system
//! prompt to the top level, max_tokens always set, x-api-key from the environment),
//! response and event stream translated back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn anthropic_upstream_through_openai_api() {
    let up = start_upstream().await;
    std::env::set_var("CONDUCTOR_TEST_ANTHROPIC_KEY", "sk-fake-anthropic");
    let cfg = format!(
        "[local]\nenabled = false\n[books]\npath = \"{{dir}}/books.sqlite\"\n\n[[models]]\nid = \"claude\"\nprovider = \"anthropic\"\nbase_url = \"http://{}/anthropic\"\nupstream_model = \"claude-3-5-haiku-latest\"\napi_key_env = \"CONDUCTOR_TEST_ANTHROPIC_KEY\"\ninput_usd_per_mtok = 0.8\noutput_usd_per_mtok = 4.0\ntier = \"large\"\n",
        up.addr
    );
    let s = Server::start(&cfg);
    let http = client();
    let body = |stream: bool| {
        json!({"model": "claude", "stream": stream, "stream_options": {"include_usage": true}, "max_tokens": 16,
               "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]})
    };
    let r = http.post(s.url("/v1/chat/completions")).json(&body(false)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from claude", "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 12);
    assert_eq!(v["usage"]["completion_tokens"], 4);

    let r = http.post(s.url("/v1/chat/completions")).json(&body(true)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let chunks: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let content: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(content, "Hello from claude");
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "length"), "max_tokens maps to length: {text}");
    assert!(chunks.iter().any(|c| c["usage"]["completion_tokens"] == 4), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"));
}
