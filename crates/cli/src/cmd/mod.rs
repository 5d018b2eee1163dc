//! One file per subcommand group; each only parses arguments and prints results.

pub mod agent;
#[cfg(feature = "local")]
pub mod agent_eval;
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
#[cfg(feature = "local")]
pub mod signals;
pub mod store;

use std::sync::Arc;

use conductor_core::embedder::TextEmbedder;
use conductor_core::features::FeatureKind;

/// What computes `kind`'s embedding block from the model library (MiniLM, or the smallest
/// chat model reading the prompt); none when the kind has no such block.
#[cfg(feature = "local")]
pub fn embedder(kind: FeatureKind) -> anyhow::Result<Option<Arc<dyn TextEmbedder>>> {
    use anyhow::Context;
    let Some(family) = kind.embedder() else { return Ok(None) };
    let lib = conductor_local::Library::from_env();
    let e =
        lib.feature_embedder(family).with_context(|| format!("`{kind}` features need the {} model", family.name()))?;
    Ok(Some(e))
}

/// Without the local engine there is no embedder: say so instead of failing obscurely.
#[cfg(not(feature = "local"))]
pub fn embedder(kind: FeatureKind) -> anyhow::Result<Option<Arc<dyn TextEmbedder>>> {
    match kind.embedder() {
        None => Ok(None),
        Some(family) => anyhow::bail!(
            "`{kind}` features need the {} model of the local engine: this conductor was built without the `local` feature",
            family.name()
        ),
    }
}
