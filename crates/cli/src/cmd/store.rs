//! `conductor store migrate|check`: the books' schema and soundness, for operators. `serve`
//! migrates at start-up anyway; `migrate` does it ahead of a deployment, `check` reports
//! without changing anything and exits non-zero when something needs attention. With a
//! shared store (`[store] url` in the config, or `--store-url`) both also cover PostgreSQL.

use anyhow::Context;
use conductor_gateway::books::{check, migrations, open_connection};
use conductor_gateway::Config;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct StoreArgs {
    /// The books file (default: the config's `books.path`, else out/books.sqlite).
    #[arg(long, global = true)]
    pub books: Option<PathBuf>,
    /// The server's TOML config, to find its books (and its shared store).
    #[arg(short, long, global = true)]
    pub config: Option<PathBuf>,
    /// A shared PostgreSQL store to migrate or check as well (default: the config's `store.url`).
    #[arg(long, global = true)]
    pub store_url: Option<String>,
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
    let config = match &args.config {
        Some(c) => Config::load(c)?,
        None => Config::default(),
    };
    let path = args.books.clone().unwrap_or_else(|| config.books.path.clone());
    let shared = match &args.store_url {
        Some(u) => Some(u.clone()),
        None => config.store.resolved_url().map_err(anyhow::Error::msg)?,
    };
    books(&args.command, &path)?;
    if let Some(url) = shared {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(shared_store(&args.command, &url, &config))?;
    }
    Ok(())
}

/// The same for the shared PostgreSQL store.
async fn shared_store(command: &StoreCommand, url: &str, config: &Config) -> anyhow::Result<()> {
    use conductor_gateway::store::{check, connect, schema};
    let timeout = std::time::Duration::from_millis(config.store.timeout_ms);
    let (mut client, _) = connect(url, timeout).await?;
    match command {
        StoreCommand::Migrate => {
            let before = schema::current(&client).await?;
            let applied = schema::apply(&mut client).await?;
            if applied.is_empty() {
                println!("shared store: already at schema version {before}");
            } else {
                println!("shared store: schema version {before} → {}", schema::latest());
                for m in schema::MIGRATIONS.iter().filter(|m| m.version > before) {
                    println!("  {:>2}  {}", m.version, m.name);
                }
            }
        }
        StoreCommand::Check { json } => {
            let r = check::check(&client, config.store.replica_timeout_ms as i64).await?;
            if *json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("shared store schema version {} (this conductor: {})", r.schema_version, r.latest_version);
                println!("decisions    {}", r.decisions);
                println!("feedback     {}", r.feedback);
                println!("budgets      {} accounts, {} open reservations", r.budget_accounts, r.open_reservations);
                println!("replicas     {} live", r.live_replicas);
                for p in &r.problems {
                    println!("PROBLEM      {p}");
                }
            }
            anyhow::ensure!(r.problems.is_empty(), "{} problem(s) in the shared store", r.problems.len());
        }
    }
    Ok(())
}

/// Migrates or checks the books (SQLite).
fn books(command: &StoreCommand, path: &std::path::Path) -> anyhow::Result<()> {
    let path = path.to_path_buf();
    match *command {
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
