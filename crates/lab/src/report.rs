//! The seed-experiment report: on held-out prompts, each model alone, the router over the
//! whole library, the router over the smaller models only, random and oracle — quality, mean
//! cost, mean latency and the share sent to the best single model — and whether the router
//! beats the best single model alone within a cap on the calls it sends there, criterion by
//! criterion.

use crate::eval::{EvalReport, ValidatedPoint};
use conductor_core::metrics::OperatingPoint;
use conductor_core::policy::DEFAULT_TAU;
use serde::Serialize;
use std::fmt::Write;

/// The claim's cap on the share of requests sent to the best single model.
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
    /// Share of prompts sent to the best single model of the whole library.
    pub best_share: f64,
    /// Standard error of the quality difference to the best single model, paired by
    /// prompt (`None` for rows that are expectations, like random, or other prompt sets).
    pub diff_se: Option<f64>,
}

/// Whether one criterion of the claim was met, failed, or could not be checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "lowercase")]
pub enum Status {
    Met,
    Failed,
    /// Not checkable on these records (the reason says which data is missing).
    Skipped(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Criterion {
    pub name: String,
    pub status: Status,
}

/// How the router over the whole library stands against the best single model alone.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimCheck {
    pub best: String,
    pub best_quality: f64,
    /// The policy declared for the claim before looking at any result: the cost trade-off
    /// with λ set on validation for ≤ [`CLAIM_SHARE_CAP`] of calls to the best single model.
    /// (Picking the best of several rows on the test prompts would flatter the router.)
    pub row: Option<ReportRow>,
    /// Each criterion on the test prompts: quality ≥ the best single model's, ≤ cap of calls
    /// to it (met on validation; the test share may differ), lower mean cost, lower latency.
    pub criteria: Vec<Criterion>,
    /// Every criterion met (none failed, none skipped).
    pub holds: bool,
    /// For reference only (chosen on test prompts, so optimistic): the best point of the
    /// λ sweep within the cap.
    pub best_sweep_point_within_cap: Option<OperatingPoint>,
}

impl ClaimCheck {
    pub fn failed(&self) -> Vec<&str> {
        self.criteria.iter().filter(|c| c.status == Status::Failed).map(|c| c.name.as_str()).collect()
    }

