//! Generation behaviour of real GGUF models: determinism, length and stop handling,
//! token accounting, cancellation, queuing, and one answer from every library model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod common;

use common::*;
use conductor_local::{ChatMessage, FinishReason, GenParams};

fn ask(prompt: &str) -> Vec<ChatMessage> {
    vec![ChatMessage::user(prompt)]
}

fn greedy(max_tokens: usize) -> GenParams {
    GenParams { max_tokens, ..Default::default() }
}

#[test]
fn greedy_output_is_identical_across_runs() {
    let _serial = serial();
    let lib = private_library();
    let m = lib.chat_model(SMOL).unwrap();
    let msgs = ask("What is the capital of France?");
    let a = m.generate(&msgs, &greedy(24), &mut |_| true).unwrap();
    let b = m.generate(&msgs, &greedy(24), &mut |_| true).unwrap();
    assert!(!a.text.trim().is_empty());
    assert_eq!(a.text, b.text);
    assert_eq!(a.completion_tokens, b.completion_tokens);
}

#[test]
fn streamed_pieces_concatenate_to_the_text() {
    let _serial = serial();
    let m = library().chat_model(SMOL).unwrap();
    let mut streamed = String::new();
    let g = m
        .generate(&ask("List three colours."), &greedy(20), &mut |p| {
            streamed.push_str(p);
            true
        })
        .unwrap();
    assert_eq!(streamed, g.text);
}

#[test]
fn max_tokens_gives_finish_reason_length() {
    let _serial = serial();
    let m = library().chat_model(SMOL).unwrap();
    let g = m.generate(&ask("Write a long story about a dragon."), &greedy(5), &mut |_| true).unwrap();
    assert_eq!(g.finish_reason, FinishReason::Length);
    assert_eq!(g.completion_tokens, 5);
}

#[test]
fn stop_sequence_ends_generation_and_is_not_returned() {
    let _serial = serial();
    let m = library().chat_model(SMOL).unwrap();
    let msgs = ask("Count from 1 to 20, separated by commas.");
    let free = m.generate(&msgs, &greedy(40), &mut |_| true).unwrap();
    // Pick a stop string that really occurs in the unconstrained output.
    let stop = "5";
    assert!(free.text.contains(stop), "expected '{stop}' in {:?}", free.text);
    let params = GenParams { stop: vec![stop.into()], ..greedy(40) };
    let g = m.generate(&msgs, &params, &mut |_| true).unwrap();
    assert_eq!(g.finish_reason, FinishReason::Stop);
    assert!(!g.text.contains(stop), "{:?}", g.text);
    assert!(free.text.starts_with(&g.text), "{:?} vs {:?}", g.text, free.text);
    assert!(g.completion_tokens < free.completion_tokens);
}

#[test]
fn end_of_turn_gives_finish_reason_stop() {
    let _serial = serial();
    let m = library().chat_model(SMOL).unwrap();
    let g = m.generate(&ask("Say just the word yes."), &greedy(64), &mut |_| true).unwrap();
    assert_eq!(g.finish_reason, FinishReason::Stop, "{:?}", g.text);
    assert!(g.completion_tokens < 64);
}

#[test]
fn token_counts_match_the_tokenizer() {
    let _serial = serial();
    let m = library().chat_model(SMOL).unwrap();
    let msgs = vec![ChatMessage::system("You are terse."), ChatMessage::user("Name a prime number.")];
    let rendered = m.render_prompt(&msgs).unwrap();
    let ids = m.encode(&rendered).unwrap();
    assert_eq!(m.count_prompt_tokens(&msgs).unwrap(), ids.len());
    let mut pieces = 0;
    let g = m
        .generate(&msgs, &greedy(6), &mut |_| {
            pieces += 1;
            true
        })
        .unwrap();
    assert_eq!(g.prompt_tokens, ids.len());
    assert_eq!(g.completion_tokens, 6);
    // Re-tokenising the greedy output gives back as many tokens as were generated.
    assert_eq!(m.encode(&g.text).unwrap().len(), g.completion_tokens, "{:?}", g.text);
}

#[test]
fn seeded_sampling_is_reproducible_and_differs_from_other_seeds() {
    let _serial = serial();
    let lib = private_library();
    let m = lib.chat_model(SMOL).unwrap();
    let msgs = ask("Invent a name for a cat.");
    let p = |seed| GenParams { temperature: 1.0, top_p: Some(0.95), seed, ..greedy(16) };
    let a = m.generate(&msgs, &p(1), &mut |_| true).unwrap();
    let b = m.generate(&msgs, &p(1), &mut |_| true).unwrap();
    assert_eq!(a.text, b.text);
    let others: Vec<String> = (2..6).map(|s| m.generate(&msgs, &p(s), &mut |_| true).unwrap().text).collect();
    assert!(others.iter().any(|t| *t != a.text), "all seeds gave {:?}", a.text);
}

