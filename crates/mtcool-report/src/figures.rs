//! Figures of one experiment, each as PNG and SVG under `<experiment>/figures/`:
//!
//! - `val_curves`: validation metric (e.g. accuracy) per epoch, one panel per task metric, one
//!   line per method (mean over runs, ± sd band when there are several runs);
//! - `train_loss`: mean training loss per epoch, one panel per task, one line per method;
//! - `test_metrics`: test metric per method, ours beside the paper's, bars with ± sd error bars,
//!   one panel per metric of the paper's table;
//! - `gradient_conflict`: cosine between two tasks' encoder gradients per epoch, one panel per
//!   task pair, one line per method that logged it (see [`diagnostics`]);
//! - `flatness`: each task's loss as the encoder parameters it does not own are perturbed, one
//!   panel per task, one line per method that ran the probe (see [`diagnostics`]);
//! - `task_weights`: the task weights each method applied per epoch, one panel per method
//!   (see [`task_weights`]);
//! - `parameter_study`: test metric against the value of one swept option, for grid rows that
//!   are variants such as `mtcool[noise_bound = 0.05]`, one row of panels per option and one
//!   panel per metric, the default setting and Joint as dashed lines (see [`study`]).
//!
//! Text is drawn with the embedded DejaVu Sans subset (`assets/`), registered with plotters as
//! `sans-serif`, so no system font or font library is needed. Each file is rendered in memory
//! and written atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::ImageEncoder;
use mtcool_train::results::{write_atomic, RunRecord};
use mtcool_train::table::{higher_is_better, method_order, table_metrics};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{ReportError, Result};
use crate::load::ExperimentResults;
use crate::ReportContext;

pub mod diagnostics;
pub mod paired;
pub mod predictions;
pub mod study;
pub mod task_weights;

/// DejaVu Sans, subset to Latin-1, Greek and a few symbols (see `assets/README.md`).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");
/// The family name figures ask plotters for.
const FAMILY: &str = "sans-serif";

/// Registers the embedded font with plotters once per process.
fn register_font() -> std::result::Result<(), String> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
                .map_err(|_| "the embedded font does not parse".to_string())
        })
        .clone()
}

/// Line colours, in method order (matplotlib's tab10: distinct, colour-blind tolerable).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const OURS: RGBColor = RGBColor(31, 119, 180);
const PAPER: RGBColor = RGBColor(170, 170, 170);

/// A figure that can draw itself on any plotters backend.
trait Figure {
    /// Size in pixels (PNG) or user units (SVG).
    fn size(&self) -> (u32, u32);
    /// The title drawn at the top.
    fn title(&self) -> &str;
    /// Draws the figure below the title.
    fn draw_body<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn;
}

/// Result of drawing: plotters' errors are reported as text.
type Drawn = std::result::Result<(), String>;

fn text_err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn draw_figure<DB: DrawingBackend, F: Figure>(root: DrawingArea<DB, Shift>, figure: &F) -> Drawn {
    root.fill(&WHITE).map_err(text_err)?;
    let body = root
        .titled(figure.title(), (FAMILY, 20).into_font().color(&BLACK))
        .map_err(text_err)?;
    figure.draw_body(&body)?;
    root.present().map_err(text_err)
}

fn render_png<F: Figure>(figure: &F) -> std::result::Result<Vec<u8>, String> {
    let (w, h) = figure.size();
    let mut pixels = vec![0u8; w as usize * h as usize * 3];
    draw_figure(
        BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area(),
        figure,
    )?;
    // best compression: figures are committed to docs/, so small files matter more than time
    let mut png = Vec::new();
    let encoder = PngEncoder::new_with_quality(
        Cursor::new(&mut png),
        CompressionType::Best,
        FilterType::Adaptive,
    );
    encoder
        .write_image(&pixels, w, h, image::ExtendedColorType::Rgb8)
        .map_err(text_err)?;
    Ok(png)
}

fn render_svg<F: Figure>(figure: &F) -> std::result::Result<String, String> {
    let mut svg = String::new();
    draw_figure(
        SVGBackend::with_string(&mut svg, figure.size()).into_drawing_area(),
        figure,
    )?;
    Ok(svg)
}

