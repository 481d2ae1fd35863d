//! The diagnostic figures MT-COOL's claim rests on, drawn from the run files:
//!
//! - `gradient_conflict`: `EpochRecord::gradient_cosine` (key `<task a>~<task b>`), the cosine
//!   between two tasks' gradients over the encoder on a fixed probe batch, once per epoch; one
//!   panel per task pair, one line per method (mean ± sd over runs), a line at 0;
//! - `flatness`: `RunRecord::flatness`, each task's loss after training while the encoder
//!   parameters it does not own are perturbed by uniform noise of bound b; one panel per task,
//!   x = b, one line per method with ± sd error bars (over runs when a method has several,
//!   else over the noise draws). MT-COOL and Joint, the comparison the figure is for, are drawn
//!   thicker than the other methods.
//!
//! Methods without the data (independent networks, or runs with the diagnostics off) are left
//! out, and a figure no method has data for is not drawn.

use std::collections::BTreeSet;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::{
    draw_legend, height_for_legend, padded, run_kind, split_legend, text_err, width_for, CurveData,
    CurveFigure, CurvePanel, Drawn, Figure, LineStyle, Swatch, FAMILY,
};

/// The methods the flatness figure draws prominently.
const PROMINENT: [&str; 2] = ["mtcool", "joint"];

/// `even~odd` → `even vs odd`.
fn pair_label(key: &str) -> String {
    match key.split_once('~') {
        Some((a, b)) => format!("{a} vs {b}"),
        None => key.to_string(),
    }
}

impl CurveData<'_> {
    /// Gradient cosine per task pair and epoch; `None` when no method logged it.
    pub(super) fn gradient_conflict(&self) -> Option<CurveFigure> {
        let pairs = self.history_keys(|e| &e.gradient_cosine);
        let panels: Vec<CurvePanel> = pairs
            .iter()
            .map(|pair| CurvePanel {
                caption: format!("tasks {}", pair_label(pair)),
                y_desc: "cosine of the two task gradients".into(),
                curves: self.method_curves(|e| e.gradient_cosine.get(*pair).copied()),
                reference: Some(0.0),
                y_limits: Some((-1.0, 1.0)),
            })
            .filter(|p| !p.curves.is_empty())
            .collect();
        if panels.is_empty() {
            return None;
        }
        let legend = self
            .methods
            .iter()
            .filter(|(_, _, runs)| {
                runs.iter()
                    .flat_map(|r| &r.history)
                    .any(|e| e.gradient_cosine.values().any(|v| v.is_finite()))
            })
            .map(|(m, style, runs)| (format!("{m} (n = {})", runs.len()), Swatch::Line(*style)))
            .collect();
        Some(CurveFigure {
            title: format!(
                "{} ({}): gradient cosine between tasks over the encoder, per epoch, {}",
                self.results.summary.experiment,
                run_kind(self.results),
                Self::spread_note(&panels)
            ),
            panels,
            legend,
        })
    }
}

/// One method's flatness line in one task's panel: (b, mean loss, sd) per bound.
#[derive(Debug, Clone)]
struct FlatnessLine {
    style: LineStyle,
    prominent: bool,
    points: Vec<(f64, f64, f64)>,
}

/// One task's panel.
#[derive(Debug, Clone)]
struct FlatnessPanel {
    task: String,
    lines: Vec<FlatnessLine>,
}

/// The flatness figure: a panel per task, the legend of methods on the right.
#[derive(Debug, Clone)]
pub(super) struct FlatnessFigure {
    title: String,
    panels: Vec<FlatnessPanel>,
    legend: Vec<(String, Swatch)>,
    /// What the error bars are, for the legend.
    spread: &'static str,
    /// Whether the loss axes are logarithmic (see [`log_axis`]).
    log: bool,
}

/// One method's flatness points of `task`, by bound: mean loss over runs, and the sd over runs
/// (several runs) or over the noise draws (one run).
fn flatness_points(runs: &[&mtcool_train::results::RunRecord], task: &str) -> Vec<(f64, f64, f64)> {
    let mut raw: Vec<(f64, f64, f64)> = runs
        .iter()
        .flat_map(|r| &r.flatness)
        .filter(|p| p.task == task && p.bound.is_finite() && p.loss.is_finite())
        .map(|p| (p.bound, p.loss, if p.sd.is_finite() { p.sd } else { 0.0 }))
        .collect();
    raw.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut points = Vec::new();
    for group in raw.chunk_by(|a, b| a.0 == b.0) {
        let (bound, loss, draw_sd) = group[0];
        let point = if group.len() == 1 {
            (bound, loss, draw_sd)
        } else {
            let losses: Vec<f64> = group.iter().map(|p| p.1).collect();
            let (mean, sd) = mtcool_metrics::mean_std(&losses);
            (bound, mean, if sd.is_finite() { sd } else { 0.0 })
        };
        points.push(point);
    }
    points
}

