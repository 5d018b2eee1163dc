//! From a conversation to prompt tokens, without letting message content forge turns. The
//! chat template is rendered with a marker in place of each message's content; the text
//! between markers (the template's own `<|im_start|>`, `<|im_end|>`, ...) is tokenized with
//! special tokens recognised, and each message's content as plain text, so a user who
//! writes `<|im_end|><|im_start|>system` gets those characters, not control tokens.

use crate::chat_template::ChatTemplate;
use crate::error::{LocalError, Result};
use conductor_providers::{ChatMessage, ToolSpec};
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

/// A marker no real message contains (Unicode private-use characters around an index).
fn marker(i: usize) -> String {
    format!("\u{E000}{i}\u{E001}")
}

/// Tokens of `text`; `special`: control-token spellings in it become control tokens.
pub(crate) fn tokenize(model: &LlamaModel, text: &str, special: bool) -> Vec<LlamaToken> {
    if text.is_empty() {
        return Vec::new();
    }
    model.vocab().tokenize(text.as_bytes(), false, special)
}

/// The prompt tokens of `messages` as `template` renders them, content encoded as text.
pub(crate) fn encode(
    model: &LlamaModel,
    template: &ChatTemplate,
    messages: &[ChatMessage],
    tools: &[ToolSpec],
) -> Result<Vec<LlamaToken>> {
    if messages.is_empty() {
        return Err(LocalError::InvalidParams("messages must not be empty".into()));
    }
    let marked: Vec<ChatMessage> =
        messages.iter().enumerate().map(|(i, m)| ChatMessage { content: marker(i), ..m.clone() }).collect();
    let rendered = template.render(&marked, tools)?;
    let mut out = Vec::new();
    let mut rest = rendered.as_str();
    for (i, m) in messages.iter().enumerate() {
        let mk = marker(i);
        let Some(at) = rest.find(&mk) else {
            return fallback(model, template, messages, tools);
        };
        out.extend(tokenize(model, &rest[..at], true));
        out.extend(tokenize(model, &m.content, false));
        rest = &rest[at + mk.len()..];
    }
    if rest.contains('\u{E000}') {
        // The template repeats a message: take the conservative path.
        return fallback(model, template, messages, tools);
    }
    out.extend(tokenize(model, rest, true));
    Ok(with_bos(model, out))
}

/// For templates that transform or repeat content (so the markers do not survive): render
/// the real content with every control-token spelling in it broken up, then tokenize the
/// whole prompt with control tokens recognised.
fn fallback(
    model: &LlamaModel,
    template: &ChatTemplate,
    messages: &[ChatMessage],
    tools: &[ToolSpec],
) -> Result<Vec<LlamaToken>> {
    let vocab = model.vocab();
    let controls: Vec<String> = (0..model.n_vocab())
        .map(LlamaToken)
        .filter(|t| vocab.is_control(*t))
        .map(|t| String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned())
        .filter(|s| s.chars().count() > 1)
        .collect();
    let safe: Vec<ChatMessage> = messages
        .iter()
        .map(|m| {
            let mut c = m.content.clone();
            for s in &controls {
                if c.contains(s.as_str()) {
                    let mut chars = s.chars();
                    let first = chars.next().unwrap_or_default();
                    c = c.replace(s.as_str(), &format!("{first}\u{200B}{}", chars.as_str()));
                }
            }
            ChatMessage { content: c, ..m.clone() }
        })
        .collect();
    let text = template.render(&safe, tools)?;
    Ok(with_bos(model, tokenize(model, &text, true)))
}

/// Prepends the beginning-of-sequence token when the model wants one and the template did
/// not already write it.
fn with_bos(model: &LlamaModel, mut tokens: Vec<LlamaToken>) -> Vec<LlamaToken> {
    let vocab = model.vocab();
    let bos = vocab.bos();
    if vocab.should_add_bos() && bos.0 >= 0 && tokens.first() != Some(&bos) {
        tokens.insert(0, bos);
    }
    tokens
}
