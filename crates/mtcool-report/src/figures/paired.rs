//! `paired_differences`: for a study (`[study] reference`), each row's paired difference from
//! its reference row ([`mtcool_train::table::paired_rows`]), one panel per metric: a point at
//! the mean difference with its 95 % interval as a horizontal bar, a line at 0. Intervals
//! that exclude 0 are drawn green (better than the reference) or red (worse); the others
//! grey. Drawn only for studies with at least one paired row.

use plotters::coord::Shift;
use plotters::prelude::*;

use mtcool_metrics::PairedDifference;
use mtcool_train::table::{higher_is_better, paired_rows, table_metrics};

use super::{padded, row_chart, row_y, run_kind, text_err, Drawn, Figure, RowAxes, ROW};
use crate::load::ExperimentResults;
use crate::ReportContext;

/// Width of one metric's panel, without the row labels.
const PANEL: u32 = 420;
/// Pixels per row.
const ROW_PIXELS: u32 = 26;

const BETTER: RGBColor = RGBColor(26, 127, 55);
const WORSE: RGBColor = RGBColor(207, 34, 46);
const NEITHER: RGBColor = RGBColor(110, 110, 110);

/// The figure.
#[derive(Debug, Clone)]
pub(super) struct PairedFigure {
    title: String,
    metrics: Vec<String>,
    /// The row's label (its reference row is in the table), then one difference per metric.
    rows: Vec<(String, Vec<Option<PairedDifference>>)>,
}

impl PairedFigure {
    /// `None` without a study reference or without paired rows.
    pub(super) fn new(results: &ExperimentResults, context: &ReportContext) -> Option<Self> {
        let reference = context.paired_reference.as_deref()?;
        let summary = &results.summary;
        let rows: Vec<_> = paired_rows(summary, &context.order, reference)
            .into_iter()
            .map(|r| (r.method, r.cells))
            .collect();
        if rows.is_empty() {
            return None;
        }
        Some(Self {
            title: format!(
                "{} ({}): each row − {reference} under the same schedule, paired by seed: \
                 mean and 95 % t interval (points)",
                summary.experiment,
                run_kind(results)
            ),
            metrics: table_metrics(summary, None),
            rows,
        })
    }

    fn label_width(&self) -> u32 {
        let longest = self
            .rows
            .iter()
            .map(|r| r.0.chars().count())
            .max()
            .unwrap_or(4);
        u32::try_from(longest).unwrap_or(40).min(70) * 7 + 16
    }
}

impl Figure for PairedFigure {
    fn size(&self) -> (u32, u32) {
        let panels = u32::try_from(self.metrics.len()).unwrap_or(1).max(1);
        let rows = u32::try_from(self.rows.len()).unwrap_or(1);
        let title = u32::try_from(self.title.chars().count()).unwrap_or(200) * 11 + 40;
        let width = panels * (PANEL + self.label_width());
        (width.max(title), rows * ROW_PIXELS + 140)
    }

    fn title(&self) -> &str {
        &self.title
    }

    fn draw_body<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn {
        let cells = area.split_evenly((1, self.metrics.len().max(1)));
        for (m, cell) in cells.iter().enumerate() {
            self.draw_panel(m, cell)?;
        }
        Ok(())
    }
}

impl PairedFigure {
    fn draw_panel<DB: DrawingBackend>(&self, m: usize, cell: &DrawingArea<DB, Shift>) -> Drawn {
        let metric = &self.metrics[m];
        let n = self.rows.len();
        let points = |d: &PairedDifference| {
            let (lo, hi) = if d.low.is_nan() {
                (d.mean, d.mean)
            } else {
                (d.low, d.high)
            };
            (100.0 * lo, 100.0 * d.mean, 100.0 * hi)
        };
        let cells: Vec<Option<(f64, f64, f64)>> = self
            .rows
            .iter()
            .map(|r| r.1.get(m).copied().flatten().map(|d| points(&d)))
            .collect();
        let lo = cells.iter().flatten().map(|c| c.0).fold(0.0, f64::min);
        let hi = cells.iter().flatten().map(|c| c.2).fold(0.0, f64::max);
        let labels: Vec<String> = self.rows.iter().map(|r| r.0.clone()).collect();
        let axes = RowAxes {
            caption: metric,
            x_desc: "difference (points)",
            x_range: padded(lo, hi, 0.1, 0.05),
            x_format: |x| format!("{x:+.2}"),
            labels: &labels,
            label_width: self.label_width(),
            label_size: 12,
        };
        let mut chart = row_chart(cell, &axes)?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0), (0.0, row_y(0, n) + ROW)],
                BLACK.mix(0.6),
            ))
            .map_err(text_err)?;
        let up = higher_is_better(metric);
        for (k, (cell, (_, diffs))) in cells.iter().zip(&self.rows).enumerate() {
            let (Some((lo, mean, hi)), Some(Some(d))) = (cell, diffs.get(m)) else {
                continue;
            };
            let color = match d.excludes_zero() {
                true if (d.mean > 0.0) == up => BETTER,
                true => WORSE,
                false => NEITHER,
            };
            let y = row_y(k, n) + ROW / 2;
            chart
                .draw_series([ErrorBar::new_horizontal(
                    y,
                    *lo,
                    *mean,
                    *hi,
                    color.stroke_width(2),
                    10,
                )])
                .map_err(text_err)?;
            chart
                .draw_series([Circle::new((*mean, y), 4, color.filled())])
                .map_err(text_err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use mtcool_train::results::RunRecord;

    use crate::figures::testing::results;
    use crate::ReportContext;

    fn record(method: &str, seed: u64, acc: f64) -> RunRecord {
        serde_json::from_value(serde_json::json!({
            "method": method, "seed": seed, "epochs": 1, "seconds": 1.0,
            "images_per_second": 100.0, "metrics": {"even/accuracy": acc},
            "params": 1, "fingerprint": "test", "history": []
        }))
        .unwrap()
    }

    #[test]
    fn drawn_for_a_study_only() {
        let grid = results(vec![
            record("joint", 0, 0.90),
            record("joint", 1, 0.92),
            record("mtcool", 0, 0.91),
            record("mtcool", 1, 0.94),
        ]);
        let plain = ReportContext::default();
        assert!(super::PairedFigure::new(&grid, &plain).is_none());
        let study = ReportContext {
            paired_reference: Some("joint".into()),
            ..ReportContext::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let files = crate::figures::write_figures(&grid, &study, dir.path()).unwrap();
        let svg = dir.path().join("paired_differences.svg");
        assert!(files.contains(&svg), "{files:?}");
        let text = std::fs::read_to_string(svg).unwrap();
        assert!(
            text.contains("mtcool") && text.contains("difference (points)"),
            "{text}"
        );
    }
}
