//! The first experience: `serve` and `route` work from any folder (the shipped models,
//! router and catalogue are found in the installation), `route` previews what `auto`
//! will do, config surprises are start-up errors or loud warnings, and the logs are
//! readable — an access line per request (never a key or a prompt), no colour codes in
//! a file, human times and `--since` in `conductor logs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

fn conductor(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_conductor"));
    c.current_dir(dir).env_remove("CONDUCTOR_MODELS").env_remove("CONDUCTOR_LOG").env("CONDUCTOR_THREADS", "1");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_route_from_another_folder_agree() {
    let elsewhere = tempfile::tempdir().unwrap();
    // `serve` with no config, no environment, started outside the checkout.
    let mut child = conductor(elsewhere.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--books"])
        .arg(elsewhere.path().join("books.sqlite"))
        .env("CONDUCTOR_LOG", "warn,access=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("conductor listening on ").unwrap_or_else(|| panic!("{line}")).to_string();
    let http = client();
    let h: Value = http.get(format!("{base}/healthz")).send().await.unwrap().json().await.unwrap();
    assert!(h["router"]["source"].as_str().unwrap().ends_with("routers/local.router"), "{h}");
    assert_eq!(h["models"], 3, "the library is found in the installation: {h}");

    for prompt in ["Write a Python function that reverses a string.", "What is 17 times 23?"] {
        let body =
            serde_json::json!({"model": "auto", "messages": [{"role": "user", "content": prompt}], "max_tokens": 1});
        let r = http
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth("sk-not-logged")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let served = r.headers()["x-conductor-model"].to_str().unwrap().to_string();
        // `route` with its defaults, from the same foreign folder, previews that choice.
        let out = conductor(elsewhere.path()).args(["route", "--json", prompt]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["decision"]["chosen"], served.as_str(), "route and serve disagree on {prompt:?}: {v}");
    }
    let direct =
        serde_json::json!({"model": "smollm2-135m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1});
    assert_eq!(http.post(format!("{base}/v1/chat/completions")).json(&direct).send().await.unwrap().status(), 200);

    // Access log: one line per request, with decision and model, never a key or a prompt,
    // and no ANSI colour codes when stderr is not a terminal.
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    child.wait().unwrap();
    let access: Vec<&str> = stderr.lines().filter(|l| l.contains("POST /v1/chat/completions")).collect();
    assert_eq!(access.len(), 3, "{stderr}");
    assert!(access.iter().all(|l| l.contains(" 200 ") && l.contains("decision=") && l.contains("model=")), "{stderr}");
    assert!(!stderr.contains("sk-not-logged") && !stderr.contains("reverses a string"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes in a non-terminal log: {stderr:?}");

    // `conductor logs`: readable UTC times, --since, savings over routed requests only.
    let books = elsewhere.path().join("books.sqlite");
    let recent = logs(&books, &["recent"]);
    let first_row = recent.lines().nth(1).unwrap();
    let time = &first_row[..19];
    assert!(time.chars().filter(|c| c.is_ascii_digit()).count() == 14 && time.as_bytes()[10] == b' ', "{recent}");
    assert_eq!(logs(&books, &["--since", "1h", "recent"]).lines().count(), 4, "header + 3 rows");
    assert_eq!(logs(&books, &["--since", "2099-01-01", "recent"]).lines().count(), 1, "header only");
    let savings = logs(&books, &["savings"]);
    assert!(savings.contains("requests routed by `auto`:   2"), "{savings}");
}

#[test]
fn missing_models_name_where_they_were_looked_for() {
    let empty = tempfile::tempdir().unwrap();
    let out = conductor(empty.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--models-dir"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains(&empty.path().display().to_string()) && e.contains("--models-dir") && e.contains("CONDUCTOR_MODELS"),
        "{e}"
    );
}

fn serve_stderr(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, config.replace("{dir}", &dir.path().display().to_string())).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_conductor"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&p)
        .env("CONDUCTOR_MODELS", models_dir())
        .env("CONDUCTOR_THREADS", "1")
        .env_remove("CONDUCTOR_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let started = line.starts_with("conductor listening");
    if started {
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    }
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    child.wait().unwrap();
    (started, err)
}

#[test]
fn config_surprises_are_errors_or_loud_warnings() {
    let remote = |id: &str| {
        format!(
            "[books]\npath = \"{{dir}}/b.sqlite\"\n[[models]]\nid = \"{id}\"\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\ninput_usd_per_mtok = 1\noutput_usd_per_mtok = 1\n"
        )
    };
    // A remote model named like a library model would silently replace it.
    let (started, e) = serve_stderr(&remote("smollm2-135m"));
    assert!(!started && e.contains("models[0].id") && e.contains("local library model"), "{e}");
    // allowed_models naming a model that does not exist.
    let (started, e) = serve_stderr(&format!(
        "{}[[keys]]\nid = \"k\"\nkey = \"sk\"\nallowed_models = [\"gpt-5\"]\n",
        remote("remote")
    ));
    assert!(!started && e.contains("keys[0].allowed_models") && e.contains("gpt-5"), "{e}");
    // Adding a remote model switches the shipped router off: said loudly, with the way out.
    let (started, e) = serve_stderr(&remote("remote"));
    assert!(started, "{e}");
    assert!(e.contains("WARN") && e.contains("cold-start") && e.contains("router.artifact"), "{e}");
}