/// Writes `<dir>/<stem>.png` and `<dir>/<stem>.svg`.
fn write_both<F: Figure>(figure: &F, dir: &Path, stem: &str) -> Result<[PathBuf; 2]> {
    let png_path = dir.join(format!("{stem}.png"));
    let svg_path = dir.join(format!("{stem}.svg"));
    let png = render_png(figure).map_err(|e| ReportError::file(&png_path, e))?;
    write_atomic(&png_path, &png)?;
    let svg = render_svg(figure).map_err(|e| ReportError::file(&svg_path, e))?;
    write_atomic(&svg_path, svg.as_bytes())?;
    Ok([png_path, svg_path])
}

/// Draws every figure of `results` into `dir` (created if needed) and returns their paths.
/// Curves need the run files' histories; the bar chart needs only the summary.
///
/// # Errors
/// One error naming the figure file that could not be drawn or written.
pub fn write_figures(
    results: &ExperimentResults,
    context: &ReportContext,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    register_font().map_err(|e| ReportError::file("assets/DejaVuSans-subset.ttf", e))?;
    let mut written = Vec::new();
    let curves = CurveData::new(results, context);
    if let Some(figure) = curves.validation() {
        written.extend(write_both(&figure, dir, "val_curves")?);
    }
    if let Some(figure) = curves.training_loss() {
        written.extend(write_both(&figure, dir, "train_loss")?);
    }
    if let Some(figure) = BarFigure::new(results, context) {
        written.extend(write_both(&figure, dir, "test_metrics")?);
    }
    if let Some(figure) = curves.gradient_conflict() {
        written.extend(write_both(&figure, dir, "gradient_conflict")?);
    }
    if let Some(figure) = diagnostics::FlatnessFigure::new(&curves) {
        written.extend(write_both(&figure, dir, "flatness")?);
    }
    if let Some(figure) = task_weights::TaskWeightsFigure::new(&curves) {
        written.extend(write_both(&figure, dir, "task_weights")?);
    }
    if let Some(figure) = study::StudyFigure::new(results, context) {
        written.extend(write_both(&figure, dir, "parameter_study")?);
    }
    if let Some(figure) = paired::PairedFigure::new(results, context) {
        written.extend(write_both(&figure, dir, "paired_differences")?);
    }
    Ok(written)
}

fn run_kind(results: &ExperimentResults) -> &'static str {
    if results.summary.quick {
        "quick run"
    } else {
        "full run"
    }
}

/// The part of a metric key after the task: `even/accuracy` → `accuracy`.
fn metric_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// The task of a metric key: `even/accuracy` → `even`.
fn task_name(key: &str) -> &str {
    key.split('/').next().unwrap_or(key)
}

/// Joins names as `a`, `a and b`, `a, b and c`.
fn join_names(names: &BTreeSet<&str>) -> String {
    let names: Vec<&str> = names.iter().copied().collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// How a method is drawn: its colour, and dashed once the ten colours are used up.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LineStyle {
    color: RGBColor,
    dashed: bool,
}

impl LineStyle {
    /// The style of the `index`-th method.
    fn nth(index: usize) -> Self {
        Self {
            color: PALETTE[index % PALETTE.len()],
            dashed: (index / PALETTE.len()) % 2 == 1,
        }
    }
}

/// A legend entry's swatch.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Swatch {
    Line(LineStyle),
    Bar(RGBColor),
}

/// One method's line: (epoch, mean, sd) per epoch, sd 0 for one run.
#[derive(Debug, Clone)]
struct Curve {
    style: LineStyle,
    points: Vec<(i32, f64, f64)>,
    runs: usize,
}

/// One panel of a curve figure.
#[derive(Debug, Clone)]
struct CurvePanel {
    caption: String,
    y_desc: String,
    curves: Vec<Curve>,
    /// A horizontal reference line (e.g. cosine 0), always inside the y range.
    reference: Option<f64>,
    /// Bounds the y range may not leave (e.g. [-1, 1] for a cosine).
    y_limits: Option<(f64, f64)>,
}

/// A figure of curve panels side by side, with a legend of methods on the right.
#[derive(Debug, Clone)]
struct CurveFigure {
    title: String,
    panels: Vec<CurvePanel>,
    legend: Vec<(String, Swatch)>,
}

/// The runs of each method in table order, with each method's colour.
struct CurveData<'a> {
    results: &'a ExperimentResults,
    methods: Vec<(&'a str, LineStyle, &'a [RunRecord])>,
}

