//! `task_weights`: the weights each method applied to the tasks (`EpochRecord::task_weights`:
//! α of the shared update for the gradient methods, the loss multipliers for the weightings),
//! averaged per epoch; one panel per method, one line per task (mean ± sd over runs), panels
//! in rows of [`COLUMNS`]. Methods without weights (MT-COOL's alternating steps, GradDrop)
//! are left out; no file is written when no method has them.

use std::collections::BTreeSet;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    draw_curve_panel, draw_legend, height_for_legend, run_kind, split_legend, CurveData,
    CurvePanel, Drawn, Figure, LineStyle, Swatch, LEGEND_WIDTH, PANEL_WIDTH,
};

/// Panels per row.
pub(super) const COLUMNS: usize = 4;
/// Height of one row of panels.
const ROW_HEIGHT: u32 = 400;

/// The figure: a grid of per-method panels and a legend of tasks.
#[derive(Debug, Clone)]
pub(super) struct TaskWeightsFigure {
    title: String,
    panels: Vec<CurvePanel>,
    legend: Vec<(String, Swatch)>,
}

impl TaskWeightsFigure {
    /// `None` when no run logged task weights.
    pub(super) fn new(data: &CurveData<'_>) -> Option<Self> {
        let tasks: Vec<&str> = data
            .history_keys(|e| &e.task_weights)
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let panels: Vec<CurvePanel> = data
            .methods
            .iter()
            .filter_map(|(method, _, runs)| {
                let curves: Vec<_> = tasks
                    .iter()
                    .enumerate()
                    .filter_map(|(i, task)| {
                        CurveData::curve(LineStyle::nth(i), runs, |e| {
                            e.task_weights.get(*task).copied()
                        })
                    })
                    .collect();
                (!curves.is_empty()).then(|| CurvePanel {
                    caption: format!("{method} (n = {})", runs.len()),
                    y_desc: "task weight".into(),
                    curves,
                    reference: Some(0.0),
                    y_limits: None,
                })
            })
            .collect();
        if panels.is_empty() {
            return None;
        }
        let legend = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), Swatch::Line(LineStyle::nth(i))))
            .collect();
        Some(Self {
            title: format!(
                "{} ({}): task weights applied per epoch (α of the shared update, or loss \
                 multipliers), {}",
                data.results.summary.experiment,
                run_kind(data.results),
                CurveData::spread_note(&panels)
            ),
            panels,
            legend,
        })
    }

    fn grid(&self) -> (usize, usize) {
        let columns = self.panels.len().clamp(1, COLUMNS);
        (self.panels.len().div_ceil(columns), columns)
    }
}

impl Figure for TaskWeightsFigure {
    fn size(&self) -> (u32, u32) {
        let (rows, columns) = self.grid();
        let plots = PANEL_WIDTH * u32::try_from(columns).unwrap_or(1) + LEGEND_WIDTH;
        let title = u32::try_from(self.title.chars().count()).unwrap_or(200) * 11 + 40;
        let height = ROW_HEIGHT * u32::try_from(rows).unwrap_or(1) + 40;
        (
            plots.max(title),
            height_for_legend(height, self.legend.len()),
        )
    }

    fn title(&self) -> &str {
        &self.title
    }

    fn draw_body<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn {
        let (plots, legend) = split_legend(area);
        let (rows, columns) = self.grid();
        for (panel, cell) in self.panels.iter().zip(plots.split_evenly((rows, columns))) {
            draw_curve_panel(panel, &cell)?;
        }
        draw_legend(&legend, "task", &self.legend)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use mtcool_train::results::RunRecord;

    use crate::ReportContext;

    fn record(method: &str, seed: u64, weights: Option<[f64; 2]>) -> RunRecord {
        let history: Vec<serde_json::Value> = (1..=3)
            .map(|epoch| {
                let mut e = serde_json::json!({
                    "epoch": epoch, "seconds": 1.0,
                    "train_loss": {"even": 0.1, "odd": 0.2},
                    "val": {"even/accuracy": 0.9, "odd/accuracy": 0.8}
                });
                if let Some([a, b]) = weights {
                    e["task_weights"] = serde_json::json!({"even": a, "odd": b / f64::from(epoch)});
                }
                e
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "method": method, "seed": seed, "epochs": 3, "seconds": 3.0,
            "images_per_second": 100.0,
            "metrics": {"even/accuracy": 0.9, "odd/accuracy": 0.8},
            "params": 1000, "fingerprint": "test", "history": history
        }))
        .unwrap()
    }

    use crate::figures::testing::results;

    #[test]
    fn one_panel_per_method_with_weights_and_a_task_legend() {
        let grid = results(vec![
            record("mtcool", 0, None),
            record("joint", 0, Some([1.0, 1.0])),
            record("mgda", 0, Some([0.3, 0.7])),
            record("mgda", 1, Some([0.4, 0.6])),
        ]);
        let context = ReportContext {
            order: vec!["joint".into(), "mtcool".into(), "mgda".into()],
            ..ReportContext::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let written = super::super::write_figures(&grid, &context, dir.path()).unwrap();
        assert!(written.contains(&dir.path().join("task_weights.png")));
        let svg = std::fs::read_to_string(dir.path().join("task_weights.svg")).unwrap();
        for text in [
            "toy (quick run): task weights",
            "joint (n = 1)",
            "mgda (n = 2)",
            "even",
            "odd",
        ] {
            assert!(svg.contains(text), "task_weights.svg lacks `{text}`");
        }
        assert!(
            !svg.contains("mtcool"),
            "a method without weights has a panel"
        );
        let none = results(vec![record("mtcool", 0, None)]);
        let dir = tempfile::tempdir().unwrap();
        super::super::write_figures(&none, &context, dir.path()).unwrap();
        assert!(!dir.path().join("task_weights.png").exists());
    }
}
