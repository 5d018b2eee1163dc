//! The seed-experiment report: on held-out prompts, each model alone, the router over the
//! whole library, the router over the smaller models only, random and oracle — quality, mean
//! cost, mean latency and the share sent to the largest model — and whether the router
//! beats the largest model alone within a cap on the calls it sends there.

use crate::eval::{EvalReport, ValidatedPoint};
use conductor_core::metrics::OperatingPoint;
use conductor_core::policy::DEFAULT_TAU;
use serde::Serialize;
use std::fmt::Write;

/// The claim's cap on the share of requests sent to the largest model.
pub const CLAIM_SHARE_CAP: f64 = 0.6;

/// One row of the report table.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    pub policy: String,
    pub quality: f64,
    pub cost_usd: f64,
    /// Mean latency per prompt (ms): the answering model's measured latency, plus the
    /// router's own decision time on router rows.
    pub latency_ms: Option<f64>,
    /// Share of prompts sent to the largest model of the whole library.
    pub largest_share: f64,
    /// Whether the policy's knob was chosen without looking at the test prompts.
    pub validated: bool,
}

/// How the router over the whole library stands against the largest model alone.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimCheck {
    pub largest: String,
    pub largest_quality: f64,
    /// The validated router row with the best quality among those within the share cap.
    pub best_within_cap: Option<ReportRow>,
    /// Quality ≥ the largest alone, ≤ cap of calls to it, lower mean cost and latency.
    pub holds: bool,
    /// For reference only (chosen on test prompts, so optimistic): the best point of the
    /// λ sweep within the cap.
    pub best_sweep_point_within_cap: Option<OperatingPoint>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedReport {
    pub prompts: usize,
    pub protocol: String,
    pub predictor: String,
    pub features: String,
    pub hyperparameters_full: Vec<String>,
    pub hyperparameters_small: Vec<String>,
    pub rows: Vec<ReportRow>,
    pub claim: ClaimCheck,
}

fn to_row(policy: String, p: &OperatingPoint, largest_share: f64, decision_ms: f64, validated: bool) -> ReportRow {
    ReportRow {
        policy,
        quality: p.quality,
        cost_usd: p.cost,
        latency_ms: p.latency_ms.map(|l| l + decision_ms),
        largest_share,
        validated,
    }
}

fn share_label(v: &ValidatedPoint) -> String {
    format!("≤ {:.0}% to the largest, λ set on validation", 100.0 * v.target_share)
}

/// Builds the report from an evaluation over the whole library (`full`) and one over the
/// smaller models only (`small`), both on the same prompts with the same protocol.
pub fn build(full: &EvalReport, small: &EvalReport) -> anyhow::Result<SeedReport> {
    anyhow::ensure!(
        full.prompts == small.prompts && full.protocol == small.protocol,
        "the two evaluations must use the same prompts and protocol ({} prompts, {} vs {} prompts, {})",
        full.prompts,
        full.protocol,
        small.prompts,
        small.protocol
    );
    let largest = full.models[full.strong].clone();
    let mut rows = Vec::new();
    for (m, p) in full.models.iter().zip(&full.singles) {
        rows.push(to_row(format!("`{m}` alone"), p, p.strong_share, 0.0, true));
    }
    rows.push(to_row("random (uniform over the three)".into(), &full.random, full.random.strong_share, 0.0, true));
    rows.push(to_row("oracle (best per prompt, cheapest on ties)".into(), &full.oracle, full.oracle.strong_share, 0.0, true));
    let d = full.decision_ms;
    rows.push(to_row("router over all: max quality".into(), &full.max_quality, full.max_quality.strong_share, d, true));
    let t = &full.default_threshold;
    rows.push(to_row(format!("router over all: threshold τ = {DEFAULT_TAU} (what `auto` does by default)"), t, t.strong_share, d, true));
    for b in &full.budgeted {
        rows.push(to_row(format!("router over all: {}", share_label(b)), &b.test, b.test.strong_share, d, true));
    }
    let small_names = small.models.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(" + ");
    rows.push(to_row(format!("router over {small_names}: max quality"), &small.max_quality, 0.0, small.decision_ms, true));
    rows.push(to_row(format!("oracle over {small_names}"), &small.oracle, 0.0, 0.0, true));

    let q_largest = full.singles[full.strong].quality;
    let (c_largest, l_largest) = (full.singles[full.strong].cost, full.singles[full.strong].latency_ms);
    let best_within_cap = rows
        .iter()
        .filter(|r| r.policy.starts_with("router over all") && r.largest_share <= CLAIM_SHARE_CAP + 1e-12)
        .max_by(|a, b| a.quality.total_cmp(&b.quality).then(b.cost_usd.total_cmp(&a.cost_usd)))
        .cloned();
    let holds = best_within_cap.as_ref().is_some_and(|r| {
        r.quality >= q_largest - 1e-12
            && r.cost_usd < c_largest
            && match (r.latency_ms, l_largest) {
                (Some(a), Some(b)) => a < b,
                _ => false,
            }
    });
    let best_sweep_point_within_cap = full
        .router_points
        .iter()
        .filter(|p| p.strong_share <= CLAIM_SHARE_CAP + 1e-12)
        .max_by(|a, b| a.quality.total_cmp(&b.quality).then(b.cost.total_cmp(&a.cost)))
        .copied();
    Ok(SeedReport {
        prompts: full.test_prompts,
        protocol: full.protocol.clone(),
        predictor: full.predictor.clone(),
        features: full.features.clone(),
        hyperparameters_full: full.hyperparameters.clone(),
        hyperparameters_small: small.hyperparameters.clone(),
        rows,
        claim: ClaimCheck { largest, largest_quality: q_largest, best_within_cap, holds, best_sweep_point_within_cap },
    })
}