impl<'a> CurveData<'a> {
    fn new(results: &'a ExperimentResults, context: &ReportContext) -> Self {
        let methods = method_order(&results.summary, &context.order)
            .into_iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let runs = results.runs.get(m)?;
                (!runs.is_empty()).then(|| (m, LineStyle::nth(i), runs.as_slice()))
            })
            .collect();
        Self { results, methods }
    }

    /// Mean and sd over runs of `value(epoch record)`, per epoch.
    /// The keys of one per-epoch map (`field`) over every run, in order.
    fn history_keys(
        &self,
        field: impl Fn(&mtcool_train::results::EpochRecord) -> &BTreeMap<String, f64>,
    ) -> BTreeSet<&str> {
        self.methods
            .iter()
            .flat_map(|(_, _, runs)| runs.iter())
            .flat_map(|r| &r.history)
            .flat_map(|e| field(e).keys())
            .map(String::as_str)
            .collect()
    }

    /// One curve per method that has `value` in some epoch.
    fn method_curves(
        &self,
        value: impl Fn(&mtcool_train::results::EpochRecord) -> Option<f64>,
    ) -> Vec<Curve> {
        self.methods
            .iter()
            .filter_map(|(_, c, runs)| Self::curve(*c, runs, &value))
            .collect()
    }

    fn curve(
        style: LineStyle,
        runs: &[RunRecord],
        value: impl Fn(&mtcool_train::results::EpochRecord) -> Option<f64>,
    ) -> Option<Curve> {
        let mut by_epoch: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        for record in runs.iter().flat_map(|r| &r.history) {
            if let Some(v) = value(record).filter(|v| v.is_finite()) {
                by_epoch.entry(record.epoch).or_default().push(v);
            }
        }
        let points: Vec<(i32, f64, f64)> = by_epoch
            .into_iter()
            .map(|(epoch, values)| {
                let (mean, sd) = mtcool_metrics::mean_std(&values);
                let epoch = i32::try_from(epoch).unwrap_or(i32::MAX);
                (epoch, mean, if sd.is_finite() { sd } else { 0.0 })
            })
            .collect();
        (!points.is_empty()).then_some(Curve {
            style,
            points,
            runs: runs.len(),
        })
    }

    fn legend(&self) -> Vec<(String, Swatch)> {
        self.methods
            .iter()
            .map(|(m, style, runs)| (format!("{m} (n = {})", runs.len()), Swatch::Line(*style)))
            .collect()
    }

    fn spread_note(panels: &[CurvePanel]) -> &'static str {
        let several = panels.iter().flat_map(|p| &p.curves).any(|c| c.runs > 1);
        if several {
            "mean ± sd over runs"
        } else {
            "one run per method"
        }
    }

    /// Validation metrics (not losses) per epoch, in %.
    fn validation(&self) -> Option<CurveFigure> {
        let mut keys = self.history_keys(|e| &e.val);
        keys.retain(|k| higher_is_better(k));
        let panels: Vec<CurvePanel> = keys
            .iter()
            .map(|key| CurvePanel {
                caption: format!("task {}: validation {}", task_name(key), metric_name(key)),
                y_desc: format!("validation {} (%)", metric_name(key)),
                curves: self.method_curves(|e| e.val.get(*key).map(|v| 100.0 * v)),
                reference: None,
                y_limits: None,
            })
            .filter(|p| !p.curves.is_empty())
            .collect();
        if panels.is_empty() {
            return None;
        }
        let names: BTreeSet<&str> = keys.iter().map(|k| metric_name(k)).collect();
        Some(CurveFigure {
            title: format!(
                "{} ({}): validation {} per epoch, {}",
                self.results.summary.experiment,
                run_kind(self.results),
                join_names(&names),
                Self::spread_note(&panels)
            ),
            panels,
            legend: self.legend(),
        })
    }

    /// Mean training loss of each task per epoch.
    fn training_loss(&self) -> Option<CurveFigure> {
        let tasks = self.history_keys(|e| &e.train_loss);
        let panels: Vec<CurvePanel> = tasks
            .iter()
            .map(|task| CurvePanel {
                caption: format!("task {task}: training loss"),
                y_desc: "training loss (mean over the epoch)".into(),
                curves: self.method_curves(|e| e.train_loss.get(*task).copied()),
                reference: None,
                y_limits: None,
            })
            .filter(|p| !p.curves.is_empty())
            .collect();
        if panels.is_empty() {
            return None;
        }
        Some(CurveFigure {
            title: format!(
                "{} ({}): training loss per epoch, {}",
                self.results.summary.experiment,
                run_kind(self.results),
                Self::spread_note(&panels)
            ),
            panels,
            legend: self.legend(),
        })
    }
}

