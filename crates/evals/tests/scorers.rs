//! The scorers on real benchmark data: known right answers score 1, known wrong ones 0,
//! and hostile code (endless loops, sockets) is contained and scored 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

use std::io::BufRead;
use std::path::PathBuf;

use conductor_evals::score::{sandbox::Limits, score};
use conductor_evals::tasks::{self, Check};

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data"))
}

fn limits() -> Limits {
    Limits { wall: std::time::Duration::from_secs(5), ..Default::default() }
}

#[test]
fn gsm8k_gold_solutions_score_one_and_wrong_numbers_zero() {
    let tasks = tasks::load("gsm8k", &data_dir()).unwrap();
    assert!(tasks.len() > 1300 - 20, "contaminated prompts dropped, the rest kept: {}", tasks.len());
    let raw: Vec<serde_json::Value> = std::fs::read_to_string(data_dir().join("routellm/gsm8k/test.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for t in tasks.iter().take(100) {
        let idx: usize = t.id.trim_start_matches("gsm8k/").parse().unwrap();
        let gold_text = raw[idx]["answer"].as_str().unwrap();
        assert_eq!(score(t, gold_text, &limits()).unwrap().score, 1.0, "{}: {gold_text}", t.id);
        let Check::Number(gold) = t.check else { unreachable!() };
        let wrong = format!("Let me think.\n#### {}", gold + 1.0);
        assert_eq!(score(t, &wrong, &limits()).unwrap().score, 0.0);
    }
}

#[test]
fn contaminated_gsm8k_prompts_are_dropped() {
    let tasks = tasks::load("gsm8k", &data_dir()).unwrap();
    // RouteLLM lists the first test question (Janet's ducks) as contaminated.
    assert!(!tasks.iter().any(|t| t.question.starts_with("Janet\u{2019}s ducks lay 16 eggs")));
}

fn canonical_solutions() -> Vec<String> {
    let f = std::fs::File::open(data_dir().join("humaneval/HumanEval.jsonl.gz")).unwrap();
    std::io::BufReader::new(flate2::read::GzDecoder::new(f))
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(&l.unwrap()).unwrap()["canonical_solution"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn humaneval_canonical_solutions_pass_and_broken_ones_fail() {
    let tasks = tasks::load("humaneval", &data_dir()).unwrap();
    assert_eq!(tasks.len(), 164);
    let solutions = canonical_solutions();
    for (t, sol) in tasks.iter().zip(&solutions).take(12) {
        // As a body continuation, and as a whole function in a fenced block.
        let v = score(t, sol, &limits()).unwrap();
        assert_eq!(v.score, 1.0, "{}: {}", t.id, v.detail);
        let Check::Python { prompt, .. } = &t.check else { unreachable!() };
        let fenced = format!("Sure!\n```python\n{prompt}{sol}```\nThis works because...");
        assert_eq!(score(t, &fenced, &limits()).unwrap().score, 1.0, "{}", t.id);
        let v = score(t, "    return None\n", &limits()).unwrap();
        assert_eq!(v.score, 0.0, "{}", t.id);
    }
}

#[test]
fn hostile_code_is_contained_and_scores_zero() {
    let tasks = tasks::load("humaneval", &data_dir()).unwrap();
    let t = &tasks[0];
    let v = score(t, "    while True:\n        pass\n", &limits()).unwrap();
    assert_eq!(v.score, 0.0);
    assert!(v.detail.contains("timed out"), "{}", v.detail);

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sneaky = format!("    import socket\n    socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'leak')\n    return True\n");
    let v = score(t, &sneaky, &limits()).unwrap();
    assert_eq!(v.score, 0.0, "{}", v.detail);
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "the sandboxed code reached a local server");
}
