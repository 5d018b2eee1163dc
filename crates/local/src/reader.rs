//! The smallest chat model *reading* a prompt, generating nothing: a cheap difficulty
//! signal for the router. One forward pass gives both halves of the vector:
//!
//! * statistics of the per-token negative log-likelihood (how surprising the prompt is to a
//!   small language model): mean, standard deviation, maximum, 90th percentile, the share
//!   of tokens above [`RARE_NATS`], and ln(tokens);
//! * the mean over tokens of the last hidden state (after the final norm).
//!
//! The context has embeddings on and pooling off, so llama.cpp returns every token's
//! logits and hidden state; prompts are packed as separate sequences into one batch.

use crate::error::{LocalError, Result};
use crate::manifest::ModelSpec;
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use parking_lot::Mutex;
use std::num::NonZeroU32;

/// Tokens read of each prompt; the rest is cut (the start says what is asked).
pub const MAX_TOKENS: usize = 512;
/// Tokens per decode call. Every token outputs its logits (vocabulary × 4 bytes), so this
/// also bounds the logits buffer (SmolLM2: 49k × 512 × 4 = 100 MB).
const N_BATCH: usize = MAX_TOKENS;
/// Prompts packed into one decode call at most (each has cells for MAX_TOKENS).
const MAX_SEQS: usize = 8;
/// A token costing more than this many nats (probability below ~0.25%) counts as rare.
pub const RARE_NATS: f32 = 6.0;
/// Names of the statistics, in vector order (the hidden-state mean follows them).
pub const STAT_NAMES: [&str; conductor_core::embedder::SMOLLM_STATS] =
    ["nll_mean", "nll_std", "nll_max", "nll_p90", "rare_share", "ln_tokens"];

/// Reads prompts with one small model. Decodes take the process-wide compute lock, so
/// reading does not fight the chat engines for the cores.
pub struct PromptReader {
    id: String,
    model: &'static LlamaModel,
    ctx: Mutex<LlamaContext<'static>>,
    hidden: usize,
}

impl PromptReader {
    /// Loads `spec`'s weights (a separate copy from the chat engine's: the reader needs a
    /// context of its own, with embeddings on) and creates the context.
    pub fn load(spec: &ModelSpec, threads: usize) -> Result<PromptReader> {
        let model = crate::load::load(spec)?;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new((N_BATCH * MAX_SEQS) as u32))
            .with_n_batch(N_BATCH as u32)
            .with_n_ubatch(N_BATCH as u32)
            .with_n_seq_max(MAX_SEQS as u32)
            // A cache of its own per sequence, cleared before each batch: with one shared pool
            // a prompt's numbers depended on its batch-mates (mean NLL moved by 1%); split,
            // a prompt reads the same alone or packed.
            .with_kv_unified(false)
            .with_embeddings(true)
            .with_pooling_type(LlamaPoolingType::None)
            .with_n_threads(threads.max(1) as i32)
            .with_n_threads_batch(threads.max(1) as i32);
        let ctx = model
            .new_context(crate::load::backend()?, params)
            .map_err(|e| LocalError::Other(anyhow::anyhow!("creating the reading context for {}: {e}", spec.id)))?;
        let hidden = model.n_embd().max(0) as usize;
        Ok(PromptReader { id: format!("{}-reader", spec.id), model, ctx: Mutex::new(ctx), hidden })
    }

    /// Length of every vector: the statistics, then the hidden-state mean.
    pub fn dim(&self) -> usize {
        STAT_NAMES.len() + self.hidden
    }

    fn tokens(&self, text: &str) -> Vec<LlamaToken> {
        let vocab = self.model.vocab();
        let mut t = Vec::with_capacity(64);
        let bos = vocab.bos();
        if vocab.should_add_bos() && bos.0 >= 0 {
            t.push(bos);
        }
        // Control-token spellings in a prompt are text here, as in the chat engine.
        t.extend(crate::prompt::tokenize(self.model, text, false));
        t.truncate(MAX_TOKENS);
        t
    }

    /// One vector per text, in order. An empty text reads as a zero vector.
    pub fn read(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let toks: Vec<Vec<LlamaToken>> = texts.iter().map(|t| self.tokens(t)).collect();
        let mut out = vec![vec![0f32; self.dim()]; texts.len()];
        let mut start = 0;
        while start < toks.len() {
            // Pack prompts in order while they fit one decode call.
            let mut end = start;
            let mut used = 0;
            while end < toks.len() && end - start < MAX_SEQS && used + toks[end].len() <= N_BATCH {
                used += toks[end].len();
                end += 1;
            }
            self.read_packed(&toks[start..end], &mut out[start..end])?;
            start = end;
        }
        Ok(out)
    }

    fn read_packed(&self, seqs: &[Vec<LlamaToken>], out: &mut [Vec<f32>]) -> Result<()> {
        let fail =
            |e: &dyn std::fmt::Display| LocalError::Other(anyhow::anyhow!("reading prompts with {}: {e}", self.id));
        let mut batch = LlamaBatch::new(N_BATCH, MAX_SEQS as i32);
        for (s, t) in seqs.iter().enumerate() {
            for (pos, tok) in t.iter().enumerate() {
                batch.add(*tok, pos as i32, &[s as i32], true).map_err(|e| fail(&e))?;
            }
        }
        if batch.n_tokens() == 0 {
            return Ok(());
        }
        let mut ctx = self.ctx.lock();
        ctx.clear_kv_cache();
        {
            let _turn = crate::engine::COMPUTE.lock();
            ctx.decode(&mut batch).map_err(|e| fail(&e))?;
        }
        let mut at = 0i32;
        for (t, v) in seqs.iter().zip(out.iter_mut()) {
            let mut nll = Vec::with_capacity(t.len());
            let mut mean = vec![0f32; self.hidden];
            for j in 0..t.len() {
                let h = ctx.embeddings_ith(at + j as i32).map_err(|e| fail(&e))?;
                for (m, x) in mean.iter_mut().zip(h) {
                    *m += x;
                }
                // Position j's logits predict token j + 1.
                if let Some(next) = t.get(j + 1) {
                    nll.push(token_nll(ctx.get_logits_ith(at + j as i32), next.0 as usize));
                }
            }
            at += t.len() as i32;
            let n = t.len().max(1) as f32;
            v[..STAT_NAMES.len()].copy_from_slice(&nll_stats(&nll, t.len()));
            for (dst, m) in v[STAT_NAMES.len()..].iter_mut().zip(mean) {
                *dst = m / n;
            }
        }
        Ok(())
    }
}

