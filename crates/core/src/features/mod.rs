//! Prompt features: hashed word/character n-grams with TF-IDF (fast, no model needed) or
//! sentence embeddings from a [`TextEmbedder`] (MiniLM), cached on disk by text hash.
//!
//! Internally every feature vector is a [`SparseVec`]: n-gram vectors have a few hundred
//! non-zeros out of 2^15 slots, so dense storage of 100k training prompts would not fit.

pub mod cache;
pub mod ngram;
pub mod sparse;

pub use cache::EmbeddingCache;
pub use ngram::NgramTfidf;
pub use sparse::SparseVec;

use crate::embedder::TextEmbedder;
use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Which prompt representation a router uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureKind {
    /// Hashed word 1–2-grams and character 3-grams, TF-IDF weighted, L2-normalised.
    Ngram,
    /// Sentence embeddings from the MiniLM embedder.
    MiniLm,
    /// Whichever of the above fits the validation prompts best (MiniLM only when an
    /// embedder is given); resolved by `Router::train`, never stored in an artifact.
    Auto,
}

impl std::str::FromStr for FeatureKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ngram" => Ok(FeatureKind::Ngram),
            "minilm" => Ok(FeatureKind::MiniLm),
            "auto" => Ok(FeatureKind::Auto),
            other => anyhow::bail!("unknown feature kind `{other}` (expected ngram, minilm or auto)"),
        }
    }
}

impl std::fmt::Display for FeatureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FeatureKind::Ngram => "ngram",
            FeatureKind::MiniLm => "minilm",
            FeatureKind::Auto => "auto",
        })
    }
}

/// A fitted feature extractor; part of the router artifact so that serving computes
/// exactly the features the predictor was trained on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Featurizer {
    Ngram(NgramTfidf),
    /// Remembers which embedder (and dimension) produced the training vectors.
    MiniLm {
        embedder_id: String,
        dim: usize,
    },
}

impl Featurizer {
    /// Fits the extractor on training texts (IDF for n-grams; nothing to fit for MiniLM
    /// beyond recording which embedder is used).
    pub fn fit(kind: FeatureKind, texts: &[&str], embedder: Option<&dyn TextEmbedder>) -> anyhow::Result<Featurizer> {
        Ok(match kind {
            FeatureKind::Ngram => Featurizer::Ngram(NgramTfidf::fit(texts, ngram::DEFAULT_BITS)),
            FeatureKind::MiniLm => {
                let e = embedder.context("MiniLM features need an embedder, and none was given")?;
                Featurizer::MiniLm { embedder_id: e.id().to_string(), dim: e.dim() }
            }
            FeatureKind::Auto => {
                anyhow::bail!("`auto` features are chosen by training a router on each kind; fit a concrete kind")
            }
        })
    }

    /// An n-gram extractor with uniform IDF: usable before any training data exists.
    pub fn unfitted(kind: FeatureKind) -> Featurizer {
        match kind {
            // Nothing to choose between without data: n-grams need no model.
            FeatureKind::Ngram | FeatureKind::Auto => Featurizer::Ngram(NgramTfidf::uniform(ngram::DEFAULT_BITS)),
            FeatureKind::MiniLm => Featurizer::MiniLm { embedder_id: String::new(), dim: 0 },
        }
    }

    pub fn kind(&self) -> FeatureKind {
        match self {
            Featurizer::Ngram(_) => FeatureKind::Ngram,
            Featurizer::MiniLm { .. } => FeatureKind::MiniLm,
        }
    }

    /// Length of the dense form of a feature vector (0 = MiniLM not yet bound to an embedder).
    pub fn dim(&self) -> usize {
        match self {
            Featurizer::Ngram(n) => n.dim(),
            Featurizer::MiniLm { dim, .. } => *dim,
        }
    }

    /// Features for many texts. MiniLM vectors go through the disk cache when one is given.
    pub fn transform_batch(
        &self,
        texts: &[&str],
        embedder: Option<&dyn TextEmbedder>,
        cache: Option<&EmbeddingCache>,
    ) -> anyhow::Result<Vec<SparseVec>> {
        match self {
            Featurizer::Ngram(n) => Ok(texts.iter().map(|t| n.transform(t)).collect()),
            Featurizer::MiniLm { embedder_id, dim } => {
                let e = embedder.context("this router uses MiniLM features: an embedder is required")?;
                if !embedder_id.is_empty() && (e.id() != embedder_id || e.dim() != *dim) {
                    anyhow::bail!(
                        "router was trained with embedder `{embedder_id}` (dim {dim}), got `{}` (dim {})",
                        e.id(),
                        e.dim()
                    );
                }
                let dense = match cache {
                    Some(c) => c.embed(e, texts)?,
                    None => e.embed_batch(texts)?,
                };
                Ok(dense.iter().map(|v| SparseVec::from_dense(v)).collect())
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A deterministic stand-in embedder for unit tests of the plumbing only (the real
    /// MiniLM lives in conductor-local): bag of letters, L2-normalised.
    pub struct LetterEmbedder;
    impl TextEmbedder for LetterEmbedder {
        fn id(&self) -> &str {
            "letters"
        }
        fn dim(&self) -> usize {
            26
        }
        fn embed_batch(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
            Ok(texts
                .iter()
                .map(|t| {
                    let mut v = [0f32; 26];
                    for c in t.to_ascii_lowercase().bytes().filter(u8::is_ascii_lowercase) {
                        v[(c - b'a') as usize] += 1.0;
                    }
                    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
                    v.iter().map(|x| x / n).collect()
                })
                .collect())
        }
    }

    #[test]
    fn feature_kind_parses() {
        assert_eq!("MiniLM".parse::<FeatureKind>().unwrap(), FeatureKind::MiniLm);
        assert_eq!("ngram".parse::<FeatureKind>().unwrap(), FeatureKind::Ngram);
        assert!("bert".parse::<FeatureKind>().is_err());
        // One vocabulary: the names artifacts, configs and the CLI all use.
        assert!("embedding".parse::<FeatureKind>().unwrap_err().to_string().contains("minilm"));
    }

    #[test]
    fn minilm_requires_matching_embedder() {
        let f = Featurizer::fit(FeatureKind::MiniLm, &["a"], Some(&LetterEmbedder)).unwrap();
        assert_eq!(f.dim(), 26);
        assert!(f.transform_batch(&["abc"], None, None).is_err());
        let v = f.transform_batch(&["abc"], Some(&LetterEmbedder), None).unwrap();
        assert_eq!(v[0].nnz(), 3);
    }
}
