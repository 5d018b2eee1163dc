//! Builds a `tokenizers` tokenizer from a GGUF file's own metadata, so a model needs
//! nothing but its one file. Supports the byte-level BPE ("gpt2") vocabularies that
//! SmolLM2 and Qwen2.5 ship, with the pre-tokenizer named by `tokenizer.ggml.pre`.

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

/// GGUF token types (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// Qwen2's pre-tokenizer split (from its tokenizer.json; digits are split one by one).
const QWEN2_PATTERN: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The pieces of a GGUF vocabulary the chat loop needs besides the tokenizer.
#[derive(Debug, Clone)]
pub struct SpecialTokens {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// Every control token (e.g. `<|im_end|>`, `<|endoftext|>`): generating one ends the turn.
    pub control: Vec<u32>,
}

fn meta<'a>(ct: &'a Content, key: &str) -> anyhow::Result<&'a Value> {
    ct.metadata.get(key).ok_or_else(|| anyhow::anyhow!("GGUF metadata has no '{key}'"))
}

fn meta_u32(ct: &Content, key: &str) -> Option<u32> {
    ct.metadata.get(key).and_then(|v| v.to_u32().ok())
}

/// Build the tokenizer and its special tokens from GGUF metadata.
pub fn from_gguf(ct: &Content) -> anyhow::Result<(Tokenizer, SpecialTokens)> {
    let model = meta(ct, "tokenizer.ggml.model")?.to_string()?.clone();
    if model != "gpt2" {
        anyhow::bail!("tokenizer model '{model}' is not supported (only byte-level BPE 'gpt2')");
    }
    let tokens: Vec<String> = meta(ct, "tokenizer.ggml.tokens")?
        .to_vec()?
        .iter()
        .map(|v| v.to_string().cloned())
        .collect::<candle_core::Result<_>>()?;
    let merges: Vec<(String, String)> = meta(ct, "tokenizer.ggml.merges")?
        .to_vec()?
        .iter()
        .map(|v| {
            let s = v.to_string()?;
            let (a, b) = s.split_once(' ').ok_or_else(|| candle_core::Error::Msg(format!("bad merge '{s}'")))?;
            Ok((a.to_string(), b.to_string()))
        })
        .collect::<candle_core::Result<_>>()?;
    let types: Vec<i32> = match ct.metadata.get("tokenizer.ggml.token_type") {
        Some(v) => v.to_vec()?.iter().map(|t| t.to_i32()).collect::<candle_core::Result<_>>()?,
        None => vec![1; tokens.len()],
    };
    let pre = ct
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok().cloned())
        .unwrap_or_else(|| "default".into());

    let vocab: ahash::AHashMap<String, u32> = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let bpe =
        BPE::builder().vocab_and_merges(vocab, merges).build().map_err(|e| anyhow::anyhow!("building BPE: {e}"))?;

    let mut tk = Tokenizer::new(bpe);
    tk.with_pre_tokenizer(Some(pre_tokenizer(&pre)?));
    tk.with_decoder(Some(ByteLevelDecoder::default()));

    // Control and user-defined tokens are matched whole before BPE, as llama.cpp does.
    let mut control = Vec::new();
    let mut added = Vec::new();
    for (id, (tok, ty)) in tokens.iter().zip(types.iter()).enumerate() {
        if *ty == TOKEN_TYPE_CONTROL || *ty == TOKEN_TYPE_USER_DEFINED {
            added.push(AddedToken::from(tok.clone(), true));
            if *ty == TOKEN_TYPE_CONTROL {
                control.push(id as u32);
            }
        }
    }
    tk.add_special_tokens(&added);

    let special = SpecialTokens {
        bos: meta_u32(ct, "tokenizer.ggml.bos_token_id"),
        eos: meta_u32(ct, "tokenizer.ggml.eos_token_id"),
        control,
    };
    Ok((tk, special))
}

/// The pre-tokenizer for llama.cpp's pre-tokenizer names we know.
fn pre_tokenizer(name: &str) -> anyhow::Result<PreTokenizerWrapper> {
    let byte_level_regex = || PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, true));
    Ok(match name {
        "qwen2" => {
            let split = Split::new(SplitPattern::Regex(QWEN2_PATTERN.into()), SplitDelimiterBehavior::Isolated, false)
                .map_err(|e| anyhow::anyhow!("qwen2 pre-tokenizer: {e}"))?;
            PreTokenizerWrapper::Sequence(Sequence::new(vec![
                split.into(),
                PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, false)),
            ]))
        }
        // SmolLM's tokenizer.json: single digits, then GPT-2's byte-level regex.
        "smollm" => PreTokenizerWrapper::Sequence(Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            byte_level_regex(),
        ])),
        "gpt2" | "default" => byte_level_regex(),
        other => anyhow::bail!("pre-tokenizer '{other}' is not supported"),
    })
}