    pub fn skipped(&self) -> Vec<(&str, &str)> {
        self.criteria
            .iter()
            .filter_map(|c| match &c.status {
                Status::Skipped(why) => Some((c.name.as_str(), why.as_str())),
                _ => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedReport {
    pub prompts: usize,
    pub protocol: String,
    pub predictor: String,
    pub features: String,
    pub hyperparameters_full: Vec<String>,
    pub hyperparameters_small: Vec<String>,
    /// The router's own decision time per request (ms), included in its rows' latency.
    pub decision_ms: f64,
    pub rows: Vec<ReportRow>,
    pub claim: ClaimCheck,
    /// Filled by the caller when the evaluation is repeated with other seeds.
    pub repeats: Vec<RepeatCheck>,
}

fn to_row(policy: String, p: &OperatingPoint, best_share: f64, decision_ms: f64) -> ReportRow {
    ReportRow {
        policy,
        quality: p.quality,
        cost_usd: p.cost,
        latency_ms: p.latency_ms.map(|l| l + decision_ms),
        best_share,
        diff_se: p.diff_se,
    }
}

fn share_label(v: &ValidatedPoint) -> String {
    let mut s = format!("≤ {:.0}% to the best single model, λ set on validation", 100.0 * v.target_share);
    if !v.reached {
        s.push_str(&format!(" (cap not binding: {:.0}% on validation)", 100.0 * v.validation_share));
    }
    s
}

/// Rows measured on the whole library: each model alone, random, oracle and the router's
/// validated policies.
fn library_rows(full: &EvalReport) -> Vec<ReportRow> {
    let mut rows = Vec::new();
    for (m, p) in full.models.iter().zip(&full.singles) {
        rows.push(to_row(format!("`{m}` alone"), p, p.strong_share, 0.0));
    }
    rows.push(to_row(
        format!("random (uniform over the {} models)", full.models.len()),
        &full.random,
        full.random.strong_share,
        0.0,
    ));
    rows.push(to_row("oracle (best per prompt, cheapest on ties)".into(), &full.oracle, full.oracle.strong_share, 0.0));
    let d = full.decision_ms;
    rows.push(to_row("router over all: max quality".into(), &full.max_quality, full.max_quality.strong_share, d));
    let t = &full.default_threshold;
    rows.push(to_row(
        format!("router over all: threshold τ = {DEFAULT_TAU} (what `auto` does by default)"),
        t,
        t.strong_share,
        d,
    ));
    for b in &full.budgeted {
        rows.push(to_row(format!("router over all: {}", share_label(b)), &b.test, b.test.strong_share, d));
    }
    rows
}

/// Whether the router over the whole library beats the best single model (see [`ClaimCheck`]).
pub fn claim_check(full: &EvalReport) -> ClaimCheck {
    let best = &full.singles[full.references.best];
    let row = full.budgeted.iter().find(|b| (b.target_share - CLAIM_SHARE_CAP).abs() < 1e-9).map(|b| {
        to_row(format!("router over all: {}", share_label(b)), &b.test, b.test.strong_share, full.decision_ms)
    });
    let criteria = match &row {
        None => Vec::new(),
        Some(r) => {
            let met = |ok: bool| if ok { Status::Met } else { Status::Failed };
            let latency = match (r.latency_ms, best.latency_ms) {
                (Some(a), Some(b)) => met(a < b),
                _ => Status::Skipped("the records do not carry a latency for every answer".into()),
            };
            vec![
                Criterion {
                    name: format!("quality ≥ `{}` alone", full.best_name()),
                    status: met(r.quality >= best.quality - 1e-12),
                },
                Criterion {
                    name: format!("≤ {:.0}% of calls to it on held-out prompts", 100.0 * CLAIM_SHARE_CAP),
                    status: met(r.best_share <= CLAIM_SHARE_CAP + 1e-12),
                },
                Criterion { name: "lower mean cost".into(), status: met(r.cost_usd < best.cost) },
                Criterion { name: "lower mean latency".into(), status: latency },
            ]
        }
    };
    let holds = !criteria.is_empty() && criteria.iter().all(|c| c.status == Status::Met);
    let best_sweep_point_within_cap = full
        .router_points
        .iter()
        .filter(|p| p.strong_share <= CLAIM_SHARE_CAP + 1e-12)
        .max_by(|a, b| a.quality.total_cmp(&b.quality).then(b.cost.total_cmp(&a.cost)))
        .copied();
    ClaimCheck {
        best: full.best_name().to_string(),
        best_quality: best.quality,
        row,
        criteria,
        holds,
        best_sweep_point_within_cap,
    }
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
    let mut rows = library_rows(full);
    let small_names = small.models.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(" + ");
    // These rows' paired SE is against the smaller pair's own strongest model, not ours.
    for (name, p, d) in [
        (format!("router over {small_names}: max quality"), &small.max_quality, small.decision_ms),
        (format!("oracle over {small_names}"), &small.oracle, 0.0),
    ] {
        rows.push(ReportRow { diff_se: None, ..to_row(name, p, 0.0, d) });
    }
    Ok(SeedReport {
        prompts: full.test_prompts,
        protocol: full.protocol.clone(),
        predictor: full.predictor.clone(),
        features: full.features.clone(),
        hyperparameters_full: full.hyperparameters.clone(),
        hyperparameters_small: small.hyperparameters.clone(),
        decision_ms: full.decision_ms,
        rows,
        claim: claim_check(full),
        repeats: Vec::new(),
    })
}

/// The claim re-checked with other cross-validation seeds (other fold assignments), so that
/// one lucky split cannot carry it.
#[derive(Debug, Clone, Serialize)]
pub struct RepeatCheck {
    pub seed: u64,
    pub claim: ClaimCheck,
}

fn fmt_latency(l: Option<f64>) -> String {
    l.map_or("–".into(), |ms| format!("{:.2}", ms / 1e3))
}

/// The report as Markdown: the table, then the verdict on the claim.
pub fn render(r: &SeedReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} held-out prompts ({}); {} predictor, {} features. Chosen on each fold's validation prompts: {}. Router rows include the router's own decision time, {:.2} ms per request (one prompt at a time, nothing cached).\n",
        r.prompts,
        r.protocol,
        r.predictor,
        r.features,
        r.hyperparameters_full.join("; "),
        r.decision_ms
    );
    let _ = writeln!(
        o,
        "| policy | quality | Δ vs `{0}` alone (± 95% over prompts) | mean cost (USD) | mean latency (s) | share to `{0}` |\n|---|---|---|---|---|---|",
        r.claim.best
    );
    for row in &r.rows {
        let delta = delta_text(row, r.claim.best_quality);
        let _ = writeln!(
            o,
            "| {} | {:.3} | {} | {:.7} | {} | {:.1}% |",
            row.policy,
            row.quality,
            delta,
            row.cost_usd,
            fmt_latency(row.latency_ms),
            100.0 * row.best_share
        );
    }
    let c = &r.claim;
    let _ = writeln!(o, "\n{}", claim_sentence(c));
    if let Some(p) = &c.best_sweep_point_within_cap {
        let _ = writeln!(
            o,
            "\nFor reference only (λ picked on the test prompts, so optimistic): the best point of the λ sweep within the cap has quality {:.3} with {:.1}% to the best single model.",
            p.quality,
            100.0 * p.strong_share
        );
    }
    if !r.repeats.is_empty() {
        let held = r.repeats.iter().filter(|x| x.claim.holds).count();
        let _ = writeln!(
            o,
            "\nThe same check on the same prompts with other fold assignments (cross-validation seeds) — robustness to the split, not a replication on new prompts: the claim holds (on the point estimate) in {held} of {}.\n\n| CV seed | `{}` alone | router, ≤ {:.0}% λ set on validation: quality (Δ ± 95%) | share to the best single | mean cost (USD) | holds |\n|---|---|---|---|---|---|",
            r.repeats.len(),
            c.best,
            100.0 * CLAIM_SHARE_CAP
        );
        for x in &r.repeats {
            let q = x
                .claim
                .row
                .as_ref()
                .map_or("–".into(), |b| format!("{:.3} ({})", b.quality, delta_text(b, x.claim.best_quality)));
            let share = x.claim.row.as_ref().map_or("–".into(), |b| format!("{:.1}%", 100.0 * b.best_share));
            let cost = x.claim.row.as_ref().map_or("–".into(), |b| format!("{:.7}", b.cost_usd));
            let _ = writeln!(
                o,
                "| {} | {:.3} | {q} | {share} | {cost} | {} |",
                x.seed,
                x.claim.best_quality,
                if x.claim.holds { "yes" } else { "no" }
            );
        }
    }
    o
}

/// "+0.007 ± 0.047": the quality difference to the best single model with its 95% interval.
fn delta_text(row: &ReportRow, best_quality: f64) -> String {
    let d = row.quality - best_quality;
    match row.diff_se {
        Some(se) if se > 0.0 => format!("{d:+.3} ± {:.3}", 1.96 * se),
        _ => format!("{d:+.3}"),
    }
}

/// The verdict, criterion by criterion, with how far the declared row is from the best
/// single model and whether that distance is more than the luck of which prompts were drawn.
fn claim_sentence(c: &ClaimCheck) -> String {
    let Some(b) = &c.row else {
        return "**Claim: not evaluated** — the evaluation has no cost trade-off point set on validation for the claim's cap.".into();
    };
    let d = b.quality - c.best_quality;
    // The interval covers which prompts were drawn, with the trained routers held fixed.
    let noise = match b.diff_se {
        None => "no interval: the paired error is unknown",
        Some(se) if d - 1.96 * se > 0.0 => "the ≈95% interval over prompts excludes zero: a real gain",
        Some(se) if d + 1.96 * se < 0.0 => "the ≈95% interval over prompts excludes zero: a real loss",
        Some(_) => {
            "the ≈95% interval over prompts includes zero: parity within noise, neither a demonstrated gain nor loss"
        }
    };
    let (failed, skipped) = (c.failed(), c.skipped());
    let verdict = if !failed.is_empty() {
        format!("does not hold — failed: {}", failed.join("; "))
    } else if !skipped.is_empty() {
        let names: Vec<&str> = skipped.iter().map(|s| s.0).collect();
        format!("not established — every checkable criterion met, but unchecked: {}", names.join("; "))
    } else if noise.contains("includes zero") {
        "holds on the point estimate, within noise".into()
    } else {
        "holds".into()
    };
    let mut out = format!(
        "**Claim (router quality ≥ `{}` alone = {:.3} with ≤ {:.0}% of calls to it, at lower mean cost and latency): {}.** The declared policy ({}): quality {:.3} ({}; {noise}), {:.1}% to the best single model, cost {:.7} USD, latency {} s.\n",
        c.best,
        c.best_quality,
        100.0 * CLAIM_SHARE_CAP,
        verdict,
        b.policy,
        b.quality,
        delta_text(b, c.best_quality),
        100.0 * b.best_share,
        b.cost_usd,
        fmt_latency(b.latency_ms)
    );
    for cr in &c.criteria {
        let status = match &cr.status {
            Status::Met => "met".to_string(),
            Status::Failed => "**failed**".to_string(),
            Status::Skipped(why) => format!("skipped: {why}"),
        };
        out.push_str(&format!("\n- {}: {status}", cr.name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(q: f64, c: f64, share: f64, lat: f64) -> OperatingPoint {
        OperatingPoint {
            param: 0.0,
            quality: q,
            cost: c,
            strong_share: share,
            cost_share: None,
            latency_ms: Some(lat),
            diff_se: Some(0.01),
        }
    }

    fn report(
        models: &[&str],
        singles: Vec<OperatingPoint>,
        max_q: OperatingPoint,
        budgeted: Vec<ValidatedPoint>,
    ) -> EvalReport {
        let best = models.len() - 1;
        EvalReport {
            dataset: "t".into(),
            predictor: "knn".into(),
            features: "ngram".into(),
            protocol: "5-fold CV (seed 42)".into(),
            prompts: 100,
            test_prompts: 100,
            models: models.iter().map(|m| m.to_string()).collect(),
            references: conductor_core::metrics::References { best, cheapest: 0 },
            references_per_fold: vec![],
            oracle: pt(0.9, 2.0, 0.2, 500.0),
            random: pt(0.4, 3.0, 1.0 / models.len() as f64, 700.0),
            router_points: vec![pt(0.75, 4.0, 0.5, 900.0)],
            max_quality: max_q,
            max_quality_margin: max_q,
            switch_margin: 0.0,
            default_threshold: pt(0.6, 5.0, 0.7, 950.0),
            pgr_curve: vec![],
            apgr: None,
            apgr_cost_aware: None,
            cpt50: None,
            cpt80: None,
            aiq: 0.0,
            aiq_singles: 0.0,
            thresholds: vec![],
            budgeted,
            matched_cost: None,
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
        let small = report(
            &["a", "b"],
            vec![pt(0.1, 1.0, 0.0, 300.0), pt(0.5, 3.0, 1.0, 600.0)],
            pt(0.5, 3.0, 1.0, 600.0),
            vec![],
        );
        let good = ValidatedPoint {
            target_share: 0.6,
            param: 1.0,
            test: pt(0.72, 6.0, 0.55, 900.0),
            pgr: 1.0,
            validation_share: 0.6,
            reached: true,
        };
        let full = report(&["a", "b", "c"], singles(), pt(0.69, 8.0, 0.8, 1000.0), vec![good.clone()]);
        let r = build(&full, &small).unwrap();
        assert!(r.claim.holds);
        assert_eq!(r.claim.row.as_ref().unwrap().quality, 0.72);
        // Router latency includes the decision time.
        assert_eq!(r.claim.row.as_ref().unwrap().latency_ms, Some(901.0));
        assert!(render(&r).contains("holds") && render(&r).contains("+0.020 ± 0.020"), "{}", render(&r));

        let check = |test: OperatingPoint| {
            build(
                &report(
                    &["a", "b", "c"],
                    singles(),
                    pt(0.69, 8.0, 0.8, 1000.0),
                    vec![ValidatedPoint { test, ..good.clone() }],
                ),
                &small,
            )
            .unwrap()
        };
        // Within the cap but below the best single model's quality: the failed criterion is named.
        let r = check(pt(0.65, 6.0, 0.55, 900.0));
        assert!(!r.claim.holds && render(&r).contains("does not hold — failed: quality ≥ `c` alone"), "{}", render(&r));
        // No latency in the records: the criterion is skipped and said so, never "does not hold".
        let r = check(OperatingPoint { latency_ms: None, ..pt(0.72, 6.0, 0.55, 900.0) });
        assert!(!r.claim.holds);
        assert_eq!(r.claim.failed(), Vec::<&str>::new());
        let text = render(&r);
        assert!(text.contains("not established") && !text.contains("does not hold"), "{text}");
        assert!(text.contains("lower mean latency: skipped: the records do not carry a latency"), "{text}");
        // As good, but slower than the best single model; or dearer; or over the cap on test prompts.
        assert!(!check(pt(0.72, 6.0, 0.55, 1300.0)).claim.holds);
        assert!(!check(pt(0.72, 11.0, 0.55, 900.0)).claim.holds);
        assert!(!check(pt(0.72, 6.0, 0.65, 900.0)).claim.holds);
        // Only the declared policy counts: a better max-quality row does not carry the claim,
        // nor does a point set for another cap.
        let other_cap = ValidatedPoint { target_share: 0.5, ..good.clone() };
        let r =
            build(&report(&["a", "b", "c"], singles(), pt(0.9, 8.0, 0.5, 1000.0), vec![other_cap]), &small).unwrap();
        assert!(!r.claim.holds && r.claim.row.is_none());
        assert!(render(&r).contains("not evaluated"));
    }

    #[test]
    fn the_verdict_says_when_the_difference_is_within_noise() {
        let c = |q: f64, se: f64| ClaimCheck {
            best: "big".into(),
            best_quality: 0.6,
            row: Some(ReportRow {
                policy: "p".into(),
                quality: q,
                cost_usd: 1.0,
                latency_ms: Some(1.0),
                best_share: 0.5,
                diff_se: Some(se),
            }),
            criteria: vec![Criterion {
                name: "quality".into(),
                status: if q >= 0.6 { Status::Met } else { Status::Failed },
            }],
            holds: q >= 0.6,
            best_sweep_point_within_cap: None,
        };
        assert!(claim_sentence(&c(0.62, 0.02)).contains("interval over prompts includes zero"));
        assert!(claim_sentence(&c(0.62, 0.02)).contains("holds on the point estimate, within noise"));
        assert!(
            claim_sentence(&c(0.70, 0.02)).contains("excludes zero: a real gain")
                && claim_sentence(&c(0.70, 0.02)).contains("): holds.**")
        );
        assert!(
            claim_sentence(&c(0.50, 0.02)).contains("a real loss")
                && claim_sentence(&c(0.50, 0.02)).contains("does not hold")
        );
    }

    #[test]
    fn refuses_evaluations_on_different_prompts() {
        let full = report(&["a", "b", "c"], singles(), pt(0.69, 8.0, 0.8, 1000.0), vec![]);
        let mut small = report(
            &["a", "b"],
            vec![pt(0.1, 1.0, 0.0, 300.0), pt(0.5, 3.0, 1.0, 600.0)],
            pt(0.5, 3.0, 1.0, 600.0),
            vec![],
        );
        small.prompts = 90;
        assert!(build(&full, &small).is_err());
    }
}
