//! `conductor serve`: the OpenAI-compatible gateway. With no config it serves the local
//! model library behind the cold-start router, open access, books in `out/books.sqlite`.

use anyhow::Context;
use conductor_gateway::Config;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// TOML config (models, router, policy, keys, books, limits). Default: built-in.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Address to listen on (overrides `server.listen`); port 0 picks a free port.
    #[arg(long)]
    pub listen: Option<String>,
    /// SQLite books file (overrides `books.path`).
    #[arg(long)]
    pub books: Option<PathBuf>,
    /// Directory of the local model library (overrides `local.models_dir`).
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(l) = args.listen {
        config.server.listen = l
            .parse()
            .map_err(|_| anyhow::anyhow!("--listen {l}: expected host:port with a numeric IP, e.g. 127.0.0.1:8080"))?;
    }
    if let Some(b) = args.books {
        config.books.path = b;
    }
    if let Some(d) = args.models_dir {
        config.local.models_dir = Some(d);
    }
    config.validate().map_err(|m| anyhow::anyhow!("invalid settings: {m}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    let result = rt.block_on(conductor_gateway::serve(config, conductor_gateway::shutdown_signal(), |addr| {
        // Tests and scripts read this line to find the port.
        let mut out = std::io::stdout();
        let _ = writeln!(out, "conductor listening on http://{addr}");
        let _ = out.flush();
    }));
    // The books are flushed inside `serve`; do not wait on stragglers past the grace period.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}
