//! Prompt features: hashed word/character n-grams with TF-IDF (fast, no model needed),
//! sentence embeddings from a [`TextEmbedder`] (MiniLM, cached on disk by text hash),
//! the smallest local model reading the prompt (its surprise and hidden state, cached the
//! same way), length and structure statistics ([`structure`]), and concatenations of them.
//!
//! Internally every feature vector is a [`SparseVec`]: n-gram vectors have a few hundred
//! non-zeros out of 2^15 slots, so dense storage of 100k training prompts would not fit.

pub mod cache;
pub mod ngram;
pub mod sparse;
pub mod standardize;
pub mod structure;

pub use cache::EmbeddingCache;
pub use ngram::NgramTfidf;
pub use sparse::SparseVec;
pub use standardize::Standardizer;
pub use structure::StructureScaler;

use crate::embedder::{EmbedderKind, TextEmbedder, SMOLLM_STATS};
use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Which prompt representation a router uses. Combinations concatenate the blocks, each
/// scaled so that every block weighs the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureKind {
    /// Hashed word 1–2-grams and character 3-grams, TF-IDF weighted, L2-normalised.
    #[serde(rename = "ngram")]
    Ngram,
    /// Sentence embeddings from the MiniLM embedder.
    #[serde(rename = "minilm")]
    MiniLm,
    /// Length and structure statistics, standardised on the training prompts.
    #[serde(rename = "structure")]
    Structure,
    #[serde(rename = "ngram+structure")]
    NgramStructure,
    #[serde(rename = "minilm+structure")]
    MiniLmStructure,
    #[serde(rename = "ngram+minilm")]
    NgramMiniLm,
    #[serde(rename = "ngram+minilm+structure")]
    All,
    /// The smallest local model reading the prompt: negative log-likelihood statistics and
    /// its mean last hidden state, each half standardised and weighed equally.
    #[serde(rename = "smollm")]
    SmolLm,
    #[serde(rename = "smollm+structure")]
    SmolLmStructure,
    #[serde(rename = "ngram+smollm+structure")]
    NgramSmolLmStructure,
    /// Whichever of the above fits the validation prompts best (kinds with an embedding block
    /// only when that embedder is given); resolved by `Router::train`, never stored in an
    /// artifact.
    #[serde(rename = "auto")]
    Auto,
}

impl FeatureKind {
    /// Every concrete kind, in the order `auto` tries them.
    pub const CONCRETE: [FeatureKind; 10] = [
        FeatureKind::Ngram,
        FeatureKind::MiniLm,
        FeatureKind::Structure,
        FeatureKind::NgramStructure,
        FeatureKind::MiniLmStructure,
        FeatureKind::NgramMiniLm,
        FeatureKind::All,
        FeatureKind::SmolLm,
        FeatureKind::SmolLmStructure,
        FeatureKind::NgramSmolLmStructure,
    ];
    /// Every accepted name (what `--help` lists).
    pub const NAMES: [&'static str; 11] = [
        "ngram",
        "minilm",
        "structure",
        "ngram+structure",
        "minilm+structure",
        "ngram+minilm",
        "ngram+minilm+structure",
        "smollm",
        "smollm+structure",
        "ngram+smollm+structure",
        "auto",
    ];

    /// The blocks of a concrete kind: (n-grams, the embedding block, structure).
    fn blocks(self) -> (bool, Option<EmbedderKind>, bool) {
        use EmbedderKind::{MiniLm, SmolLm};
        match self {
            FeatureKind::Ngram => (true, None, false),
            FeatureKind::MiniLm => (false, Some(MiniLm), false),
            FeatureKind::Structure => (false, None, true),
            FeatureKind::NgramStructure => (true, None, true),
            FeatureKind::MiniLmStructure => (false, Some(MiniLm), true),
            FeatureKind::NgramMiniLm => (true, Some(MiniLm), false),
            FeatureKind::All => (true, Some(MiniLm), true),
            FeatureKind::SmolLm => (false, Some(SmolLm), false),
            FeatureKind::SmolLmStructure => (false, Some(SmolLm), true),
            FeatureKind::NgramSmolLmStructure => (true, Some(SmolLm), true),
            // `auto` tries the MiniLM kinds when it is given MiniLM (see `Router::train`).
            FeatureKind::Auto => (true, Some(MiniLm), true),
        }
    }