#[test]
fn callback_returning_false_cancels() {
    let _serial = serial();
    let m = library().chat_model(SMOL).unwrap();
    let mut n = 0;
    let g = m
        .generate(&ask("Write a long essay about the sea."), &greedy(200), &mut |_| {
            n += 1;
            n < 3
        })
        .unwrap();
    assert_eq!(g.finish_reason, FinishReason::Cancelled);
    assert_eq!(n, 3);
    assert!(g.completion_tokens < 200);
}

#[test]
fn four_concurrent_greedy_requests_match_each_alone() {
    let _serial = serial();
    // Batched together as four sequences of one batch, each must say what it says alone.
    let lib = private_library();
    let m = lib.chat_model(SMOL).unwrap();
    let prompts = ["Name a fruit.", "Name a planet.", "Name a river.", "Name a colour."];
    let alone: Vec<String> =
        prompts.iter().map(|p| m.generate(&ask(p), &greedy(16), &mut |_| true).unwrap().text).collect();
    let together: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = prompts
            .iter()
            .map(|p| {
                let m = m.clone();
                s.spawn(move || m.generate(&ask(p), &greedy(16), &mut |_| true).unwrap().text)
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(alone, together);
}

#[test]
fn a_cancelled_sequence_frees_its_slot_and_the_others_finish() {
    let _serial = serial();
    let lib = conductor_local::Library::with_options(
        models_dir(),
        conductor_local::EngineOptions { parallel: 2, max_waiting: 4, ..Default::default() },
    );
    let m = lib.chat_model(SMOL).unwrap();
    std::thread::scope(|s| {
        // Two long generations fill both slots; one is cancelled after a few pieces.
        let m1 = m.clone();
        let long = s.spawn(move || m1.generate(&ask("Write a long essay about the sea."), &greedy(120), &mut |_| true));
        let m2 = m.clone();
        let mut n = 0;
        let cancelled = s.spawn(move || {
            m2.generate(&ask("Write a long essay about mountains."), &greedy(120), &mut |_| {
                n += 1;
                n < 3
            })
        });
        assert_eq!(cancelled.join().unwrap().unwrap().finish_reason, FinishReason::Cancelled);
        // The freed slot takes a new request while the first is still running.
        let g = m.generate(&ask("Say just the word yes."), &greedy(8), &mut |_| true).unwrap();
        assert!(!g.text.is_empty());
        let g = long.join().unwrap().unwrap();
        assert_eq!(g.finish_reason, FinishReason::Length);
        assert_eq!(g.completion_tokens, 120);
    });
    // The engine drops the cancelled sequence at its next step.
    let t = std::time::Instant::now();
    while m.load_state() != (0, 0) && t.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(m.load_state(), (0, 0), "every sequence left the engine");
}

#[test]
fn abandoned_long_prompts_do_not_hold_up_the_next_request() {
    let _serial = serial();
    let lib = private_library();
    let m = lib.chat_model(QWEN_05).unwrap();
    let short = ask("What is 2 + 2?");
    m.generate(&short, &greedy(8), &mut |_| true).unwrap(); // warm-up
    let t = std::time::Instant::now();
    m.generate(&short, &greedy(8), &mut |_| true).unwrap();
    let normal = t.elapsed();
    // Three requests with ~1,500-token prompts, abandoned during their prefill.
    let long = ask(&"The quick brown fox jumps over the lazy dog. ".repeat(150));
    let runs: Vec<_> = (0..3).map(|_| m.start(&long, &greedy(64)).unwrap()).collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    drop(runs);
    let t = std::time::Instant::now();
    m.generate(&short, &greedy(8), &mut |_| true).unwrap();
    let after = t.elapsed();
    // Their prefill alone would take ~40 s on two cores; they stop within one engine step.
    // The margin is wide because other processes may load the machine between the two
    // measurements: what is checked is "not tens of seconds of someone else's prefill".
    assert!(
        after < normal * 3 + std::time::Duration::from_secs(10),
        "next request took {after:?} after abandoned prompts (normally {normal:?})"
    );
}

#[test]
fn every_library_model_answers_a_chat() {
    let _serial = serial();
    for id in [SMOL, QWEN_05, QWEN_15] {
        let m = library().chat_model(id).unwrap();
        let g = m.generate(&ask("What is 2 + 3? Answer with a number."), &greedy(12), &mut |_| true).unwrap();
        assert!(g.text.contains('5'), "{id} answered {:?}", g.text);
    }
}

#[test]
fn model_is_loaded_once_and_shared() {
    let _serial = serial();
    let a = library().chat_model(SMOL).unwrap();
    let b = library().chat_model(SMOL).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
}
