//! The model library: the default specs rooted at a models directory, each model loaded
//! on first use and shared afterwards.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::chat_model::ChatModel;
use crate::embed::Embedder;
use crate::error::{LocalError, Result};
use crate::spec::{default_specs, Arch, ModelSpec};

/// Environment variable naming the models directory.
pub const MODELS_ENV: &str = conductor_core::install::MODELS_ENV;

/// The embedded model library.
pub struct Library {
    dir: PathBuf,
    specs: Vec<ModelSpec>,
    chat: Mutex<HashMap<String, Arc<ChatModel>>>,
    embedder: OnceLock<Arc<Embedder>>,
    embedder_load: Mutex<()>,
}

impl Library {
    /// The default library in `models_dir`. Cheap: nothing is loaded until used.
    pub fn open(models_dir: impl Into<PathBuf>) -> Self {
        let dir = models_dir.into();
        Self {
            specs: default_specs(&dir),
            dir,
            chat: Mutex::new(HashMap::new()),
            embedder: OnceLock::new(),
            embedder_load: Mutex::new(()),
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
        self.specs.iter().filter(|s| s.arch != Arch::Bert).map(|s| s.id.clone()).collect()
    }

    pub fn spec(&self, id: &str) -> Result<&ModelSpec> {
        self.specs
            .iter()
            .find(|s| s.id == id && s.arch != Arch::Bert)
            .ok_or_else(|| LocalError::UnknownModel { id: id.into(), known: self.chat_ids() })
    }

    /// The chat model `id`, loading it on first use (later callers share it).
    pub fn chat_model(&self, id: &str) -> Result<Arc<ChatModel>> {
        let spec = self.spec(id)?;
        // Holding the map lock while loading makes concurrent first uses load once.
        let mut loaded = self.chat.lock();
        if let Some(m) = loaded.get(id) {
            return Ok(m.clone());
        }
        let model = Arc::new(ChatModel::load(spec)?);
        loaded.insert(id.to_string(), model.clone());
        Ok(model)
    }

    /// The sentence embedder, loaded on first use.
    pub fn embedder(&self) -> Result<Arc<Embedder>> {
        if let Some(e) = self.embedder.get() {
            return Ok(e.clone());
        }
        let _guard = self.embedder_load.lock();
        if let Some(e) = self.embedder.get() {
            return Ok(e.clone());
        }
        let spec = self
            .specs
            .iter()
            .find(|s| s.arch == Arch::Bert)
            .ok_or_else(|| LocalError::UnknownModel { id: crate::spec::EMBEDDER_ID.into(), known: self.chat_ids() })?;
        let e = Arc::new(Embedder::load(&spec.file)?);
        let _ = self.embedder.set(e.clone());
        Ok(e)
    }
}