/// A padded axis range around `lo..hi`.
fn padded(lo: f64, hi: f64, fraction: f64, minimum: f64) -> std::ops::Range<f64> {
    let pad = ((hi - lo) * fraction).max(minimum);
    (lo - pad)..(hi + pad)
}

const LEGEND_WIDTH: u32 = 190;
/// Legend layout: the first entry's centre and the distance between entries, in pixels.
const LEGEND_TOP: i32 = 68;
const LEGEND_STEP: i32 = 24;

/// A figure height that fits the plots and a legend of `entries` lines.
fn height_for_legend(plots: u32, entries: usize) -> u32 {
    let legend = LEGEND_TOP + LEGEND_STEP * i32::try_from(entries).unwrap_or(1000) + 40;
    plots.max(u32::try_from(legend).unwrap_or(plots))
}
const PANEL_WIDTH: u32 = 520;

/// A figure width that fits `panels` panels, the legend and a one-line title (DejaVu Sans at
/// 20 px averages under 11 px a character).
fn width_for(panels: usize, title: &str) -> u32 {
    let plots = PANEL_WIDTH * u32::try_from(panels).unwrap_or(1);
    let title = u32::try_from(title.chars().count()).unwrap_or(200) * 11 + 40;
    (plots + LEGEND_WIDTH).max(title)
}

/// Splits a figure body into the plots (left) and the legend column (right).
fn split_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
) -> (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>) {
    let width = area.dim_in_pixel().0;
    area.split_horizontally(width.saturating_sub(LEGEND_WIDTH))
}

/// Draws a legend of coloured swatches and labels, top-down.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    heading: &str,
    entries: &[(String, Swatch)],
) -> Drawn {
    let font = (FAMILY, 14).into_font().color(&BLACK);
    area.draw_text(heading, &font, (8, 40)).map_err(text_err)?;
    for (i, (label, swatch)) in entries.iter().enumerate() {
        let y = LEGEND_TOP + LEGEND_STEP * i32::try_from(i).unwrap_or(i32::MAX);
        match swatch {
            Swatch::Bar(color) => area
                .draw(&Rectangle::new([(8, y - 6), (30, y + 6)], color.filled()))
                .map_err(text_err)?,
            Swatch::Line(style) if style.dashed => area
                .draw(&DashedPathElement::new(
                    [(8, y), (30, y)],
                    6,
                    3,
                    style.color.stroke_width(3),
                ))
                .map_err(text_err)?,
            Swatch::Line(style) => area
                .draw(&PathElement::new(
                    vec![(8, y), (30, y)],
                    style.color.stroke_width(3),
                ))
                .map_err(text_err)?,
        }
        let centred = font.pos(Pos::new(HPos::Left, VPos::Center));
        area.draw_text(label, &centred, (38, y)).map_err(text_err)?;
    }
    Ok(())
}

impl Figure for CurveFigure {
    fn size(&self) -> (u32, u32) {
        (
            width_for(self.panels.len(), &self.title),
            height_for_legend(440, self.legend.len()),
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
            draw_curve_panel(panel, &cell)?;
        }
        draw_legend(&legend, "method (runs)", &self.legend)
    }
}

/// `y` with two decimals, never `-0.00`.
fn two_decimals(y: f64) -> String {
    let text = format!("{y:.2}");
    if text == "-0.00" {
        "0.00".into()
    } else {
        text
    }
}

/// Epoch ticks: every epoch up to 12, else about 10 evenly spaced, always the last.
fn epoch_ticks(last: i32) -> Vec<i32> {
    let step = if last <= 12 { 1 } else { (last + 9) / 10 };
    (1..=last)
        .filter(|e| (e - 1) % step == 0 || *e == last)
        .collect()
}

