//! Bad inputs give clear errors, never panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod common;

use common::*;
use conductor_local::{ChatMessage, GenParams, Library, LocalError};

#[test]
fn unknown_model_lists_the_known_ones() {
    let _serial = serial();
    let err = library().chat_model("gpt-17").err().unwrap();
    assert!(matches!(err, LocalError::UnknownModel { .. }));
    let msg = err.to_string();
    assert!(msg.contains("gpt-17") && msg.contains(SMOL) && msg.contains(QWEN_15), "{msg}");
}

#[test]
fn missing_file_names_the_file_and_the_setup_command() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let err = Library::open(dir.path()).chat_model(SMOL).err().unwrap();
    let msg = err.to_string();
    assert!(matches!(err, LocalError::MissingFile { .. }), "{msg}");
    assert!(msg.contains("SmolLM2-135M-Instruct.Q4_1.gguf") && msg.contains("scripts/setup.sh"), "{msg}");
    let err = Library::open(dir.path()).embedder().err().unwrap();
    assert!(err.to_string().contains("scripts/setup.sh"), "{err}");
}

#[test]
fn truncated_gguf_is_a_clear_error() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read(models_dir().join("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    std::fs::write(dir.path().join("SmolLM2-135M-Instruct.Q4_1.gguf"), &src[..src.len() / 3]).unwrap();
    let err = Library::open(dir.path()).chat_model(SMOL).err().unwrap();
    let msg = err.to_string();
    assert!(matches!(err, LocalError::BadModelFile { .. }), "{msg}");
    assert!(msg.contains("truncated"), "{msg}");
}

#[test]
fn non_gguf_file_is_a_clear_error() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("qwen2.5-coder-0.5b-instruct.gguf"), b"<html>not a model</html>").unwrap();
    let err = Library::open(dir.path()).chat_model(QWEN_05).err().unwrap();
    let msg = err.to_string();
    assert!(matches!(err, LocalError::BadModelFile { .. }), "{msg}");
    assert!(msg.contains("not a readable GGUF"), "{msg}");
    std::fs::write(dir.path().join("qwen2.5-coder-0.5b-instruct.gguf"), b"").unwrap();
    assert!(Library::open(dir.path()).chat_model(QWEN_05).is_err());
}

#[test]
fn prompt_longer_than_context_states_both_lengths() {
    let _serial = serial();
    let m = library().chat_model(SMOL).unwrap();
    let huge = "hello ".repeat(9000);
    let err = m.generate(&[ChatMessage::user(huge)], &GenParams::default(), &mut |_| true).err().unwrap();
    match &err {
        LocalError::PromptTooLong { prompt_tokens, context_length } => {
            assert!(*prompt_tokens > 4096);
            assert_eq!(*context_length, 4096, "SmolLM2 is served with a 4k window (catalog/local.toml)");
        }
        other => panic!("{other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("4096") && msg.contains("context window"), "{msg}");
}

#[test]
fn invalid_parameters_and_empty_conversations_are_rejected() {
    let _serial = serial();
    let m = library().chat_model(SMOL).unwrap();
    let msgs = [ChatMessage::user("hi")];
    for p in [
        GenParams { max_tokens: 0, ..Default::default() },
        GenParams { temperature: -1.0, ..Default::default() },
        GenParams { temperature: f64::NAN, ..Default::default() },
        GenParams { top_p: Some(0.0), ..Default::default() },
    ] {
        let err = m.generate(&msgs, &p, &mut |_| true).err().unwrap();
        assert!(matches!(err, LocalError::InvalidParams(_)), "{err}");
    }
    let err = m.generate(&[], &GenParams::default(), &mut |_| true).err().unwrap();
    assert!(err.to_string().contains("messages must not be empty"), "{err}");
}