impl FlatnessFigure {
    /// The figure of every method with flatness points; `None` when none has any.
    pub(super) fn new(data: &CurveData<'_>) -> Option<Self> {
        let methods: Vec<(&str, LineStyle, Vec<&mtcool_train::results::RunRecord>)> = data
            .methods
            .iter()
            .map(|(m, style, runs)| {
                let with: Vec<_> = runs.iter().filter(|r| !r.flatness.is_empty()).collect();
                (*m, *style, with)
            })
            .filter(|(_, _, runs)| !runs.is_empty())
            .collect();
        let tasks: BTreeSet<&str> = methods
            .iter()
            .flat_map(|(_, _, runs)| runs.iter())
            .flat_map(|r| &r.flatness)
            .map(|p| p.task.as_str())
            .collect();
        let panels: Vec<FlatnessPanel> = tasks
            .iter()
            .map(|task| FlatnessPanel {
                task: (*task).to_string(),
                lines: methods
                    .iter()
                    .map(|(m, style, runs)| FlatnessLine {
                        style: *style,
                        prominent: PROMINENT.contains(m),
                        points: flatness_points(runs, task),
                    })
                    .filter(|l| !l.points.is_empty())
                    .collect(),
            })
            .filter(|p| !p.lines.is_empty())
            .collect();
        if panels.is_empty() {
            return None;
        }
        let several = methods.iter().filter(|(_, _, runs)| runs.len() > 1).count();
        let spread = match several {
            0 => "± sd over noise draws",
            n if n == methods.len() => "± sd over runs",
            _ => "± sd over runs (1 run: draws)",
        };
        let legend = methods
            .iter()
            .map(|(m, style, runs)| (format!("{m} (n = {})", runs.len()), Swatch::Line(*style)))
            .collect();
        let log = log_axis(&panels);
        Some(Self {
            title: format!(
                "{} ({}): flatness, task loss as the other tasks' encoder parameters are perturbed",
                data.results.summary.experiment,
                run_kind(data.results),
            ),
            panels,
            log,
            legend,
            spread,
        })
    }
}

impl Figure for FlatnessFigure {
    fn size(&self) -> (u32, u32) {
        (
            width_for(self.panels.len(), &self.title),
            height_for_legend(440, self.legend.len() + 1),
        )
    }

    fn title(&self) -> &str {
        &self.title
    }

    fn draw_body<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn {
        let (plots, legend) = split_legend(area);
        for (panel, cell) in self
            .panels
            .iter()
            .zip(plots.split_evenly((1, self.panels.len())))
        {
            draw_flatness_panel(panel, &cell, self.log)?;
        }
        let mut entries = self.legend.clone();
        let whisker = LineStyle {
            color: BLACK,
            dashed: false,
        };
        entries.push((self.spread.to_string(), Swatch::Line(whisker)));
        draw_legend(&legend, "method (runs)", &entries)
    }
}

/// A tick label without trailing zeros: 0.050 → 0.05, 0 → 0.
fn short_number(x: f64) -> String {
    let text = format!("{x:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

/// Whether the losses read better on log axes (all panels alike): all positive, spanning
/// over 8× in the figure.
fn log_axis(panels: &[FlatnessPanel]) -> bool {
    let means = panels
        .iter()
        .flat_map(|p| &p.lines)
        .flat_map(|l| &l.points)
        .map(|p| p.1);
    let lo = means.clone().fold(f64::INFINITY, f64::min);
    let hi = means.fold(f64::NEG_INFINITY, f64::max);
    lo > 0.0 && hi / lo > 8.0
}

/// Log-axis ticks at 1, 2 and 5 × 10^k inside `lo..hi`.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return vec![];
    }
    let first = lo.log10().floor() as i32;
    let last = hi.log10().ceil() as i32;
    (first..=last.min(first + 12))
        .flat_map(|k| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(k)))
        .filter(|t| (lo..=hi).contains(t))
        .collect()
}

/// Moves the `index`-th of `count` lines sideways by a few pixels, so that error bars at the
/// same bound do not hide each other.
fn dodge(index: usize, count: usize, span: f64) -> f64 {
    (index as f64 - (count as f64 - 1.0) / 2.0) * span * 0.008
}

