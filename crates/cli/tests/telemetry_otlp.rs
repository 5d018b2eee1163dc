//! OpenTelemetry export: with `[telemetry] otlp_endpoint` set, the real binary sends each
//! request's trace over OTLP/HTTP (protobuf) to a receiver started here, which decodes it
//! with the OTLP protobuf types: a server span per request carrying the routing decision
//! (GenAI semantic conventions plus `conductor.*`), a client span per model call under it.
//! Without the setting nothing is sent, even with the OTEL_* variables set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};
use prost::Message;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// An OTLP/HTTP receiver: every POST body decoded, with the path it came to.
#[derive(Default)]
struct Receiver {
    exports: Mutex<Vec<(String, ExportTraceServiceRequest)>>,
}

impl Receiver {
    async fn start() -> (Arc<Receiver>, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let me = Arc::new(Receiver::default());
        let r = me.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let r = r.clone();
                tokio::spawn(async move {
                    let mut sock = BufReader::new(sock);
                    let mut line = String::new();
                    sock.read_line(&mut line).await.unwrap();
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        sock.read_line(&mut h).await.unwrap();
                        if h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap();
                            }
                        }
                    }
                    let mut body = vec![0; len];
                    sock.read_exact(&mut body).await.unwrap();
                    let req = ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP protobuf body");
                    r.exports.lock().unwrap().push((path, req));
                    let ok = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    sock.get_mut().write_all(ok.as_bytes()).await.unwrap();
                });
            }
        });
        (me, url)
    }

    /// Every span received, with its resource's `service.name`.
    fn spans(&self) -> Vec<(String, Span)> {
        let mut out = Vec::new();
        for (_, req) in self.exports.lock().unwrap().iter() {
            for rs in &req.resource_spans {
                let service = rs.resource.as_ref().map(|r| attr(&r.attributes, "service.name")).unwrap_or(Value::Null);
                for ss in &rs.scope_spans {
                    for s in &ss.spans {
                        out.push((service.as_str().unwrap_or("").to_string(), s.clone()));
                    }
                }
            }
        }
        out
    }
}

fn any(v: &AnyValue) -> Value {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => json!(s),
        Some(any_value::Value::IntValue(i)) => json!(i),
        Some(any_value::Value::DoubleValue(d)) => json!(d),
        Some(any_value::Value::BoolValue(b)) => json!(b),
        Some(any_value::Value::ArrayValue(a)) => Value::Array(a.values.iter().map(any).collect()),
        _ => Value::Null,
    }
}

fn attr(attrs: &[KeyValue], key: &str) -> Value {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()).map(any).unwrap_or(Value::Null)
}

fn config(up: &Upstream, telemetry: &str) -> String {
    let model = |id: &str, behaviour: &str, tier: &str, price: f64| {
        format!(
            "\n[[models]]\nid = \"{id}\"\nprovider = \"openai\"\nbase_url = \"{}\"\nupstream_model = \"fake\"\n\
             input_usd_per_mtok = {price}\noutput_usd_per_mtok = {price}\ntier = \"{tier}\"\nmax_retries = 0\n",
            up.base(behaviour)
        )
    };
    format!(
        "[local]\nenabled = false\n[books]\npath = \"{{dir}}/books.sqlite\"\n[reliability]\nretry_base_ms = 5\nretry_max_ms = 20\n{telemetry}{}{}",
        model("tiny-broken", "500", "small", 0.1),
        model("mid", "ok", "medium", 1.0),
    )
}

