//! conductor-core: the learning core. Records, catalogue, features, predictors,
//! calibration, policies and metrics. It knows nothing about HTTP or model runtimes;
//! sentence embeddings come in through the [`embedder::TextEmbedder`] trait.
//!
//! Data flow: [`records`] (JSONL outcomes) → [`dataset`] (prompt × model score matrix)
//! → [`features`] → [`predictors`] → [`calibration`] → [`router::Router`] → [`policy`].
//! [`metrics`] and [`split`] serve the evaluation lab.

pub mod calibration;
pub mod catalog;
pub mod dataset;
pub mod distill;
pub mod embedder;
pub mod features;
pub mod install;
pub mod jsonl;
pub mod metrics;
pub mod policy;
pub mod predictors;
pub mod records;
pub mod risk;
pub mod router;
pub mod signals;
pub mod split;
pub mod tokens;
pub mod verifiers;
pub mod verify;
