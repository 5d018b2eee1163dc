//! A loaded chat model: tokenizer, chat template and weights, with the generation loop.
//! One model is loaded once and shared; its weights (and KV cache) sit behind a fair
//! mutex, so concurrent requests queue in arrival order instead of interleaving.

use std::fs::File;
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use parking_lot::FairMutex;
use tokenizers::Tokenizer;

use crate::chat_template::{ChatMessage, ChatTemplate};
use crate::error::{LocalError, Result};
use crate::gguf_tokenizer::{self, SpecialTokens};
use crate::spec::ModelSpec;
use crate::stop::{Fed, StopMatcher};
use crate::weights::Weights;

/// Prompts are fed in chunks so the attention mask stays small for long prompts.
const PREFILL_CHUNK: usize = 512;

/// Sampling and length controls for one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct GenParams {
    /// Most tokens to generate (must be ≥ 1).
    pub max_tokens: usize,
    /// 0 means greedy decoding.
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub seed: u64,
    /// Generation ends before any of these strings; they are not part of the output.
    pub stop: Vec<String>,
}

impl Default for GenParams {
    fn default() -> Self {
        Self { max_tokens: 256, temperature: 0.0, top_p: None, seed: 299_792_458, stop: Vec::new() }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// End-of-turn token or a stop sequence.
    Stop,
    /// `max_tokens` (or the context window) reached.
    Length,
    /// The caller's callback asked to stop.
    Cancelled,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Cancelled => "cancelled",
        }
    }
}

/// Where the time of one generation went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Waiting for the model (other requests ahead in the queue).
    pub queued: Duration,
    /// Processing the prompt up to the first sampled token.
    pub prefill: Duration,
    /// Producing the remaining tokens.
    pub decode: Duration,
}

/// The result of one generation.
#[derive(Debug, Clone)]
pub struct Generation {
    pub text: String,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub finish_reason: FinishReason,
    pub timings: Timings,
}

/// A chat model ready to generate.
pub struct ChatModel {
    spec: ModelSpec,
    tokenizer: Tokenizer,
    special: SpecialTokens,
    add_bos: bool,
    template: ChatTemplate,
    weights: FairMutex<Weights>,
    device: Device,
    load_time: Duration,
}

fn bad_file(spec: &ModelSpec, reason: impl std::fmt::Display) -> LocalError {
    LocalError::BadModelFile { path: spec.file.clone(), reason: reason.to_string() }
}

