//! Architecture dispatch: one enum over candle's quantized model implementations, so a
//! new architecture is one new arm here and nothing else changes.

use candle_core::quantized::gguf_file::Content;
use candle_core::{Device, Tensor};
use candle_transformers::models::{quantized_llama, quantized_qwen2};

use crate::spec::Arch;

/// Loaded transformer weights with their KV cache.
pub enum Weights {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
}

impl Weights {
    /// Architecture named by the file's `general.architecture`.
    pub fn arch_of(ct: &Content) -> anyhow::Result<Arch> {
        let name = ct
            .metadata
            .get("general.architecture")
            .ok_or_else(|| anyhow::anyhow!("GGUF metadata has no general.architecture"))?
            .to_string()?;
        match name.as_str() {
            "llama" => Ok(Arch::Llama),
            "qwen2" => Ok(Arch::Qwen2),
            other => anyhow::bail!("architecture '{other}' is not supported (llama, qwen2 are)"),
        }
    }

    pub fn load<R: std::io::Read + std::io::Seek>(
        arch: Arch,
        ct: Content,
        reader: &mut R,
        device: &Device,
    ) -> candle_core::Result<Self> {
        Ok(match arch {
            Arch::Llama => Weights::Llama(quantized_llama::ModelWeights::from_gguf(ct, reader, device)?),
            Arch::Qwen2 => Weights::Qwen2(quantized_qwen2::ModelWeights::from_gguf(ct, reader, device)?),
            Arch::Bert => candle_core::bail!("bert is an embedding model, not a chat model"),
        })
    }

    /// Logits for the last position of `tokens` (shape `[1, seq]`), which start at
    /// `index_pos` in the sequence. `index_pos == 0` resets the KV cache.
    pub fn forward(&mut self, tokens: &Tensor, index_pos: usize) -> candle_core::Result<Tensor> {
        match self {
            Weights::Llama(m) => m.forward(tokens, index_pos),
            Weights::Qwen2(m) => m.forward(tokens, index_pos),
        }
    }
}
