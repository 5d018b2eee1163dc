//! One file per subcommand group; each only parses arguments and prints results.

pub mod bench;
pub mod bench_gateway;
#[cfg(feature = "local")]
pub mod bench_local;
#[cfg(feature = "local")]
pub mod collect;
#[cfg(feature = "local")]
pub mod collect_remote;
pub mod lab;
#[cfg(feature = "local")]
pub mod local;
pub mod logs;
pub mod route;
pub mod serve;

use std::sync::Arc;

/// The sentence embedder used for router features (all-MiniLM-L6-v2 from the model library).
#[cfg(feature = "local")]
pub fn embedder() -> anyhow::Result<Arc<dyn conductor_core::embedder::TextEmbedder>> {
    let lib = conductor_local::Library::from_env();
    Ok(lib.embedder()?)
}

/// Without the local engine there is no MiniLM: say so instead of failing obscurely.
#[cfg(not(feature = "local"))]
pub fn embedder() -> anyhow::Result<Arc<dyn conductor_core::embedder::TextEmbedder>> {
    anyhow::bail!("MiniLM features need the local engine: this conductor was built without the `local` feature")
}
