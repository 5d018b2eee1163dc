//! The charts of `lab verify`: risk–coverage per model (answer-level confidence against the
//! prompt-only router's prediction) and the policies on cost–quality axes. SVG and PNG.

use crate::plot::{err, legend_lower_right, with_backend};
use crate::verify::VerifyReport;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Writes `risk_coverage.{svg,png}` and `cost_quality.{svg,png}` into `dir`.
pub fn draw_all(r: &VerifyReport, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    for ext in ["svg", "png"] {
        let p = dir.join(format!("risk_coverage.{ext}"));
        with_backend(&p, |a| risk_coverage(r, a), |a| risk_coverage(r, a))?;
        out.push(p);
        let p = dir.join(format!("cost_quality.{ext}"));
        with_backend(&p, |a| cost_quality(r, a), |a| cost_quality(r, a))?;
        out.push(p);
    }
    Ok(out)
}

fn colour(i: usize) -> RGBColor {
    [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(148, 103, 189)][i % 4]
}

/// Error among the answers kept, against the share kept, most confident first: solid for
/// the answer-level confidence, dashed for the prompt-only prediction.
fn risk_coverage<DB: DrawingBackend>(r: &VerifyReport, root: DrawingArea<DB, Shift>) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{}: risk–coverage, held-out prompts", r.dataset), ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("coverage (share of answers kept, most confident first)")
        .y_desc("risk (share of kept answers that are wrong)")
        .draw()
        .map_err(err)?;
    for (i, c) in r.risk_coverage.iter().enumerate() {
        let col = colour(i);
        chart
            .draw_series(LineSeries::new(c.answer_level.iter().copied(), col.stroke_width(2)))
            .map_err(err)?
            .label(format!("{} — answer level", c.model))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2)));
        chart
            .draw_series(DashedLineSeries::new(c.prompt_only.iter().copied(), 6, 4, col.stroke_width(1)))
            .map_err(err)?
            .label(format!("{} — prompt only", c.model))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(1)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;
    root.present().map_err(err)
}

/// Every policy as a point: mean cost per request against quality (abstentions score 0).
fn cost_quality<DB: DrawingBackend>(r: &VerifyReport, root: DrawingArea<DB, Shift>) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let (cmax, qmax) = r.policies.iter().fold((0.0f64, 0.0f64), |(c, q), p| (c.max(p.cost_usd), q.max(p.quality)));
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{}: policies, every attempt paid", r.dataset), ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..(cmax * 1.15).max(1e-12), 0.0..(qmax * 1.2).clamp(0.05, 1.0))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("mean cost per request (USD)")
        .y_desc("quality (mean score)")
        .x_label_formatter(&|x| format!("{x:.1e}"))
        .draw()
        .map_err(err)?;
    for (i, p) in r.policies.iter().enumerate() {
        let col = Palette99::pick(i).to_rgba();
        let pt = (p.cost_usd, p.quality);
        chart
            .draw_series([Circle::new(pt, 6, col.filled())])
            .map_err(err)?
            .label(format!("{} ({:.0}% to the largest)", p.policy, 100.0 * p.share_largest))
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, col.filled()));
    }
    legend_lower_right(&mut chart)?;
    root.present().map_err(err)
}