fn draw_curve_panel<DB: DrawingBackend>(
    panel: &CurvePanel,
    cell: &DrawingArea<DB, Shift>,
) -> Drawn {
    let points = panel.curves.iter().flat_map(|c| &c.points);
    let last_epoch = points.clone().map(|p| p.0).fold(1, i32::max);
    let lo = points
        .clone()
        .map(|p| p.1 - p.2)
        .fold(f64::INFINITY, f64::min);
    let hi = points.map(|p| p.1 + p.2).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = match panel.reference {
        Some(r) => (lo.min(r), hi.max(r)),
        None => (lo, hi),
    };
    let mut y_range = padded(lo, hi, 0.08, 1e-3);
    if let Some((min, max)) = panel.y_limits {
        y_range = y_range.start.max(min)..y_range.end.min(max);
    }
    let ticks = epoch_ticks(last_epoch);
    let mut chart = ChartBuilder::on(cell)
        .caption(&panel.caption, (FAMILY, 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d((0..last_epoch + 1).with_key_points(ticks), y_range)
        .map_err(text_err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(panel.y_desc.as_str())
        .x_label_formatter(&|x| x.to_string())
        .y_label_formatter(&|y| two_decimals(*y))
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 14))
        .max_light_lines(0)
        .draw()
        .map_err(text_err)?;
    if let Some(r) = panel.reference {
        chart
            .draw_series(LineSeries::new(
                [(0, r), (last_epoch + 1, r)],
                BLACK.mix(0.6).stroke_width(1),
            ))
            .map_err(text_err)?;
    }
    for curve in &panel.curves {
        let color = curve.style.color;
        if curve.runs > 1 && curve.points.len() > 1 {
            let mut band: Vec<(i32, f64)> = curve.points.iter().map(|p| (p.0, p.1 + p.2)).collect();
            band.extend(curve.points.iter().rev().map(|p| (p.0, p.1 - p.2)));
            chart
                .draw_series(std::iter::once(Polygon::new(band, color.mix(0.15))))
                .map_err(text_err)?;
        }
        let line = curve.points.iter().map(|p| (p.0, p.1));
        if curve.style.dashed {
            chart
                .draw_series(DashedLineSeries::new(line, 8, 4, color.stroke_width(2)))
                .map_err(text_err)?;
        } else {
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)))
                .map_err(text_err)?;
        }
        chart
            .draw_series(
                curve
                    .points
                    .iter()
                    .map(|p| Circle::new((p.0, p.1), 3, color.filled())),
            )
            .map_err(text_err)?;
    }
    Ok(())
}

/// One method's bars: its name, ours (mean, sd) and the paper's (mean, sd if published), in %.
type BarRow = (String, Option<(f64, f64)>, Option<(f64, Option<f64>)>);

/// One metric's bars, a row per method.
#[derive(Debug, Clone)]
struct BarPanel {
    caption: String,
    x_desc: String,
    rows: Vec<BarRow>,
}

/// Horizontal bars (method names read without overlap), one panel per metric.
#[derive(Debug, Clone)]
struct BarFigure {
    title: String,
    panels: Vec<BarPanel>,
    has_paper: bool,
}

impl BarFigure {
    fn new(results: &ExperimentResults, context: &ReportContext) -> Option<Self> {
        let summary = &results.summary;
        let paper = context.paper.as_ref();
        let metrics = table_metrics(summary, paper);
        let methods = method_order(summary, &context.order);
        let mut has_paper = false;
        let panels: Vec<BarPanel> = metrics
            .iter()
            .map(|key| {
                let rows = methods
                    .iter()
                    .map(|m| {
                        let ours = summary.methods.get(*m).and_then(|s| {
                            let mean = s.mean.get(key)?;
                            Some((100.0 * mean, 100.0 * s.std.get(key).copied().unwrap_or(0.0)))
                        });
                        let theirs = paper
                            .and_then(|p| p.methods.get(*m))
                            .and_then(|t| t.get(key))
                            .map(|v| (100.0 * v.mean, v.sd.map(|sd| 100.0 * sd)));
                        has_paper |= theirs.is_some();
                        (m.to_string(), ours, theirs)
                    })
                    .collect();
                BarPanel {
                    caption: format!("task {}: test {}", task_name(key), metric_name(key)),
                    x_desc: format!("test {} (%), axis zoomed", metric_name(key)),
                    rows,
                }
            })
            .filter(|p: &BarPanel| p.rows.iter().any(|r| r.1.is_some()))
            .collect();
        if panels.is_empty() {
            return None;
        }
        let names: BTreeSet<&str> = metrics.iter().map(|k| metric_name(k)).collect();
        let versus = if has_paper { ", ours vs the paper" } else { "" };
        Some(Self {
            title: format!(
                "{} ({}): test {} per method{versus} (mean ± sd)",
                summary.experiment,
                run_kind(results),
                join_names(&names)
            ),
            panels,
            has_paper,
        })
    }
}