    /// The embedder computing these features (or choosing among them) needs, if any.
    pub fn embedder(self) -> Option<EmbedderKind> {
        self.blocks().1
    }
}

impl std::str::FromStr for FeatureKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        let lower = s.to_ascii_lowercase();
        FeatureKind::CONCRETE.into_iter().chain([FeatureKind::Auto]).find(|k| k.to_string() == lower).ok_or_else(|| {
            anyhow::anyhow!("unknown feature kind `{s}` (expected one of: {})", FeatureKind::NAMES.join(", "))
        })
    }
}

impl std::fmt::Display for FeatureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FeatureKind::Ngram => "ngram",
            FeatureKind::MiniLm => "minilm",
            FeatureKind::Structure => "structure",
            FeatureKind::NgramStructure => "ngram+structure",
            FeatureKind::MiniLmStructure => "minilm+structure",
            FeatureKind::NgramMiniLm => "ngram+minilm",
            FeatureKind::All => "ngram+minilm+structure",
            FeatureKind::SmolLm => "smollm",
            FeatureKind::SmolLmStructure => "smollm+structure",
            FeatureKind::NgramSmolLmStructure => "ngram+smollm+structure",
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
    /// The prompt reader's vectors: standardised on training prompts, then the statistics
    /// and the hidden-state halves are each scaled to unit length and weighed equally.
    SmolLm {
        embedder_id: String,
        scale: Standardizer,
    },
    Structure(StructureScaler),
    /// Blocks side by side (slot offsets in block order), each scaled by 1/√blocks so the
    /// whole vector keeps unit length.
    Concat(Vec<Featurizer>),
}

impl Featurizer {
    /// Fits the extractor on training texts (IDF for n-grams, means and deviations for
    /// structure and for the prompt reader, whose vectors go through `cache`; for MiniLM,
    /// nothing beyond recording which embedder is used).
    pub fn fit(
        kind: FeatureKind,
        texts: &[&str],
        embedder: Option<&dyn TextEmbedder>,
        cache: Option<&EmbeddingCache>,
    ) -> anyhow::Result<Featurizer> {
        if kind == FeatureKind::Auto {
            anyhow::bail!("`auto` features are chosen by training a router on each kind; fit a concrete kind");
        }
        let (ngram, embedding, structure) = kind.blocks();
        let mut blocks = Vec::new();
        if ngram {
            blocks.push(Featurizer::Ngram(NgramTfidf::fit(texts, ngram::DEFAULT_BITS)));
        }
        if let Some(need) = embedding {
            let e = embedder
                .with_context(|| format!("{} features need their embedder, and none was given", need.name()))?;
            anyhow::ensure!(
                e.kind() == need,
                "{kind} features need the {} embedder, got `{}` ({})",
                need.name(),
                e.id(),
                e.kind().name()
            );
            blocks.push(match need {
                EmbedderKind::MiniLm => Featurizer::MiniLm { embedder_id: e.id().to_string(), dim: e.dim() },
                EmbedderKind::SmolLm => {
                    anyhow::ensure!(e.dim() > SMOLLM_STATS, "the prompt reader gives {} numbers, too few", e.dim());
                    let rows = dense(e, texts, cache)?;
                    Featurizer::SmolLm { embedder_id: e.id().to_string(), scale: Standardizer::fit(&rows) }
                }
            });
        }
        if structure {
            blocks.push(Featurizer::Structure(StructureScaler::fit(texts)));
        }
        Ok(if blocks.len() == 1 { blocks.remove(0) } else { Featurizer::Concat(blocks) })
    }

    /// An n-gram extractor with uniform IDF: usable before any training data exists.
    pub fn unfitted(kind: FeatureKind) -> Featurizer {
        match kind {
            FeatureKind::MiniLm => Featurizer::MiniLm { embedder_id: String::new(), dim: 0 },
            // Nothing else can be fitted without data: n-grams need no model.
            _ => Featurizer::Ngram(NgramTfidf::uniform(ngram::DEFAULT_BITS)),
        }
    }

