//! The collector on the real local library: SmolLM2 answers two GSM8K prompts, and every
//! record carries the answer-level signals computed from its real token probabilities.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

use conductor_evals::collect::{self, Plan};
use conductor_evals::score::sandbox::Limits;
use conductor_local::Library;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

#[test]
fn library_answers_are_recorded_with_their_token_probability_signals() {
    let lib = Library::open(conductor_core::install::models_dir());
    if !lib.spec("smollm2-135m").unwrap().present() {
        eprintln!("skipped: the library's files are not assembled (bash scripts/setup.sh)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let plan = Plan {
        task_sets: vec!["gsm8k".into()],
        models: vec!["smollm2-135m".into()],
        limit: 2,
        data_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data")),
        out: out.clone(),
        catalog: conductor_local::catalog(),
        limits: Limits::default(),
        seed: 0,
        batch: 2,
        judge: None,
    };
    let summary = collect::run(&lib, &plan, &AtomicBool::new(false), &mut |_, _, _| {}).unwrap();
    assert_eq!(summary.written, 2);
    for r in conductor_core::records::read_jsonl(&out).unwrap() {
        let s = r.signals.unwrap_or_else(|| panic!("no signals in {r:?}"));
        let generated = r.completion_tokens.unwrap();
        // One log-probability per generated token (an end-of-turn token may not be text).
        assert!(s.tokens > 0 && s.tokens <= generated && generated <= s.tokens + 1, "{s:?} vs {generated}");
        assert!(s.logprob_min <= s.logprob_mean && s.logprob_mean < 0.0, "{s:?}");
        assert!(s.tail_mass > 0.0 && s.tail_mass < 1.0, "{s:?}");
    }
}
