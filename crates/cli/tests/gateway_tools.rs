//! Tool calling through the gateway with the official `openai` package: a real local model
//! (Qwen2.5-Coder 0.5B, its chat template's `<tool_call>` format), an OpenAI-compatible
//! upstream and an Anthropic upstream (scripted: `tools` / `anthropic_tools`), whole and
//! streamed. Also: the router only considers models that handle tools.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::*;
use serde_json::{json, Value};

const QWEN: &str = "qwen2.5-coder-0.5b";

fn config(up: &Upstream, local: &[&str], extra_models: &str) -> String {
    std::env::set_var("CONDUCTOR_TEST_ANTHROPIC_KEY", "sk-fake-anthropic");
    let models: Vec<String> = local.iter().map(|m| format!("\"{m}\"")).collect();
    format!(
        "[local]\nmodels = [{}]\n[books]\npath = \"{{dir}}/books.sqlite\"\n\n\
         [[models]]\nid = \"gpt-tools\"\nprovider = \"openai\"\nbase_url = \"{}\"\nupstream_model = \"fake\"\ninput_usd_per_mtok = 1.0\noutput_usd_per_mtok = 2.0\ntier = \"large\"\n\n\
         [[models]]\nid = \"claude-tools\"\nprovider = \"anthropic\"\nbase_url = \"http://{}/anthropic_tools\"\nupstream_model = \"claude-3-5-haiku-latest\"\napi_key_env = \"CONDUCTOR_TEST_ANTHROPIC_KEY\"\ninput_usd_per_mtok = 0.8\noutput_usd_per_mtok = 4.0\ntier = \"large\"\n{extra_models}",
        models.join(", "),
        up.base("tools"),
        up.addr,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tool_call_round_trip_local_openai_and_anthropic_with_the_sdk() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up, &[QWEN], ""));
    let args = [s.base.as_str(), QWEN, "gpt-tools", "claude-tools"].map(String::from).to_vec();
    let run = python_script("tools_sdk.py", args).await;
    let stdout = &run.stdout;
    assert!(run.ok, "tools SDK script failed:\n{stdout}\n{}", run.stderr);
    let runs = run.json_lines();
    assert_eq!(runs.len(), 3, "{stdout}");
    for r in &runs {
        for mode in ["whole", "streamed"] {
            let (expr, result, text) = (&r[mode][0], &r[mode][1], r[mode][2].as_str().unwrap());
            assert!(expr.as_str().is_some_and(|e| !e.is_empty()), "{r}");
            if r["model"] != QWEN {
                // The scripted upstreams answer with the tool result they were sent back.
                assert_eq!((expr.as_str().unwrap(), result.as_str().unwrap()), ("6*7", "42"), "{r}");
                assert_eq!(text, "The answer is 42.", "{r}");
            }
        }
    }
    // What conductor sent the OpenAI-compatible upstream: the tools and the tool turns as
    // the client wrote them.
    let bodies = up.bodies("tools");
    let back = bodies.iter().find(|b| b["messages"].as_array().unwrap().len() == 3).unwrap();
    assert_eq!(back["messages"][1]["tool_calls"][0]["id"], "call_up1");
    assert_eq!(back["messages"][2]["role"], "tool");
    assert_eq!(back["tool_choice"], "none");
    assert_eq!(back["tools"][0]["function"]["name"], "calculator");
    // And the books have every call, answered by the model asked.
    let books = s.books();
    let _dir = s.stop();
    let recent = logs(&books, &["recent", "--json", "--limit", "100"]);
    for m in [QWEN, "gpt-tools", "claude-tools"] {
        assert_eq!(recent.matches(&format!("\"chosen_model\":\"{m}\"")).count(), 4, "{m}: {recent}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_models_that_handle_tools_are_routed_tool_requests() {
    let up = start_upstream().await;
    // An upstream whose config says it handles no tools.
    let plain = format!(
        "\n[[models]]\nid = \"gpt-plain\"\nprovider = \"openai\"\nbase_url = \"{}\"\nupstream_model = \"fake\"\ninput_usd_per_mtok = 0.01\noutput_usd_per_mtok = 0.01\ntier = \"small\"\ncapabilities = [\"logprobs\"]\n",
        up.base("ok")
    );
    let s = Server::start(&config(&up, &["smollm2-135m"], &plain));
    let http = client();
    let tools = json!([{"type": "function", "function": {"name": "calculator", "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}}}}]);
    let ask = |model: &str| {
        json!({"model": model, "max_tokens": 16, "tools": tools,
               "messages": [{"role": "user", "content": "What is 6 times 7?"}]})
    };
    // Asked by name, a model without tools says so, naming the field.
    for m in ["smollm2-135m", "gpt-plain"] {
        let r = http.post(s.url("/v1/chat/completions")).json(&ask(m)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{m}");
        let v: Value = r.json().await.unwrap();
        let e = assert_error_shape(&v);
        assert_eq!(e["code"], "unsupported_parameter", "{v}");
        assert_eq!(e["param"], "tools", "{v}");
    }
    // The router never picks one, even under the cheapest policy.
    for policy in ["auto", "auto:threshold:0", "auto:quality"] {
        let r = http.post(s.url("/v1/chat/completions")).json(&ask(policy)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{policy}");
        let v: Value = r.json().await.unwrap();
        let chosen = v["conductor"]["model"].as_str().unwrap().to_string();
        assert!(chosen == "gpt-tools" || chosen == "claude-tools", "{policy} chose {chosen}");
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{v}");
        let args: Value = serde_json::from_str(
            v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(args, json!({"expression": "6*7"}));
        let tried: Vec<&str> =
            v["conductor"]["attempts"].as_array().unwrap().iter().filter_map(|a| a["model"].as_str()).collect();
        assert!(!tried.contains(&"smollm2-135m") && !tried.contains(&"gpt-plain"), "{tried:?} {v}");
    }
    // Without tools, the cheapest policy picks one of the cheap models the filter kept out.
    let mut plain = ask("auto:threshold:0");
    plain.as_object_mut().unwrap().remove("tools");
    let r = http.post(s.url("/v1/chat/completions")).json(&plain).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let chosen = v["conductor"]["model"].as_str().unwrap();
    assert!(chosen == "smollm2-135m" || chosen == "gpt-plain", "{chosen}");
    // A tool message that answers no call is a 400 that names it.
    let bad = json!({"model": "auto", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nope", "content": "1"}]});
    let r = http.post(s.url("/v1/chat/completions")).json(&bad).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(assert_error_shape(&v)["param"], "messages[1].tool_call_id", "{v}");
}
