//! conductor-lab: the evaluation lab. Converts the RouteLLM benchmark outcomes into
//! records, trains and evaluates routers on held-out prompts, and draws cost–quality
//! curves. Embeddings come in as `Option<&dyn TextEmbedder>` so this crate does not
//! depend on the model runtime.

pub mod bench;
pub mod convert;
pub mod eval;
pub mod onboard;
pub mod online;
pub mod plot;
pub mod progress;
pub mod report;
pub mod table;
pub mod verify;
pub mod verify_plot;