impl ChatModel {
    /// Load the GGUF file named by `spec`.
    pub fn load(spec: &ModelSpec) -> Result<Self> {
        let start = Instant::now();
        if !spec.file.is_file() {
            return Err(LocalError::MissingFile { path: spec.file.clone() });
        }
        let mut file = File::open(&spec.file).map_err(|e| bad_file(spec, e))?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|e| bad_file(spec, format!("not a readable GGUF file ({e})")))?;
        let arch = Weights::arch_of(&content).map_err(|e| bad_file(spec, e))?;
        if arch != spec.arch {
            return Err(bad_file(spec, format!("expected {} weights, file has {}", spec.arch.as_str(), arch.as_str())));
        }
        let (tokenizer, special) = gguf_tokenizer::from_gguf(&content).map_err(|e| bad_file(spec, e))?;
        let add_bos =
            content.metadata.get("tokenizer.ggml.add_bos_token").and_then(|v| v.to_bool().ok()).unwrap_or(false);
        let template_src = content.metadata.get("tokenizer.chat_template").and_then(|v| v.to_string().ok().cloned());
        let template = ChatTemplate::new(template_src).map_err(|e| bad_file(spec, e))?;
        let device = Device::Cpu;
        // A truncated file reads its header fine and fails here, on the first missing tensor.
        let weights = Weights::load(arch, content, &mut file, &device)
            .map_err(|e| bad_file(spec, format!("weights could not be read ({e}); the file may be truncated")))?;
        Ok(Self {
            spec: spec.clone(),
            tokenizer,
            special,
            add_bos,
            template,
            weights: FairMutex::new(weights),
            device,
            load_time: start.elapsed(),
        })
    }

    pub fn id(&self) -> &str {
        &self.spec.id
    }
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }
    pub fn context_length(&self) -> usize {
        self.spec.context_length
    }
    pub fn load_time(&self) -> Duration {
        self.load_time
    }
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The exact prompt text the model sees for `messages`.
    pub fn render_prompt(&self, messages: &[ChatMessage]) -> Result<String> {
        if messages.is_empty() {
            return Err(LocalError::InvalidParams("messages must not be empty".into()));
        }
        Ok(self.template.render(messages)?)
    }

    /// Token ids of `text` as this model tokenizes it (special tokens are recognised).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.tokenizer.encode(text, false).map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        if self.add_bos {
            ids.extend(self.special.bos);
        }
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    /// Text of token ids (special tokens kept, so `decode(encode(s)) == s`).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        Ok(self.tokenizer.decode(ids, false).map_err(|e| anyhow::anyhow!("detokenizing: {e}"))?)
    }

    fn prompt_ids(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        self.encode(&self.render_prompt(messages)?)
    }

    /// How many tokens `messages` take once rendered with the chat template.
    pub fn count_prompt_tokens(&self, messages: &[ChatMessage]) -> Result<usize> {
        Ok(self.prompt_ids(messages)?.len())
    }

    fn is_end_of_turn(&self, id: u32) -> bool {
        Some(id) == self.special.eos || self.special.control.contains(&id)
    }

    /// Generate the assistant's reply. Blocking; requests to one model run one at a
    /// time in arrival order. `on_token` receives each piece of text as soon as it is
    /// final; returning `false` cancels the generation.
    pub fn generate(
        &self,
        messages: &[ChatMessage],
        params: &GenParams,
        on_token: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        validate(params)?;
        let prompt = self.prompt_ids(messages)?;
        let ctx = self.context_length();
        if prompt.len() >= ctx {
            return Err(LocalError::PromptTooLong { prompt_tokens: prompt.len(), context_length: ctx });
        }
        // Never run past the context window: that ends the generation as `length`.
        let budget = params.max_tokens.min(ctx - prompt.len());
        let sampling = if params.temperature <= 0.0 {
            Sampling::ArgMax
        } else {
            match params.top_p {
                Some(p) if p < 1.0 => Sampling::TopP { p, temperature: params.temperature },
                _ => Sampling::All { temperature: params.temperature },
            }
        };
        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling);

        let queued_at = Instant::now();
        let mut weights = self.weights.lock();
        let mut timings = Timings { queued: queued_at.elapsed(), ..Default::default() };
        let t0 = Instant::now();

        let mut logits = None;
        for (i, chunk) in prompt.chunks(PREFILL_CHUNK).enumerate() {
            let input = Tensor::new(chunk, &self.device)?.unsqueeze(0)?;
            logits = Some(weights.forward(&input, i * PREFILL_CHUNK)?);
        }
        let mut logits = logits.ok_or_else(|| LocalError::InvalidParams("the rendered prompt is empty".into()))?;

        let mut stops = StopMatcher::new(&params.stop);
        let mut detok = IncrementalDecoder::default();
        let mut generated = 0usize;
        let mut finish = FinishReason::Length;
        let mut first = true;
        let mut t_decode = Instant::now();
        while generated < budget {
            let next = sampler.sample(&logits.squeeze(0)?.to_dtype(candle_core::DType::F32)?)?;
            if first {
                timings.prefill = t0.elapsed();
                t_decode = Instant::now();
                first = false;
            }
            if self.is_end_of_turn(next) {
                finish = FinishReason::Stop;
                break;
            }
            generated += 1;
            let piece = detok.push(&self.tokenizer, next)?;
            let (out, stopped) = match stops.feed(&piece) {
                Fed::Emit(s) => (s, false),
                Fed::Stopped(s) => (s, true),
            };
            if !out.is_empty() && !on_token(out) {
                finish = FinishReason::Cancelled;
                break;
            }
            if stopped {
                finish = FinishReason::Stop;
                break;
            }
            if generated == budget {
                break;
            }
            let pos = prompt.len() + generated - 1;
            let input = Tensor::new(&[next], &self.device)?.unsqueeze(0)?;
            logits = weights.forward(&input, pos)?;
        }
        drop(weights);
        if first {
            timings.prefill = t0.elapsed();
        } else {
            timings.decode = t_decode.elapsed();
        }
        if finish == FinishReason::Length {
            // Release text held back as a possible stop-sequence prefix.
            let rest = stops.feed(&detok.flush(&self.tokenizer)?);
            let rest = match rest {
                Fed::Emit(s) | Fed::Stopped(s) => s.to_string(),
            };
            let tail = format!("{rest}{}", stops.finish());
            if !tail.is_empty() {
                on_token(&tail);
            }
        }
        Ok(Generation {
            text: stops.text().to_string(),
            prompt_tokens: prompt.len(),
            completion_tokens: generated,
            finish_reason: finish,
            timings,
        })
    }
}

fn validate(p: &GenParams) -> Result<()> {
    let bad = |m: String| Err(LocalError::InvalidParams(m));
    if p.max_tokens == 0 {
        return bad("max_tokens must be at least 1".into());
    }
    if !(p.temperature.is_finite() && (0.0..=2.0).contains(&p.temperature)) {
        return bad(format!("temperature must be between 0 and 2, got {}", p.temperature));
    }
    if let Some(tp) = p.top_p {
        if !(tp.is_finite() && tp > 0.0 && tp <= 1.0) {
            return bad(format!("top_p must be in (0, 1], got {tp}"));
        }
    }
    Ok(())
}

/// Turns a stream of token ids into text pieces, holding back bytes that do not yet
/// form complete UTF-8 characters (byte-level BPE splits characters across tokens).
#[derive(Default)]
struct IncrementalDecoder {
    ids: Vec<u32>,
    /// Start of the window we re-decode (a few tokens back, for context-dependent decoding).
    prev: usize,
    /// How far the window's text has been emitted.
    current: usize,
}

impl IncrementalDecoder {
    fn decode(tk: &Tokenizer, ids: &[u32]) -> Result<String> {
        Ok(tk.decode(ids, true).map_err(|e| anyhow::anyhow!("detokenizing: {e}"))?)
    }

    fn push(&mut self, tk: &Tokenizer, id: u32) -> Result<String> {
        let before = Self::decode(tk, &self.ids[self.prev..self.current])?;
        self.ids.push(id);
        let now = Self::decode(tk, &self.ids[self.prev..])?;
        if now.len() > before.len() && !now.ends_with('\u{FFFD}') && now.is_char_boundary(before.len()) {
            let piece = now[before.len()..].to_string();
            self.prev = self.current;
            self.current = self.ids.len();
            Ok(piece)
        } else {
            Ok(String::new())
        }
    }

    fn flush(&mut self, tk: &Tokenizer) -> Result<String> {
        let before = Self::decode(tk, &self.ids[self.prev..self.current])?;
        let now = Self::decode(tk, &self.ids[self.prev..])?;
        self.prev = self.ids.len();
        self.current = self.ids.len();
        Ok(now.get(before.len()..).unwrap_or("").to_string())
    }
}
