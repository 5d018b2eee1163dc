//! `conductor route "prompt"`: per-model predicted success and cost, and the policy's
//! choice with its reason. Defaults are `conductor serve`'s (the shipped router, the
//! gateway's default policy), so it previews what `model: "auto"` will do.

use clap::Args;
use conductor_core::install;
use conductor_core::policy::{decide, Constraints, Policy};
use conductor_core::router::Router;
use std::path::PathBuf;

#[derive(Args)]
pub struct RouteArgs {
    /// Router artifact from `conductor lab train` (default: the router `conductor serve` uses
    /// for the local library, routers/local.router of the installation).
    #[arg(long)]
    router: Option<PathBuf>,
    /// quality, cost[:λ] or threshold[:τ] (default: what `auto` means in `conductor serve`).
    #[arg(long)]
    policy: Option<Policy>,
    /// Abstain when no model's predicted success reaches this.
    #[arg(long)]
    min_quality: Option<f64>,
    /// Do not choose models whose estimated cost exceeds this (USD).
    #[arg(long)]
    max_cost: Option<f64>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// The prompt to route.
    prompt: String,
}

pub fn run(a: RouteArgs) -> anyhow::Result<()> {
    let path = a.router.clone().unwrap_or_else(|| install::shipped(conductor_gateway::DEFAULT_LOCAL_ROUTER));
    let router = Router::load(&path)?;
    let policy = a.policy.clone().unwrap_or_else(|| conductor_gateway::config::PolicyConfig::default().default);
    let embedder = super::embedder(router.feature_kind())?;
    let tokens = conductor_core::tokens::estimate_tokens(&a.prompt);
    let features = router.featurize(&a.prompt, embedder.as_deref())?;
    let preds = router.predict(&features, tokens);
    let c = Constraints { max_cost_usd: a.max_cost, min_quality: a.min_quality, allowed_models: None };
    let d = decide(&preds, &policy, &c);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "predictions": preds, "decision": d }))?);
        return Ok(());
    }
    println!("{:<44} {:>9} {:>12}", "model", "p_success", "est. cost $");
    for p in &preds {
        println!("{:<44} {:>9.3} {:>12.6}", p.model, p.p_success, p.est_cost_usd);
    }
    match &d.chosen {
        Some(m) => println!("choice: {m} — {}", d.reason),
        None => println!("choice: none (abstain) — {}", d.reason),
    }
    println!("fallback order: {}", d.ranked.join(" > "));
    Ok(())
}
