//! Checked answers through the gateway (`auto:verify`, `auto:cascade`), against a scripted
//! OpenAI-compatible upstream whose models answer with chosen token probabilities, and
//! verifiers fitted from a records file with signals: a doubtful answer escalates (and is
//! paid), an answer without log-probabilities is never accepted as verified, and a
//! request nobody can answer confidently gets "I don't know" through the official SDK —
//! shape, header, metric and book row.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::*;
use serde_json::Value;
use std::io::Write;

const MESSAGE: &str = "I cannot answer this one reliably.";

/// Recorded answers of `models`: half right with confident tokens (p 0.85–0.99), half
/// wrong and hesitant (p 0.2–0.6), a tenth of those confidently wrong — every token of an
/// answer at the same p, as the scripted upstream answers.
fn records(dir: &std::path::Path, models: &[&str]) -> std::path::PathBuf {
    let path = dir.join("signals.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    for m in models {
        for i in 0..300 {
            let right = i % 2 == 0;
            let spread = (i * 37 % 100) as f64 / 100.0;
            let p = match (right, i % 20 == 1) {
                (true, _) => 0.85 + 0.14 * spread,
                (false, true) => 0.9,
                (false, false) => 0.2 + 0.4 * spread,
            };
            let r = serde_json::json!({
                "prompt_id": format!("q{i}"), "dataset": "synthetic", "prompt": format!("question {i}"),
                "model": m, "score": if right { 1.0 } else { 0.0 }, "finish_reason": "stop",
                "signals": {"tokens": 20, "logprob_mean": p.ln(), "logprob_min": p.ln(), "tail_mass": 1.0 - p}
            });
            writeln!(f, "{r}").unwrap();
        }
    }
    path
}

fn config(up: &Upstream, small: &str, large: &str, records: &std::path::Path) -> String {
    let verify = format!("[verify]\nrecords = \"{}\"\nmessage = \"{MESSAGE}\"\n", records.display());
    upstream_config(up, &[("small", small, "small"), ("large", large, "large")], &verify)
}

