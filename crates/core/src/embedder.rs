//! The seam between the learning core and whatever computes sentence embeddings
//! (the embedded MiniLM model lives in `conductor-local` and implements this).

/// Turns texts into fixed-size, L2-normalised vectors.
pub trait TextEmbedder: Send + Sync {
    /// Stable identifier of the embedding model, used as part of cache keys
    /// (e.g. `"all-MiniLM-L6-v2"`).
    fn id(&self) -> &str;
    /// Length of every vector this embedder returns.
    fn dim(&self) -> usize;
    /// Embed a batch of texts; one vector per text, in order.
    fn embed_batch(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>>;
}
