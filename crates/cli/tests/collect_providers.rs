//! `conductor collect` through the providers: a model declared in a gateway config (here an
//! OpenAI-compatible upstream on 127.0.0.1) answers the user's own prompt file, every answer
//! is scored by the prompt's named scorer, 429s are retried, and a rerun resumes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::*;
use std::process::Command;

fn collect(dir: &std::path::Path, args: &[&str]) -> String {
    let out =
        Command::new(env!("CARGO_BIN_EXE_conductor")).current_dir(dir).arg("collect").args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "collect failed: {err}");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_upstream_answers_a_prompt_file_scored_by_name_with_retries_and_resume() {
    let up = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = upstream_config(&up, &[("solver", "solver", "small"), ("flaky", "flaky", "large")], "");
    std::fs::write(d.join("conductor.toml"), config.replace("{dir}", d.to_str().unwrap())).unwrap();
    std::fs::write(
        d.join("mine.jsonl"),
        concat!(
            r#"{"id":"six-sevens","prompt":"What is 6 x 7?","scorer":"number","reference":42}"#,
            "\n",
            r#"{"id":"wrong","prompt":"What is 3 + 4?","scorer":"number","reference":"7"}"#,
            "\n",
            r#"{"id":"letter","prompt":"Which is prime? A. 4 B. 7","scorer":"choice","reference":"B"}"#,
            "\n"
        ),
    )
    .unwrap();
    let args = [
        "--config",
        "conductor.toml",
        "--tasks",
        "file:mine.jsonl",
        "--models",
        "solver,flaky",
        "--out",
        "out.jsonl",
        "--catalog",
        "none.toml",
    ];
    // The catalogue prices library models; remote ones are priced by the config.
    std::fs::write(d.join("none.toml"), "[[models]]\nid = \"unused\"\nprovider = \"x\"\ninput_usd_per_mtok = 0\noutput_usd_per_mtok = 0\ncontext_length = 1\ntier = \"small\"\n").unwrap();
    let err = collect(d, &args);
    assert!(err.contains("6 new records"), "{err}");
    assert!(err.contains("retrying"), "the 429s were retried: {err}");
    let records: Vec<serde_json::Value> = std::fs::read_to_string(d.join("out.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 6);
    for r in &records {
        let expect = if r["prompt_id"] == "mine/six-sevens" { 1.0 } else { 0.0 };
        assert_eq!(r["score"], expect, "{r}");
        assert_eq!(r["dataset"], "mine");
        assert!(r["verdict"].as_str().unwrap().len() > 3, "{r}");
        // Priced from the config: 10 + 10 tokens at $1/$2 (small) or $10/$30 (large) per M.
        let cost = r["cost_usd"].as_f64().unwrap();
        let want = if r["model"] == "solver" { 30e-6 } else { 400e-6 };
        assert!((cost - want).abs() < 1e-12, "{r}");
        // The upstream returned log-probabilities when asked: the answer-level signals.
        let s = &r["signals"];
        assert_eq!(s["tokens"], 2, "{r}");
        assert!((s["tail_mass"].as_f64().unwrap() - 0.3).abs() < 1e-6, "{r}");
        assert!((s["logprob_min"].as_f64().unwrap() - 0.5f64.ln()).abs() < 1e-6, "{r}");
    }
    assert_eq!(up.hits("flaky"), 6, "every flaky answer needed exactly one retry");
    // Resumable: nothing new on a second run.
    let err = collect(d, &args);
    assert!(err.contains("0 new records") && err.contains("6 already present"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_prompts_are_graded_by_the_named_judge_and_refused_without_one() {
    let up = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = upstream_config(&up, &[("solver", "solver", "small"), ("grader", "grader", "large")], "");
    std::fs::write(d.join("conductor.toml"), config.replace("{dir}", d.to_str().unwrap())).unwrap();
    std::fs::write(
        d.join("open.jsonl"),
        concat!(
            r#"{"id":"agrees","prompt":"What is six sevens?","scorer":"judge","reference":"42"}"#,
            "\n",
            r#"{"id":"disagrees","prompt":"What is three plus five?","scorer":"judge","reference":"8"}"#,
            "\n"
        ),
    )
    .unwrap();
    std::fs::write(d.join("none.toml"), "[[models]]\nid = \"unused\"\nprovider = \"x\"\ninput_usd_per_mtok = 0\noutput_usd_per_mtok = 0\ncontext_length = 1\ntier = \"small\"\n").unwrap();
    let mut args = vec![
        "--config",
        "conductor.toml",
        "--tasks",
        "file:open.jsonl",
        "--models",
        "solver",
        "--out",
        "out.jsonl",
        "--catalog",
        "none.toml",
    ];
    // Without a judge nothing is sent: the run says which prompt needs one.
    let out = Command::new(env!("CARGO_BIN_EXE_conductor")).current_dir(d).arg("collect").args(&args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("open/agrees is scored by a judge") && err.contains("--judge"),
        "{err}"
    );
    assert_eq!(up.hits("solver"), 0);
    args.extend(["--judge", "grader"]);
    let err = collect(d, &args);
    assert!(err.contains("2 new records"), "{err}");
    let records: Vec<serde_json::Value> = std::fs::read_to_string(d.join("out.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for r in &records {
        let agrees = r["prompt_id"] == "open/agrees";
        assert_eq!(r["score"], if agrees { 1.0 } else { 0.0 }, "{r}");
        assert_eq!(r["verdict"], if agrees { "judge grader: yes" } else { "judge grader: no" }, "{r}");
    }
    // The judge saw the question, the reference and the answer.
    let asked = up.bodies("grader");
    assert_eq!(asked.len(), 2);
    let text = asked[0]["messages"][0]["content"].as_str().unwrap();
    assert!(text.contains("Reference answer: 42") && text.contains("#### 42"), "{text}");
}
