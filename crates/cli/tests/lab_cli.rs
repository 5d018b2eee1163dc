//! The `conductor lab …` and `conductor route` commands, run as the real binary on the
//! real RouteLLM data (from the repository's data/ folder).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn catalog() -> PathBuf {
    repo().join("catalog/routellm.toml")
}

fn conductor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conductor")).args(args).current_dir(repo()).output().expect("binary runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn err(out: &Output) -> String {
    assert!(!out.status.success(), "unexpected success: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn convert_eval_train_route() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records");
    let data = repo().join("data/routellm");
    let out = ok(&conductor(&["lab", "convert", "--routellm", s(&data), "--out", s(&records)]));
    assert!(out.contains("mt_bench: 72 prompts, 144 records, 8 contaminated prompts dropped"), "{out}");
    assert!(out.contains("gsm8k: 1307 prompts"), "{out}");

    let lab = dir.path().join("lab");
    let mt = records.join("mt_bench.jsonl");
    let out = ok(&conductor(&[
        "lab",
        "eval",
        "--records",
        s(&mt),
        "--catalog",
        s(&catalog()),
        "--predictor",
        "knn,logreg,mf",
        "--folds",
        "3",
        "--out",
        s(&lab),
        "--quiet",
    ]));
    assert!(out.contains("APGR"), "{out}");
    for p in ["knn", "logreg", "mf"] {
        for ext in ["md", "json"] {
            assert!(lab.join(format!("mt_bench_{p}_ngram.{ext}")).exists());
        }
        for plot in ["cost_quality", "pgr"] {
            let svg = std::fs::read_to_string(lab.join(format!("mt_bench_{p}_ngram_{plot}.svg"))).unwrap();
            assert!(svg.contains("<svg") && (svg.contains("share") || svg.contains("cost")), "axis labels drawn");
            let png = std::fs::read(lab.join(format!("mt_bench_{p}_ngram_{plot}.png"))).unwrap();
            assert_eq!(&png[1..4], b"PNG");
        }
    }
    let summary = std::fs::read_to_string(lab.join("summary.md")).unwrap();
    assert_eq!(summary.lines().filter(|l| l.starts_with("| mt_bench |")).count(), 3);

    let router = dir.path().join("gsm8k.router");
    let gsm = records.join("gsm8k.jsonl");
    let out = ok(&conductor(&[
        "lab",
        "train",
        "--records",
        s(&gsm),
        "--catalog",
        s(&catalog()),
        "--predictor",
        "logreg",
        "--out",
        s(&router),
    ]));
    assert!(out.contains("trained logreg router"), "{out}");
    let out = ok(&conductor(&[
        "route",
        "--router",
        s(&router),
        "--policy",
        "threshold:0.8",
        "A train travels 60 km in 45 minutes. How far does it go in 3 hours?",
    ]));
    assert!(out.contains("gpt-4-1106-preview") && out.contains("choice: "), "{out}");
    let json = ok(&conductor(&["route", "--router", s(&router), "--json", "--min-quality", "0.999", "hello"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["predictions"].as_array().unwrap().len(), 2);
    assert!(v["decision"]["chosen"].is_null(), "abstains below min quality: {v}");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn line(id: &str, model: &str, score: f64) -> String {
    format!("{{\"prompt_id\":\"{id}\",\"dataset\":\"t\",\"prompt\":\"question {id}\",\"model\":\"{model}\",\"score\":{score}}}\n")
}

#[test]
fn bad_inputs_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let eval = |records: &Path| {
        conductor(&[
            "lab",
            "eval",
            "--records",
            s(records),
            "--catalog",
            s(&catalog()),
            "--out",
            s(&d.join("o")),
            "--quiet",
        ])
    };

    let bad = write(d, "bad.jsonl", &format!("{}not json\n", line("a", "gpt-4-1106-preview", 1.0)));
    let e = err(&eval(&bad));
    assert!(e.contains("bad.jsonl:2:") && e.contains("malformed"), "{e}");

    // A misspelt field is an error naming file, line and field, not a silently lost value.
    let typo = line("b", "gpt-4-1106-preview", 1.0).replace("\"score\"", "\"score\":1,\"latncy_ms\"");
    let e = err(&eval(&write(d, "typo.jsonl", &format!("{}{typo}", line("a", "gpt-4-1106-preview", 1.0)))));
    assert!(e.contains("typo.jsonl:2:") && e.contains("unknown field `latncy_ms`"), "{e}");

    let unknown = write(d, "unknown.jsonl", &line("a", "gpt-5", 1.0));
    let e = err(&eval(&unknown));
    assert!(e.contains("`gpt-5`") && e.contains("not in the catalogue"), "{e}");

    let single: String = (0..20).map(|i| line(&i.to_string(), "gpt-4-1106-preview", 1.0)).collect();
    let e = err(&eval(&write(d, "single.jsonl", &single)));
    assert!(e.contains("single model") && e.contains("at least two"), "{e}");

    let e = err(&eval(&write(d, "empty.jsonl", "")));
    assert!(e.contains("empty"), "{e}");

    let garbage = write(d, "garbage.router", "conductor-router v1 sha256=00\nnot gzip");
    let e = err(&conductor(&["route", "--router", s(&garbage), "hi"]));
    assert!(e.contains("corrupted"), "{e}");
    let old = write(d, "old.router", "conductor-router v0 sha256=00\n");
    let e = err(&conductor(&["route", "--router", s(&old), "hi"]));
    assert!(e.contains("version 0") && e.contains("retrain"), "{e}");
    let e = err(&conductor(&["route", "--router", s(&catalog()), "hi"]));
    assert!(e.contains("not a conductor router artifact"), "{e}");
}

/// The seed-experiment report re-runs from the committed records alone, and its "always the
/// largest model" row is exactly the mean score of that model over the complete prompts.
#[test]
fn report_reruns_from_committed_records() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("report");
    // A snapshot, so that a collector appending to the file meanwhile cannot skew the comparison.
    let records = dir.path().join("local.jsonl");
    std::fs::copy(repo().join("records/local.jsonl"), &records).unwrap();
    let out = ok(&conductor(&["lab", "report", "--records", s(&records), "--out", s(&out_dir), "--quiet"]));
    for row in [
        "`smollm2-135m` alone",
        "`qwen2.5-coder-1.5b` alone",
        "random (uniform over the 3 models)",
        "oracle (best per prompt",
        "router over all: max quality",
        "router over all: ≤ 60% to the best single model",
        "router over `smollm2-135m` + `qwen2.5-coder-0.5b`: max quality",
        "**Claim",
        "The same check on the same prompts with other fold assignments",
    ] {
        assert!(out.contains(row), "missing `{row}` in\n{out}");
    }
    assert!(!out.contains("| – |"), "every row has a measured latency:\n{out}");

    // Independent recomputation of the 1.5B row from the records file.
    let models = ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"];
    let mut by_prompt: std::collections::HashMap<String, std::collections::HashMap<String, f64>> = Default::default();
    for l in std::fs::read_to_string(&records).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        by_prompt
            .entry(v["prompt_id"].as_str().unwrap().into())
            .or_default()
            .insert(v["model"].as_str().unwrap().into(), v["score"].as_f64().unwrap());
    }
    let complete: Vec<_> = by_prompt.values().filter(|m| models.iter().all(|k| m.contains_key(*k))).collect();
    let q = complete.iter().map(|m| m["qwen2.5-coder-1.5b"]).sum::<f64>() / complete.len() as f64;
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["report"]["prompts"].as_u64().unwrap() as usize, complete.len());
    let row = json["report"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["policy"] == "`qwen2.5-coder-1.5b` alone")
        .unwrap();
    assert!((row["quality"].as_f64().unwrap() - q).abs() < 1e-9, "{row} vs {q}");
    assert!(out_dir.join("report.md").exists());
    assert_eq!(&std::fs::read(out_dir.join("cost_quality.png")).unwrap()[1..4], b"PNG");
    assert!(std::fs::read_to_string(out_dir.join("cost_quality.svg")).unwrap().contains("smaller models"));

    let e = err(&conductor(&["lab", "report", "--small", "qwen2.5-coder-0.5b", "--out", s(&out_dir), "--quiet"]));
    assert!(e.contains("at least two"), "{e}");
    let e = err(&conductor(&["lab", "report", "--small", "gpt-9,qwen2.5-coder-0.5b", "--out", s(&out_dir), "--quiet"]));
    assert!(e.contains("gpt-9"), "{e}");
    let e = err(&conductor(&[
        "lab",
        "report",
        "--small",
        "qwen2.5-coder-0.5b,qwen2.5-coder-1.5b",
        "--out",
        s(&out_dir),
        "--quiet",
    ]));
    assert!(e.contains("must leave out the largest"), "{e}");
    // `lab eval` with the report's settings cuts the same folds: the same references per fold
    // and the same held-out numbers.
    let eval_dir = dir.path().join("eval");
    ok(&conductor(&[
        "lab",
        "eval",
        "--records",
        s(&records),
        "--catalog",
        s(&repo().join("catalog/local.toml")),
        "--predictor",
        "auto",
        "--features",
        "auto",
        "--folds",
        "5",
        "--out",
        s(&eval_dir),
        "--quiet",
    ]));
    let eval_json = std::fs::read_dir(&eval_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let ev: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(eval_json).unwrap()).unwrap();
    for key in ["references_per_fold", "singles", "max_quality", "router_points"] {
        assert_eq!(ev[key], json["full"][key], "`{key}` differs between lab eval and lab report");
    }

    for folds in ["0", "1", "100000"] {
        let e =
            err(&conductor(&["lab", "report", "--folds", folds, "--repeats", "0", "--out", s(&out_dir), "--quiet"]));
        assert!(e.contains("-fold cross-validation is not possible") && e.contains("between 2 and"), "{e}");
    }
}

