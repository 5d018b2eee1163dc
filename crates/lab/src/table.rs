//! Markdown rendering of evaluation reports: one detailed table per run and one summary
//! row per run for the headline table.

use crate::eval::EvalReport;
use conductor_core::metrics::OperatingPoint;
use std::fmt::Write;

fn opt_pct(v: Option<f64>) -> String {
    v.map_or("never".into(), |x| format!("{:.1}%", 100.0 * x))
}

fn row(out: &mut String, name: &str, p: &OperatingPoint, pgr: f64) {
    let latency = p.latency_ms.map_or("–".to_string(), |l| format!("{:.2}", l / 1e3));
    let _ = writeln!(
        out,
        "| {name} | {:.4} | {:.6} | {latency} | {:.1}% | {:.3} |",
        p.quality,
        p.cost,
        100.0 * p.strong_share,
        pgr
    );
}

/// Mean over models of the calibrated (ECE, Brier, AUROC).
pub fn mean_calibration(r: &EvalReport) -> (f64, f64, f64) {
    let n = r.calibration.len().max(1) as f64;
    let s = r
        .calibration
        .iter()
        .fold((0.0, 0.0, 0.0), |a, c| (a.0 + c.calibrated.ece, a.1 + c.calibrated.brier, a.2 + c.calibrated.auroc));
    (s.0 / n, s.1 / n, s.2 / n)
}

/// The full table of one run.
pub fn detailed(r: &EvalReport) -> String {
    let mut o = String::new();
    let (qw, qs) = (r.singles[r.weak].quality, r.singles[r.strong].quality);
    let pgr = |q: f64| conductor_core::metrics::pgr(q, qw, qs);
    let _ = writeln!(
        o,
        "### {} — {} predictor, {} features\n\n{}; {} prompts evaluated out of sample (of {}). Hyper-parameters (chosen on validation): {}. Training time {:.2} s.\n",
        r.dataset, r.predictor, r.features, r.protocol, r.test_prompts, r.prompts, r.hyperparameters.join("; "), r.train_seconds
    );
    let _ = writeln!(
        o,
        "| policy | quality | cost / prompt (USD) | mean latency (s) | strong share | PGR |\n|---|---|---|---|---|---|"
    );
    for (m, p) in r.models.iter().zip(&r.singles) {
        row(&mut o, &format!("always `{m}`"), p, pgr(p.quality));
    }
    row(&mut o, "random (uniform over models)", &r.random, pgr(r.random.quality));
    row(&mut o, "oracle (best per prompt, cheapest on ties)", &r.oracle, pgr(r.oracle.quality));
    row(&mut o, "router: max quality", &r.max_quality, pgr(r.max_quality.quality));
    row(
        &mut o,
        &format!("router: threshold τ={} (the gateway's default)", conductor_core::policy::DEFAULT_TAU),
        &r.default_threshold,
        pgr(r.default_threshold.quality),
    );
    for t in &r.thresholds {
        row(
            &mut o,
            &format!(
                "router: threshold τ={:.3} (target {:.0}% strong, set on validation)",
                t.param,
                100.0 * t.target_share
            ),
            &t.test,
            t.pgr,
        );
    }
    for b in &r.budgeted {
        row(
            &mut o,
            &format!(
                "router: cost trade-off λ={:.3e} (≤ {:.0}% strong, set on validation)",
                b.param,
                100.0 * b.target_share
            ),
            &b.test,
            b.pgr,
        );
    }
    for target in [0.1, 0.2, 0.3, 0.5, 0.8] {
        if let Some(p) = r
            .router_points
            .iter()
            .min_by(|a, b| (a.strong_share - target).abs().total_cmp(&(b.strong_share - target).abs()))
        {
            row(&mut o, &format!("router: cost trade-off λ={:.3e}", p.param), p, pgr(p.quality));
        }
    }
    let (ece, brier, auroc) = mean_calibration(r);
    let _ = writeln!(
        o,
        "\n**APGR {:.3}** (cost-aware λ curve: {:.3}), CPT(50%) {}, CPT(80%) {}, **AIQ {:.4}** (single models' hull {:.4}), share to largest model at max quality {:.1}%, AURC {:.3}, hallucination rate (abstain below p=0.5) {:.3}; mean calibrated ECE {:.3}, Brier {:.3}, AUROC {:.3}.\n",
        r.apgr, r.apgr_cost_aware, opt_pct(r.cpt50), opt_pct(r.cpt80), r.aiq, r.aiq_singles, 100.0 * r.max_quality.strong_share, r.aurc, r.hallucination_at_05, ece, brier, auroc
    );
    let _ = writeln!(o, "| model | ECE raw → calibrated | Brier raw → calibrated | AUROC |\n|---|---|---|---|");
    for c in &r.calibration {
        let _ = writeln!(
            o,
            "| `{}` | {:.3} → {:.3} | {:.3} → {:.3} | {:.3} |",
            c.model, c.raw.ece, c.calibrated.ece, c.raw.brier, c.calibrated.brier, c.calibrated.auroc
        );
    }
    o
}

pub const SUMMARY_HEADER: &str = "| dataset | predictor | features | test prompts | APGR | CPT(50%) | CPT(80%) | AIQ | largest-model share (max quality) | ECE (cal.) | Brier | AUROC | train s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|";

/// One line of the headline table.
pub fn summary_row(r: &EvalReport) -> String {
    let (ece, brier, auroc) = mean_calibration(r);
    format!(
        "| {} | {} | {} | {} | {:.3} | {} | {} | {:.4} | {:.1}% | {:.3} | {:.3} | {:.3} | {:.1} |",
        r.dataset,
        r.predictor,
        r.features,
        r.test_prompts,
        r.apgr,
        opt_pct(r.cpt50),
        opt_pct(r.cpt80),
        r.aiq,
        100.0 * r.max_quality.strong_share,
        ece,
        brier,
        auroc,
        r.train_seconds
    )
}
