//! conductor-local: the embedded model library. GGUF chat models (llama and qwen2
//! architectures) and the all-MiniLM-L6-v2 sentence embedder, running on CPU inside the
//! process with candle. Nothing here knows about HTTP or routing.

mod chat_model;
mod chat_template;
mod embed;
mod error;
mod gguf_tokenizer;
mod library;
mod spec;
mod stop;
mod weights;

pub use chat_model::{ChatModel, FinishReason, GenParams, Generation, Timings};
pub use chat_template::{ChatMessage, Role};
pub use embed::{Embedder, MAX_TOKENS as EMBED_MAX_TOKENS};
pub use error::{LocalError, Result};
pub use library::{Library, MODELS_ENV};
pub use spec::{library_chat_ids, Arch, ModelSpec, EMBEDDER_ID};
