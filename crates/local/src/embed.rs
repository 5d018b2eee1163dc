//! all-MiniLM-L6-v2 sentence embeddings: BERT encoder from safetensors, mean pooling
//! over real tokens, L2-normalised 384-d vectors, batched, truncated at the model limit.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use crate::error::{LocalError, Result};

/// sentence-transformers' max_seq_length for this model; longer input is truncated.
pub const MAX_TOKENS: usize = 256;
/// Texts per forward pass: bounds memory for large inputs.
const BATCH: usize = 32;

/// The sentence embedder.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    dim: usize,
    device: Device,
}

impl Embedder {
    /// Load from a directory holding config.json, tokenizer.json and model.safetensors.
    pub fn load(dir: &Path) -> Result<Self> {
        let file = |name: &str| {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(LocalError::MissingFile { path: p })
            }
        };
        let (cfg_path, tok_path, weights_path) =
            (file("config.json")?, file("tokenizer.json")?, file("model.safetensors")?);
        let bad = |p: &Path, e: &dyn std::fmt::Display| LocalError::BadModelFile {
            path: p.to_path_buf(),
            reason: e.to_string(),
        };
        let cfg_text = std::fs::read_to_string(&cfg_path).map_err(|e| bad(&cfg_path, &e))?;
        let config: Config = serde_json::from_str(&cfg_text).map_err(|e| bad(&cfg_path, &e))?;
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| bad(&tok_path, &e))?;
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| bad(&tok_path, &e))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        let device = Device::Cpu;
        let bytes = std::fs::read(&weights_path).map_err(|e| bad(&weights_path, &e))?;
        let vb =
            VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device).map_err(|e| bad(&weights_path, &e))?;
        let model = BertModel::load(vb, &config).map_err(|e| bad(&weights_path, &e))?;
        Ok(Self { model, tokenizer, dim: config.hidden_size, device })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Tokens the model reads of each text (special tokens included, after truncation).
    pub fn token_counts(&self, texts: &[&str]) -> Result<Vec<usize>> {
        texts
            .iter()
            .map(|t| {
                let enc =
                    self.tokenizer.encode(*t, true).map_err(|e| anyhow::anyhow!("tokenizing for embeddings: {e}"))?;
                Ok(enc.get_attention_mask().iter().filter(|m| **m == 1).count())
            })
            .collect()
    }

    /// One unit-length vector per text.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(BATCH) {
            out.extend(self.embed_batch_inner(chunk)?);
        }
        Ok(out)
    }

    fn embed_batch_inner(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| anyhow::anyhow!("tokenizing for embeddings: {e}"))?;
        let n = enc.len();
        let len = enc.first().map(|e| e.len()).unwrap_or(0);
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            enc.iter().flat_map(|e| f(e).iter().copied()).collect()
        };
        let ids = Tensor::from_vec(flat(&|e| e.get_ids()), (n, len), &self.device)?;
        let types = Tensor::from_vec(flat(&|e| e.get_type_ids()), (n, len), &self.device)?;
        let mask = Tensor::from_vec(flat(&|e| e.get_attention_mask()), (n, len), &self.device)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?; // (n, len, dim)
                                                                     // Mean over real tokens only: padding must not dilute short texts.
        let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (n, len, 1)
        let summed = hidden.broadcast_mul(&m)?.sum(1)?; // (n, dim)
        let counts = m.sum(1)?.clamp(1e-9, f64::MAX)?; // (n, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }
}

impl conductor_core::embedder::TextEmbedder for Embedder {
    fn id(&self) -> &str {
        crate::manifest::EMBEDDER_ID
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn kind(&self) -> conductor_core::embedder::EmbedderKind {
        conductor_core::embedder::EmbedderKind::MiniLm
    }
    fn embed_batch(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        Ok(self.embed(texts)?)
    }
}
