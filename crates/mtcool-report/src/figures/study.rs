//! The parameter-study figure `parameter_study`, drawn from `summary.json` alone.
//!
//! Grid rows may be method variants, labelled `kind[key = value]` (see
//! `mtcool_train::config::MethodSpec`). Variants with exactly one numeric option are grouped by
//! (kind, key); a group with two or more values is a study. The figure has one row of panels per
//! study and one panel per metric (the paper table's metrics, else the accuracy-like metrics of
//! the summary; at most [`MAX_METRICS`]): x = the option's value (log scale when the values are
//! all positive and span over 10×), y = the test metric's mean over runs with ± sd error bars
//! (when a setting has several runs). The plain row of the same kind (e.g. `mtcool`, whose own
//! value of the option is not in its label) is a dashed line labelled `<kind> (default)`, and
//! `joint`, when it ran, a second dashed line.
//!
//! Variants with other options (several keys, arrays such as `fixed[weights = [1, 1]]`) are
//! not studies and are left out; a summary without a study gets no figure.

use mtcool_train::config::MethodSpec;
use mtcool_train::results::{MethodSummary, Summary};
use mtcool_train::table::{higher_is_better, method_order, table_metrics};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    draw_legend, height_for_legend, metric_name, padded, run_kind, task_name, text_err, width_for,
    Drawn, Figure, LineStyle, Swatch, FAMILY, LEGEND_WIDTH, PALETTE,
};
use crate::load::ExperimentResults;
use crate::ReportContext;

/// The most metric panels per study row.
pub const MAX_METRICS: usize = 4;
/// Height of one study's row of panels, in pixels.
const ROW_HEIGHT: u32 = 360;
/// The legend column, wider than the other figures' for labels like `mtcool[warmup_epochs]`.
const STUDY_LEGEND_WIDTH: u32 = 270;
/// The dashed line of the default setting.
const DEFAULT_COLOR: RGBColor = RGBColor(60, 60, 60);
/// The dashed line of `joint` (tab10's orange; studies use the other colours).
const JOINT_COLOR: RGBColor = PALETTE[1];

/// One swept option: the variants of `kind` that change only `key`, by value.
#[derive(Debug, Clone, PartialEq)]
struct Study<'a> {
    kind: String,
    key: String,
    /// (value, the variant's summary), sorted by value.
    settings: Vec<(f64, &'a MethodSummary)>,
}

/// The option of a variant label when it is exactly one number: `mtcool[samples = 2]` →
/// (`mtcool`, `samples`, 2). Plain labels, labels that do not parse and other options give
/// `None`.
fn single_numeric_option(label: &str) -> Option<(String, String, f64)> {
    let spec: MethodSpec = label.parse().ok()?;
    if spec.options.len() != 1 {
        return None;
    }
    let (key, value) = spec.options.iter().next()?;
    #[allow(clippy::cast_precision_loss)]
    let number = value
        .as_integer()
        .map(|i| i as f64)
        .or_else(|| value.as_float())
        .filter(|v| v.is_finite())?;
    Some((spec.kind.name().to_string(), key.clone(), number))
}

/// The studies of `summary`, in the order of their first variant in `order` (then by name).
fn find_studies<'a>(summary: &'a Summary, order: &[String]) -> Vec<Study<'a>> {
    let mut groups: Vec<Study<'a>> = Vec::new();
    for label in method_order(summary, order) {
        let (Some((kind, key, value)), Some(ms)) =
            (single_numeric_option(label), summary.methods.get(label))
        else {
            continue;
        };
        match groups.iter_mut().find(|s| s.kind == kind && s.key == key) {
            Some(study) => study.settings.push((value, ms)),
            None => groups.push(Study {
                kind,
                key,
                settings: vec![(value, ms)],
            }),
        }
    }
    for study in &mut groups {
        study.settings.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    groups.retain(|s| s.settings.len() >= 2);
    groups
}

/// Mean and sd of `key` in `ms`, in the figure's unit (% for higher-is-better metrics); sd is
/// 0 unless the setting has several runs.
fn value_of(ms: &MethodSummary, key: &str) -> Option<(f64, f64, usize)> {
    let scale = if higher_is_better(key) { 100.0 } else { 1.0 };
    let mean = ms.mean.get(key).copied().filter(|v| v.is_finite())?;
    let n = ms.runs.len();
    let sd = ms
        .std
        .get(key)
        .copied()
        .filter(|s| n > 1 && s.is_finite() && *s > 0.0)
        .unwrap_or(0.0);
    Some((scale * mean, scale * sd, n))
}