    pub fn kind(&self) -> FeatureKind {
        match self {
            Featurizer::Ngram(_) => FeatureKind::Ngram,
            Featurizer::MiniLm { .. } => FeatureKind::MiniLm,
            Featurizer::SmolLm { .. } => FeatureKind::SmolLm,
            Featurizer::Structure(_) => FeatureKind::Structure,
            Featurizer::Concat(blocks) => {
                let has = |k: FeatureKind| blocks.iter().any(|b| b.kind() == k);
                let embedding = blocks.iter().find_map(|b| b.kind().embedder());
                let b = (has(FeatureKind::Ngram), embedding, has(FeatureKind::Structure));
                FeatureKind::CONCRETE.into_iter().find(|k| k.blocks() == b).unwrap_or(FeatureKind::All)
            }
        }
    }

    /// Length of the dense form of a feature vector (0 = MiniLM not yet bound to an embedder).
    pub fn dim(&self) -> usize {
        match self {
            Featurizer::Ngram(n) => n.dim(),
            Featurizer::MiniLm { dim, .. } => *dim,
            Featurizer::SmolLm { scale, .. } => scale.dim(),
            Featurizer::Structure(s) => s.dim(),
            Featurizer::Concat(blocks) => blocks.iter().map(Featurizer::dim).sum(),
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
            Featurizer::Structure(s) => Ok(texts.iter().map(|t| s.transform(t)).collect()),
            Featurizer::MiniLm { embedder_id, dim } => {
                let e = bound(embedder, embedder_id, *dim, EmbedderKind::MiniLm)?;
                Ok(dense(e, texts, cache)?.iter().map(|v| SparseVec::from_dense(v)).collect())
            }
            Featurizer::SmolLm { embedder_id, scale } => {
                let e = bound(embedder, embedder_id, scale.dim(), EmbedderKind::SmolLm)?;
                Ok(dense(e, texts, cache)?.iter().map(|v| halves(&scale.z(v))).collect())
            }
            Featurizer::Concat(blocks) => {
                let scale = 1.0 / (blocks.len().max(1) as f32).sqrt();
                let mut out = vec![SparseVec::default(); texts.len()];
                let mut offset = 0u32;
                for b in blocks {
                    for (o, v) in out.iter_mut().zip(b.transform_batch(texts, embedder, cache)?) {
                        o.idx.extend(v.idx.iter().map(|i| i + offset));
                        o.val.extend(v.val.iter().map(|x| x * scale));
                    }
                    offset += b.dim() as u32;
                }
                Ok(out)
            }
        }
    }
}

/// The embedder a trained block was fitted with, checked against the one given now
/// (an unfitted block — empty id — takes any of the right family).
fn bound<'e>(
    embedder: Option<&'e dyn TextEmbedder>,
    trained_id: &str,
    dim: usize,
    kind: EmbedderKind,
) -> anyhow::Result<&'e dyn TextEmbedder> {
    let e = embedder.with_context(|| format!("this router uses {} features: its embedder is required", kind.name()))?;
    if !trained_id.is_empty() && (e.id() != trained_id || e.dim() != dim) {
        anyhow::bail!(
            "router was trained with embedder `{trained_id}` (dim {dim}), got `{}` (dim {})",
            e.id(),
            e.dim()
        );
    }
    Ok(e)
}

/// Dense vectors of `texts`, through the disk cache when there is one.
fn dense(e: &dyn TextEmbedder, texts: &[&str], cache: Option<&EmbeddingCache>) -> anyhow::Result<Vec<Vec<f32>>> {
    match cache {
        Some(c) => c.embed(e, texts),
        None => e.embed_batch(texts),
    }
}

