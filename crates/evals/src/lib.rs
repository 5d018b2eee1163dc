//! conductor-evals: offline benchmarks with automatic scoring, and the collector that runs
//! library models on them and appends the outcomes as records (the router's training data).

pub mod collect;
pub mod score;
pub mod signals;
pub mod tasks;
pub mod template;
