//! `conductor bench …`: the local library's speed and memory, and the gateway's overhead.

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Speed and memory of the embedded model library.
    #[cfg(feature = "local")]
    Local(super::bench_local::LocalBenchArgs),
    /// Gateway overhead (p50/p99 added latency, throughput) vs. the LiteLLM proxy.
    Gateway(super::bench_gateway::GatewayBenchArgs),
}

pub fn run(c: BenchCommand) -> anyhow::Result<()> {
    match c {
        #[cfg(feature = "local")]
        BenchCommand::Local(a) => super::bench_local::run(a),
        BenchCommand::Gateway(g) => super::bench_gateway::run(g),
    }
}
