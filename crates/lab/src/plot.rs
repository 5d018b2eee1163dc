//! Cost–quality and PGR plots, each as SVG and PNG (plotters; PNG text needs the `ttf`
//! feature and a system font from fontconfig).

use crate::eval::EvalReport;
use conductor_core::metrics::upper_hull;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

const SIZE: (u32, u32) = (900, 620);

pub(crate) fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting failed: {e:?}")
}

/// Draws `<stem>_cost_quality` and `<stem>_pgr` in both formats; returns the file paths.
pub fn draw_all(r: &EvalReport, dir: &Path, stem: &str) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    for (name, f) in
        [("cost_quality", cost_quality as fn(&EvalReport, &Path) -> anyhow::Result<()>), ("pgr", pgr_curve)]
    {
        for ext in ["svg", "png"] {
            let p = dir.join(format!("{stem}_{name}.{ext}"));
            f(r, &p)?;
            out.push(p);
        }
    }
    Ok(out)
}

/// Draws the same chart into an SVG or a PNG, by the path's extension.
pub(crate) fn with_backend(
    path: &Path,
    draw: impl Fn(DrawingArea<SVGBackend, Shift>) -> anyhow::Result<()>,
    draw_png: impl Fn(DrawingArea<BitMapBackend, Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if path.extension().is_some_and(|e| e == "svg") {
        let root = SVGBackend::new(path, SIZE).into_drawing_area();
        draw(root)
    } else {
        let root = BitMapBackend::new(path, SIZE).into_drawing_area();
        draw_png(root)
    }
}

/// Single models as points, oracle, the random-mixing line, the router's λ curve and its
/// upper convex hull.
pub fn cost_quality(r: &EvalReport, path: &Path) -> anyhow::Result<()> {
    with_backend(path, |a| draw_cost_quality(r, None, a), |a| draw_cost_quality(r, None, a))
}

/// The seed-experiment chart: [`cost_quality`] of the whole library plus the λ curve of the
/// router over the smaller models only; SVG and PNG as `<stem>.{svg,png}`.
pub fn seed_cost_quality(
    full: &EvalReport,
    small: &EvalReport,
    dir: &Path,
    stem: &str,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    for ext in ["svg", "png"] {
        let p = dir.join(format!("{stem}.{ext}"));
        with_backend(&p, |a| draw_cost_quality(full, Some(small), a), |a| draw_cost_quality(full, Some(small), a))?;
        out.push(p);
    }
    Ok(out)
}

/// PGR against cost share (cheapest → best single model), with the random diagonal.
pub fn pgr_curve(r: &EvalReport, path: &Path) -> anyhow::Result<()> {
    with_backend(path, |a| draw_pgr(r, a), |a| draw_pgr(r, a))
}

fn title(r: &EvalReport) -> String {
    format!("{}: {} router, {} features", r.dataset, r.predictor, r.features)
}

fn draw_cost_quality<DB: DrawingBackend>(
    r: &EvalReport,
    small: Option<&EvalReport>,
    root: DrawingArea<DB, Shift>,
) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let axis = CostAxis::new(
        r.singles.iter().chain([&r.oracle]).chain(&r.router_points).chain(small.iter().flat_map(|s| &s.router_points)),
    );
    let fx = |c: f64| axis.x(c);
    let qs = r
        .singles
        .iter()
        .map(|s| s.quality)
        .chain([r.oracle.quality, r.random.quality])
        .chain(r.router_points.iter().map(|p| p.quality));
    let (qmin, qmax) = qs.fold((1.0f64, 0.0f64), |(a, b), q| (a.min(q), b.max(q)));
    let pad = ((qmax - qmin) * 0.08).max(0.01);
    let mut chart = ChartBuilder::on(&root)
        .caption(title(r), ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(axis.range(), (qmin - pad).max(0.0)..(qmax + pad).min(1.05))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(axis.description())
        .y_desc("mean quality (score)")
        .x_label_formatter(&|x| axis.label(*x))
        .draw()
        .map_err(err)?;
    let mut curve: Vec<(f64, f64)> = r.router_points.iter().map(|p| (fx(p.cost), p.quality)).collect();
    curve.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart
        .draw_series(LineSeries::new(curve.clone(), BLUE.stroke_width(2)))
        .map_err(err)?
        .label("router (λ sweep)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    if let Some(sm) = small {
        let mut c: Vec<(f64, f64)> = sm.router_points.iter().map(|p| (fx(p.cost), p.quality)).collect();
        c.sort_by(|a, b| a.0.total_cmp(&b.0));
        let orange = RGBColor(230, 120, 0);
        chart
            .draw_series(LineSeries::new(c, orange.stroke_width(2)))
            .map_err(err)?
            .label("router over the smaller models (λ sweep)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], orange.stroke_width(2)));
        let validated: Vec<(f64, f64)> = r
            .budgeted
            .iter()
            .map(|b| (fx(b.test.cost), b.test.quality))
            .chain([(fx(r.max_quality.cost), r.max_quality.quality)])
            .collect();
        chart
            .draw_series(validated.into_iter().map(|pt| Cross::new(pt, 7, BLUE.stroke_width(2))))
            .map_err(err)?
            .label("router policies (knobs set on validation)")
            .legend(|(x, y)| Cross::new((x + 10, y), 6, BLUE.stroke_width(2)));
    }
    // The hull is convex in cost, not in log cost: computed on costs, drawn through the axis.
    let mut hull_pts: Vec<(f64, f64)> = r.router_points.iter().map(|p| (p.cost, p.quality)).collect();
    hull_pts.extend(r.singles.iter().map(|s| (s.cost, s.quality)));
    let hull: Vec<(f64, f64)> = upper_hull(&hull_pts).into_iter().map(|(c, q)| (fx(c), q)).collect();
    chart
        .draw_series(LineSeries::new(hull, GREEN.stroke_width(1)))
        .map_err(err)?
        .label("router convex hull")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
    let (w, s) = (&r.singles[r.references.cheapest], &r.singles[r.references.best]);
    chart
        .draw_series(LineSeries::new(vec![(fx(w.cost), w.quality), (fx(s.cost), s.quality)], BLACK.mix(0.4)))
        .map_err(err)?
        .label("cheapest / best single (endpoints)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.4)));
    for (m, p) in r.models.iter().zip(&r.singles) {
        let short = m.rsplit('/').next().unwrap_or(m).to_string();
        let at = (fx(p.cost), p.quality);
        chart.draw_series(std::iter::once(Circle::new(at, 6, RED.filled()))).map_err(err)?;
        chart.draw_series(std::iter::once(Text::new(short, at, ("sans-serif", 15)))).map_err(err)?;
    }
    chart
        .draw_series(std::iter::once(TriangleMarker::new((fx(r.oracle.cost), r.oracle.quality), 8, MAGENTA.filled())))
        .map_err(err)?
        .label("oracle")
        .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, MAGENTA.filled()));
    legend_lower_right(&mut chart)?;
    root.present().map_err(err)?;
    Ok(())
}

/// The legend box, bottom right.
pub(crate) fn legend_lower_right<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// The cost axis: linear, or logarithmic (plotted as log10 of the cost) when the costs on
/// the chart span more than 10×, so that cheap models are not squeezed into one pixel.
struct CostAxis {
    log: bool,
    lo: f64,
    hi: f64,
}

impl CostAxis {
    fn new<'a>(points: impl Iterator<Item = &'a conductor_core::metrics::OperatingPoint>) -> CostAxis {
        let costs: Vec<f64> = points.map(|p| p.cost).filter(|c| c.is_finite() && *c > 0.0).collect();
        let lo = costs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = costs.iter().copied().fold(0.0, f64::max);
        if costs.is_empty() {
            return CostAxis { log: false, lo: 0.0, hi: 1e-9 };
        }
        if hi / lo > 10.0 {
            // Room on the right for the most expensive model's label.
            CostAxis { log: true, lo: (lo / 1.5).log10(), hi: (hi * 2.0).log10() }
        } else {
            CostAxis { log: false, lo: 0.0, hi: hi * 1.2 }
        }
    }

    fn x(&self, cost: f64) -> f64 {
        if self.log {
            cost.max(10f64.powf(self.lo)).log10()
        } else {
            cost
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi.max(self.lo + 1e-12)
    }

    fn description(&self) -> &'static str {
        if self.log {
            "mean cost per prompt (USD, log scale)"
        } else {
            "mean cost per prompt (USD)"
        }
    }

    /// Tick labels readable at any scale (local models cost micro-dollars per prompt).
    fn label(&self, x: f64) -> String {
        let c = if self.log { 10f64.powf(x) } else { x };
        if c >= 0.01 || c == 0.0 {
            format!("{c:.4}")
        } else {
            format!("{c:.1e}")
        }
    }
}

