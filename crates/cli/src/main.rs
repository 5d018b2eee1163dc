//! `conductor`: a thin command line over the library crates. Each subcommand lives in
//! its own file under `cmd/` and only parses arguments and prints results.

mod cmd;

use clap::{Parser, Subcommand};
use std::io::IsTerminal;

#[derive(Parser)]
#[command(
    name = "conductor",
    version,
    about = "Route every LLM request to the cheapest model that will answer it well"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the embedded model library (id, architecture, size, present or missing).
    #[cfg(feature = "local")]
    Models(cmd::local::ModelsArgs),
    /// Chat with one library model; streams the answer to the terminal.
    #[cfg(feature = "local")]
    Chat(cmd::local::ChatArgs),
    /// Print sentence embeddings (all-MiniLM-L6-v2) for the given texts.
    #[cfg(feature = "local")]
    Embed(cmd::local::EmbedArgs),
    /// Serve the OpenAI-compatible gateway (routes `model: "auto"` to the cheapest model predicted to answer well).
    Serve(cmd::serve::ServeArgs),
    /// Query the gateway's books: recent decisions, spend, savings, export for retraining.
    Logs(cmd::logs::LogsArgs),
    /// The books' schema and soundness: `migrate` ahead of a deployment, `check` (read-only).
    Store(cmd::store::StoreArgs),
    /// Run library models on benchmark prompts (GSM8K, HumanEval), score the answers, append records.
    #[cfg(feature = "local")]
    Collect(cmd::collect::CollectArgs),
    /// Add answer signals to collected records: a judge model's P("yes"), code answers run on their docstring examples.
    #[cfg(feature = "local")]
    Signals(cmd::signals::SignalsArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
    /// The router lab: convert benchmark data, evaluate, train, benchmark routers.
    #[command(subcommand)]
    Lab(cmd::lab::LabCommand),
    /// Predict every model's success and cost for a prompt and show the routing decision.
    Route(cmd::route::RouteArgs),
    /// Agents whose every step goes to the cheapest capable model: run, resume, log, list.
    Agent(cmd::agent::AgentArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // `CONDUCTOR_LOG` takes tracing's filter syntax (e.g. `info`, `warn,access=off`). By
    // default only warnings, plus the access log (one line per request) when serving.
    let default = if matches!(cli.command, Command::Serve(_)) { "warn,access=info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CONDUCTOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        #[cfg(feature = "local")]
        Command::Models(a) => cmd::local::models(a),
        #[cfg(feature = "local")]
        Command::Chat(a) => cmd::local::chat(a),
        #[cfg(feature = "local")]
        Command::Embed(a) => cmd::local::embed(a),
        #[cfg(feature = "local")]
        Command::Collect(a) => cmd::collect::run(a),
        #[cfg(feature = "local")]
        Command::Signals(a) => cmd::signals::run(a),
        Command::Bench(c) => cmd::bench::run(c),
        Command::Lab(c) => cmd::lab::run(c),
        Command::Route(a) => cmd::route::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Logs(a) => cmd::logs::run(a),
        Command::Store(a) => cmd::store::run(a),
        Command::Agent(a) => cmd::agent::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