fn attempts(v: &Value) -> Vec<(String, String)> {
    v["conductor"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["model"].as_str().unwrap().to_string(), a["outcome"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_doubtful_answer_escalates_and_every_attempt_is_paid() {
    let up = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let recs = records(dir.path(), &["small", "large"]);
    let s = Server::start(&config(&up, "unsure", "sure", &recs));
    let http = client();
    // A cascade that starts at the cheapest model (τ ≈ 0 makes it "adequate").
    let mut body = chat_body("auto:cascade", "What is 6 times 7?", false);
    body["conductor"] = serde_json::json!({"tau": 0.01, "max_risk": 0.2});
    let r = http.post(s.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-conductor-abstained").is_none());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "#### 42", "{v}");
    assert_eq!(v["model"], "large");
    assert_eq!(attempts(&v), [("small".into(), "rejected".into()), ("large".into(), "ok".into())]);
    let small = &v["conductor"]["attempts"][0];
    assert!(small["verdict"]["confidence"].as_f64().unwrap() < small["verdict"]["tau"].as_f64().unwrap(), "{small}");
    assert!(small["cost_usd"].as_f64().unwrap() > 0.0, "the rejected answer is paid: {small}");
    assert_eq!(small["verdict"]["signals"]["tokens"], 20, "the signals the verdict read: {small}");
    let ver = &v["conductor"]["verification"];
    assert_eq!((ver["verified"].as_bool(), ver["strategy"].as_str()), (Some(true), Some("cascade")), "{ver}");
    assert!(ver["confidence"].as_f64().unwrap() >= ver["tau"].as_f64().unwrap());
    // The upstream was asked for log-probabilities by conductor, not by the client, and
    // the client does not get them.
    assert!(v["choices"][0]["logprobs"].is_null());
    assert_eq!((up.hits("unsure"), up.hits("sure")), (1, 1));

    // Streamed: the accepted answer arrives once chosen.
    let mut body = chat_body("auto:cascade", "What is 6 times 7?", true);
    body["conductor"] = serde_json::json!({"tau": 0.01});
    let sse = http.post(s.url("/v1/chat/completions")).json(&body).send().await.unwrap().text().await.unwrap();
    assert!(sse.trim_end().ends_with("data: [DONE]"), "{sse}");
    let text: String = sse
        .lines()
        .filter_map(|l| l.strip_prefix("data: ").and_then(|d| serde_json::from_str::<Value>(d).ok()))
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_string))
        .collect();
    assert_eq!(text, "#### 42", "{sse}");

    // Direct requests are answered as they are, unchecked.
    let v: Value = http
        .post(s.url("/v1/chat/completions"))
        .json(&chat_body("small", "What is 6 times 7?", false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "#### 41");
    assert!(v["conductor"].get("verification").is_none(), "{v}");

    let metrics = http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("conductor_verdicts_total{model=\"small\",verdict=\"rejected\"} 2"), "{metrics}");
    assert!(metrics.contains("conductor_verdicts_total{model=\"large\",verdict=\"accepted\"} 2"), "{metrics}");
    // The books: the whole climb's cost, every attempt with its verdict.
    let books = s.books();
    let _dir = s.stop();
    let rows: Vec<Value> =
        logs(&books, &["recent", "--json"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let checked = rows.iter().find(|r| r["verification"]["strategy"] == "cascade" && r["stream"] == false).unwrap();
    let paid: f64 = checked["attempts"][0]["cost_usd"].as_f64().unwrap();
    assert!(checked["cost_usd"].as_f64().unwrap() > paid, "{checked}");
    assert_eq!(checked["attempts"][1]["verdict"]["accepted"], true, "{checked}");
    assert_eq!(checked["outcome"], "ok");
    assert!(logs(&books, &["recent"]).contains("ok·verified"));
    // Both verified answers replaced a rejected one: distillation data.
    let rows: Vec<Value> =
        logs(&books, &["export", "--distill"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["messages"][0]["content"], "What is 6 times 7?");
    assert_eq!(rows[0]["messages"][1], serde_json::json!({"role": "assistant", "content": "#### 42"}));
    assert_eq!(rows[0]["metadata"]["replaces"], serde_json::json!(["small"]));
    assert_eq!(rows[0]["metadata"]["model"], "large");
    assert!(rows[0]["metadata"]["confidence"].as_f64().unwrap() > 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn distillation_never_exports_a_key_that_opted_out_of_logging() {
    let up = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let recs = records(dir.path(), &["small", "large"]);
    let keys = "\n[[keys]]\nid = \"private\"\nkey = \"sk-private\"\nlog_prompts = false\n\n[[keys]]\nid = \"open\"\nkey = \"sk-open\"\n";
    let s = Server::start(&(config(&up, "unsure", "sure", &recs) + keys));
    for key in ["sk-private", "sk-open"] {
        let mut body = chat_body("auto:cascade", &format!("secret of {key}"), false);
        body["conductor"] = serde_json::json!({"tau": 0.01});
        let r = client().post(s.url("/v1/chat/completions")).bearer_auth(key).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let books = s.books();
    let _dir = s.stop();
    let out = logs(&books, &["export", "--distill"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("secret of sk-open") && !out.contains("sk-private"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_without_logprobs_is_never_taken_as_verified() {
    let up = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let recs = records(dir.path(), &["small", "large"]);
    // The small model's provider returns no log-probabilities; the large one's does, but
    // cannot be checked either when it has no verifier (records only for "small").
    let s = Server::start(&config(&up, "mute", "sure", &recs));
    let mut body = chat_body("auto:cascade", "What is 6 times 7?", false);
    body["conductor"] = serde_json::json!({"tau": 0.01});
    let v: Value = client().post(s.url("/v1/chat/completions")).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(attempts(&v), [("small".into(), "rejected".into()), ("large".into(), "ok".into())], "{v}");
    let small = &v["conductor"]["attempts"][0]["verdict"];
    assert!(
        small["confidence"].is_null() && small["reason"].as_str().unwrap().contains("log-probabilities"),
        "{small}"
    );
    drop(s);

    let only_small = records(dir.path(), &["small"]);
    let s = Server::start(&config(&up, "unsure", "sure", &only_small));
    let v: Value = client().post(s.url("/v1/chat/completions")).json(&body).send().await.unwrap().json().await.unwrap();
    let ver = &v["conductor"]["verification"];
    assert_eq!(ver["verified"], false, "the top model's answer could not be checked: {v}");
    assert!(ver["reason"].as_str().unwrap().contains("no verifier"), "{ver}");
    assert_eq!(v["choices"][0]["message"]["content"], "#### 42");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abstention_through_the_openai_sdk() {
    let up = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let recs = records(dir.path(), &["small", "large"]);
    let s = Server::start(&config(&up, "unsure", "unsure", &recs));
    let run = python_script("verify_sdk.py", vec![s.base.clone(), MESSAGE.to_string()]).await;
    let (stdout, stderr) = (&run.stdout, &run.stderr);
    assert!(run.ok && stdout.contains("all checks passed"), "SDK script failed:\n{stdout}\n{stderr}");
    let metrics = client().get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("conductor_abstentions_total{model=\"large\"} 2"), "{metrics}");
    let books = s.books();
    let _dir = s.stop();
    let rows: Vec<Value> =
        logs(&books, &["recent", "--json"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let abstained: Vec<&Value> = rows.iter().filter(|r| r["outcome"] == "abstained").collect();
    assert_eq!(abstained.len(), 2, "{rows:?}");
    for r in abstained {
        assert_eq!(r["verification"]["abstained"], true);
        assert_eq!(r["chosen_model"], "large");
        assert!(r["cost_usd"].as_f64().unwrap() > 0.0, "an abstention still paid for its answers: {r}");
    }
}

#[test]
fn verification_as_default_without_any_verifier_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("none.jsonl");
    std::fs::write(&empty, "").unwrap();
    let cfg = format!(
        "[local]\nenabled = false\n[books]\npath = \"{}\"\n[verify]\nstrategy = \"verify\"\nrecords = \"{}\"\n\n[[models]]\nid = \"m\"\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nupstream_model = \"m\"\ninput_usd_per_mtok = 1.0\noutput_usd_per_mtok = 1.0\ntier = \"small\"\n",
        dir.path().join("books.sqlite").display(),
        empty.display()
    );
    let path = dir.path().join("c.toml");
    std::fs::write(&path, cfg).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_conductor"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("verify.strategy") && err.contains("no served model has a verifier"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_the_dearer_model_fails_the_doubtful_answer_is_kept_unverified_and_booked_in_order() {
    let up = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let recs = records(dir.path(), &["small", "large"]);
    let s = Server::start(&config(&up, "unsure", "500", &recs));
    let mut body = chat_body("auto:cascade", "What is 6 times 7?", false);
    body["conductor"] = serde_json::json!({"tau": 0.01});
    let v: Value = client().post(s.url("/v1/chat/completions")).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "#### 41", "{v}");
    assert_eq!(v["conductor"]["verification"]["verified"], false);
    // In the order the calls were made: the small model's answer, then the large one's errors.
    let got = attempts(&v);
    assert_eq!(got[0], ("small".to_string(), "ok".to_string()), "{v}");
    assert!(got[1..].iter().all(|(m, o)| m == "large" && o == "error") && got.len() >= 2, "{v}");
}
