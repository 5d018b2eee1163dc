//! Markdown rendering of evaluation reports: one detailed table per run and one summary
//! row per run for the headline table.

use crate::eval::{EvalReport, ValidatedPoint};
use conductor_core::metrics::{OperatingPoint, References};
use std::fmt::Write;

fn opt_pct(v: Option<f64>) -> String {
    v.map_or("never".into(), |x| format!("{:.1}%", 100.0 * x))
}

fn opt3(v: Option<f64>) -> String {
    v.map_or("undefined".into(), |x| format!("{x:.3}"))
}

fn row(out: &mut String, name: &str, p: &OperatingPoint, pgr: f64) {
    let latency = p.latency_ms.map_or("–".to_string(), |l| format!("{:.2}", l / 1e3));
    let share = p.cost_share.map_or("–".to_string(), |x| format!("{:.1}%", 100.0 * x));
    let _ = writeln!(
        out,
        "| {name} | {:.4} | {:.6} | {latency} | {:.1}% | {share} | {:.3} |",
        p.quality,
        p.cost,
        100.0 * p.strong_share,
        pgr
    );
}

/// Mean over models of the calibrated (ECE, Brier, AUROC), skipping models whose held-out
/// outcome is constant (AUROC is undefined for them and ECE says nothing); NaN-free: with
/// no model left, the means are `None`.
pub fn mean_calibration(r: &EvalReport) -> Option<(f64, f64, f64)> {
    let kept: Vec<_> = r.calibration.iter().filter(|c| !c.constant_outcome && c.calibrated.auroc.is_finite()).collect();
    let n = kept.len() as f64;
    (n > 0.0).then(|| {
        let s = kept
            .iter()
            .fold((0.0, 0.0, 0.0), |a, c| (a.0 + c.calibrated.ece, a.1 + c.calibrated.brier, a.2 + c.calibrated.auroc));
        (s.0 / n, s.1 / n, s.2 / n)
    })
}

/// The label of a validated point, marked when its target was not reached (so it does
/// not pass for a distinct operating point).
fn validated_label(kind: &str, v: &ValidatedPoint, cap: bool) -> String {
    let target =
        if cap { format!("≤ {:.0}%", 100.0 * v.target_share) } else { format!("{:.0}%", 100.0 * v.target_share) };
    let mut s = format!("router: {kind} (target {target} to the best single model, set on validation)");
    if !v.reached {
        let _ = write!(
            s,
            " — **target not reached**: {:.1}% on validation{}",
            100.0 * v.validation_share,
            if cap { " (the cap does not bind)" } else { "" }
        );
    }
    s
}

/// The full table of one run.
pub fn detailed(r: &EvalReport) -> String {
    let mut o = String::new();
    let (qw, qs) = (r.singles[r.references.cheapest].quality, r.singles[r.references.best].quality);
    let pgr = |q: f64| conductor_core::metrics::pgr(q, qw, qs);
    let _ = writeln!(
        o,
        "### {} — {} predictor, {} features\n\n{}; {} prompts evaluated out of sample (of {}). Hyper-parameters (chosen on validation): {}. Training time {:.2} s.\n",
        r.dataset, r.predictor, r.features, r.protocol, r.test_prompts, r.prompts, r.hyperparameters.join("; "), r.train_seconds
    );
    let _ = writeln!(
        o,
        "Reference models (chosen on training and validation prompts; {}): best single `{}`, cheapest `{}`.",
        References::RULE,
        r.best_name(),
        r.cheapest_name()
    );
    if let Some(w) = r.reference_disagreement() {
        let _ = writeln!(o, "Note: {w}.");
    }
    let _ = writeln!(
        o,
        "\n| policy | quality | cost / prompt (USD) | mean latency (s) | share to best single | cost share | PGR |\n|---|---|---|---|---|---|---|"
    );
    for (m, p) in r.models.iter().zip(&r.singles) {
        let mut name = format!("always `{m}`");
        if m == r.best_name() {
            name.push_str(" (best single)");
        }
        if m == r.cheapest_name() {
            name.push_str(" (cheapest)");
        }
        row(&mut o, &name, p, pgr(p.quality));
    }
    row(&mut o, "random (uniform over models)", &r.random, pgr(r.random.quality));
    row(&mut o, "oracle (best per prompt, cheapest on ties)", &r.oracle, pgr(r.oracle.quality));
    row(&mut o, "router: max quality", &r.max_quality, pgr(r.max_quality.quality));
    row(
        &mut o,
        &format!(
            "router: max quality, leaving `{}` only when another model is predicted ≥ {:.2} better (margin set on validation)",
            r.best_name(),
            r.switch_margin
        ),
        &r.max_quality_margin,
        pgr(r.max_quality_margin.quality),
    );
    row(
        &mut o,
        &format!("router: threshold τ={} (the gateway's default)", conductor_core::policy::DEFAULT_TAU),
        &r.default_threshold,
        pgr(r.default_threshold.quality),
    );
    if let Some(m) = &r.matched_cost {
        row(
            &mut o,
            &format!("router: cost at best-single quality (λ={:.3e}, set on validation)", m.param),
            &m.test,
            pgr(m.test.quality),
        );
    }
    for t in &r.thresholds {
        row(&mut o, &validated_label(&format!("threshold τ={:.3}", t.param), t, false), &t.test, t.pgr);
    }
    for b in &r.budgeted {
        row(&mut o, &validated_label(&format!("cost trade-off λ={:.3e}", b.param), b, true), &b.test, b.pgr);
    }
    let _ = writeln!(o, "\n{}", headline(r));
    if let Some(note) = r.apgr_note() {
        let _ = writeln!(o, "\n{note}.");
    }
    let _ = writeln!(o, "\n| model | ECE raw → calibrated | Brier raw → calibrated | AUROC |\n|---|---|---|---|");
    for c in &r.calibration {
        if c.constant_outcome {
            let _ = writeln!(o, "| `{}` | skipped: constant outcome | – | – |", c.model);
            continue;
        }
        let _ = writeln!(
            o,
            "| `{}` | {:.3} → {:.3} | {:.3} → {:.3} | {:.3} |",
            c.model, c.raw.ece, c.calibrated.ece, c.raw.brier, c.calibrated.brier, c.calibrated.auroc
        );
    }
    o
}

