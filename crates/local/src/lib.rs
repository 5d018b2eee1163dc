//! conductor-local: the embedded model library. GGUF chat models run by llama.cpp (any
//! architecture it knows), each with its own engine thread that batches concurrent
//! requests, the all-MiniLM-L6-v2 sentence embedder (candle), and the prompt reader (the
//! smallest chat model's surprise and hidden state on a prompt, for routing). The manifest
//! `catalog/local.toml` says what the library holds. [`LocalProvider`] serves the library
//! behind the providers' common trait. Nothing here knows about HTTP or routing.

mod chat_model;
mod chat_template;
mod embed;
mod engine;
mod error;
mod library;
mod load;
mod manifest;
mod prompt;
mod provider;
mod reader;
mod stop;
pub mod tool_calls;

pub use chat_model::{ChatModel, GenParams, Generation, Running, MAX_TOP_LOGPROBS};
pub use conductor_providers::{ChatMessage, ResponseFormat, Role, TokenLogprob};
pub use embed::{Embedder, MAX_TOKENS as EMBED_MAX_TOKENS};
pub use engine::{EngineOptions, Event, FinishReason, Timings, THREADS_ENV};
pub use error::{LocalError, Result};
pub use library::{Library, MODELS_ENV};
pub use manifest::{catalog, library_chat_ids, Kind, ModelSpec, EMBEDDER_ID};
pub use provider::{LocalProvider, DEFAULT_MAX_TOKENS};
pub use reader::{PromptReader, MAX_TOKENS as READER_MAX_TOKENS, STAT_NAMES as READER_STAT_NAMES};