fn draw_pgr<DB: DrawingBackend>(r: &EvalReport, root: DrawingArea<DB, Shift>) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let ymax = r.pgr_curve.iter().map(|p| p.1).fold(1.0, f64::max) * 1.05;
    let ymin = r.pgr_curve.iter().map(|p| p.1).fold(0.0, f64::min) - 0.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{} — APGR {}", title(r), r.apgr.map_or("undefined".into(), |a| format!("{a:.3}"))),
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..1.0, ymin..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(format!("cost share: 0 = `{}`, 1 = `{}` (best single)", r.cheapest_name(), r.best_name()))
        .y_desc("PGR")
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(r.pgr_curve.clone(), BLUE.stroke_width(2)))
        .map_err(err)?
        .label("router")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(vec![(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.4)))
        .map_err(err)?
        .label("random (APGR 0.5)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.4)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Held-out quality against feedback rows received, one line per starting router, with
/// the best single model and the oracle as horizontal references; `<stem>.{svg,png}`.
pub fn online_curves(r: &crate::online::OnlineReport, dir: &Path, stem: &str) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    for ext in ["svg", "png"] {
        let p = dir.join(format!("{stem}.{ext}"));
        with_backend(&p, |a| draw_online(r, a), |a| draw_online(r, a))?;
        out.push(p);
    }
    Ok(out)
}

