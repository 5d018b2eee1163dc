//! Loading a GGUF chat model into llama.cpp with errors a person can act on. llama.cpp
//! itself only says "null result" when a load fails (the reason goes to its log), so the
//! file is checked first: present, a GGUF at all, the architecture the manifest expects,
//! long enough for the tensors its header describes. A file that passes all that and still
//! fails has an architecture this build of llama.cpp cannot run.

use crate::error::{LocalError, Result};
use crate::manifest::ModelSpec;
use llama_cpp_2::gguf::GgufContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use std::path::Path;
#[cfg(test)]
use std::path::PathBuf;
use std::sync::OnceLock;

/// The process-wide llama.cpp backend (it may be initialised once), with its own logging
/// silenced: conductor reports what went wrong itself.
pub(crate) fn backend() -> Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            LlamaBackend::init()
                .map(|mut b| {
                    b.void_logs();
                    b
                })
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| LocalError::Other(anyhow::anyhow!("llama.cpp backend: {e}")))
}

fn bad(spec: &ModelSpec, reason: impl std::fmt::Display) -> LocalError {
    LocalError::BadModelFile { path: spec.file.clone(), reason: reason.to_string() }
}

/// Bytes the file must have for every tensor its header lists (the end of the last one).
fn expected_len(path: &Path) -> Option<u64> {
    use llama_cpp_sys_2 as sys;
    let c = std::ffi::CString::new(path.to_str()?).ok()?;
    let params = sys::gguf_init_params { no_alloc: true, ctx: std::ptr::null_mut() };
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call; with
    // `no_alloc` and no ggml context, gguf only reads the header. The returned context is
    // freed below on every path, and only read in between.
    unsafe {
        let g = sys::gguf_init_from_file(c.as_ptr(), params);
        if g.is_null() {
            return None;
        }
        let base = sys::gguf_get_data_offset(g) as u64;
        let end = (0..sys::gguf_get_n_tensors(g))
            .map(|i| sys::gguf_get_tensor_offset(g, i) as u64 + sys::gguf_get_tensor_size(g, i) as u64)
            .max()
            .unwrap_or(0);
        sys::gguf_free(g);
        Some(base + end)
    }
}

/// Loads `spec`'s file. The model lives as long as the process (the engine thread borrows
/// it for its context), so it is leaked on purpose: each model is loaded once and shared.
pub(crate) fn load(spec: &ModelSpec) -> Result<&'static LlamaModel> {
    if !spec.file.is_file() {
        return Err(LocalError::MissingFile { path: spec.file.clone() });
    }
    let Some(gguf) = GgufContext::from_file(&spec.file) else {
        return Err(bad(spec, "not a readable GGUF file (bad magic, or the header is cut short)"));
    };
    let key = gguf.find_key("general.architecture");
    let arch = if key >= 0 { gguf.val_str(key).unwrap_or("").to_string() } else { String::new() };
    drop(gguf);
    if arch != spec.arch {
        return Err(bad(spec, format!("expected {} weights, the file says `{arch}`", spec.arch)));
    }
    let len = std::fs::metadata(&spec.file).map(|m| m.len()).unwrap_or(0);
    if let Some(need) = expected_len(&spec.file).filter(|need| *need > len) {
        return Err(bad(spec, format!("the file is truncated: its tensors need {need} bytes, it has {len}")));
    }
    let params = LlamaModelParams::default();
    let model = LlamaModel::load_from_file(backend()?, &spec.file, &params).map_err(|e| {
        bad(
            spec,
            format!("llama.cpp could not load it ({e}); architecture `{arch}` may not be supported by this build"),
        )
    })?;
    Ok(Box::leak(Box::new(model)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{specs, Kind};

    /// SmolLM's file with its `general.architecture` renamed to `arch`.
    fn renamed(dir: &Path, arch: &[u8; 5]) -> Option<PathBuf> {
        let models = conductor_core::install::models_dir();
        let src = std::fs::read(models.join("SmolLM2-135M-Instruct.Q4_1.gguf")).ok()?;
        let key = b"general.architecture";
        let at = src.windows(key.len()).position(|w| w == key)? + key.len() + 4 + 8;
        let mut bytes = src;
        bytes[at..at + 5].copy_from_slice(arch);
        let out = dir.join("renamed.gguf");
        std::fs::write(&out, bytes).ok()?;
        Some(out)
    }

    #[test]
    fn an_architecture_llama_cpp_does_not_know_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let Some(file) = renamed(dir.path(), b"llamx") else {
            eprintln!("skipped: the library's files are not assembled (bash scripts/setup.sh)");
            return;
        };
        let mut spec = specs(dir.path()).into_iter().find(|s| s.kind == Kind::Chat).unwrap();
        // The manifest's check passes (it expects what the file says) ...
        spec.arch = "llamx".into();
        spec.files = vec![file.clone()];
        spec.file = file;
        let e = load(&spec).err().unwrap().to_string();
        // ... and llama.cpp refuses it: the error names the architecture.
        assert!(e.contains("`llamx`") && e.contains("not be supported"), "{e}");
        // Against the manifest's own architecture, the mismatch is named too.
        spec.arch = "llama".into();
        let e = load(&spec).err().unwrap().to_string();
        assert!(e.contains("expected llama") && e.contains("`llamx`"), "{e}");
    }
}
