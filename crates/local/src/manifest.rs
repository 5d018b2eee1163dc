//! The library manifest, `catalog/local.toml`, compiled into the binary: the one place that
//! says which files make up each model and what each model is (see the file's header).
//! Everything else — the specs the library loads, the local price catalogue, the ids a
//! config may name — is derived from it here.

use conductor_core::catalog::{Catalog, ModelEntry, Tier};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const MANIFEST: &str = include_str!("../../../catalog/local.toml");

/// Id of the sentence embedder in the library.
pub const EMBEDDER_ID: &str = "all-MiniLM-L6-v2";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    models: Vec<ChatEntry>,
    #[serde(default)]
    embedders: Vec<EmbedderEntry>,
}

/// One `[[models]]` entry: the catalogue's fields, then the library's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatEntry {
    id: String,
    provider: String,
    input_usd_per_mtok: f64,
    output_usd_per_mtok: f64,
    context_length: usize,
    tier: Tier,
    arch: String,
    params: u64,
    quant: String,
    file: String,
    sha256: String,
    licence: String,
    template: String,
    #[serde(default)]
    capabilities: Vec<String>,
    #[allow(dead_code)] // read by scripts/fetch_models.py
    source: toml::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbedderEntry {
    id: String,
    arch: String,
    params: u64,
    quant: String,
    dir: String,
    dim: usize,
    max_tokens: usize,
    licence: String,
    files: Vec<String>,
    #[allow(dead_code)] // read by scripts/fetch_models.py
    sha256: toml::Value,
    #[allow(dead_code)]
    source: toml::Value,
}

impl ChatEntry {
    fn entry(&self) -> ModelEntry {
        ModelEntry {
            id: self.id.clone(),
            provider: self.provider.clone(),
            input_usd_per_mtok: self.input_usd_per_mtok,
            output_usd_per_mtok: self.output_usd_per_mtok,
            context_length: self.context_length,
            tier: self.tier,
        }
    }
}

fn manifest() -> Result<&'static Manifest, &'static str> {
    static M: OnceLock<Result<Manifest, String>> = OnceLock::new();
    M.get_or_init(|| toml::from_str(MANIFEST).map_err(|e| format!("catalog/local.toml: {e}")))
        .as_ref()
        .map_err(String::as_str)
}

/// What kind of model a spec describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A GGUF chat model run by llama.cpp.
    Chat,
    /// The sentence embedder (safetensors, candle).
    Embedder,
}

/// What the library knows about one model before loading it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelSpec {
    /// Stable id used in configs, records and the API (e.g. `qwen2.5-coder-0.5b`).
    pub id: String,
    pub kind: Kind,
    /// The GGUF `general.architecture` the file must declare (`llama`, `qwen2`, ...).
    pub arch: String,
    /// Parameter count, for display and compute pricing.
    pub params: u64,
    pub quant: String,
    /// Path of the GGUF file (or the model directory for the embedder).
    pub file: PathBuf,
    /// Context window served.
    pub context_length: usize,
    /// Size class of a chat model; `None` for the embedder.
    pub tier: Option<Tier>,
    /// What a chat model honours beyond plain chat (`json`, `logprobs`, `tools`).
    pub capabilities: Vec<String>,
    pub sha256: String,
    pub licence: String,
    /// Where the chat template comes from (`gguf`: the file's own).
    pub template: String,
    /// Files that must all be present (the GGUF, or the embedder's three files).
    pub(crate) files: Vec<PathBuf>,
}

impl ModelSpec {
    /// Whether the model's files are on disk.
    pub fn present(&self) -> bool {
        self.files.iter().all(|f| f.is_file())
    }

    /// Size on disk in bytes (0 when missing).
    pub fn file_size(&self) -> u64 {
        self.files.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).sum()
    }

    pub fn has_capability(&self, c: &str) -> bool {
        self.capabilities.iter().any(|x| x == c)
    }
}

/// Every model of the library rooted at `dir`: chat models in manifest order, then the
/// embedder. Empty only if the compiled-in manifest were broken (a test guards that).
pub fn specs(dir: &Path) -> Vec<ModelSpec> {
    let Ok(m) = manifest() else { return Vec::new() };
    let chat = m.models.iter().map(|e| {
        let file = dir.join(&e.file);
        ModelSpec {
            id: e.id.clone(),
            kind: Kind::Chat,
            arch: e.arch.clone(),
            params: e.params,
            quant: e.quant.clone(),
            files: vec![file.clone()],
            file,
            context_length: e.context_length,
            tier: Some(e.tier),
            capabilities: e.capabilities.clone(),
            sha256: e.sha256.clone(),
            licence: e.licence.clone(),
            template: e.template.clone(),
        }
    });
    let embedders = m.embedders.iter().map(|e| {
        let d = dir.join(&e.dir);
        ModelSpec {
            id: e.id.clone(),
            kind: Kind::Embedder,
            arch: e.arch.clone(),
            params: e.params,
            quant: e.quant.clone(),
            files: e.files.iter().map(|f| d.join(f)).collect(),
            file: d,
            context_length: e.max_tokens,
            tier: None,
            capabilities: vec![format!("embeddings:{}", e.dim)],
            sha256: String::new(),
            licence: e.licence.clone(),
            template: String::new(),
        }
    });
    chat.chain(embedders).collect()
}

/// Ids of the library's chat models (whether or not their files are present).
pub fn library_chat_ids() -> Vec<String> {
    manifest().map(|m| m.models.iter().map(|e| e.id.clone()).collect()).unwrap_or_default()
}

/// The library's price catalogue (the same file the lab reads as `catalog/local.toml`).
pub fn catalog() -> Catalog {
    Catalog { models: manifest().map(|m| m.models.iter().map(|e| e.entry()).collect()).unwrap_or_default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_parses_and_agrees_with_itself() {
        let m = manifest().unwrap();
        assert_eq!(m.models.len(), 3);
        let specs = specs(Path::new("/m"));
        assert_eq!(specs.len(), 4);
        assert_eq!(specs[0].id, "smollm2-135m");
        assert_eq!(specs[0].file, Path::new("/m/SmolLM2-135M-Instruct.Q4_1.gguf"));
        assert_eq!(specs[3].id, EMBEDDER_ID);
        assert!(specs[3].files.iter().any(|f| f.ends_with("model.safetensors")));
        catalog().validate().unwrap();
        assert_eq!(library_chat_ids(), ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]);
        for s in &specs[..3] {
            assert_eq!(s.sha256.len(), 64, "{}", s.id);
            assert!(s.has_capability("json"), "{}", s.id);
        }
    }

    #[test]
    fn the_catalogue_the_lab_reads_is_the_manifest() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../catalog/local.toml");
        assert_eq!(Catalog::load(Path::new(path)).unwrap(), catalog());
    }
}