/// −log softmax(logits)[token], computed stably.
fn token_nll(logits: &[f32], token: usize) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|x| (x - max).exp()).sum();
    let at = logits.get(token).copied().unwrap_or(max);
    (max + sum.ln()) - at
}

/// The statistics of [`STAT_NAMES`] for one prompt of `tokens` tokens.
fn nll_stats(nll: &[f32], tokens: usize) -> [f32; 6] {
    let ln_tokens = (tokens.max(1) as f32).ln();
    if nll.is_empty() {
        return [0.0, 0.0, 0.0, 0.0, 0.0, ln_tokens];
    }
    let n = nll.len() as f32;
    let mean = nll.iter().sum::<f32>() / n;
    let std = (nll.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n).sqrt();
    let mut sorted = nll.to_vec();
    sorted.sort_by(f32::total_cmp);
    let max = sorted[sorted.len() - 1];
    let p90 = sorted[((sorted.len() - 1) as f32 * 0.9).round() as usize];
    let rare = nll.iter().filter(|x| **x > RARE_NATS).count() as f32 / n;
    [mean, std, max, p90, rare, ln_tokens]
}

impl conductor_core::embedder::TextEmbedder for PromptReader {
    fn id(&self) -> &str {
        &self.id
    }
    fn dim(&self) -> usize {
        PromptReader::dim(self)
    }
    fn kind(&self) -> conductor_core::embedder::EmbedderKind {
        conductor_core::embedder::EmbedderKind::SmolLm
    }
    fn embed_batch(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        Ok(self.read(texts)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_of_known_losses() {
        let s = nll_stats(&[1.0, 2.0, 3.0, 10.0], 5);
        assert_eq!(s[0], 4.0);
        assert!((s[1] - 3.5355).abs() < 1e-3, "{}", s[1]);
        assert_eq!(s[2], 10.0);
        assert_eq!(s[3], 10.0, "p90 of four values is the top one");
        assert_eq!(s[4], 0.25);
        assert!((s[5] - 5f32.ln()).abs() < 1e-6);
        assert_eq!(nll_stats(&[], 1), [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        // Uniform logits over 4 tokens: every token costs ln 4.
        assert!((token_nll(&[0.5; 4], 2) - 4f32.ln()).abs() < 1e-6);
    }

    /// The real SmolLM2 reading real prompts: ordinary English is less surprising than
    /// random characters, a batch reads exactly as prompts one at a time, and the hidden
    /// half is not constant.
    #[test]
    fn smollm_reads_surprise_and_batches_like_singles() {
        let models = conductor_core::install::models_dir();
        let Some(spec) = crate::manifest::specs(&models).into_iter().find(|s| s.id == "smollm2-135m") else {
            panic!("the manifest lost smollm2-135m");
        };
        if !spec.file.is_file() {
            eprintln!("skipped: the library's files are not assembled (bash scripts/setup.sh)");
            return;
        }
        let r = PromptReader::load(&spec, 2).unwrap();
        let texts = [
            "What is the capital of France? The capital of France is Paris.",
            "qz xv 9#k ]]p wq@ zzk vv0 jx!! qpq 7z^ kx",
            "",
            "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
        ];
        let all = r.read(&texts).unwrap();
        assert_eq!(all.len(), 4);
        assert!(all.iter().all(|v| v.len() == r.dim() && v.iter().all(|x| x.is_finite())));
        assert!(all[0][0] + 1.0 < all[1][0], "English {} vs noise {}", all[0][0], all[1][0]);
        for (i, t) in texts.iter().enumerate() {
            let one = r.read(&[t]).unwrap().remove(0);
            let diff = one.iter().zip(&all[i]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(diff < 1e-2, "prompt {i}: batched and alone differ by {diff}");
        }
        let hidden = &all[0][STAT_NAMES.len()..];
        assert!(hidden.iter().any(|x| (x - hidden[0]).abs() > 1e-3));
        // Over-long prompts are cut, not refused.
        let long = "word ".repeat(3000);
        assert!((r.read(&[&long]).unwrap()[0][5] - (MAX_TOKENS as f32).ln()).abs() < 1e-4);
    }
}
