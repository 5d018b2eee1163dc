//! The embedded model library as the gateway sees it: one seam, behind the cargo feature
//! `local` (on by default), so that a gateway for remote models only builds without the
//! C++ engine or candle. Without the feature every entry point says so clearly.

use crate::config::LocalConfig;
use conductor_core::catalog::{Catalog, Tier};
use conductor_core::embedder::TextEmbedder;
use conductor_providers::Provider;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One chat model of the library, as the registry needs it.
pub struct LocalModel {
    pub id: String,
    pub tier: Tier,
    pub context_length: usize,
    pub params: u64,
    pub present: bool,
}

#[cfg(feature = "local")]
mod imp {
    use super::*;
    use conductor_local::{EngineOptions, Kind, Library, LocalProvider};

    pub use conductor_local::{DEFAULT_MAX_TOKENS, EMBEDDER_ID};

    /// The library and its provider.
    pub struct Local {
        library: Arc<Library>,
    }

    /// Opens the library (nothing is loaded until used).
    pub fn open(cfg: &LocalConfig) -> anyhow::Result<Local> {
        let defaults = EngineOptions::default();
        let options = EngineOptions {
            parallel: cfg.parallel.max(1),
            max_waiting: cfg.max_queue,
            threads: if cfg.threads == 0 { defaults.threads } else { cfg.threads },
        };
        let dir = cfg.models_dir.clone().unwrap_or_else(conductor_core::install::models_dir);
        Ok(Local { library: Arc::new(Library::with_options(dir, options)) })
    }

    impl Local {
        pub fn provider(&self) -> Arc<dyn Provider> {
            Arc::new(LocalProvider::new(self.library.clone()))
        }

        pub fn dir(&self) -> &Path {
            self.library.dir()
        }

        pub fn chat_ids(&self) -> Vec<String> {
            self.library.chat_ids()
        }

        pub fn models(&self) -> Vec<LocalModel> {
            self.library
                .specs()
                .iter()
                .filter(|s| s.kind == Kind::Chat)
                .map(|s| LocalModel {
                    id: s.id.clone(),
                    tier: s.tier.unwrap_or_default(),
                    context_length: s.context_length,
                    params: s.params,
                    present: s.present(),
                })
                .collect()
        }

        /// What computes router features of the family `kind` (MiniLM or the prompt
        /// reader), loaded on first use.
        pub fn feature_embedder(
            &self,
            kind: conductor_core::embedder::EmbedderKind,
        ) -> anyhow::Result<Arc<dyn TextEmbedder>> {
            Ok(self.library.feature_embedder(kind)?)
        }

        /// Embeds `texts` (blocking): the vectors and the tokens read.
        pub fn embed(&self, texts: &[&str]) -> anyhow::Result<(Vec<Vec<f32>>, usize)> {
            let e = self.library.embedder()?;
            Ok((e.embed(texts)?, e.token_counts(texts)?.iter().sum()))
        }
    }

    pub fn library_chat_ids() -> Vec<String> {
        conductor_local::library_chat_ids()
    }

    /// The library's price catalogue, from its manifest.
    pub fn catalog() -> Catalog {
        conductor_local::catalog()
    }
}

#[cfg(not(feature = "local"))]
mod imp {
    use super::*;

    pub const EMBEDDER_ID: &str = "all-MiniLM-L6-v2";
    /// Never used without the engine (no local model can be configured).
    pub const DEFAULT_MAX_TOKENS: u32 = 512;
    const MISSING: &str = "this conductor was built without the local engine (cargo feature `local`)";

    pub enum Local {}

    pub fn open(_cfg: &LocalConfig) -> anyhow::Result<Local> {
        anyhow::bail!("{MISSING}; set `local.enabled = false` and serve remote [[models]]")
    }

    impl Local {
        pub fn provider(&self) -> Arc<dyn Provider> {
            match *self {}
        }
        pub fn dir(&self) -> &Path {
            match *self {}
        }
        pub fn chat_ids(&self) -> Vec<String> {
            match *self {}
        }
        pub fn models(&self) -> Vec<LocalModel> {
            match *self {}
        }
        pub fn feature_embedder(
            &self,
            _kind: conductor_core::embedder::EmbedderKind,
        ) -> anyhow::Result<Arc<dyn TextEmbedder>> {
            match *self {}
        }
        pub fn embed(&self, _texts: &[&str]) -> anyhow::Result<(Vec<Vec<f32>>, usize)> {
            match *self {}
        }
    }

    pub fn library_chat_ids() -> Vec<String> {
        Vec::new()
    }

    pub fn catalog() -> Catalog {
        Catalog::default()
    }
}

pub use imp::*;

/// The models directory a config points at (for error messages).
pub fn models_dir(cfg: &LocalConfig) -> PathBuf {
    cfg.models_dir.clone().unwrap_or_else(conductor_core::install::models_dir)
}
