//! "Train a router on your own traffic", end to end: requests and ratings go through a
//! running gateway, `conductor logs export` turns the rated decisions into records,
//! `conductor lab train` fits a router on them, and a second gateway serves it — with a
//! third model joining that router from a few labels (`onboard_records`), no retraining.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::*;
use serde_json::{json, Value};
use std::process::Command;

const MATHS: &str = "Compute the integral of the polynomial x^2 + 3x over the interval";
const POEM: &str = "Write a short friendly poem about the sea and the gulls, number";

fn catalog(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("catalog.toml");
    let entry = |id: &str, price: f64, tier: &str| {
        format!("[[models]]\nid = \"{id}\"\nprovider = \"openai\"\ninput_usd_per_mtok = {price}\noutput_usd_per_mtok = {price}\ncontext_length = 8192\ntier = \"{tier}\"\n\n")
    };
    std::fs::write(&p, entry("small", 1.0, "small") + &entry("large", 10.0, "large") + &entry("newbie", 0.5, "small"))
        .unwrap();
    p
}

async fn rate(http: &reqwest::Client, s: &Server, model: &str, prompt: &str, score: f64) {
    let r = http.post(s.url("/v1/chat/completions")).json(&chat_body(model, prompt, false)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-conductor-decision-id"].to_str().unwrap().to_string();
    let f = http.post(s.url("/v1/feedback")).json(&json!({"decision_id": id, "score": score})).send().await.unwrap();
    assert!(f.status().is_success(), "{}", f.text().await.unwrap());
}

async fn candidates(http: &reqwest::Client, s: &Server, prompt: &str) -> (String, Vec<(String, f64)>) {
    let body = json!({"model": "auto", "messages": [{"role": "user", "content": prompt}], "max_tokens": 5,
                      "conductor": {"policy": "quality"}});
    let r = http.post(s.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let c = v["conductor"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["model"].as_str().unwrap().to_string(), c["p_success"].as_f64().unwrap()))
        .collect();
    (v["model"].as_str().unwrap().to_string(), c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_export_then_lab_train_then_serve_with_an_onboarded_model() {
    let up = start_upstream().await;
    let http = client();
    let models = [("small", "ok", "small"), ("large", "ok", "large")];
    let s = Server::start(&upstream_config(&up, &models, "[feedback]\nper_key_per_minute = 0\n"));
    // Our traffic: the small model is good at poems and bad at maths; the large one the reverse.
    for i in 0..30 {
        rate(&http, &s, "small", &format!("{MATHS} {i}"), 0.0).await;
        rate(&http, &s, "large", &format!("{MATHS} {i}"), 1.0).await;
        rate(&http, &s, "small", &format!("{POEM} {i}"), 1.0).await;
        rate(&http, &s, "large", &format!("{POEM} {i}"), 0.0).await;
    }
    let books = s.books();
    let dir = s.stop();
    let records = dir.path().join("traffic.jsonl");
    logs(&books, &["export", "--out", records.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&records).unwrap().lines().count(), 120);

    let cat = catalog(dir.path());
    let router = dir.path().join("own.router");
    let out = Command::new(env!("CARGO_BIN_EXE_conductor"))
        .args(["lab", "train", "--records", records.to_str().unwrap(), "--catalog", cat.to_str().unwrap()])
        .args(["--predictor", "logreg", "--out", router.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A few labels of a new, cheap model that is good at maths only.
    let labels = dir.path().join("newbie.jsonl");
    let mut l = String::new();
    for i in 100..115 {
        for (prompt, score) in [(MATHS, 1.0), (POEM, 0.0)] {
            l.push_str(&format!(
                "{{\"prompt_id\":\"n{i}{score}\",\"dataset\":\"own\",\"prompt\":\"{prompt} {i}\",\"model\":\"newbie\",\"score\":{score}}}\n"
            ));
        }
    }
    std::fs::write(&labels, l).unwrap();
    let extra = format!(
        "[router]\nartifact = \"{}\"\n\n[[models]]\nid = \"newbie\"\nprovider = \"openai\"\nbase_url = \"{}\"\n\
         input_usd_per_mtok = 0.5\noutput_usd_per_mtok = 0.5\ntier = \"small\"\nonboard_records = \"{}\"\n",
        router.display(),
        up.base("ok"),
        labels.display()
    );
    let s = Server::start_in(&upstream_config(&up, &models, &extra), dir);
    let (chosen, c) = candidates(&http, &s, &format!("{POEM} 77")).await;
    assert_eq!(chosen, "small", "{c:?}");
    let p = |name: &str| c.iter().find(|(m, _)| m == name).unwrap().1;
    assert!(p("newbie") < 0.5, "the new model is bad at poems: {c:?}");
    let (chosen, c) = candidates(&http, &s, &format!("{MATHS} 77")).await;
    assert!(chosen == "newbie" || chosen == "large", "{c:?}");
    let p = |name: &str| c.iter().find(|(m, _)| m == name).unwrap().1;
    assert!(p("newbie") > 0.5 && p("small") < 0.5, "learnt from the traffic and the labels: {c:?}");
}