/// "Cost at best-single quality" as a short phrase.
pub fn matched_cost_text(r: &EvalReport) -> String {
    match &r.matched_cost {
        Some(m) if m.holds => format!("{:.1}% of `{}`'s cost", 100.0 * m.cost_fraction, r.best_name()),
        Some(m) => format!(
            "none (the validated point fell short on held-out prompts: {:.4} vs {:.4} at {:.1}% of the cost)",
            m.test.quality,
            r.singles[r.references.best].quality,
            100.0 * m.cost_fraction
        ),
        None => "none (no validation point reached the best single model's quality)".into(),
    }
}

/// The one-paragraph summary of a run's metrics.
fn headline(r: &EvalReport) -> String {
    let cal = mean_calibration(r).map_or("no model with a varying outcome".into(), |(e, b, a)| {
        format!("ECE {e:.3}, Brier {b:.3}, AUROC {a:.3}")
    });
    let skipped = r.constant_models();
    let skipped = if skipped.is_empty() {
        String::new()
    } else {
        format!(
            " (skipped, constant outcome: {})",
            skipped.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
        )
    };
    format!(
        "**APGR {}** (cost-aware λ curve: {}), CPT(50%) {}, CPT(80%) {}, **cost at best-single quality: {}**, **AIQ {:.4}** (single models' hull {:.4}), share to the best single model at max quality {:.1}%, AURC {:.3}, hallucination rate (abstain below p=0.5) {:.3}; mean calibrated {cal}{skipped}.",
        opt3(r.apgr),
        opt3(r.apgr_cost_aware),
        opt_pct(r.cpt50),
        opt_pct(r.cpt80),
        matched_cost_text(r),
        r.aiq,
        r.aiq_singles,
        100.0 * r.max_quality.strong_share,
        r.aurc,
        r.hallucination_at_05
    )
}

pub const SUMMARY_HEADER: &str = "| dataset | predictor | features | test prompts | best single (quality) | router max quality (plain / margin) | APGR | CPT(50%) | CPT(80%) | cost at best-single quality | AIQ | ECE (cal.) | Brier | AUROC | train s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";

/// One line of the headline table.
pub fn summary_row(r: &EvalReport) -> String {
    let (ece, brier, auroc) = mean_calibration(r).map_or(("–".into(), "–".into(), "–".into()), |(e, b, a)| {
        (format!("{e:.3}"), format!("{b:.3}"), format!("{a:.3}"))
    });
    let cost = match &r.matched_cost {
        Some(m) if m.holds => format!("{:.1}%", 100.0 * m.cost_fraction),
        _ => "none".into(),
    };
    format!(
        "| {} | {} | {} | {} | `{}` ({:.4}) | {:.4} / {:.4} | {} | {} | {} | {cost} | {:.4} | {ece} | {brier} | {auroc} | {:.1} |",
        r.dataset,
        r.predictor,
        r.features,
        r.test_prompts,
        r.best_name(),
        r.singles[r.references.best].quality,
        r.max_quality.quality,
        r.max_quality_margin.quality,
        opt3(r.apgr),
        opt_pct(r.cpt50),
        opt_pct(r.cpt80),
        r.aiq,
        r.train_seconds
    )
}
