//! Keys: an empty or shared secret is refused at start-up, an empty `Authorization` header
//! authenticates as nobody, and with keys configured a key sees only what it may use —
//! its models in `/v1/models`, no per-key spend in `/metrics` unless it is an admin key,
//! and unknown-model errors that neither echo a huge name nor list other keys' models.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::*;
use serde_json::Value;
use std::process::Command;

fn serve_fails(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_conductor"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(!out.status.success(), "started with {config}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn empty_and_shared_secrets_stop_start_up() {
    let e = serve_fails("[[keys]]\nid = \"a\"\nkey = \"\"\n");
    assert!(e.contains("keys[0].key") && e.contains("empty"), "{e}");
    let e = serve_fails("[[keys]]\nid = \"a\"\nkey = \"   \"\n");
    assert!(e.contains("keys[0].key"), "{e}");
    let empty_sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let e = serve_fails(&format!("[[keys]]\nid = \"a\"\nkey_sha256 = \"{empty_sha}\"\n"));
    assert!(e.contains("keys[0].key") && e.contains("empty"), "{e}");
    // Two keys sharing one secret (even given in different forms) is an error naming both.
    let sha = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"; // sha256("secret")
    let e =
        serve_fails(&format!("[[keys]]\nid = \"a\"\nkey = \"secret\"\n[[keys]]\nid = \"b\"\nkey_sha256 = \"{sha}\"\n"));
    assert!(e.contains("keys[1].key") && e.contains("keys[0]") && e.contains("`a`"), "{e}");
}

fn config(up: &Upstream) -> String {
    let mut cfg = upstream_config(up, &[("cheap", "ok", "small"), ("secret-model", "ok", "large")], "");
    cfg.push_str(
        "\n[[keys]]\nid = \"app\"\nkey = \"sk-app\"\nallowed_models = [\"cheap\"]\nbudget_usd = 5\n\n\
         [[keys]]\nid = \"ops\"\nkey = \"sk-ops\"\nadmin = true\n",
    );
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_sees_only_what_it_may_use() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up));
    let http = client();
    // Empty Authorization headers are not a key.
    for h in ["", "Bearer ", "Bearer    "] {
        let r =
            http.post(s.url("/v1/chat/completions")).header("authorization", h).json(&chat_body("cheap", "hi", false));
        assert_eq!(r.send().await.unwrap().status(), 401, "{h:?}");
    }
    // /v1/models: nothing without a key; the key's own models with one.
    assert_eq!(http.get(s.url("/v1/models")).send().await.unwrap().status(), 401);
    let v: Value = http.get(s.url("/v1/models")).bearer_auth("sk-app").send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = v["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"cheap") && ids.contains(&"auto") && !ids.contains(&"secret-model"), "{ids:?}");
    let r = http.get(s.url("/v1/models/cheap")).bearer_auth("sk-app").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["id"], "cheap");
    let r = http.get(s.url("/v1/models/secret-model")).bearer_auth("sk-app").send().await.unwrap();
    assert_eq!(r.status(), 404);
    // /metrics (per-key spend): admin keys only.
    assert_eq!(http.get(s.url("/metrics")).send().await.unwrap().status(), 401);
    assert_eq!(http.get(s.url("/metrics")).bearer_auth("sk-app").send().await.unwrap().status(), 403);
    let m = http.get(s.url("/metrics")).bearer_auth("sk-ops").send().await.unwrap();
    assert_eq!(m.status(), 200);
    assert!(m.text().await.unwrap().contains("conductor_budget_limit_usd{key=\"app\"} 5"));
    // /healthz: alive for anyone, details for admins.
    let h: Value = http.get(s.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(h, serde_json::json!({"status": "ok"}));
    let h: Value = http.get(s.url("/healthz")).bearer_auth("sk-ops").send().await.unwrap().json().await.unwrap();
    assert!(h["router"]["models"].as_array().is_some(), "{h}");
    // An unknown model: the name comes back truncated, and only the key's models are listed.
    let huge = "x".repeat(1_000_000);
    let r = http.post(s.url("/v1/chat/completions")).bearer_auth("sk-app").json(&chat_body(&huge, "hi", false));
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body = r.text().await.unwrap();
    assert!(body.len() < 2_000, "echoed {} bytes", body.len());
    assert!(body.contains("cheap") && !body.contains("secret-model"), "{body}");
}