/// The metrics the panels show: the paper table's, else the accuracy-like metrics (else every
/// higher-is-better metric); only those some study setting has, at most [`MAX_METRICS`].
fn study_metrics(summary: &Summary, context: &ReportContext, studies: &[Study<'_>]) -> Vec<String> {
    let has = |key: &str| {
        studies
            .iter()
            .flat_map(|s| &s.settings)
            .any(|(_, ms)| value_of(ms, key).is_some())
    };
    let from_paper = context
        .paper
        .as_ref()
        .filter(|p| !p.metrics.is_empty())
        .map(|p| table_metrics(summary, Some(p)));
    let keys = from_paper.unwrap_or_else(|| {
        let all = table_metrics(summary, None);
        let accuracy: Vec<String> = all
            .iter()
            .filter(|k| metric_name(k).to_ascii_lowercase().contains("acc"))
            .cloned()
            .collect();
        if accuracy.is_empty() {
            all.into_iter().filter(|k| higher_is_better(k)).collect()
        } else {
            accuracy
        }
    });
    keys.into_iter()
        .filter(|k| has(k))
        .take(MAX_METRICS)
        .collect()
}

/// A dashed reference line in a panel.
#[derive(Debug, Clone)]
struct Reference {
    label: String,
    color: RGBColor,
    /// (mean, sd) in the figure's unit.
    value: (f64, f64),
}

/// One panel: one study, one metric.
#[derive(Debug, Clone)]
struct StudyPanel {
    caption: String,
    x_desc: String,
    y_desc: String,
    color: RGBColor,
    /// (value, mean, sd), sorted by value.
    points: Vec<(f64, f64, f64)>,
    references: Vec<Reference>,
    log_x: bool,
}

/// The parameter-study figure: a row of panels per study, a column per metric.
#[derive(Debug, Clone)]
pub(super) struct StudyFigure {
    title: String,
    /// Panels row by row; `None` where a study has no value of the metric.
    panels: Vec<Option<StudyPanel>>,
    rows: usize,
    columns: usize,
    /// The widest panel's room for reference labels (see [`label_room`]).
    label_room: u32,
    legend: Vec<(String, Swatch)>,
}

/// Whether a study's x axis is logarithmic: all values positive, spanning over 10×.
fn log_axis(values: &[f64]) -> bool {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    lo > 0.0 && hi.is_finite() && hi / lo > 10.0
}

/// A parameter value as it reads in a label: 0.005, 2, 1e-7 (ten significant digits at most).
fn format_value(x: f64) -> String {
    let rounded: f64 = format!("{x:.9e}").parse().unwrap_or(x);
    let text = format!("{rounded}");
    if text == "-0" {
        "0".into()
    } else if text.len() > 8 {
        format!("{rounded:e}")
    } else {
        text
    }
}

/// `n = 3`, or `n = 1–3` when the settings ran different numbers of runs.
fn runs_note(counts: impl Iterator<Item = usize>) -> String {
    let (lo, hi) = counts.fold((usize::MAX, 0), |(lo, hi), n| (lo.min(n), hi.max(n)));
    if lo == usize::MAX {
        "n = 0".into()
    } else if lo == hi {
        format!("n = {lo}")
    } else {
        format!("n = {lo}–{hi}")
    }
}

impl StudyFigure {
    /// The figure of every study in the summary; `None` when there is none.
    pub(super) fn new(results: &ExperimentResults, context: &ReportContext) -> Option<Self> {
        let summary = &results.summary;
        let studies = find_studies(summary, &context.order);
        if studies.is_empty() {
            return None;
        }
        let metrics = study_metrics(summary, context, &studies);
        if metrics.is_empty() {
            return None;
        }
        let joint = summary.methods.get("joint");
        let mut panels = Vec::new();
        let mut legend = Vec::new();
        let mut kinds_with_default: Vec<&str> = Vec::new();
        let mut any_sd = false;
        for (row, study) in studies.iter().enumerate() {
            // tab10 without orange (joint's) and grey (the default's)
            let color = [0, 2, 3, 4, 5, 6, 8, 9].map(|i| PALETTE[i])[row % 8];
            let default = summary.methods.get(&study.kind);
            if default.is_some() && !kinds_with_default.contains(&study.kind.as_str()) {
                kinds_with_default.push(&study.kind);
            }
            let values: Vec<f64> = study.settings.iter().map(|s| s.0).collect();
            let log_x = log_axis(&values);
            for key in &metrics {
                let points: Vec<(f64, f64, f64)> = study
                    .settings
                    .iter()
                    .filter_map(|(x, ms)| value_of(ms, key).map(|(m, sd, _)| (*x, m, sd)))
                    .collect();
                if points.is_empty() {
                    panels.push(None);
                    continue;
                }
                any_sd |= points.iter().any(|p| p.2 > 0.0);
                let mut references = Vec::new();
                if let Some(value) = default.and_then(|ms| value_of(ms, key)) {
                    references.push(Reference {
                        label: format!("{} (default)", study.kind),
                        color: DEFAULT_COLOR,
                        value: (value.0, value.1),
                    });
                }
                if study.kind != "joint" {
                    if let Some(value) = joint.and_then(|ms| value_of(ms, key)) {
                        references.push(Reference {
                            label: "joint".into(),
                            color: JOINT_COLOR,
                            value: (value.0, value.1),
                        });
                    }
                }
                let unit = if higher_is_better(key) { " (%)" } else { "" };
                panels.push(Some(StudyPanel {
                    caption: format!(
                        "{}, {}: task {} test {}",
                        study.kind,
                        study.key,
                        task_name(key),
                        metric_name(key)
                    ),
                    x_desc: if log_x {
                        format!("{} (log scale)", study.key)
                    } else {
                        study.key.clone()
                    },
                    y_desc: format!("test {}{unit}", metric_name(key)),
                    color,
                    points,
                    references,
                    log_x,
                }));
            }
            let line = LineStyle {
                color,
                dashed: false,
            };
            let runs = runs_note(study.settings.iter().map(|s| s.1.runs.len()));
            legend.push((
                format!("{}[{}] ({runs})", study.kind, study.key),
                Swatch::Line(line),
            ));
        }
        for kind in kinds_with_default {
            if let Some(ms) = summary.methods.get(kind) {
                let style = LineStyle {
                    color: DEFAULT_COLOR,
                    dashed: true,
                };
                legend.push((
                    format!("{kind} (default, n = {})", ms.runs.len()),
                    Swatch::Line(style),
                ));
            }
        }
        if let Some(ms) = joint {
            let style = LineStyle {
                color: JOINT_COLOR,
                dashed: true,
            };
            legend.push((
                format!("joint (n = {})", ms.runs.len()),
                Swatch::Line(style),
            ));
        }
        if any_sd {
            let whisker = LineStyle {
                color: BLACK,
                dashed: false,
            };
            legend.push(("± sd over runs".into(), Swatch::Line(whisker)));
        }
        Some(Self {
            title: format!(
                "{} ({}): parameter studies, one option changed at a time",
                summary.experiment,
                run_kind(results)
            ),
            rows: studies.len(),
            label_room: panels
                .iter()
                .flatten()
                .map(|p| label_room(&p.references))
                .max()
                .unwrap_or(0),
            columns: metrics.len(),
            panels,
            legend,
        })
    }
}

impl Figure for StudyFigure {
    fn size(&self) -> (u32, u32) {
        let rows = u32::try_from(self.rows).unwrap_or(1);
        (
            width_for(self.columns, &self.title) - LEGEND_WIDTH
                + STUDY_LEGEND_WIDTH
                + self.label_room * u32::try_from(self.columns).unwrap_or(1),
            height_for_legend(ROW_HEIGHT * rows + 40, self.legend.len()),
        )
    }

    fn title(&self) -> &str {
        &self.title
    }

    fn draw_body<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn {
        let width = area.dim_in_pixel().0;
        let (plots, legend) = area.split_horizontally(width.saturating_sub(STUDY_LEGEND_WIDTH));
        let cells = plots.split_evenly((self.rows.max(1), self.columns.max(1)));
        for (panel, cell) in self.panels.iter().zip(cells) {
            if let Some(panel) = panel {
                draw_study_panel(panel, &cell)?;
            }
        }
        draw_legend(&legend, "setting (runs)", &self.legend)
    }
}

fn draw_study_panel<DB: DrawingBackend>(
    panel: &StudyPanel,
    cell: &DrawingArea<DB, Shift>,
) -> Drawn {
    let values: Vec<f64> = panel.points.iter().map(|p| p.0).collect();
    let x_lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let x_hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let ends = panel.points.iter().map(|p| (p.1 - p.2, p.1 + p.2)).chain(
        panel
            .references
            .iter()
            .map(|r| (r.value.0 - r.value.1, r.value.0 + r.value.1)),
    );
    let y_lo = ends.clone().map(|e| e.0).fold(f64::INFINITY, f64::min);
    let y_hi = ends.map(|e| e.1).fold(f64::NEG_INFINITY, f64::max);
    let y_range = padded(y_lo, y_hi, 0.12, 0.05);
    let mut builder = ChartBuilder::on(cell);
    builder
        .caption(&panel.caption, (FAMILY, 15))
        .margin(10)
        .margin_right(label_room(&panel.references))
        .x_label_area_size(40)
        .y_label_area_size(64);
    if panel.log_x {
        let factor = (x_hi / x_lo).powf(0.06);
        let chart = builder
            .build_cartesian_2d(
                (x_lo / factor..x_hi * factor)
                    .log_scale()
                    .with_key_points(values),
                y_range,
            )
            .map_err(text_err)?;
        draw_study_series(chart, cell, panel)
    } else {
        let chart = builder
            .build_cartesian_2d(padded(x_lo, x_hi, 0.06, 1e-6), y_range)
            .map_err(text_err)?;
        draw_study_series(chart, cell, panel)
    }
}

/// Pixels right of a panel's plot for its reference lines' labels (12 px text averages under
/// 6 px a character).
fn label_room(references: &[Reference]) -> u32 {
    let longest = references
        .iter()
        .map(|r| r.label.chars().count())
        .max()
        .unwrap_or(0);
    16 + 6 * u32::try_from(longest).unwrap_or(20)
}

/// The reference lines' labels, right of the plot at the height of their lines, moved apart
/// when they would overlap.
fn draw_reference_labels<DB: DrawingBackend, X: Ranged<ValueType = f64>>(
    chart: &ChartContext<'_, DB, Cartesian2d<X, RangedCoordf64>>,
    cell: &DrawingArea<DB, Shift>,
    panel: &StudyPanel,
) -> Drawn {
    let (base_x, base_y) = cell.get_base_pixel();
    let x_end = chart.x_range().end;
    let mut labels: Vec<(i32, i32, &Reference)> = panel
        .references
        .iter()
        .map(|r| {
            let (x, y) = chart.backend_coord(&(x_end, r.value.0));
            (x - base_x + 6, y - base_y, r)
        })
        .collect();
    labels.sort_by_key(|l| l.1);
    for i in 1..labels.len() {
        let gap = labels[i].1 - labels[i - 1].1;
        if gap < 15 {
            labels[i - 1].1 -= (15 - gap) / 2 + 1;
            labels[i].1 = labels[i - 1].1 + 15;
        }
    }
    for (x, y, reference) in labels {
        let style = (FAMILY, 12)
            .into_font()
            .color(&reference.color)
            .pos(Pos::new(HPos::Left, VPos::Center));
        cell.draw_text(&reference.label, &style, (x, y))
            .map_err(text_err)?;
    }
    Ok(())
}

/// The mesh, reference lines and the study's line of one panel, on a linear or log x axis.
fn draw_study_series<DB: DrawingBackend, X>(
    mut chart: ChartContext<'_, DB, Cartesian2d<X, RangedCoordf64>>,
    cell: &DrawingArea<DB, Shift>,
    panel: &StudyPanel,
) -> Drawn
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let integer = panel.points.iter().all(|p| p.0.fract() == 0.0);
    chart
        .configure_mesh()
        .x_desc(panel.x_desc.as_str())
        .y_desc(panel.y_desc.as_str())
        .y_labels(8)
        .x_labels(8)
        .x_label_formatter(&|x| {
            // integer options (samples, epochs) get no ticks between integers
            if integer && x.fract() != 0.0 {
                String::new()
            } else {
                format_value(*x)
            }
        })
        .y_label_formatter(&|y| format!("{y:.1}"))
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 14))
        .max_light_lines(0)
        .draw()
        .map_err(text_err)?;
    let x_range = chart.x_range();
    let (x0, x1) = (x_range.start, x_range.end);
    for reference in &panel.references {
        let (mean, sd) = reference.value;
        let color = reference.color;
        if sd > 0.0 {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, mean - sd), (x1, mean + sd)],
                    color.mix(0.08).filled(),
                )))
                .map_err(text_err)?;
        }
        chart
            .draw_series(std::iter::once(DashedPathElement::new(
                [(x0, mean), (x1, mean)],
                8,
                5,
                color.stroke_width(2),
            )))
            .map_err(text_err)?;
    }
    draw_reference_labels(&chart, cell, panel)?;
    let stroke = panel.color.stroke_width(2);
    chart
        .draw_series(LineSeries::new(
            panel.points.iter().map(|p| (p.0, p.1)),
            stroke,
        ))
        .map_err(text_err)?;
    chart
        .draw_series(
            panel
                .points
                .iter()
                .filter(|p| p.2 > 0.0)
                .map(|p| ErrorBar::new_vertical(p.0, p.1 - p.2, p.1, p.1 + p.2, stroke, 8)),
        )
        .map_err(text_err)?;
    chart
        .draw_series(
            panel
                .points
                .iter()
                .map(|p| Circle::new((p.0, p.1), 4, panel.color.filled())),
        )
        .map_err(text_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use mtcool_train::config::PaperTable;
    use mtcool_train::results::RunBrief;

    use super::*;

    /// A summary row with `n` runs and accuracy `a` on task even, `b` on task odd.
    fn row(n: usize, a: f64, b: f64) -> MethodSummary {
        let metrics: BTreeMap<String, f64> = [
            ("even/accuracy".to_string(), a),
            ("odd/accuracy".to_string(), b),
        ]
        .into();
        let std: BTreeMap<String, f64> = [
            ("even/accuracy".to_string(), 0.004),
            ("odd/accuracy".to_string(), 0.006),
        ]
        .into();
        MethodSummary {
            runs: (0..n)
                .map(|seed| RunBrief {
                    seed: seed as u64,
                    epochs: 2,
                    seconds: 1.0,
                    metrics: metrics.clone(),
                })
                .collect(),
            mean: metrics,
            std,
        }
    }

    fn results(rows: Vec<(&str, MethodSummary)>) -> ExperimentResults {
        ExperimentResults {
            dir: "toy".into(),
            summary: Summary {
                experiment: "toy".into(),
                quick: true,
                device: "cpu".into(),
                optimizer: String::new(),
                methods: rows.into_iter().map(|(m, s)| (m.to_string(), s)).collect(),
                jobs: None,
                wall_seconds: None,
            },
            runs: BTreeMap::new(),
            missing_runs: vec![],
        }
    }

    fn study_rows() -> Vec<(&'static str, MethodSummary)> {
        vec![
            ("joint", row(3, 0.90, 0.85)),
            ("mtcool", row(3, 0.92, 0.87)),
            ("mtcool[noise_bound = 0.001]", row(3, 0.91, 0.86)),
            ("mtcool[noise_bound = 0.02]", row(3, 0.925, 0.875)),
            ("mtcool[noise_bound = 0.1]", row(3, 0.89, 0.84)),
            ("mtcool[samples = 2]", row(1, 0.921, 0.871)),
            ("mtcool[samples = 4]", row(1, 0.923, 0.869)),
            ("fixed[weights = [1, 1]]", row(3, 0.5, 0.5)),
        ]
    }

    fn context() -> ReportContext {
        ReportContext {
            order: study_rows().iter().map(|r| r.0.to_string()).collect(),
            ..ReportContext::default()
        }
    }

    #[test]
    fn studies_are_drawn_with_title_and_keys() {
        let results = results(study_rows());
        let dir = tempfile::tempdir().unwrap();
        let written = super::super::write_figures(&results, &context(), dir.path()).unwrap();
        for ext in ["png", "svg"] {
            let path = dir.path().join(format!("parameter_study.{ext}"));
            assert!(written.contains(&path), "{written:?}");
            assert!(std::fs::metadata(&path).unwrap().len() > 1000, "{ext}");
        }
        let svg = std::fs::read_to_string(dir.path().join("parameter_study.svg")).unwrap();
        for text in [
            "toy (quick run): parameter studies, one option changed at a time",
            "noise_bound (log scale)",
            "samples",
            "mtcool (default)",
            "joint (n = 3)",
            "mtcool[noise_bound] (n = 3)",
            "mtcool[samples] (n = 1)",
            "mtcool, noise_bound: task even test accuracy",
            "test accuracy (%)",
            "± sd over runs",
        ] {
            assert!(svg.contains(text), "parameter_study.svg lacks `{text}`");
        }
        assert!(!svg.contains("weights"), "a non-numeric variant is drawn");
    }

    #[test]
    fn no_study_no_file_and_no_error() {
        let results = results(vec![
            ("joint", row(1, 0.9, 0.8)),
            ("mtcool", row(1, 0.9, 0.8)),
            ("mtcool[noise_bound = 0.05]", row(1, 0.9, 0.8)),
            ("fixed[weights = [1, 1]]", row(1, 0.9, 0.8)),
            ("fixed[weights = [1, 2]]", row(1, 0.9, 0.8)),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let written = super::super::write_figures(&results, &context(), dir.path()).unwrap();
        assert!(!written.is_empty(), "the other figures are still drawn");
        for ext in ["png", "svg"] {
            assert!(!dir.path().join(format!("parameter_study.{ext}")).exists());
        }
    }

    #[test]
    fn variants_group_by_kind_and_numeric_key() {
        assert_eq!(
            single_numeric_option("mtcool[noise_bound = 0.05]"),
            Some(("mtcool".into(), "noise_bound".into(), 0.05))
        );
        assert_eq!(
            single_numeric_option("mtcool[samples = 2]"),
            Some(("mtcool".into(), "samples".into(), 2.0))
        );
        assert_eq!(single_numeric_option("mtcool"), None);
        assert_eq!(
            single_numeric_option("fixed[weights = [1, 1, 0.001]]"),
            None
        );
        assert_eq!(
            single_numeric_option("mtcool[samples = 2, warmup_epochs = 1]"),
            None
        );
        assert_eq!(single_numeric_option("mtcool[samples = 2"), None);
        assert_eq!(single_numeric_option("nope[x = 1]"), None);
        let results = results(study_rows());
        let studies = find_studies(&results.summary, &context().order);
        let keys: Vec<(&str, &str, usize)> = studies
            .iter()
            .map(|s| (s.kind.as_str(), s.key.as_str(), s.settings.len()))
            .collect();
        assert_eq!(
            keys,
            vec![("mtcool", "noise_bound", 3), ("mtcool", "samples", 2)]
        );
        assert!(studies[0].settings.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn metrics_follow_the_paper_then_accuracy() {
        let results = results(study_rows());
        let studies = find_studies(&results.summary, &[]);
        assert_eq!(
            study_metrics(&results.summary, &ReportContext::default(), &studies),
            vec!["even/accuracy", "odd/accuracy"]
        );
        let paper = ReportContext {
            paper: Some(PaperTable {
                metrics: vec!["odd/accuracy".into(), "absent/accuracy".into()],
                ..PaperTable::default()
            }),
            ..ReportContext::default()
        };
        assert_eq!(
            study_metrics(&results.summary, &paper, &studies),
            vec!["odd/accuracy"]
        );
    }

    #[test]
    fn axes_and_labels_read_well() {
        assert!(log_axis(&[0.001, 0.02, 0.1]));
        assert!(!log_axis(&[1.0, 2.0, 4.0]));
        assert!(!log_axis(&[0.0, 2.0, 10.0]), "0 on a log axis");
        assert_eq!(format_value(0.005), "0.005");
        assert_eq!(format_value(2.0), "2");
        assert_eq!(format_value(0.1 + 0.2), "0.3");
        assert_eq!(format_value(-0.0), "0");
        assert_eq!(runs_note([3, 3].into_iter()), "n = 3");
        assert_eq!(runs_note([1, 3].into_iter()), "n = 1–3");
    }
}
