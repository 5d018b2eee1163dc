//! One file per subcommand group; each only parses arguments and prints results.

pub mod bench;
pub mod bench_gateway;
pub mod collect;
pub mod lab;
pub mod local;
pub mod logs;
pub mod route;
pub mod serve;

use std::sync::Arc;

/// The sentence embedder used for router features (all-MiniLM-L6-v2 from the model library).
pub fn embedder() -> anyhow::Result<Arc<dyn conductor_core::embedder::TextEmbedder>> {
    let lib = conductor_local::Library::from_env();
    Ok(lib.embedder()?)
}
