//! The engine's request features on real models: token log-probabilities and output
//! constrained to JSON (any object, or a schema).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod common;

use common::*;
use conductor_local::{ChatMessage, GenParams, LocalError, ResponseFormat};

#[test]
fn logprobs_are_probabilities_with_sorted_alternatives() {
    let _serial = serial();
    let m = library().chat_model(SMOL).unwrap();
    let p = GenParams { max_tokens: 8, logprobs: Some(3), ..Default::default() };
    let g = m.generate(&[ChatMessage::user("Name a colour.")], &p, &mut |_| true).unwrap();
    assert_eq!(g.logprobs.len(), g.completion_tokens, "one entry per generated token");
    for lp in &g.logprobs {
        assert!(lp.logprob <= 0.0 && lp.logprob.is_finite(), "{lp:?}");
        assert_eq!(lp.top_logprobs.len(), 3);
        assert!(lp.top_logprobs.windows(2).all(|w| w[0].logprob >= w[1].logprob), "{lp:?}");
        // Greedy: the chosen token is the most likely one.
        assert_eq!(lp.top_logprobs[0].token, lp.token, "{lp:?}");
        assert!((lp.top_logprobs[0].logprob - lp.logprob).abs() < 1e-6);
    }
    let text: String = g.logprobs.iter().map(|l| l.token.as_str()).collect();
    assert_eq!(text, g.text);
}

#[test]
fn json_output_always_parses_and_follows_the_schema() {
    let _serial = serial();
    let m = library().chat_model(QWEN_05).unwrap();
    let ask = [ChatMessage::user("Give me a person with a name and an age, as JSON.")];
    let g = m
        .generate(
            &ask,
            &GenParams { max_tokens: 64, response_format: Some(ResponseFormat::JsonObject), ..Default::default() },
            &mut |_| true,
        )
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&g.text).unwrap_or_else(|e| panic!("{e}: {:?}", g.text));
    assert!(v.is_object());
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"], "additionalProperties": false
    });
    let p =
        GenParams { max_tokens: 64, response_format: Some(ResponseFormat::JsonSchema(schema)), ..Default::default() };
    let g = m.generate(&ask, &p, &mut |_| true).unwrap();
    let v: serde_json::Value = serde_json::from_str(&g.text).unwrap_or_else(|e| panic!("{e}: {:?}", g.text));
    assert!(v["name"].is_string() && v["age"].is_i64(), "{v}");
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    // A schema that is not valid JSON Schema is a clear error, not a silent free-form answer.
    let bad = GenParams {
        response_format: Some(ResponseFormat::JsonSchema(
            serde_json::json!({"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}}),
        )),
        ..Default::default()
    };
    let e = m.generate(&ask, &bad, &mut |_| true).unwrap_err();
    assert!(matches!(e, LocalError::InvalidParams(_)) && e.to_string().contains("json_schema"), "{e}");
}

#[test]
fn penalties_and_bias_change_the_output_and_bad_values_are_refused() {
    let _serial = serial();
    let m = library().chat_model(SMOL).unwrap();
    let ask = [ChatMessage::user("Repeat the word apple ten times.")];
    let plain = m.generate(&ask, &GenParams { max_tokens: 24, ..Default::default() }, &mut |_| true).unwrap();
    let first = m.encode(plain.text.split_whitespace().next().unwrap()).unwrap()[0];
    let banned = GenParams { max_tokens: 24, logit_bias: vec![(first, -100.0)], ..Default::default() };
    let g = m.generate(&ask, &banned, &mut |_| true).unwrap();
    assert_ne!(g.text, plain.text, "banning the first token changes the answer");
    for p in [
        GenParams { frequency_penalty: 3.0, ..Default::default() },
        GenParams { logit_bias: vec![(u32::MAX, 1.0)], ..Default::default() },
        GenParams { logprobs: Some(21), ..Default::default() },
    ] {
        assert!(matches!(m.generate(&ask, &p, &mut |_| true), Err(LocalError::InvalidParams(_))));
    }
}
