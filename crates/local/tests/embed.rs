//! all-MiniLM-L6-v2 embeddings from the real safetensors file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod common;

use common::*;

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn vectors_are_384d_and_unit_length() {
    let _serial = serial();
    let e = library().embedder().unwrap();
    let v = e.embed(&["A short sentence.", "Another, somewhat longer sentence about routing models."]).unwrap();
    assert_eq!(v.len(), 2);
    for x in &v {
        assert_eq!(x.len(), 384);
        let n: f32 = x.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-4, "norm {n}");
    }
}

#[test]
fn paraphrases_are_closer_than_unrelated_pairs() {
    let _serial = serial();
    let e = library().embedder().unwrap();
    let pairs = [
        (
            "How do I reset my password?",
            "What are the steps to change my login password?",
            "The cat sat on the warm windowsill.",
        ),
        (
            "The stock market fell sharply today.",
            "Share prices dropped a lot this afternoon.",
            "My grandmother bakes apple pie.",
        ),
        (
            "Write a Python function to sort a list.",
            "Implement list sorting in Python.",
            "What is the boiling point of water?",
        ),
    ];
    for (a, b, c) in pairs {
        let v = e.embed(&[a, b, c]).unwrap();
        let (para, unrel) = (cos(&v[0], &v[1]), cos(&v[0], &v[2]));
        assert!(para > unrel + 0.2, "{a:?}: paraphrase {para} vs unrelated {unrel}");
    }
}

#[test]
fn batching_and_padding_do_not_change_vectors() {
    let _serial = serial();
    let e = library().embedder().unwrap();
    let texts = ["short", "a much longer sentence that needs padding for the short one in the batch"];
    let batch = e.embed(&texts).unwrap();
    for (t, b) in texts.iter().zip(&batch) {
        let single = &e.embed(&[t]).unwrap()[0];
        assert!(cos(single, b) > 0.9999, "{t}");
    }
}

#[test]
fn long_input_is_truncated_not_rejected() {
    let _serial = serial();
    let e = library().embedder().unwrap();
    let long = "word ".repeat(5000);
    let v = e.embed(&[&long]).unwrap();
    assert_eq!(v[0].len(), 384);
    assert!(v[0].iter().all(|x| x.is_finite()));
}