fn draw_flatness_panel<DB: DrawingBackend>(
    panel: &FlatnessPanel,
    cell: &DrawingArea<DB, Shift>,
    log: bool,
) -> Drawn {
    let points = panel.lines.iter().flat_map(|l| &l.points);
    let max_bound = points.clone().map(|p| p.0).fold(0.0, f64::max);
    let x_range = padded(0.0, max_bound, 0.04, 1e-4);
    let hi = points
        .clone()
        .map(|p| p.1 + p.2)
        .fold(f64::NEG_INFINITY, f64::max);
    if log {
        // error bars reaching 0 or below end at the axis
        let lo = points
            .map(|p| if p.1 > p.2 { p.1 - p.2 } else { p.1 })
            .fold(f64::INFINITY, f64::min)
            / 1.3;
        let ticks = log_ticks(lo, hi * 1.3);
        let chart = flatness_builder(cell, &panel.task)
            .build_cartesian_2d(x_range, (lo..hi * 1.3).log_scale().with_key_points(ticks))
            .map_err(text_err)?;
        draw_flatness_lines(chart, panel, lo, "task loss on the probe batch (log scale)")
    } else {
        let lo = points.map(|p| p.1 - p.2).fold(f64::INFINITY, f64::min);
        let chart = flatness_builder(cell, &panel.task)
            .build_cartesian_2d(x_range, padded(lo, hi, 0.08, 1e-3))
            .map_err(text_err)?;
        draw_flatness_lines(
            chart,
            panel,
            f64::NEG_INFINITY,
            "task loss on the probe batch",
        )
    }
}

