//! `conductor logs`: read the gateway's books — recent decisions, spend per key or model,
//! savings versus always using the largest model, and an export of feedback as records
//! (the JSONL format the lab trains on). Times are UTC; `--since` narrows any of them.

use conductor_core::jsonl::Appender;
use conductor_core::records::Record;
use conductor_gateway::books::{Reader, SpendBy};
use conductor_gateway::clock::{format_utc, now_ms, parse_since};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// SQLite books file written by `conductor serve`.
    #[arg(long, default_value = "out/books.sqlite", global = true)]
    pub books: PathBuf,
    /// Only rows since then: a duration back from now (90s, 30m, 2h, 7d, 2w) or a UTC date
    /// or time (2026-11-29, 2026-11-29T07:00:00).
    #[arg(long, global = true)]
    pub since: Option<String>,
    #[command(subcommand)]
    pub command: LogsCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum LogsCommand {
    /// The most recent decisions (one JSON object per line with --json).
    Recent {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Requests, tokens and spend per API key or per model.
    Spend {
        #[arg(long, value_enum, default_value = "model")]
        by: By,
    },
    /// For requests the router decided (`auto`): actual spend versus the same tokens at the
    /// largest model's price.
    Savings,
    /// Feedback joined with its decisions, as records JSONL for retraining; with
    /// --distill, chat fine-tuning JSONL of verified answers that replaced a smaller
    /// model's failed or untrusted one.
    Export {
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Distillation data instead of feedback records (see `conductor_core::distill`).
        #[arg(long)]
        distill: bool,
        /// With --distill: read collected records (`conductor collect`) instead of the
        /// books — a prompt some model failed, answered by a dearer model that got it right.
        #[arg(long, requires = "distill")]
        records: Option<PathBuf>,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum By {
    Key,
    Model,
}

pub fn run(args: LogsArgs) -> anyhow::Result<()> {
    if let LogsCommand::Export { out, distill: true, records: Some(records) } = &args.command {
        let rows = conductor_core::distill::from_records(&conductor_core::records::read_jsonl(records)?);
        return write_all(out.as_deref(), &rows, "distillation rows");
    }
    if !args.books.is_file() {
        anyhow::bail!("no books at {} (start `conductor serve` first, or pass --books)", args.books.display());
    }
    let since = match &args.since {
        Some(s) => parse_since(s, now_ms()).map_err(|e| anyhow::anyhow!("--since: {e}"))?,
        None => 0,
    };
    let r = Reader::open(&args.books)?;
    let mut out = std::io::stdout().lock();
    match args.command {
        LogsCommand::Recent { limit, json } => {
            let rows = r.recent(limit, since)?;
            if json {
                for d in rows {
                    writeln!(out, "{}", serde_json::to_string(&d)?)?;
                }
                return Ok(());
            }
            writeln!(
                out,
                "{:<19}  {:<32}  {:<12}  {:<18}  {:<20}  {:<19}  {:>11}  {:>10}  {:>9}  reason",
                "time (UTC)", "decision", "key", "requested", "model", "outcome", "tokens", "cost $", "latency"
            )?;
            for d in rows {
                writeln!(
                    out,
                    "{:<19}  {:<32}  {:<12}  {:<18}  {:<20}  {:<19}  {:>11}  {:>10.6}  {:>7.0}ms  {}",
                    format_utc(d.ts_ms),
                    d.id,
                    d.key_id,
                    d.requested_model,
                    d.chosen_model.as_deref().unwrap_or("-"),
                    outcome(&d),
                    format!("{}+{}", d.prompt_tokens, d.completion_tokens),
                    d.cost_usd,
                    d.latency_ms,
                    d.reason,
                )?;
            }
        }
        LogsCommand::Spend { by } => {
            let rows = r.spend_by(
                match by {
                    By::Key => SpendBy::Key,
                    By::Model => SpendBy::Model,
                },
                since,
            )?;
            writeln!(
                out,
                "{:<28} {:>9} {:>12} {:>12} {:>14}",
                "group", "requests", "prompt_tok", "compl_tok", "cost_usd"
            )?;
            for g in rows {
                writeln!(
                    out,
                    "{:<28} {:>9} {:>12} {:>12} {:>14.6}",
                    g.group, g.requests, g.prompt_tokens, g.completion_tokens, g.cost_usd
                )?;
            }
        }
        LogsCommand::Savings => {
            let (n, cost, baseline) = r.savings(since)?;
            let saved = baseline - cost;
            let pct = if baseline > 0.0 { 100.0 * saved / baseline } else { 0.0 };
            writeln!(out, "requests routed by `auto`:   {n}")?;
            writeln!(out, "actual cost:                 ${cost:.6}")?;
            writeln!(out, "always-largest-model cost:   ${baseline:.6}")?;
            writeln!(out, "saved:                       ${saved:.6} ({pct:.1}%)")?;
        }
        LogsCommand::Export { out: path, distill: true, .. } => {
            write_all(path.as_deref(), &r.distill(since)?, "distillation rows")?;
        }
        LogsCommand::Export { out: path, .. } => {
            let mut w = match &path {
                Some(p) => Appender::create(p)?,
                None => Appender::stdout(),
            };
            let mut n = 0;
            for f in r.feedback()?.into_iter().filter(|f| f.ts_ms >= since) {
                let (Some(prompt), Some(model)) = (f.prompt, f.model) else { continue };
                w.push(&Record {
                    prompt_id: format!("gateway/{}", f.decision_id),
                    dataset: "gateway".into(),
                    prompt,
                    model,
                    score: f.score,
                    prompt_tokens: Some(f.prompt_tokens as usize),
                    completion_tokens: Some(f.completion_tokens as usize),
                    cost_usd: Some(f.cost_usd),
                    latency_ms: Some(f.latency_ms),
                    ..Default::default()
                })?;
                n += 1;
            }
            w.finish()?;
            if path.is_some() {
                eprintln!("exported {n} records");
            }
        }
    }
    Ok(())
}

/// Writes JSONL rows to `path` (or stdout), saying how many when writing a file.
fn write_all<T: serde::Serialize>(path: Option<&std::path::Path>, rows: &[T], what: &str) -> anyhow::Result<()> {
    let mut w = match path {
        Some(p) => Appender::create(p)?,
        None => Appender::stdout(),
    };
    for r in rows {
        w.push(r)?;
    }
    w.finish()?;
    if path.is_some() {
        eprintln!("exported {} {what}", rows.len());
    }
    Ok(())
}

/// The outcome, with whether a checked answer was verified (`ok·verified`).
fn outcome(d: &conductor_gateway::books::DecisionRow) -> String {
    match &d.verification {
        Some(v) if d.outcome == "ok" => {
            format!("ok·{}", if v["verified"] == true { "verified" } else { "unverified" })
        }
        _ => d.outcome.clone(),
    }
}
