//! The model library: the manifest's models rooted at a models directory, each loaded on
//! first use (with its engine) and shared afterwards.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::chat_model::ChatModel;
use crate::embed::Embedder;
use crate::engine::EngineOptions;
use crate::error::{LocalError, Result};
use crate::manifest::{specs, Kind, ModelSpec, EMBEDDER_ID};
use crate::reader::PromptReader;

/// Environment variable naming the models directory.
pub const MODELS_ENV: &str = conductor_core::install::MODELS_ENV;

/// The embedded model library.
pub struct Library {
    dir: PathBuf,
    specs: Vec<ModelSpec>,
    options: EngineOptions,
    chat: Mutex<HashMap<String, Arc<ChatModel>>>,
    embedder: OnceLock<Arc<Embedder>>,
    /// Held while the embedder or the reader loads.
    embedder_load: Mutex<()>,
    reader: OnceLock<Arc<PromptReader>>,
}

impl Library {
    /// The library in `models_dir`, engines with default options. Cheap: nothing is
    /// loaded until used.
    pub fn open(models_dir: impl Into<PathBuf>) -> Self {
        Self::with_options(models_dir, EngineOptions::default())
    }

    /// [`Library::open`] with the engine options every model will run with.
    pub fn with_options(models_dir: impl Into<PathBuf>, options: EngineOptions) -> Self {
        let dir = models_dir.into();
        Self {
            specs: specs(&dir),
            dir,
            options,
            chat: Mutex::new(HashMap::new()),
            embedder: OnceLock::new(),
            embedder_load: Mutex::new(()),
            reader: OnceLock::new(),
        }
    }

    /// `$CONDUCTOR_MODELS`, else the installation's `models/` folder (see
    /// [`conductor_core::install`]), so the binary works from any folder.
    pub fn from_env() -> Self {
        Self::open(conductor_core::install::models_dir())
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Every model of the library, chat models first, then the embedder.
    pub fn specs(&self) -> &[ModelSpec] {
        &self.specs
    }

    /// Ids of the chat models.
    pub fn chat_ids(&self) -> Vec<String> {
        self.specs.iter().filter(|s| s.kind == Kind::Chat).map(|s| s.id.clone()).collect()
    }

    pub fn spec(&self, id: &str) -> Result<&ModelSpec> {
        self.specs
            .iter()
            .find(|s| s.id == id && s.kind == Kind::Chat)
            .ok_or_else(|| LocalError::UnknownModel { id: id.into(), known: self.chat_ids() })
    }

    /// The chat model `id`, loading it on first use (later callers share it).
    pub fn chat_model(&self, id: &str) -> Result<Arc<ChatModel>> {
        let spec = self.spec(id)?;
        // Holding the map lock while loading makes concurrent first uses load once (and
        // llama.cpp contexts must not be created in parallel).
        let mut loaded = self.chat.lock();
        if let Some(m) = loaded.get(id) {
            return Ok(m.clone());
        }
        let model = Arc::new(ChatModel::load(spec, self.options)?);
        loaded.insert(id.to_string(), model.clone());
        Ok(model)
    }

    /// The chat model `id` if it is already loaded (no loading here).
    pub fn loaded(&self, id: &str) -> Option<Arc<ChatModel>> {
        self.chat.lock().get(id).cloned()
    }

    /// `cell`'s value, loaded by `load` on first use; concurrent first uses load once.
    fn once<T>(&self, cell: &OnceLock<Arc<T>>, load: impl FnOnce() -> Result<T>) -> Result<Arc<T>> {
        if let Some(v) = cell.get() {
            return Ok(v.clone());
        }
        let _guard = self.embedder_load.lock();
        if let Some(v) = cell.get() {
            return Ok(v.clone());
        }
        let v = Arc::new(load()?);
        let _ = cell.set(v.clone());
        Ok(v)
    }

    /// The sentence embedder, loaded on first use.
    pub fn embedder(&self) -> Result<Arc<Embedder>> {
        self.once(&self.embedder, || {
            let spec = self
                .specs
                .iter()
                .find(|s| s.kind == Kind::Embedder)
                .ok_or_else(|| LocalError::UnknownModel { id: EMBEDDER_ID.into(), known: self.chat_ids() })?;
            Embedder::load(&spec.file)
        })
    }

    /// What computes router features of the family `kind`: MiniLM or the prompt reader.
    pub fn feature_embedder(
        &self,
        kind: conductor_core::embedder::EmbedderKind,
    ) -> Result<Arc<dyn conductor_core::embedder::TextEmbedder>> {
        Ok(match kind {
            conductor_core::embedder::EmbedderKind::MiniLm => self.embedder()?,
            conductor_core::embedder::EmbedderKind::SmolLm => self.prompt_reader()?,
        })
    }

    /// The prompt reader: the smallest chat model of the manifest (the first), loaded on
    /// first use.
    pub fn prompt_reader(&self) -> Result<Arc<PromptReader>> {
        self.once(&self.reader, || {
            let spec = self
                .specs
                .iter()
                .find(|s| s.kind == Kind::Chat)
                .ok_or_else(|| LocalError::UnknownModel { id: "a chat model".into(), known: self.chat_ids() })?;
            PromptReader::load(spec, self.options.threads)
        })
    }
}
