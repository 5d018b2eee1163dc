//! No field is silently dropped: OpenAI-compatible upstreams get every field the client
//! sent, unchanged and under the name it used (checked at a recording upstream); a model
//! that cannot honour a field gets a 400 naming it, and `auto` never routes to one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::*;
use serde_json::{json, Value};

fn config(up: &Upstream) -> String {
    format!(
        "[local]\nmodels = [\"smollm2-135m\"]\n[books]\npath = \"{{dir}}/books.sqlite\"\n\n\
         [[models]]\nid = \"remote\"\nprovider = \"openai\"\nbase_url = \"{}\"\nupstream_model = \"up-name\"\n\
         input_usd_per_mtok = 1\noutput_usd_per_mtok = 2\ntier = \"large\"\n",
        up.base("record")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_reaches_an_openai_compatible_upstream_unchanged() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up));
    let body = json!({
        "model": "remote",
        "messages": [
            {"role": "developer", "content": "be terse"},
            {"role": "user", "content": "weather?", "name": "ann"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        "tool_choice": "required",
        "response_format": {"type": "json_object"},
        "logprobs": true, "top_logprobs": 3,
        "logit_bias": {"50256": -100},
        "frequency_penalty": 0.5, "presence_penalty": 0.25,
        "max_completion_tokens": 77,
        "seed": 5,
        "conductor": {"min_quality": 0.0}
    });
    let r = client().post(s.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let sent = up.bodies("record");
    assert_eq!(sent.len(), 1);
    let got = &sent[0];
    for field in [
        "tools",
        "tool_choice",
        "response_format",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "frequency_penalty",
        "presence_penalty",
        "max_completion_tokens",
        "seed",
    ] {
        assert_eq!(got[field], body[field], "`{field}` must be forwarded unchanged: {got}");
    }
    assert_eq!(got["model"], "up-name");
    assert_eq!(got["messages"], body["messages"], "developer role and name kept");
    assert!(got.get("max_tokens").is_none(), "the limit keeps its name; nothing is invented: {got}");
    assert!(got.get("conductor").is_none(), "routing knobs stay here");

    // Without any limit from the client, none is invented upstream.
    let r = client().post(s.url("/v1/chat/completions")).json(&chat_without_limit("remote")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let got = &up.bodies("record")[1];
    assert!(got.get("max_tokens").is_none() && got.get("max_completion_tokens").is_none(), "{got}");
}

fn chat_without_limit(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_cannot_honour_a_field_is_refused_or_routed_around() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up));
    let http = client();
    // The local model cannot call tools: a 400 naming the field, nothing invented.
    for (field, value) in [
        ("tools", json!([{"type": "function", "function": {"name": "f"}}])),
        ("tool_choice", json!("required")),
        ("parallel_tool_calls", json!(true)),
    ] {
        let mut b = chat_body("smollm2-135m", "hi", false);
        b[field] = value;
        let r = http.post(s.url("/v1/chat/completions")).json(&b).send().await.unwrap();
        assert_eq!(r.status(), 400, "{field}");
        let v: Value = r.json().await.unwrap();
        let e = assert_error_shape(&v);
        assert_eq!(e["param"], field, "{v}");
        assert!(e["message"].as_str().unwrap().contains(field), "{v}");
    }
    let mut b = chat_body("smollm2-135m", "hi", false);
    b["messages"][0]["name"] = json!("ann");
    let r = http.post(s.url("/v1/chat/completions")).json(&b).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["param"], "messages[0].name", "{v}");

    // What the engine does honour (JSON mode, logit bias, penalties) is served, not refused.
    let mut b = chat_body("smollm2-135m", "hi", false);
    b["response_format"] = json!({"type": "json_object"});
    b["logit_bias"] = json!({"1": 5});
    b["presence_penalty"] = json!(0.5);
    b["max_tokens"] = json!(8);
    let r = http.post(s.url("/v1/chat/completions")).json(&b).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // Features switched off (false, 0, empty) ask for nothing.
    let mut b = chat_body("smollm2-135m", "hi", false);
    b["logprobs"] = json!(false);
    b["tools"] = json!([]);
    b["frequency_penalty"] = json!(0);
    let r = http.post(s.url("/v1/chat/completions")).json(&b).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // `auto` with tools goes only to a model that can honour them.
    let mut b = chat_body("auto", "What is the weather in Paris?", false);
    b["tools"] = json!([{"type": "function", "function": {"name": "get_weather"}}]);
    b["conductor"] = json!({"policy": "threshold:0.0"});
    let r = http.post(s.url("/v1/chat/completions")).json(&b).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-conductor-model"], "remote");
    let v: Value = r.json().await.unwrap();
    let candidates: Vec<&str> =
        v["conductor"]["candidates"].as_array().unwrap().iter().map(|c| c["model"].as_str().unwrap()).collect();
    assert!(candidates.contains(&"remote"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_part_without_text_gets_the_right_message() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up));
    let b = json!({"model": "auto", "messages": [{"role": "user", "content": [{"type": "text"}]}]});
    let r = client().post(s.url("/v1/chat/completions")).json(&b).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("no `text` field") && !msg.contains("not supported"), "{msg}");
}
