//! Per-request sampling: the llama.cpp sampler chain built from the request's parameters,
//! and the log-probabilities reported back (from the raw logits, before bias, penalties and
//! temperature — the model's own distribution, as OpenAI's `logprobs` are).

use crate::error::{LocalError, Result};
use conductor_providers::{TokenLogprob, TopLogprob};
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;
use llama_cpp_2::token::LlamaToken;

/// llama.cpp's JSON grammar (`grammars/json.gbnf`), rooted at an object: what
/// `response_format: {"type": "json_object"}` asks for.
pub(crate) const JSON_OBJECT_GBNF: &str = r#"
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array  ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws
ws     ::= | " " | "\n" [ \t]{0,20}
"#;

/// Validated sampling parameters of one request.
#[derive(Debug, Clone)]
pub(crate) struct Sampling {
    /// Most tokens to generate (already capped by the context window).
    pub max_tokens: usize,
    pub temperature: f32,
    pub top_p: Option<f32>,
    pub seed: u64,
    pub stop: Vec<String>,
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
    pub logit_bias: Vec<(u32, f32)>,
    /// Report log-probabilities with this many alternatives per token.
    pub logprobs: Option<usize>,
    /// GBNF the output must match (`response_format`).
    pub grammar: Option<String>,
}

impl Sampling {
    /// Greedy decoding with nothing that needs llama.cpp's sampler state (no penalties, no
    /// grammar): the token is the argmax of the biased logits, read directly — it saves
    /// building a 150k-entry candidate array every step.
    pub fn plain_greedy(&self) -> bool {
        self.temperature <= 0.0
            && self.grammar.is_none()
            && self.frequency_penalty == 0.0
            && self.presence_penalty == 0.0
    }

    /// The argmax of `logits` with the request's logit bias applied (ties: lowest id).
    pub fn argmax(&self, logits: &[f32]) -> usize {
        let mut best = (0usize, f32::NEG_INFINITY);
        for (i, &l) in logits.iter().enumerate() {
            if l > best.1 {
                best = (i, l);
            }
        }
        for &(t, b) in &self.logit_bias {
            let t = t as usize;
            let Some(&l) = logits.get(t) else { continue };
            let biased = l + b;
            if biased > best.1 || (biased == best.1 && t < best.0) {
                best = (t, biased);
            }
        }
        // A bias may also have lowered the argmax itself below another token.
        if self.logit_bias.iter().any(|&(t, b)| t as usize == best.0 && b < 0.0) {
            let bias =
                |i: usize| self.logit_bias.iter().filter(|(t, _)| *t as usize == i).map(|(_, b)| *b).sum::<f32>();
            best = (0, f32::NEG_INFINITY);
            for (i, &l) in logits.iter().enumerate() {
                let v = l + bias(i);
                if v > best.1 {
                    best = (i, v);
                }
            }
        }
        best.0
    }

    /// The sampler chain: bias, penalties, grammar, then greedy or top-p/temperature/seeded
    /// draw. It ends with a selector, as llama.cpp requires.
    pub fn chain(&self, model: &LlamaModel) -> Result<LlamaSampler> {
        let n_vocab = model.n_vocab();
        let mut chain = Vec::new();
        if !self.logit_bias.is_empty() {
            let b: Vec<LlamaLogitBias> =
                self.logit_bias.iter().map(|&(t, v)| LlamaLogitBias::new(LlamaToken(t as i32), v)).collect();
            chain.push(LlamaSampler::logit_bias(n_vocab, &b));
        }
        if self.frequency_penalty != 0.0 || self.presence_penalty != 0.0 {
            chain.push(LlamaSampler::penalties(n_vocab, 64, 1.0, self.frequency_penalty, self.presence_penalty));
        }
        if let Some(g) = &self.grammar {
            let s = LlamaSampler::grammar(model, g, "root").map_err(|e| {
                LocalError::InvalidParams(format!("response_format: the grammar does not compile ({e})"))
            })?;
            chain.push(s);
        }
        if self.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
        } else {
            if let Some(p) = self.top_p.filter(|p| *p < 1.0) {
                chain.push(LlamaSampler::top_p(p, 1));
            }
            chain.push(LlamaSampler::temp(self.temperature));
            chain.push(LlamaSampler::dist((self.seed ^ (self.seed >> 32)) as u32));
        }
        Ok(LlamaSampler::chain_simple(chain))
    }
}

/// The chosen token's log-probability and the `k` most likely tokens, from raw logits.
pub(crate) fn logprob(logits: &[f32], chosen: usize, k: usize, piece: &dyn Fn(usize) -> Vec<u8>) -> TokenLogprob {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max + logits.iter().map(|l| (l - max).exp()).sum::<f32>().ln();
    let entry = |t: usize| {
        let bytes = piece(t);
        (String::from_utf8_lossy(&bytes).into_owned(), logits.get(t).map_or(f32::NEG_INFINITY, |l| l - lse), bytes)
    };
    let mut top = Vec::new();
    if k > 0 {
        let mut idx: Vec<usize> = (0..logits.len()).collect();
        let k = k.min(idx.len());
        idx.select_nth_unstable_by(k - 1, |a, b| logits[*b].total_cmp(&logits[*a]));
        idx.truncate(k);
        idx.sort_by(|a, b| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b)));
        top = idx
            .into_iter()
            .map(|t| {
                let (token, logprob, bytes) = entry(t);
                TopLogprob { token, logprob: logprob.min(0.0), bytes: Some(bytes) }
            })
            .collect();
    }
    let (token, logprob, bytes) = entry(chosen);
    TokenLogprob { token, logprob: logprob.min(0.0), bytes: Some(bytes), top_logprobs: top }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn greedy_with(bias: Vec<(u32, f32)>) -> Sampling {
        Sampling {
            max_tokens: 1,
            temperature: 0.0,
            top_p: None,
            seed: 0,
            stop: vec![],
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            logit_bias: bias,
            logprobs: None,
            grammar: None,
        }
    }

    #[test]
    fn biased_argmax() {
        let logits = [1.0f32, 3.0, 2.0, -1.0];
        assert_eq!(greedy_with(vec![]).argmax(&logits), 1);
        assert_eq!(greedy_with(vec![(1, -100.0)]).argmax(&logits), 2, "banned argmax");
        assert_eq!(greedy_with(vec![(3, 10.0)]).argmax(&logits), 3, "boosted token");
        assert_eq!(greedy_with(vec![(1, -100.0), (2, -100.0)]).argmax(&logits), 0);
    }

    #[test]
    fn logprobs_are_normalised_sorted_and_hold_the_argmax() {
        let logits = [1.0f32, 3.0, 2.0, -1.0];
        let lp = logprob(&logits, 1, 3, &|t| vec![b'a' + t as u8]);
        let total: f32 = logits.iter().map(|l| (l - logits[1]).exp()).sum();
        assert!((lp.logprob + total.ln()).abs() < 1e-5);
        let tops: Vec<&str> = lp.top_logprobs.iter().map(|t| t.token.as_str()).collect();
        assert_eq!(tops, ["b", "c", "a"]);
        assert!(lp.top_logprobs.windows(2).all(|w| w[0].logprob >= w[1].logprob));
        assert!(lp.top_logprobs.iter().all(|t| t.logprob <= 0.0));
        assert_eq!(lp.token, "b");
        let probs: f32 =
            logits.iter().enumerate().map(|(i, _)| logprob(&logits, i, 0, &|_| vec![]).logprob.exp()).sum();
        assert!((probs - 1.0).abs() < 1e-5);
    }
}
