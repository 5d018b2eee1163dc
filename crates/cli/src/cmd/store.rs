//! `conductor store migrate|check`: the books' schema and soundness, for operators. `serve`
//! migrates at start-up anyway; `migrate` does it ahead of a deployment, `check` reports
//! without changing anything and exits non-zero when something needs attention.

use anyhow::Context;
use conductor_gateway::books::{check, migrations, open_connection};
use conductor_gateway::Config;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct StoreArgs {
    /// The books file (default: the config's `books.path`, else out/books.sqlite).
    #[arg(long, global = true)]
    pub books: Option<PathBuf>,
    /// The server's TOML config, to find its books.
    #[arg(short, long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: StoreCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum StoreCommand {
    /// Bring the books to this conductor's schema (numbered, recorded migrations).
    Migrate,
    /// Integrity, schema version, counts, and whether the rollups agree with the decisions.
    Check {
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: StoreArgs) -> anyhow::Result<()> {
    let path = match (&args.books, &args.config) {
        (Some(p), _) => p.clone(),
        (None, Some(c)) => Config::load(c)?.books.path,
        (None, None) => Config::default().books.path,
    };
    match args.command {
        StoreCommand::Migrate => {
            let before = migrations::version_of(&path)?;
            open_connection(&path).with_context(|| format!("migrating {}", path.display()))?;
            let latest = migrations::latest();
            if before == latest {
                println!("{}: already at schema version {latest}", path.display());
            } else {
                println!("{}: schema version {before} → {latest}", path.display());
                for m in migrations::MIGRATIONS.iter().filter(|m| m.version > before) {
                    println!("  {:>2}  {}", m.version, m.name);
                }
            }
            Ok(())
        }
        StoreCommand::Check { json } => {
            let r = check::check(&path)?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("books        {}", path.display());
                println!("schema       version {} (this conductor: {})", r.schema_version, r.latest_version);
                println!("integrity    {}", r.integrity);
                println!("decisions    {}", r.decisions);
                println!("feedback     {}", r.feedback);
                println!("rollups      {} decisions still to fold in (done at the next start)", r.not_rolled_up);
                for p in &r.problems {
                    println!("PROBLEM      {p}");
                }
            }
            anyhow::ensure!(r.problems.is_empty(), "{} problem(s) in {}", r.problems.len(), path.display());
            Ok(())
        }
    }
}
