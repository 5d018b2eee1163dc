//! The default library: which files make up each model and what they are.
//! `scripts/fetch-models.sh` assembles exactly these files (sha256-checked).

use conductor_core::catalog::Tier;
use std::path::{Path, PathBuf};

/// Model architectures this crate can run from GGUF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Llama,
    Qwen2,
    /// Sentence-embedding encoder (safetensors, not GGUF).
    Bert,
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Bert => "bert",
        }
    }
}

/// What the library knows about one model before loading it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelSpec {
    /// Stable id used in configs, records and the API (e.g. `qwen2.5-coder-0.5b`).
    pub id: String,
    pub arch: Arch,
    /// Parameter count, for display and compute pricing.
    pub params: u64,
    pub quant: String,
    /// Path of the GGUF file (or the model directory for the embedder).
    pub file: PathBuf,
    /// Context window we serve (may be below the model's trained context where
    /// the runtime caps it).
    pub context_length: usize,
    /// Size class of a chat model; `None` for the sentence embedder.
    pub tier: Option<Tier>,
}

impl ModelSpec {
    /// Whether the model's files are on disk.
    pub fn present(&self) -> bool {
        match self.arch {
            Arch::Bert => {
                ["config.json", "tokenizer.json", "model.safetensors"].iter().all(|f| self.file.join(f).is_file())
            }
            _ => self.file.is_file(),
        }
    }

    /// Size on disk in bytes (0 when missing).
    pub fn file_size(&self) -> u64 {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        match self.arch {
            Arch::Bert => {
                ["config.json", "tokenizer.json", "model.safetensors"].iter().map(|f| size(&self.file.join(f))).sum()
            }
            _ => size(&self.file),
        }
    }
}

/// Id of the sentence embedder in the default library.
pub const EMBEDDER_ID: &str = "all-MiniLM-L6-v2";

/// Ids of the library's chat models (whether or not their files are present).
pub fn library_chat_ids() -> Vec<String> {
    default_specs(Path::new("")).into_iter().filter(|s| s.arch != Arch::Bert).map(|s| s.id).collect()
}

/// The default library, rooted at `dir`.
pub fn default_specs(dir: &Path) -> Vec<ModelSpec> {
    let chat = |id: &str, arch, params, quant: &str, file: &str, ctx, tier: Tier| ModelSpec {
        id: id.into(),
        arch,
        params,
        quant: quant.into(),
        file: dir.join(file),
        context_length: ctx,
        tier: Some(tier),
    };
    vec![
        // candle's quantized llama precomputes RoPE for 4096 positions, so that is our cap.
        chat("smollm2-135m", Arch::Llama, 135_000_000, "Q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf", 4096, Tier::Small),
        chat(
            "qwen2.5-coder-0.5b",
            Arch::Qwen2,
            494_000_000,
            "Q5_0",
            "qwen2.5-coder-0.5b-instruct.gguf",
            32768,
            Tier::Medium,
        ),
        chat(
            "qwen2.5-coder-1.5b",
            Arch::Qwen2,
            1_540_000_000,
            "Q4_K_M",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            32768,
            Tier::Large,
        ),
        ModelSpec {
            id: EMBEDDER_ID.into(),
            arch: Arch::Bert,
            params: 22_700_000,
            quant: "F32".into(),
            file: dir.join("all-MiniLM-L6-v2"),
            context_length: 256,
            tier: None,
        },
    ]
}
