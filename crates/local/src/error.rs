//! Errors of the embedded model library, worded for the person who has to fix them.

use std::path::PathBuf;

/// Everything that can go wrong loading or running a local model.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("unknown model '{id}'; the library has: {}", known.join(", "))]
    UnknownModel { id: String, known: Vec<String> },

    #[error("model file {} is missing; {}", path.display(), conductor_core::install::models_dir_help(path.parent().unwrap_or(path)))]
    MissingFile { path: PathBuf },

    #[error("{} is not a usable model file: {reason}", path.display())]
    BadModelFile { path: PathBuf, reason: String },

    #[error("prompt is {prompt_tokens} tokens but the model's context window is {context_length} tokens (room must remain for at least one generated token)")]
    PromptTooLong { prompt_tokens: usize, context_length: usize },

    #[error("invalid generation parameter: {0}")]
    InvalidParams(String),

    #[error("the model is busy: {waiting} requests are waiting (about {}s of work); retry later", expected_wait.as_secs().max(1))]
    Busy { waiting: usize, expected_wait: std::time::Duration },

    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<candle_core::Error> for LocalError {
    fn from(e: candle_core::Error) -> Self {
        LocalError::Other(anyhow::Error::new(e))
    }
}

pub type Result<T> = std::result::Result<T, LocalError>;
