//! Bad input never hurts the server: malformed, mistyped, oversized, non-UTF-8 and
//! randomly mutated bodies all get a 4xx in OpenAI's error shape, unknown routes get
//! OpenAI-shaped 404/405, the server stays up; an invalid config is refused at start-up
//! with the key named.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::*;
use serde_json::Value;

async fn post_raw(http: &reqwest::Client, url: &str, body: Vec<u8>) -> (u16, Value) {
    let r = http.post(url).header("content-type", "application/json").body(body).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("status {status}: body is not JSON: {text:?}"));
    (status, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_requests_get_clear_4xx() {
    let up = start_upstream().await;
    let cfg =
        upstream_config(&up, &[("m", "ok", "small")], "[server]\nlisten = \"127.0.0.1:0\"\nmax_body_bytes = 65536\n");
    let s = Server::start(&cfg);
    let http = client();
    let url = s.url("/v1/chat/completions");
    let huge = "x".repeat(200_000);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("empty body", vec![], 400, "empty"),
        ("not json", b"hello".to_vec(), 400, "invalid"),
        ("json array", b"[1,2,3]".to_vec(), 400, "invalid"),
        ("missing messages", br#"{"model":"m"}"#.to_vec(), 400, "messages"),
        ("missing model", br#"{"messages":[{"role":"user","content":"hi"}]}"#.to_vec(), 400, "model"),
        ("empty messages", br#"{"model":"m","messages":[]}"#.to_vec(), 400, "messages"),
        ("model wrong type", br#"{"model":42,"messages":[{"role":"user","content":"hi"}]}"#.to_vec(), 400, "model"),
        ("messages wrong type", br#"{"model":"m","messages":"hi"}"#.to_vec(), 400, "messages"),
        (
            "content wrong type",
            br#"{"model":"m","messages":[{"role":"user","content":{"a":1}}]}"#.to_vec(),
            400,
            "messages[0].content",
        ),
        ("bad role", br#"{"model":"m","messages":[{"role":"robot","content":"hi"}]}"#.to_vec(), 400, "role"),
        (
            "temperature type",
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":"hot"}"#.to_vec(),
            400,
            "temperature",
        ),
        (
            "temperature range",
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":7}"#.to_vec(),
            400,
            "temperature",
        ),
        (
            "negative max_tokens",
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":-1}"#.to_vec(),
            400,
            "max_tokens",
        ),
        (
            "zero max_tokens",
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":0}"#.to_vec(),
            400,
            "max_tokens",
        ),
        ("n > 1", br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"n":3}"#.to_vec(), 400, "n"),
        ("unknown model", br#"{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}"#.to_vec(), 404, "gpt-9"),
        (
            "bad policy",
            br#"{"model":"auto:wizard","messages":[{"role":"user","content":"hi"}]}"#.to_vec(),
            400,
            "policy",
        ),
        (
            "bad knob",
            br#"{"model":"auto","messages":[{"role":"user","content":"hi"}],"conductor":{"lambda":"x"}}"#.to_vec(),
            400,
            "lambda",
        ),
        (
            "unknown knob",
            br#"{"model":"auto","messages":[{"role":"user","content":"hi"}],"conductor":{"speed":1}}"#.to_vec(),
            400,
            "speed",
        ),
        (
            "invalid utf-8",
            b"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}".to_vec(),
            400,
            "UTF-8",
        ),
        ("truncated json", br#"{"model":"m","messages":[{"role":"user","#.to_vec(), 400, "invalid"),
        (
            "huge body",
            format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{huge}"}}]}}"#).into_bytes(),
            413,
            "large",
        ),
    ];
    for (name, body, want, needle) in cases {
        if want == 413 {
            // The server refuses the rest of the body and says the connection is done.
            let r = http.post(&url).header("content-type", "application/json").body(body.clone()).send().await.unwrap();
            assert_eq!(r.headers().get("connection").map(|v| v.to_str().unwrap()), Some("close"), "{name}");
        }
        let (status, v) = post_raw(&http, &url, body).await;
        assert_eq!(status, want, "{name}: {v}");
        let e = assert_error_shape(&v);
        let msg = format!("{} {}", e["message"], e["param"]);
        assert!(msg.contains(needle), "{name}: message should mention {needle:?}: {v}");
    }
    // Unknown route and wrong method: OpenAI-shaped too.
    let r = http.get(s.url("/v1/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_error_shape(&r.json::<Value>().await.unwrap());
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_error_shape(&r.json::<Value>().await.unwrap());
    // Feedback validation.
    for (body, want) in [
        (r#"{"decision_id":"x","score":2}"#, 400),
        (r#"{"decision_id":"x"}"#, 400),
        (r#"{"decision_id":"does-not-exist","score":0.5}"#, 404),
        (r#"nonsense"#, 400),
    ] {
        let (status, v) = post_raw(&http, &s.url("/v1/feedback"), body.as_bytes().to_vec()).await;
        assert_eq!(status, want, "{body}: {v}");
        assert_error_shape(&v);
    }
    assert_eq!(http.get(s.url("/healthz")).send().await.unwrap().status(), 200);
}

/// A tiny deterministic PRNG (xorshift) so the fuzz cases are reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fuzzed_bodies_never_break_the_server() {
    let up = start_upstream().await;
    let s = Server::start(&upstream_config(&up, &[("m", "ok", "small")], ""));
    let http = client();
    let url = s.url("/v1/chat/completions");
    let seed = br#"{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi there"}],"max_tokens":5,"temperature":0.5,"stop":["\n"],"stream":false}"#;
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..300 {
        let mut body = seed.to_vec();
        for _ in 0..(1 + rng.next() % 4) {
            let i = (rng.next() as usize) % body.len();
            match rng.next() % 4 {
                0 => body[i] = (rng.next() % 256) as u8,
                1 => {
                    body.remove(i);
                }
                2 => body.insert(i, b"{}[]\":,0a\\"[(rng.next() % 10) as usize]),
                _ => body.truncate(i.max(1)),
            }
        }
        let r = http.post(&url).header("content-type", "application/json").body(body).send().await.unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status == 200 || (400..500).contains(&status), "status {status}: {v}");
        if status != 200 {
            assert_error_shape(&v);
        }
        *statuses.entry(status).or_insert(0) += 1;
    }
    assert!(statuses.keys().any(|s| *s >= 400), "fuzzing produced errors: {statuses:?}");
    assert_eq!(http.get(s.url("/healthz")).send().await.unwrap().status(), 200);
}

#[test]
fn invalid_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (cfg, key) in [
        ("[server]\nlisten = \"nowhere\"\n", "server.listen"),
        ("[policy]\ndefault = \"fastest\"\n", "policy.default"),
        (
            "[[models]]\nid = \"x\"\nprovider = \"openai\"\ninput_usd_per_mtok = 1\noutput_usd_per_mtok = 1\n",
            "models[0].base_url",
        ),
        ("[[keys]]\nid = \"k\"\nkey = \"s\"\nbudget_usd = -1\n", "keys[0].budget_usd"),
        ("[books]\npaht = \"x\"\n", "paht"),
    ] {
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, cfg).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_conductor"))
            .arg("serve")
            .arg("--config")
            .arg(&p)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{cfg}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "error should name {key}: {err}");
    }
}
