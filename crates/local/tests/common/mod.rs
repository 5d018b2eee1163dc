//! Shared helpers for the local-library tests: they use the real model files assembled
//! by `scripts/setup.sh`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use conductor_local::Library;

pub fn models_dir() -> PathBuf {
    std::env::var_os("CONDUCTOR_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models")))
}

/// One library per test binary, so each model loads once.
pub fn library() -> &'static Library {
    static LIB: OnceLock<Library> = OnceLock::new();
    LIB.get_or_init(|| {
        let lib = Library::open(models_dir());
        for s in lib.specs() {
            assert!(s.present(), "{} is missing: run `bash scripts/setup.sh`", s.file.display());
        }
        lib
    })
}

/// A library of its own, for tests whose results depend on which other requests share the
/// model's batches (the engine batches every concurrent request to a model together, and
/// llama.cpp's batched kernels are not bit-identical across batch shapes).
pub fn private_library() -> Library {
    Library::open(models_dir())
}

/// Model tests run one at a time: each engine uses every core, and two at once would only
/// make both slow (and the timing-based tests meaningless).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

pub const SMOL: &str = "smollm2-135m";
pub const QWEN_05: &str = "qwen2.5-coder-0.5b";
pub const QWEN_15: &str = "qwen2.5-coder-1.5b";