/// `lab verify` from records with answer signals: Mixtral's hesitant answers (low mean
/// log-probability) are its wrong ones, so verification escalates them to GPT-4; the tables
/// name each policy, its promise and whether it held; records without signals are refused.
#[test]
fn verify_reads_answer_signals_and_keeps_its_promises_on_held_out_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..200 {
        let hesitant = (i * 37) % 10 < 3;
        for (model, score, lp) in [
            ("mistralai/Mixtral-8x7B-Instruct-v0.1", if hesitant { 0 } else { 1 }, if hesitant { -1.6 } else { -0.15 }),
            ("gpt-4-1106-preview", 1, -0.05),
        ] {
            let lp = lp - (i % 5) as f64 / 100.0;
            text.push_str(&format!(
                "{{\"prompt_id\":\"q{i}\",\"dataset\":\"toy\",\"prompt\":\"question {i} on topic {}\",\"model\":\"{model}\",\"score\":{score},\"finish_reason\":\"stop\",\"signals\":{{\"tokens\":30,\"logprob_mean\":{lp},\"logprob_min\":{},\"tail_mass\":{}}}}}\n",
                i % 11,
                3.0 * lp,
                -lp / 3.0
            ));
        }
    }
    let recs = write(dir.path(), "signals.jsonl", &text);
    let out = dir.path().join("verify");
    let stdout =
        ok(&conductor(&["lab", "verify", "--records", s(&recs), "--catalog", s(&catalog()), "--out", s(&out)]));
    for policy in ["| largest alone |", "| router (prompt only) |", "| verify |", "| cascade |", "| verify + abstain |"]
    {
        assert!(stdout.contains(policy), "{policy} missing:\n{stdout}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("verify.json")).unwrap()).unwrap();
    let row = |name: &str| report["policies"].as_array().unwrap().iter().find(|p| p["policy"] == name).unwrap().clone();
    let (largest, cascade) = (row("largest alone"), row("cascade"));
    assert!(cascade["quality"].as_f64().unwrap() > 0.95, "{cascade}");
    assert!(cascade["cost_usd"].as_f64().unwrap() < largest["cost_usd"].as_f64().unwrap(), "{cascade} vs {largest}");
    // The promise is about new prompts in general: on 40 held-out prompts a fold may land
    // just above it by chance, but not most folds, and not the pooled share.
    let held = cascade["promise_held"].as_array().unwrap();
    assert!(held[0].as_u64().unwrap() + 1 >= held[1].as_u64().unwrap(), "{cascade}");
    assert!(cascade["share_largest"].as_f64().unwrap() <= 0.6, "{cascade}");
    let mixtral = &report["auroc"].as_array().unwrap()[0];
    assert!(mixtral["answer_level"].as_f64().unwrap() > 0.95, "{mixtral}");
    // Risk–coverage: ranked by the answer, the most confident half of Mixtral's answers are
    // right; the curves are drawn.
    let rc = &report["risk_coverage"].as_array().unwrap()[0];
    let curve = rc["answer_level"].as_array().unwrap();
    let half = &curve[curve.len() / 2 - 1];
    assert!(half[1].as_f64().unwrap() < 0.05, "{half}");
    for f in ["risk_coverage.svg", "risk_coverage.png", "cost_quality.svg", "cost_quality.png"] {
        assert!(std::fs::metadata(out.join(f)).unwrap().len() > 1000, "{f}");
    }
    // Records without signals (the RouteLLM release) cannot be verified: the error says why.
    let bare = write(
        dir.path(),
        "bare.jsonl",
        &(0..40)
            .map(|i| {
                line(&format!("b{i}"), "gpt-4-1106-preview", 1.0)
                    + &line(&format!("b{i}"), "mistralai/Mixtral-8x7B-Instruct-v0.1", 0.0)
            })
            .collect::<String>(),
    );
    let e = err(&conductor(&["lab", "verify", "--records", s(&bare), "--catalog", s(&catalog()), "--out", s(&out)]));
    assert!(e.contains("answer signals") && e.contains("conductor collect"), "{e}");
    let e = err(&conductor(&["lab", "verify", "--records", s(&recs), "--catalog", s(&catalog()), "--alpha", "1.5"]));
    assert!(e.contains("--alpha must be strictly between 0 and 1"), "{e}");
    let e = err(&conductor(&["lab", "verify", "--records", s(&recs), "--catalog", s(&catalog()), "--folds", "1"]));
    assert!(e.contains("--folds must be at least 2"), "{e}");
}