fn flatness_builder<'a, 'b, DB: DrawingBackend>(
    cell: &'a DrawingArea<DB, Shift>,
    task: &str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(cell);
    builder
        .caption(format!("task {task}: loss"), (FAMILY, 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(64);
    builder
}

/// The mesh and the lines of a flatness panel, on a linear or log loss axis; error bars are
/// cut at `floor`.
fn draw_flatness_lines<DB: DrawingBackend, Y: Ranged<ValueType = f64> + ValueFormatter<f64>>(
    mut chart: ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
    panel: &FlatnessPanel,
    floor: f64,
    y_desc: &str,
) -> Drawn {
    chart
        .configure_mesh()
        .x_desc("noise bound b")
        .y_desc(y_desc)
        .x_labels(6)
        .y_labels(8)
        .x_label_formatter(&|x| short_number(*x))
        .y_label_formatter(&|y| format!("{y:.3}"))
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 14))
        .max_light_lines(0)
        .draw()
        .map_err(text_err)?;
    let span = chart.x_range().end - chart.x_range().start;
    let count = panel.lines.len();
    // the other methods first, so MT-COOL and Joint are drawn on top
    let mut lines: Vec<(usize, &FlatnessLine)> = panel.lines.iter().enumerate().collect();
    lines.sort_by_key(|(_, l)| l.prominent);
    for (index, line) in lines {
        let shift = dodge(index, count, span);
        let points: Vec<(f64, f64, f64)> = line
            .points
            .iter()
            .map(|p| (p.0 + shift, p.1, p.2))
            .collect();
        let (width, radius, color) = if line.prominent {
            (3, 4, line.style.color.to_rgba())
        } else {
            (1, 3, line.style.color.mix(0.6))
        };
        let stroke = ShapeStyle {
            color,
            filled: false,
            stroke_width: width,
        };
        let path: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.1)).collect();
        if line.style.dashed {
            chart
                .draw_series(std::iter::once(DashedPathElement::new(path, 8, 4, stroke)))
                .map_err(text_err)?;
        } else {
            chart
                .draw_series(LineSeries::new(path, stroke))
                .map_err(text_err)?;
        }
        chart
            .draw_series(points.iter().filter(|p| p.2 > 0.0).map(|p| {
                let low = (p.1 - p.2).max(floor);
                ErrorBar::new_vertical(p.0, low, p.1, p.1 + p.2, stroke, 8)
            }))
            .map_err(text_err)?;
        chart
            .draw_series(
                line.points
                    .iter()
                    .map(|p| Circle::new((p.0, p.1), radius, color.filled())),
            )
            .map_err(text_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mtcool_train::results::RunRecord;

    use super::*;
    use crate::ReportContext;

    /// A run with 3 epochs; `cosine` and `flat` add the diagnostics.
    fn record(method: &str, seed: u64, cosine: Option<f64>, flat: Option<f64>) -> RunRecord {
        let history: Vec<serde_json::Value> = (1..=3)
            .map(|epoch| {
                let mut record = serde_json::json!({
                    "epoch": epoch, "seconds": 1.0,
                    "train_loss": {"even": 0.1, "odd": 0.2},
                    "val": {"even/accuracy": 0.9, "odd/accuracy": 0.8}
                });
                if let Some(c) = cosine {
                    record["gradient_cosine"] =
                        serde_json::json!({"even~odd": c - 0.1 * f64::from(epoch)});
                }
                record
            })
            .collect();
        let flatness: Vec<serde_json::Value> = flat
            .map(|scale| {
                ["even", "odd"]
                    .iter()
                    .flat_map(|task| {
                        [0.0, 0.005, 0.01, 0.02, 0.05, 0.1].map(|b| {
                            serde_json::json!({
                                "task": task, "bound": b,
                                "loss": 0.05 + scale * b * b + 0.001 * seed as f64,
                                "sd": 0.1 * scale * b * b
                            })
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        serde_json::from_value(serde_json::json!({
            "method": method, "seed": seed, "epochs": 3, "seconds": 3.0,
            "images_per_second": 100.0,
            "metrics": {"even/accuracy": 0.9, "odd/accuracy": 0.8},
            "params": 1000, "fingerprint": "test", "history": history, "flatness": flatness
        }))
        .unwrap()
    }

    use crate::figures::testing::results;

    fn context() -> ReportContext {
        ReportContext {
            order: vec!["independent".into(), "joint".into(), "mtcool".into()],
            ..ReportContext::default()
        }
    }

    #[test]
    fn both_figures_are_written_with_title_and_methods() {
        let results = results(vec![
            record("independent", 0, None, None),
            record("joint", 0, Some(0.3), Some(40.0)),
            record("joint", 1, Some(0.2), Some(42.0)),
            record("mtcool", 0, Some(-0.1), Some(10.0)),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let written = super::super::write_figures(&results, &context(), dir.path()).unwrap();
        for stem in ["gradient_conflict", "flatness"] {
            for ext in ["png", "svg"] {
                let path = dir.path().join(format!("{stem}.{ext}"));
                assert!(written.contains(&path), "{written:?}");
                assert!(
                    std::fs::metadata(&path).unwrap().len() > 1000,
                    "{stem}.{ext}"
                );
            }
        }
        let svg = std::fs::read_to_string(dir.path().join("gradient_conflict.svg")).unwrap();
        for text in [
            "toy (quick run): gradient cosine between tasks over the encoder, per epoch",
            "tasks even vs odd",
            "joint (n = 2)",
            "mtcool (n = 1)",
        ] {
            assert!(svg.contains(text), "gradient_conflict.svg lacks `{text}`");
        }
        assert!(
            !svg.contains("independent"),
            "a method without data is in the legend"
        );
        let svg = std::fs::read_to_string(dir.path().join("flatness.svg")).unwrap();
        for text in [
            "toy (quick run): flatness, task loss as the other tasks",
            "task even: loss",
            "task odd: loss",
            "noise bound b",
            "joint (n = 2)",
            "mtcool (n = 1)",
            "± sd over runs (1 run: draws)",
        ] {
            assert!(svg.contains(text), "flatness.svg lacks `{text}`");
        }
        assert!(
            !svg.contains("independent"),
            "a method without data is in the legend"
        );
    }

    #[test]
    fn no_diagnostics_no_files_and_no_error() {
        let results = results(vec![
            record("independent", 0, None, None),
            record("joint", 0, None, None),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let written = super::super::write_figures(&results, &context(), dir.path()).unwrap();
        assert!(!written.is_empty(), "the other figures are still drawn");
        for stem in ["gradient_conflict", "flatness"] {
            for ext in ["png", "svg"] {
                assert!(!dir.path().join(format!("{stem}.{ext}")).exists());
            }
        }
    }

    #[test]
    fn flatness_points_average_runs_and_keep_draw_sd_for_one_run() {
        let a = record("joint", 0, None, Some(100.0));
        let b = record("joint", 1, None, Some(100.0));
        let one = flatness_points(&[&a], "even");
        assert_eq!(one.len(), 6);
        assert!((one[5].1 - 1.05).abs() < 1e-9 && (one[5].2 - 0.1).abs() < 1e-9);
        let two = flatness_points(&[&a, &b], "even");
        assert_eq!(two.len(), 6);
        assert!((two[0].1 - 0.0505).abs() < 1e-9, "{two:?}");
        assert!((two[0].2 - 0.001 / 2f64.sqrt()).abs() < 1e-9, "{two:?}");
        assert!(flatness_points(&[&a], "nope").is_empty());
    }

    #[test]
    fn labels_read_well() {
        assert_eq!(pair_label("even~odd"), "even vs odd");
        assert_eq!(pair_label("solo"), "solo");
        assert_eq!(short_number(0.05), "0.05");
        assert_eq!(short_number(0.0), "0");
        assert_eq!(short_number(0.1), "0.1");
        assert_eq!(log_ticks(0.007, 0.3), vec![0.01, 0.02, 0.05, 0.1, 0.2]);
        assert!(log_ticks(0.0, 1.0).is_empty());
        assert!(dodge(0, 2, 1.0) < 0.0 && dodge(1, 2, 1.0) > 0.0 && dodge(0, 1, 1.0) == 0.0);
    }
}
