//! The seam between the learning core and whatever turns prompts into dense vectors: the
//! MiniLM sentence embedder and the small-model prompt reader live in `conductor-local`
//! and implement this.

/// Which family of vectors an embedder produces; a feature kind names the one it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedderKind {
    /// Sentence embeddings (all-MiniLM-L6-v2): L2-normalised, used as they are.
    MiniLm,
    /// The smallest chat model reading the prompt: negative log-likelihood statistics and
    /// the mean last hidden state, standardised on training prompts.
    SmolLm,
}

impl EmbedderKind {
    /// The feature-kind name of this block.
    pub fn name(self) -> &'static str {
        match self {
            EmbedderKind::MiniLm => "minilm",
            EmbedderKind::SmolLm => "smollm",
        }
    }
}

/// How many of the prompt reader's numbers are likelihood statistics; its hidden-state
/// mean follows them.
pub const SMOLLM_STATS: usize = 6;

/// Turns texts into fixed-size vectors.
pub trait TextEmbedder: Send + Sync {
    /// Stable identifier of the model, used as part of cache keys
    /// (e.g. `"all-MiniLM-L6-v2"`).
    fn id(&self) -> &str;
    /// Length of every vector this embedder returns.
    fn dim(&self) -> usize;
    /// Which family of vectors this is.
    fn kind(&self) -> EmbedderKind;
    /// Embed a batch of texts; one vector per text, in order.
    fn embed_batch(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>>;
}