fn draw_online<DB: DrawingBackend>(
    r: &crate::online::OnlineReport,
    root: DrawingArea<DB, Shift>,
) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let xmax = r.stream_prompts.max(1) as f64;
    let qs =
        r.curves.iter().flat_map(|c| c.points.iter().map(|p| p.1)).chain([r.best_single_quality, r.oracle_quality]);
    let (qmin, qmax) = qs.fold((1.0f64, 0.0f64), |(a, b), q| (a.min(q), b.max(q)));
    let pad = ((qmax - qmin) * 0.08).max(0.01);
    let mut chart = ChartBuilder::on(&root)
        .caption("router quality as feedback arrives", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..xmax, (qmin - pad).max(0.0)..(qmax + pad).min(1.05))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("feedback rows received")
        .y_desc("held-out quality (max-quality choice)")
        .draw()
        .map_err(err)?;
    let colours = [BLUE, RGBColor(230, 120, 0), GREEN, MAGENTA];
    for (c, colour) in r.curves.iter().zip(colours.iter().cycle()) {
        let pts: Vec<(f64, f64)> = c.points.iter().map(|&(n, q)| (n as f64, q)).collect();
        let colour = *colour;
        chart
            .draw_series(LineSeries::new(pts, colour.stroke_width(2)))
            .map_err(err)?
            .label(c.start.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    for (label, q, colour) in [
        (format!("best single ({})", r.best_single), r.best_single_quality, BLACK.mix(0.5)),
        ("oracle".to_string(), r.oracle_quality, RED.mix(0.5)),
    ] {
        chart
            .draw_series(LineSeries::new(vec![(0.0, q), (xmax, q)], colour))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