async fn ask(s: &Server, model: &str, stream: bool) -> (u16, String) {
    let r = client()
        .post(s.url("/v1/chat/completions"))
        .json(&chat_body(model, "Name a colour.", stream))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let id = r.headers()["x-conductor-decision-id"].to_str().unwrap().to_string();
    let _ = r.text().await.unwrap();
    (status, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_request_is_a_trace_with_the_routing_decision_and_one_span_per_model_call() {
    let (rx, url) = Receiver::start().await;
    let up = start_upstream().await;
    let telemetry =
        format!("[telemetry]\notlp_endpoint = \"{url}\"\nservice_name = \"conductor-test\"\nbatch_delay_ms = 100\n");
    let s = Server::start(&config(&up, &telemetry));
    let (st, fallback) = ask(&s, "auto:threshold:0", false).await; // tiny-broken fails, mid answers
    assert_eq!(st, 200);
    let (st, streamed) = ask(&s, "mid", true).await;
    assert_eq!(st, 200);
    let (st, failed) = ask(&s, "tiny-broken", false).await;
    assert!(st >= 500, "{st}");

    // Wait for the three traces (batches go out every 100 ms).
    let t = Instant::now();
    let roots = loop {
        let spans = rx.spans();
        let roots: HashMap<String, (String, Span)> = spans
            .iter()
            .filter(|(_, s)| s.kind == SpanKind::Server as i32)
            .map(|(svc, s)| {
                (attr(&s.attributes, "conductor.decision_id").as_str().unwrap().to_string(), (svc.clone(), s.clone()))
            })
            .collect();
        if [&fallback, &streamed, &failed].iter().all(|id| roots.contains_key(*id)) {
            break roots;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "traces never arrived: {} spans", spans.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(rx.exports.lock().unwrap().iter().all(|(p, _)| p == "/v1/traces"));
    let all = rx.spans();
    let children = |root: &Span| -> Vec<Span> {
        let mut c: Vec<Span> = all
            .iter()
            .map(|(_, s)| s.clone())
            .filter(|s| s.parent_span_id == root.span_id && s.trace_id == root.trace_id)
            .collect();
        c.sort_by_key(|s| attr(&s.attributes, "conductor.attempt.index").as_i64());
        c
    };

    // The routed request: the decision on the server span, the fallback in its children.
    let (service, root) = &roots[&fallback];
    assert_eq!(service, "conductor-test");
    assert_eq!(root.name, "chat auto:threshold:0");
    let a = |k: &str| attr(&root.attributes, k);
    assert_eq!(a("gen_ai.operation.name"), "chat");
    assert_eq!(a("gen_ai.request.model"), "auto:threshold:0");
    assert_eq!(a("gen_ai.response.model"), "mid");
    assert_eq!(a("gen_ai.response.id"), format!("chatcmpl-{fallback}"));
    assert_eq!(a("gen_ai.usage.input_tokens"), 10);
    assert_eq!(a("gen_ai.usage.output_tokens"), 10);
    assert_eq!(a("conductor.policy"), "threshold:0");
    assert_eq!(a("conductor.outcome"), "ok");
    assert!(a("conductor.reason").as_str().unwrap().contains("cheapest"), "{}", a("conductor.reason"));
    assert_eq!(a("conductor.candidate.models"), json!(["tiny-broken", "mid"]));
    assert_eq!(a("conductor.candidate.p_success").as_array().unwrap().len(), 2);
    assert!(a("conductor.cost_usd").as_f64().unwrap() > 0.0);
    let kids = children(root);
    let names: Vec<&str> = kids.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["chat tiny-broken", "chat mid"]);
    assert!(kids.iter().all(|k| k.kind == SpanKind::Client as i32));
    assert_eq!(attr(&kids[0].attributes, "conductor.attempt.outcome"), "error");
    assert!(attr(&kids[0].attributes, "error.type").as_str().unwrap().contains("500"));
    assert_eq!(kids[0].status.as_ref().unwrap().code, StatusCode::Error as i32);
    assert_eq!(attr(&kids[1].attributes, "conductor.attempt.outcome"), "ok");
    assert_eq!(attr(&kids[1].attributes, "gen_ai.provider.name"), "openai");
    for k in &kids {
        assert!(
            k.start_time_unix_nano >= root.start_time_unix_nano
                && k.end_time_unix_nano <= root.end_time_unix_nano + 1_000_000
        );
    }
    assert_ne!(roots[&fallback].1.trace_id, roots[&streamed].1.trace_id, "one trace per request");

    // The stream has its time to first token; the failed request is an error span.
    let (_, st) = &roots[&streamed];
    assert_eq!(attr(&st.attributes, "conductor.stream"), true);
    assert!(attr(&st.attributes, "conductor.time_to_first_token_ms").as_f64().is_some());
    assert_eq!(attr(&st.attributes, "conductor.policy"), "direct");
    let (_, f) = &roots[&failed];
    assert_eq!(attr(&f.attributes, "conductor.outcome"), "error");
    assert_eq!(f.status.as_ref().unwrap().code, StatusCode::Error as i32);
    assert_eq!(children(f).len(), 1);
    s.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_is_exported_without_the_setting() {
    let (rx, url) = Receiver::start().await;
    let up = start_upstream().await;
    // The SDK's own variables point at the receiver; conductor must not use them unasked.
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &url);
    std::env::set_var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", format!("{url}/v1/traces"));
    let s = Server::start(&config(&up, ""));
    std::env::remove_var("OTEL_EXPORTER_OTLP_ENDPOINT");
    std::env::remove_var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    assert_eq!(ask(&s, "mid", false).await.0, 200);
    s.stop(); // a graceful stop would flush any batched span
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rx.exports.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_run_is_an_invoke_agent_span_with_its_model_and_tool_calls() {
    let (rx, url) = Receiver::start().await;
    let up = start_upstream().await;
    let telemetry = format!("[telemetry]\notlp_endpoint = \"{url}\"\nbatch_delay_ms = 100\n");
    let cfg = upstream_config(&up, &[("agent-model", "agent", "small")], &telemetry)
        .replace("total_timeout_ms = 1500", "total_timeout_ms = 20000")
        .replace("first_token_timeout_ms = 700", "first_token_timeout_ms = 10000");
    let s = Server::start(&cfg);
    let script = json!([{"name": "calculator", "arguments": {"expression": "2^10"}}]);
    let spec = json!({"goal": format!("Scripted run. SCRIPT: {script}"), "tools": ["calculator"], "stream": false});
    let r = client().post(s.url("/v1/agent/runs")).json(&spec).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();

    let t = Instant::now();
    let (root, kids) = loop {
        let spans: Vec<Span> = rx.spans().into_iter().map(|(_, s)| s).collect();
        if let Some(root) = spans.iter().find(|s| attr(&s.attributes, "gen_ai.agent.id") == id.as_str()) {
            let kids: Vec<Span> = spans.iter().filter(|s| s.parent_span_id == root.span_id).cloned().collect();
            break (root.clone(), kids);
        }
        assert!(t.elapsed() < Duration::from_secs(30), "no invoke_agent span: {} spans", spans.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(root.name, "invoke_agent conductor");
    assert_eq!(attr(&root.attributes, "gen_ai.operation.name"), "invoke_agent");
    assert_eq!(attr(&root.attributes, "conductor.agent.status"), "succeeded");
    let names: Vec<&str> = kids.iter().map(|k| k.name.as_str()).collect();
    assert!(names.contains(&"execute_tool calculator"), "{names:?}");
    assert_eq!(names.iter().filter(|n| **n == "chat agent-model").count(), 2, "{names:?}");
    let tool = kids.iter().find(|k| k.name == "execute_tool calculator").unwrap();
    assert_eq!(attr(&tool.attributes, "gen_ai.tool.name"), "calculator");
    assert_eq!(attr(&tool.attributes, "conductor.tool.ok"), true);
    // Each model call names its gateway decision, whose own trace is there too.
    let chat = kids.iter().find(|k| k.name == "chat agent-model").unwrap();
    let decision = attr(&chat.attributes, "conductor.decision_id");
    assert!(rx
        .spans()
        .iter()
        .any(|(_, s)| s.kind == SpanKind::Server as i32 && attr(&s.attributes, "conductor.decision_id") == decision));
}