impl Figure for BarFigure {
    fn size(&self) -> (u32, u32) {
        let methods = self.panels.first().map_or(1, |p| p.rows.len()) as u32;
        (
            PANEL_WIDTH * self.panels.len() as u32 + LEGEND_WIDTH,
            (150 + 46 * methods).max(320),
        )
    }

    fn title(&self) -> &str {
        &self.title
    }

    fn draw_body<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn {
        let (plots, legend) = area.split_horizontally(PANEL_WIDTH * self.panels.len() as u32);
        for (panel, cell) in self
            .panels
            .iter()
            .zip(plots.split_evenly((1, self.panels.len())))
        {
            draw_bar_panel(panel, &cell)?;
        }
        let mut entries = vec![("ours".to_string(), Swatch::Bar(OURS))];
        if self.has_paper {
            entries.push(("paper".to_string(), Swatch::Bar(PAPER)));
        }
        let whisker = LineStyle {
            color: BLACK,
            dashed: false,
        };
        entries.push(("± sd over runs".to_string(), Swatch::Line(whisker)));
        draw_legend(&legend, "bars", &entries)
    }
}

/// Height of one row of a row chart in y units (integers, so the axis can carry one labelled
/// tick per row).
const ROW: i32 = 100;

/// The axes of a row chart: one labelled row per entry of `labels`, the first at the top
/// (row i from the top spans y ∈ [(n − 1 − i)·ROW, (n − i)·ROW), see [`row_y`]).
struct RowAxes<'a> {
    caption: &'a str,
    x_desc: &'a str,
    x_range: std::ops::Range<f64>,
    x_format: fn(&f64) -> String,
    labels: &'a [String],
    label_width: u32,
    label_size: u32,
}

/// A chart of [`RowAxes`].
type RowChart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<
        plotters::coord::types::RangedCoordf64,
        plotters::coord::combinators::WithKeyPoints<plotters::coord::types::RangedCoordi32>,
    >,
>;

/// The bottom of row `i` (from the top) of `n` rows, in y units.
fn row_y(i: usize, n: usize) -> i32 {
    i32::try_from(n - 1 - i).unwrap_or(0) * ROW
}

/// Builds a row chart on `cell` and draws its axes (no y grid, one label per row).
fn row_chart<'a, DB: DrawingBackend>(
    cell: &'a DrawingArea<DB, Shift>,
    axes: &RowAxes<'_>,
) -> std::result::Result<RowChart<'a, DB>, String> {
    let n = i32::try_from(axes.labels.len()).unwrap_or(i32::MAX);
    let centres: Vec<i32> = (0..n).map(|i| i * ROW + ROW / 2).collect();
    let mut chart = ChartBuilder::on(cell)
        .caption(axes.caption, (FAMILY, 16))
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(axes.label_width)
        .build_cartesian_2d(axes.x_range.clone(), (0..n * ROW).with_key_points(centres))
        .map_err(text_err)?;
    let label_of = |y: &i32| {
        usize::try_from(n - 1 - y.div_euclid(ROW))
            .ok()
            .and_then(|i| axes.labels.get(i))
            .cloned()
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .x_desc(axes.x_desc)
        .x_labels(6)
        .x_label_formatter(&axes.x_format)
        .y_label_formatter(&label_of)
        .label_style((FAMILY, axes.label_size))
        .axis_desc_style((FAMILY, 14))
        .disable_y_mesh()
        .max_light_lines(0)
        .draw()
        .map_err(text_err)?;
    Ok(chart)
}