/// The reader's standardised vector as two unit halves (statistics, hidden state), each
/// scaled by 1/√2: six numbers weigh as much as the hidden state's hundreds.
fn halves(z: &[f32]) -> SparseVec {
    let (stats, hidden) = z.split_at(SMOLLM_STATS.min(z.len()));
    let unit = |v: &[f32]| -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let s = if n > 1e-9 { std::f32::consts::FRAC_1_SQRT_2 / n } else { 0.0 };
        v.iter().map(|x| x * s).collect()
    };
    let mut joined = unit(stats);
    joined.extend(unit(hidden));
    SparseVec::from_dense(&joined)
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
        fn kind(&self) -> EmbedderKind {
            EmbedderKind::MiniLm
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
        for name in FeatureKind::NAMES {
            let k: FeatureKind = name.parse().unwrap();
            assert_eq!(k.to_string(), name);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{name}\""));
        }
    }

    #[test]
    fn concatenated_blocks_keep_their_slots_and_unit_length() {
        let texts = ["What is 2 + 2?", "Write a poem about the sea", "def f(x): return x"];
        let f = Featurizer::fit(FeatureKind::All, &texts, Some(&LetterEmbedder), None).unwrap();
        assert_eq!(f.kind(), FeatureKind::All);
        assert_eq!(f.dim(), (1 << ngram::DEFAULT_BITS) + 26 + structure::NAMES.len());
        for v in f.transform_batch(&texts, Some(&LetterEmbedder), None).unwrap() {
            assert!(v.idx.windows(2).all(|w| w[0] < w[1]), "strictly increasing slots");
            assert!((v.norm() - 1.0).abs() < 1e-3, "{}", v.norm());
            assert!(*v.idx.last().unwrap() as usize >= (1 << ngram::DEFAULT_BITS) + 26, "structure block last");
        }
        let g = Featurizer::fit(FeatureKind::NgramStructure, &texts, None, None).unwrap();
        assert_eq!(g.kind(), FeatureKind::NgramStructure);
        assert!(Featurizer::fit(FeatureKind::MiniLmStructure, &texts, None, None).is_err(), "MiniLM needs an embedder");
    }

    #[test]
    fn minilm_requires_matching_embedder() {
        let f = Featurizer::fit(FeatureKind::MiniLm, &["a"], Some(&LetterEmbedder), None).unwrap();
        assert_eq!(f.dim(), 26);
        assert!(f.transform_batch(&["abc"], None, None).is_err());
        let v = f.transform_batch(&["abc"], Some(&LetterEmbedder), None).unwrap();
        assert_eq!(v[0].nnz(), 3);
    }

    /// A stand-in prompt reader: six "statistics" (letter counts of a–f) and a hidden half
    /// (letters g–z), unnormalised, as the real reader's vectors are.
    struct FakeReader;
    impl TextEmbedder for FakeReader {
        fn id(&self) -> &str {
            "fake-reader"
        }
        fn dim(&self) -> usize {
            26
        }
        fn kind(&self) -> EmbedderKind {
            EmbedderKind::SmolLm
        }
        fn embed_batch(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
            Ok(texts
                .iter()
                .map(|t| {
                    let mut v = vec![0f32; 26];
                    for c in t.to_ascii_lowercase().bytes().filter(u8::is_ascii_lowercase) {
                        v[(c - b'a') as usize] += 1.0;
                    }
                    v
                })
                .collect())
        }
    }

    #[test]
    fn reader_features_are_standardised_halves_of_equal_weight() {
        let texts = ["abc ghi", "aaa zzz", "fed cba xyz", "bead hijk"];
        let dir = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::new(dir.path());
        let f = Featurizer::fit(FeatureKind::SmolLmStructure, &texts, Some(&FakeReader), Some(&cache)).unwrap();
        assert_eq!(f.kind(), FeatureKind::SmolLmStructure);
        assert_eq!(f.dim(), 26 + structure::NAMES.len());
        let only = Featurizer::fit(FeatureKind::SmolLm, &texts, Some(&FakeReader), None).unwrap();
        for v in only.transform_batch(&texts, Some(&FakeReader), Some(&cache)).unwrap() {
            let d = v.to_dense(26);
            let half = |r: std::ops::Range<usize>| d[r].iter().map(|x| x * x).sum::<f32>();
            assert!((half(0..SMOLLM_STATS) - 0.5).abs() < 1e-4, "statistics half weighs 1/2");
            assert!((half(SMOLLM_STATS..26) - 0.5).abs() < 1e-4, "hidden half weighs 1/2");
        }
        // The families do not mix: MiniLM kinds refuse the reader and the reader's refuse MiniLM.
        let e = Featurizer::fit(FeatureKind::MiniLm, &texts, Some(&FakeReader), None).unwrap_err().to_string();
        assert!(e.contains("need the minilm embedder"), "{e}");
        assert!(Featurizer::fit(FeatureKind::SmolLm, &texts, Some(&LetterEmbedder), None).is_err());
        assert!(only.transform_batch(&texts, Some(&LetterEmbedder), None).is_err(), "trained with another embedder");
        let json = serde_json::to_string(&only).unwrap();
        let back: Featurizer = serde_json::from_str(&json).unwrap();
        assert_eq!(back.kind(), FeatureKind::SmolLm);
    }
}
