//! Hashed n-gram TF-IDF: the feature kind that needs no model and costs microseconds.
//!
//! Word unigrams and bigrams carry topic and task ("integral", "travel blog"); character
//! 3-grams inside words make it robust to inflection and typos. The hashing trick keeps
//! the vocabulary fixed-size, so the artifact only stores one IDF value per slot.

use super::SparseVec;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// 2^15 slots: few collisions for benchmark-sized vocabularies, 128 KiB of IDF.
pub const DEFAULT_BITS: u32 = 15;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NgramTfidf {
    pub bits: u32,
    /// Smoothed inverse document frequency per slot: ln((1 + n) / (1 + df)) + 1.
    pub idf: Vec<f32>,
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for &b in *p {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Slot counts of all n-grams of `text` (before weighting).
fn counts(text: &str, bits: u32) -> HashMap<u32, f32> {
    let mask = (1u64 << bits) - 1;
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let mut c: HashMap<u32, f32> = HashMap::with_capacity(words.len() * 4);
    let mut add = |h: u64| *c.entry((h & mask) as u32).or_insert(0.0) += 1.0;
    for (i, w) in words.iter().enumerate() {
        add(fnv1a(&[b"w", w.as_bytes()]));
        if let Some(next) = words.get(i + 1) {
            add(fnv1a(&[b"b", w.as_bytes(), next.as_bytes()]));
        }
        let chars: Vec<char> = std::iter::once('^').chain(w.chars()).chain(std::iter::once('$')).collect();
        for g in chars.windows(3) {
            let s: String = g.iter().collect();
            add(fnv1a(&[b"c", s.as_bytes()]));
        }
    }
    c
}

impl NgramTfidf {
    /// Learns IDF from training texts.
    pub fn fit(texts: &[&str], bits: u32) -> NgramTfidf {
        let dim = 1usize << bits;
        let mut df = vec![0u32; dim];
        for t in texts {
            for slot in counts(t, bits).keys() {
                df[*slot as usize] += 1;
            }
        }
        let n = texts.len() as f32;
        let idf = df.iter().map(|&d| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0).collect();
        NgramTfidf { bits, idf }
    }

    /// All slots weighted equally (a router with no training data yet).
    pub fn uniform(bits: u32) -> NgramTfidf {
        NgramTfidf { bits, idf: vec![1.0; 1usize << bits] }
    }

    pub fn dim(&self) -> usize {
        self.idf.len()
    }

    /// Sublinear TF (1 + ln tf) × IDF, L2-normalised, sorted by slot.
    pub fn transform(&self, text: &str) -> SparseVec {
        let mut entries: Vec<(u32, f32)> = counts(text, self.bits)
            .into_iter()
            .map(|(slot, tf)| (slot, (1.0 + tf.ln()) * self.idf[slot as usize]))
            .collect();
        entries.sort_unstable_by_key(|e| e.0);
        let (idx, val) = entries.into_iter().unzip();
        SparseVec { idx, val }.normalized()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_texts_are_closer_than_different_ones() {
        let docs = ["what is the integral of x squared", "integrate x squared dx", "write a travel blog about hawaii"];
        let f = NgramTfidf::fit(&docs, 12);
        let v: Vec<SparseVec> = docs.iter().map(|d| f.transform(d)).collect();
        let dot = |a: &SparseVec, b: &SparseVec| a.dot_dense(&b.to_dense(f.dim()));
        assert!((v[0].norm() - 1.0).abs() < 1e-5);
        assert!(dot(&v[0], &v[1]) > dot(&v[0], &v[2]));
        assert!(v[0].idx.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn idf_downweights_common_words() {
        let docs = ["the cat", "the dog", "the bird"];
        let f = NgramTfidf::fit(&docs, 12);
        let slot = |w: &str| (fnv1a(&[b"w", w.as_bytes()]) & ((1 << 12) - 1)) as usize;
        assert!(f.idf[slot("the")] < f.idf[slot("cat")]);
    }
}