fn draw_bar_panel<DB: DrawingBackend>(panel: &BarPanel, cell: &DrawingArea<DB, Shift>) -> Drawn {
    let ends = panel.rows.iter().flat_map(|(_, ours, theirs)| {
        let ours = ours.map(|(m, s)| (m - s, m + s));
        let theirs = theirs.map(|(m, s)| (m - s.unwrap_or(0.0), m + s.unwrap_or(0.0)));
        ours.into_iter().chain(theirs)
    });
    let lo = ends.clone().map(|e| e.0).fold(f64::INFINITY, f64::min);
    let hi = ends.map(|e| e.1).fold(f64::NEG_INFINITY, f64::max);
    let x_range = padded(lo, hi, 0.25, 0.05);
    let base = x_range.start;
    let labels: Vec<String> = panel.rows.iter().map(|r| r.0.clone()).collect();
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(4);
    let axes = RowAxes {
        caption: &panel.caption,
        x_desc: &panel.x_desc,
        x_range,
        x_format: |x| format!("{x:.2}"),
        labels: &labels,
        label_width: (u32::try_from(longest).unwrap_or(20) * 8 + 16).max(60),
        label_size: 13,
    };
    let mut chart = row_chart(cell, &axes)?;
    let error_bar = |y: i32, mean: f64, sd: f64| {
        ErrorBar::new_horizontal(y, mean - sd, mean, mean + sd, BLACK.stroke_width(1), 8)
    };
    for (k, (_, ours, theirs)) in panel.rows.iter().enumerate() {
        let row = row_y(k, panel.rows.len());
        if let Some((mean, sd)) = *ours {
            let (y0, y1) = (row + 52, row + 88);
            chart
                .draw_series([Rectangle::new([(base, y0), (mean, y1)], OURS.filled())])
                .map_err(text_err)?;
            if sd > 0.0 {
                chart
                    .draw_series([error_bar((y0 + y1) / 2, mean, sd)])
                    .map_err(text_err)?;
            }
        }
        if let Some((mean, sd)) = *theirs {
            let (y0, y1) = (row + 12, row + 48);
            chart
                .draw_series([Rectangle::new([(base, y0), (mean, y1)], PAPER.filled())])
                .map_err(text_err)?;
            if let Some(sd) = sd.filter(|s| *s > 0.0) {
                chart
                    .draw_series([error_bar((y0 + y1) / 2, mean, sd)])
                    .map_err(text_err)?;
            }
        }
    }
    Ok(())
}

/// Helpers shared by the figure tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::BTreeMap;

    use mtcool_train::results::{MethodSummary, RunRecord, Summary};

    use crate::load::ExperimentResults;

    /// The results of `runs`, grouped by method, as a quick run of experiment `toy`.
    pub(crate) fn results(runs: Vec<RunRecord>) -> ExperimentResults {
        let mut by_method: BTreeMap<String, Vec<RunRecord>> = BTreeMap::new();
        for r in runs {
            by_method.entry(r.method.clone()).or_default().push(r);
        }
        let summary = Summary {
            experiment: "toy".into(),
            quick: true,
            device: "cpu".into(),
            optimizer: String::new(),
            methods: by_method
                .iter()
                .map(|(m, runs)| (m.clone(), MethodSummary::from_runs(runs)))
                .collect(),
            jobs: None,
            wall_seconds: None,
        };
        ExperimentResults {
            dir: "toy".into(),
            summary,
            runs: by_method,
            missing_runs: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_ticks_cover_short_and_long_schedules() {
        assert_eq!(epoch_ticks(1), vec![1]);
        assert_eq!(epoch_ticks(3), vec![1, 2, 3]);
        let long = epoch_ticks(100);
        assert!(
            long.len() <= 12 && long[0] == 1 && long.last() == Some(&100),
            "{long:?}"
        );
    }

    #[test]
    fn names_join_in_prose() {
        assert_eq!(join_names(&["accuracy"].into()), "accuracy");
        assert_eq!(join_names(&["a", "b", "c"].into()), "a, b and c");
        assert_eq!(metric_name("even/accuracy"), "accuracy");
        assert_eq!(task_name("even/accuracy"), "even");
        assert_eq!(two_decimals(-1e-17), "0.00");
        assert_eq!(two_decimals(-0.25), "-0.25");
    }

    #[test]
    fn styles_and_legend_scale_with_methods() {
        assert!(!LineStyle::nth(0).dashed && !LineStyle::nth(9).dashed);
        assert!(LineStyle::nth(10).dashed);
        assert_eq!(LineStyle::nth(10).color, LineStyle::nth(0).color);
        assert_eq!(height_for_legend(440, 3), 440);
        assert!(height_for_legend(440, 30) > 440 + 24 * 10);
    }

    #[test]
    fn embedded_font_registers() {
        assert_eq!(register_font(), Ok(()));
    }
}