fn fmt_latency(l: Option<f64>) -> String {
    l.map_or("–".into(), |ms| format!("{:.2}", ms / 1e3))
}

/// The report as Markdown: the table, then the verdict on the claim.
pub fn render(r: &SeedReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} held-out prompts ({}); {} predictor, {} features. Hyper-parameters chosen on each fold's validation prompts: {}.\n",
        r.prompts,
        r.protocol,
        r.predictor,
        r.features,
        r.hyperparameters_full.join("; ")
    );
    let _ = writeln!(o, "| policy | quality | mean cost (USD) | mean latency (s) | share to `{}` |\n|---|---|---|---|---|", r.claim.largest);
    for row in &r.rows {
        let _ = writeln!(
            o,
            "| {} | {:.3} | {:.7} | {} | {:.1}% |",
            row.policy,
            row.quality,
            row.cost_usd,
            fmt_latency(row.latency_ms),
            100.0 * row.largest_share
        );
    }
    let c = &r.claim;
    let _ = writeln!(o);
    match &c.best_within_cap {
        Some(b) => {
            let _ = writeln!(
                o,
                "**Claim (router quality ≥ `{}` alone = {:.3} with ≤ {:.0}% of calls to it, at lower mean cost and latency): {}.** Best validated router row within the cap: {} — quality {:.3} ({:+.3}), {:.1}% to the largest model, cost {:.7} USD, latency {} s.",
                c.largest,
                c.largest_quality,
                100.0 * CLAIM_SHARE_CAP,
                if c.holds { "holds" } else { "does not hold" },
                b.policy,
                b.quality,
                b.quality - c.largest_quality,
                100.0 * b.largest_share,
                b.cost_usd,
                fmt_latency(b.latency_ms)
            );
        }
        None => {
            let _ = writeln!(o, "**Claim: does not hold** — no validated router row sends ≤ {:.0}% of calls to the largest model.", 100.0 * CLAIM_SHARE_CAP);
        }
    }
    if let Some(p) = &c.best_sweep_point_within_cap {
        let _ = writeln!(
            o,
            "\nFor reference only (λ picked on the test prompts, so optimistic): the best point of the λ sweep within the cap has quality {:.3} with {:.1}% to the largest model.",
            p.quality,
            100.0 * p.strong_share
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(q: f64, c: f64, share: f64, lat: f64) -> OperatingPoint {
        OperatingPoint { param: 0.0, quality: q, cost: c, strong_share: share, latency_ms: Some(lat) }
    }

    fn report(models: &[&str], singles: Vec<OperatingPoint>, max_q: OperatingPoint, budgeted: Vec<ValidatedPoint>) -> EvalReport {
        let strong = models.len() - 1;
        EvalReport {
            dataset: "t".into(),
            predictor: "knn".into(),
            features: "ngram".into(),
            protocol: "5-fold CV (seed 42)".into(),
            prompts: 100,
            test_prompts: 100,
            models: models.iter().map(|m| m.to_string()).collect(),
            weak: 0,
            strong,
            oracle: pt(0.9, 2.0, 0.2, 500.0),
            random: pt(0.4, 3.0, 1.0 / models.len() as f64, 700.0),
            router_points: vec![pt(0.75, 4.0, 0.5, 900.0)],
            max_quality: max_q,
            default_threshold: pt(0.6, 5.0, 0.7, 950.0),
            pgr_curve: vec![],
            apgr: 0.0,
            apgr_cost_aware: 0.0,
            cpt50: None,
            cpt80: None,
            aiq: 0.0,
            aiq_singles: 0.0,
            thresholds: vec![],
            budgeted,
            decision_ms: 1.0,
            calibration: vec![],
            aurc: 0.0,
            hallucination_at_05: 0.0,
            train_seconds: 0.0,
            hyperparameters: vec![],
            singles,
        }
    }

    fn singles() -> Vec<OperatingPoint> {
        vec![pt(0.1, 1.0, 0.0, 300.0), pt(0.5, 3.0, 0.0, 600.0), pt(0.7, 10.0, 1.0, 1200.0)]
    }

    #[test]
    fn claim_holds_only_with_quality_share_cost_and_latency_all_met() {
        let small = report(&["a", "b"], vec![pt(0.1, 1.0, 0.0, 300.0), pt(0.5, 3.0, 1.0, 600.0)], pt(0.5, 3.0, 1.0, 600.0), vec![]);
        let good = ValidatedPoint { target_share: 0.6, param: 1.0, test: pt(0.72, 6.0, 0.55, 900.0), pgr: 1.0 };
        let full = report(&["a", "b", "c"], singles(), pt(0.69, 8.0, 0.8, 1000.0), vec![good.clone()]);
        let r = build(&full, &small).unwrap();
        assert!(r.claim.holds);
        assert_eq!(r.claim.best_within_cap.as_ref().unwrap().quality, 0.72);
        // Router latency includes the decision time.
        assert_eq!(r.claim.best_within_cap.as_ref().unwrap().latency_ms, Some(901.0));
        assert!(render(&r).contains("holds"));

        // Within the cap but below the largest model's quality: does not hold.
        let worse = ValidatedPoint { test: pt(0.65, 6.0, 0.55, 900.0), ..good.clone() };
        let r = build(&report(&["a", "b", "c"], singles(), pt(0.69, 8.0, 0.8, 1000.0), vec![worse]), &small).unwrap();
        assert!(!r.claim.holds);
        assert!(render(&r).contains("does not hold"));
        // As good, but slower than the largest model alone: does not hold.
        let slow = ValidatedPoint { test: pt(0.72, 6.0, 0.55, 1300.0), ..good.clone() };
        assert!(!build(&report(&["a", "b", "c"], singles(), pt(0.69, 8.0, 0.8, 1000.0), vec![slow]), &small).unwrap().claim.holds);
        // Max quality sends 80% up: outside the cap, so it cannot carry the claim.
        let r = build(&report(&["a", "b", "c"], singles(), pt(0.9, 8.0, 0.8, 1000.0), vec![]), &small).unwrap();
        assert!(!r.claim.holds && r.claim.best_within_cap.is_none());
    }

    #[test]
    fn refuses_evaluations_on_different_prompts() {
        let full = report(&["a", "b", "c"], singles(), pt(0.69, 8.0, 0.8, 1000.0), vec![]);
        let mut small = report(&["a", "b"], vec![pt(0.1, 1.0, 0.0, 300.0), pt(0.5, 3.0, 1.0, 600.0)], pt(0.5, 3.0, 1.0, 600.0), vec![]);
        small.prompts = 90;
        assert!(build(&full, &small).is_err());
    }
}
