//! `table.md`: our numbers beside the paper's, per method and metric, with the difference in
//! points and Δm% against a baseline method.
//!
//! One renderer serves the grid (which writes `table.md` when it finishes) and the report crate
//! (which rewrites it from `summary.json` alone, e.g. after runs were added).
//!
//! ```
//! use mtcool_train::results::{MethodSummary, RunBrief, Summary};
//! use mtcool_train::table::{render, TableOptions};
//!
//! let brief = |acc: f64| RunBrief {
//!     seed: 0,
//!     epochs: 3,
//!     seconds: 1.0,
//!     metrics: [("even/accuracy".to_string(), acc)].into(),
//! };
//! let method = |acc: f64| {
//!     let runs = vec![brief(acc)];
//!     MethodSummary {
//!         mean: runs[0].metrics.clone(),
//!         std: [("even/accuracy".to_string(), 0.0)].into(),
//!         runs,
//!     }
//! };
//! let summary = Summary {
//!     experiment: "toy".into(),
//!     quick: true,
//!     device: "cpu".into(),
//!     optimizer: String::new(),
//!     methods: [("independent".into(), method(0.98)), ("joint".into(), method(0.99))].into(),
//!     jobs: None,
//!     wall_seconds: None,
//! };
//! let table = render(&summary, &TableOptions::new("a toy").with_baseline("independent"));
//! assert!(table.contains("| joint |  | 1 | 99.00 | – | – | +1.02 | – |"), "{table}");
//! ```

use std::collections::BTreeSet;
use std::fmt::Write as _;

use mtcool_metrics::{delta_m, DeltaTerm};

use crate::config::{PaperTable, PaperValue};
use crate::results::{Metrics, Summary};

/// What the table shows beside `summary.json`: its title, the paper's numbers, the method
/// order and the Δm% baseline.
#[derive(Debug, Clone, Default)]
pub struct TableOptions<'a> {
    /// One line after the experiment name (the config's description).
    pub title: &'a str,
    /// The paper's numbers; with none, the paper columns show `–` and the metric columns
    /// are every metric in the summary.
    pub paper: Option<&'a PaperTable>,
    /// Methods in table order; methods of the summary not listed follow in name order.
    pub order: &'a [String],
    /// The method Δm% is computed against (no Δm columns when `None` or absent).
    pub delta_m_baseline: Option<&'a str>,
    /// A study's reference method: the table then ends with every row's paired differences
    /// against it ([`paired_rows`]).
    pub paired_reference: Option<&'a str>,
}

impl<'a> TableOptions<'a> {
    /// Options with a title only: no paper numbers, name order, no Δm.
    pub fn new(title: &'a str) -> Self {
        Self {
            title,
            ..Self::default()
        }
    }

    /// The options an experiment config implies: its description, paper numbers and method
    /// order, Δm% against `independent` when it runs it, and its `[study]` reference.
    pub fn from_config(config: &'a crate::ExperimentConfig) -> Self {
        Self {
            title: &config.description,
            paper: Some(&config.paper),
            order: &config.methods,
            delta_m_baseline: default_delta_m_baseline(&config.methods),
            paired_reference: config.study.as_ref().map(|s| s.reference.as_str()),
        }
    }

    /// Sets the paper's numbers.
    pub fn with_paper(mut self, paper: &'a PaperTable) -> Self {
        self.paper = Some(paper);
        self
    }

    /// Sets the method order.
    pub fn with_order(mut self, order: &'a [String]) -> Self {
        self.order = order;
        self
    }

    /// Sets the Δm% baseline method.
    pub fn with_baseline(mut self, method: &'a str) -> Self {
        self.delta_m_baseline = Some(method);
        self
    }
}

/// The Δm% baseline of a method list: `independent` (one network per task, the single-task
/// reference Δm is defined against) when the list has it.
pub fn default_delta_m_baseline(methods: &[String]) -> Option<&'static str> {
    methods
        .iter()
        .any(|m| m == "independent")
        .then_some("independent")
}

/// Whether larger values of a metric key (`<task>/<metric>`) are better: false for losses,
/// errors and distances, true otherwise (accuracy, Dice, IoU, F1, AUROC, …).
pub fn higher_is_better(key: &str) -> bool {
    let metric = key.rsplit('/').next().unwrap_or(key).to_ascii_lowercase();
    let lower_is_better = metric.contains("loss")
        || metric.contains("error")
        || ["err", "mae", "mse", "rmse", "hd", "hd95", "distance"].contains(&metric.as_str());
    !lower_is_better
}

/// The metric keys of the table's columns: the paper's, or else every key of the summary.
pub fn table_metrics(summary: &Summary, paper: Option<&PaperTable>) -> Vec<String> {
    match paper {
        Some(p) if !p.metrics.is_empty() => p.metrics.clone(),
        _ => {
            let keys: BTreeSet<&String> = summary
                .methods
                .values()
                .flat_map(|m| m.mean.keys())
                .collect();
            keys.into_iter().cloned().collect()
        }
    }
}

/// The methods of `summary` in table order: `order` first, then the rest by name.
pub fn method_order<'s>(summary: &'s Summary, order: &[String]) -> Vec<&'s str> {
    let mut methods: Vec<&str> = order
        .iter()
        .filter_map(|m| summary.methods.get_key_value(m).map(|(k, _)| k.as_str()))
        .collect();
    methods.extend(
        summary
            .methods
            .keys()
            .map(String::as_str)
            .filter(|m| !order.iter().any(|o| o == m)),
    );
    methods
}

/// Δm% of `values` against `baseline` over `metrics` (positive: better than the baseline);
/// `None` when a metric is missing on either side or a baseline value is zero.
pub fn delta_m_percent(values: &Metrics, baseline: &Metrics, metrics: &[String]) -> Option<f64> {
    let terms = metrics
        .iter()
        .map(|k| {
            Some(DeltaTerm::new(
                *values.get(k)?,
                *baseline.get(k)?,
                higher_is_better(k),
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    delta_m(&terms).ok()
}

fn percent(x: f64) -> String {
    format!("{:.2}", 100.0 * x)
}

/// Describes a set of integers compactly: `0`, `0–4`, `0, 2, 7`.
fn span(values: &BTreeSet<u64>) -> String {
    let (Some(first), Some(last)) = (values.first(), values.last()) else {
        return "none".into();
    };
    if first == last {
        first.to_string()
    } else if last - first + 1 == values.len() as u64 {
        format!("{first}–{last}")
    } else {
        let list: Vec<String> = values.iter().map(u64::to_string).collect();
        list.join(", ")
    }
}

/// One metric of one row: ours (mean, sd over the row's runs) beside the paper's number.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricCell {
    /// Our mean, `None` when no run has the metric.
    pub mean: Option<f64>,
    /// Our sample sd (n − 1); `None` when there is one run or no value.
    pub sd: Option<f64>,
    /// The paper's number for this method and metric, if published.
    pub paper: Option<PaperValue>,
}

impl MetricCell {
    /// Ours − paper (fractions), when both exist.
    pub fn delta(&self) -> Option<f64> {
        Some(self.mean? - self.paper.as_ref()?.mean)
    }
}

/// Δm% of a row: the reference itself, or ours and the paper's against it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeltaMCell {
    /// This row is the Δm baseline.
    Reference,
    /// Δm% of ours and of the paper's numbers (`None` where a metric is missing).
    Values {
        /// From our means.
        ours: Option<f64>,
        /// From the paper's means.
        paper: Option<f64>,
    },
}

/// One method's row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow {
    /// Method (grid row label).
    pub method: String,
    /// The paper's parameter multiple (`1×`), or empty.
    pub params: String,
    /// Runs pooled.
    pub n: usize,
    /// One cell per column metric ([`Table::metrics`]).
    pub cells: Vec<MetricCell>,
    /// Δm%, when the table has a present baseline.
    pub delta_m: Option<DeltaMCell>,
}

/// The numbers `table.md`, the HTML report and `summary.csv` show, before any formatting.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column metric keys: the paper's, else every metric of the summary.
    pub metrics: Vec<String>,
    /// The Δm% baseline, when set and present in the summary.
    pub baseline: Option<String>,
    /// Rows in table order.
    pub rows: Vec<TableRow>,
}

/// Builds the table of `summary`: rows in `options.order`, each metric beside the paper's.
pub fn build(summary: &Summary, options: &TableOptions<'_>) -> Table {
    let paper = options.paper;
    let metrics = table_metrics(summary, paper);
    let baseline = options
        .delta_m_baseline
        .filter(|b| summary.methods.contains_key(*b));
    let paper_means = |method: &str| -> Option<Metrics> {
        paper?
            .methods
            .get(method)
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.mean)).collect())
    };
    let rows = method_order(summary, options.order)
        .into_iter()
        .map(|method| {
            let ours = &summary.methods[method];
            let theirs = paper.and_then(|p| p.methods.get(method));
            let n = ours.runs.len();
            let cells = metrics
                .iter()
                .map(|key| MetricCell {
                    mean: ours.mean.get(key).copied(),
                    sd: ours.std.get(key).copied().filter(|_| n > 1),
                    paper: theirs.and_then(|t| t.get(key)).copied(),
                })
                .collect();
            let delta_m = baseline.map(|b| {
                if method == b {
                    DeltaMCell::Reference
                } else {
                    DeltaMCell::Values {
                        ours: delta_m_percent(&ours.mean, &summary.methods[b].mean, &metrics),
                        paper: match (paper_means(method), paper_means(b)) {
                            (Some(v), Some(r)) => delta_m_percent(&v, &r, &metrics),
                            _ => None,
                        },
                    }
                }
            });
            TableRow {
                method: method.to_string(),
                params: paper
                    .and_then(|p| p.params.get(method))
                    .cloned()
                    .unwrap_or_default(),
                n,
                cells,
                delta_m,
            }
        })
        .collect();
    Table {
        metrics,
        baseline: baseline.map(str::to_string),
        rows,
    }
}

/// The line under the title: quick or full runs, epochs, seeds, device.
pub fn describe_runs(summary: &Summary) -> String {
    let runs = summary.methods.values().flat_map(|m| &m.runs);
    let epochs: BTreeSet<u64> = runs.clone().map(|r| r.epochs as u64).collect();
    let seeds: BTreeSet<u64> = runs.map(|r| r.seed).collect();
    let kind = if summary.quick {
        "quick run"
    } else {
        "full run"
    };
    format!(
        "{kind}: {} epoch(s), seed(s) {}, device {}",
        span(&epochs),
        span(&seeds),
        summary.device
    )
}

/// Ours as the table prints it: `mean ± sd` in %, `mean` for one run, `–` when absent.
pub fn format_ours(cell: &MetricCell) -> String {
    match (cell.mean, cell.sd) {
        (Some(m), Some(s)) => format!("{} ± {}", percent(m), percent(s)),
        (Some(m), None) => percent(m),
        (None, _) => "–".into(),
    }
}

/// The paper's number as the table prints it: `mean (sd)` in %, `–` when unpublished.
pub fn format_paper(cell: &MetricCell) -> String {
    match &cell.paper {
        Some(v) => match v.sd {
            Some(sd) => format!("{} ({:.3})", percent(v.mean), 100.0 * sd),
            None => percent(v.mean),
        },
        None => "–".into(),
    }
}

/// A signed difference in points (`+1.02`), `–` when absent.
pub fn format_points(delta: Option<f64>) -> String {
    delta.map_or("–".into(), |d| format!("{:+.2}", 100.0 * d))
}

/// A signed Δm% (`+1.02`), `–` when absent.
pub fn format_delta_m(delta: Option<f64>) -> String {
    delta.map_or("–".into(), |d| format!("{d:+.2}"))
}

/// One row's paired differences against its reference row, per column metric.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedRow {
    /// The row.
    pub method: String,
    /// The reference row it is paired with.
    pub reference: String,
    /// Per column metric, the paired difference row − reference over their shared seeds.
    pub cells: Vec<Option<mtcool_metrics::PairedDifference>>,
}

/// Every row that is not of the `reference` method, paired with the `reference` row that sets
/// the same training keys ([`crate::config::ROW_KEYS`]: a row `mtcool[epochs = 50]` with
/// `joint[epochs = 50]`), or else with the plain `reference` row; rows without such a row in
/// the summary are left out. Differences are per seed, over the seeds both rows ran.
pub fn paired_rows(summary: &Summary, order: &[String], reference: &str) -> Vec<PairedRow> {
    use crate::config::MethodSpec;
    let metrics = table_metrics(summary, None);
    let spec = |label: &str| label.parse::<MethodSpec>().ok();
    let Some(kind) = spec(reference).map(|s| s.kind) else {
        return Vec::new();
    };
    let references: Vec<(&str, toml::Table)> = summary
        .methods
        .keys()
        .filter_map(|l| {
            spec(l)
                .filter(|s| s.kind == kind)
                .map(|s| (l.as_str(), s.training_keys()))
        })
        .collect();
    let values = |label: &str, key: &str| -> Vec<(u64, f64)> {
        summary.methods[label]
            .runs
            .iter()
            .filter_map(|r| r.metrics.get(key).map(|v| (r.seed, *v)))
            .collect()
    };
    method_order(summary, order)
        .into_iter()
        .filter_map(|label| {
            let row = spec(label).filter(|s| s.kind != kind)?;
            let keys = row.training_keys();
            let against = references
                .iter()
                .find(|(_, k)| *k == keys)
                .or_else(|| references.iter().find(|(_, k)| k.is_empty()))?
                .0;
            let cells = metrics
                .iter()
                .map(|key| {
                    mtcool_metrics::paired_difference(&values(label, key), &values(against, key))
                })
                .collect();
            Some(PairedRow {
                method: label.to_string(),
                reference: against.to_string(),
                cells,
            })
        })
        .collect()
}

/// A paired difference as the tables print it: `+0.12 ± 0.08` and `[−0.02, +0.26]` in points
/// (`–` for no interval), with `*` when the interval excludes 0.
pub fn format_paired(d: &mtcool_metrics::PairedDifference) -> (String, String) {
    let points = |x: f64| format!("{:+.2}", 100.0 * x);
    let mean = format!("{} ± {:.2}", points(d.mean), 100.0 * d.sd);
    let interval = if d.low.is_nan() {
        "–".to_string()
    } else {
        let mark = if d.excludes_zero() { " *" } else { "" };
        format!("[{}, {}]{mark}", points(d.low), points(d.high))
    };
    (mean, interval)
}

fn render_paired(out: &mut String, summary: &Summary, options: &TableOptions<'_>) {
    let Some(reference) = options.paired_reference else {
        return;
    };
    let rows = paired_rows(summary, options.order, reference);
    if rows.is_empty() {
        return;
    }
    let metrics = table_metrics(summary, None);
    let _ = writeln!(
        out,
        "\n## Paired differences against `{reference}`\n\nPer row: row − reference seed by \
         seed (the `{reference}` row with the same training keys, else `{reference}`), then the \
         mean ± sd of the differences over the n shared seeds and its 95 % Student-t interval \
         (mean ± t(0.975, n − 1)·sd/√n), in points; * marks an interval that excludes 0.\n"
    );
    let mut header = String::from("| Row | against | n |");
    let mut rule = String::from("|---|---|---:|");
    for m in &metrics {
        let _ = write!(header, " {m} Δ | 95 % interval |");
        rule.push_str("---:|---:|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for row in rows {
        let n = row.cells.iter().flatten().map(|d| d.n).max().unwrap_or(0);
        let mut line = format!("| {} | {} | {n} |", row.method, row.reference);
        for cell in &row.cells {
            let (mean, interval) = cell
                .as_ref()
                .map_or(("–".into(), "–".into()), format_paired);
            let _ = write!(line, " {mean} | {interval} |");
        }
        let _ = writeln!(out, "{line}");
    }
}

/// Renders `table.md`: per method and metric, ours (mean ± sd over the n runs) beside the
/// paper's mean (sd) and the difference in points; then Δm% against the baseline method, ours
/// and the paper's, when a baseline is set and present.
pub fn render(summary: &Summary, options: &TableOptions<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {} — {}\n", summary.experiment, options.title);
    let _ = writeln!(
        out,
        "{}. Numbers are test metrics in %: ours mean ± sd over n runs (sd with n − 1), paper \
         mean (sd); Δ = ours − paper, in points.",
        describe_runs(summary)
    );
    if !summary.optimizer.is_empty() {
        let _ = writeln!(
            out,
            "\nOptimiser: {}, except in rows that name another.",
            summary.optimizer
        );
    }
    let table = build(summary, options);
    if let Some(b) = &table.baseline {
        let _ = writeln!(
            out,
            "Δm% = mean over the metrics of the relative change against `{b}`, in % (positive: \
             better), for ours and for the paper's numbers."
        );
    }
    out.push('\n');

    let mut header = String::from("| Method | Params | n |");
    let mut rule = String::from("|---|---|---:|");
    for m in &table.metrics {
        let _ = write!(header, " {m} ours | paper | Δ |");
        rule.push_str("---:|---:|---:|");
    }
    if table.baseline.is_some() {
        header.push_str(" Δm% ours | Δm% paper |");
        rule.push_str("---:|---:|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for row in &table.rows {
        let mut line = format!("| {} | {} | {} |", row.method, row.params, row.n);
        for cell in &row.cells {
            let _ = write!(
                line,
                " {} | {} | {} |",
                format_ours(cell),
                format_paper(cell),
                format_points(cell.delta())
            );
        }
        match row.delta_m {
            Some(DeltaMCell::Reference) => line.push_str(" ref | ref |"),
            Some(DeltaMCell::Values { ours, paper }) => {
                let _ = write!(
                    line,
                    " {} | {} |",
                    format_delta_m(ours),
                    format_delta_m(paper)
                );
            }
            None => {}
        }
        let _ = writeln!(out, "{line}");
    }
    render_paired(&mut out, summary, options);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{MethodSummary, RunBrief};

    fn method(values: &[(&str, &[f64])]) -> MethodSummary {
        let n = values.first().map_or(0, |(_, v)| v.len());
        let runs = (0..n)
            .map(|i| RunBrief {
                seed: i as u64,
                epochs: 3,
                seconds: 1.0,
                metrics: values.iter().map(|(k, v)| (k.to_string(), v[i])).collect(),
            })
            .collect();
        let mut mean = Metrics::new();
        let mut std = Metrics::new();
        for (k, v) in values {
            let (m, s) = mtcool_metrics::mean_std(v);
            mean.insert(k.to_string(), m);
            std.insert(k.to_string(), s);
        }
        MethodSummary { runs, mean, std }
    }

    fn summary() -> Summary {
        Summary {
            experiment: "mnist".into(),
            quick: false,
            device: "cpu".into(),
            optimizer: String::new(),
            methods: [
                (
                    "independent".to_string(),
                    method(&[
                        ("even/accuracy", &[0.98, 0.98]),
                        ("odd/accuracy", &[0.97, 0.97]),
                    ]),
                ),
                (
                    "joint".to_string(),
                    method(&[
                        ("even/accuracy", &[0.99, 0.97]),
                        ("odd/accuracy", &[0.97, 0.97]),
                    ]),
                ),
                ("wo-reg".to_string(), method(&[("even/accuracy", &[0.99])])),
            ]
            .into(),
            jobs: None,
            wall_seconds: None,
        }
    }

    fn paper() -> PaperTable {
        let value = |mean, sd| PaperValue { mean, sd };
        PaperTable {
            source: "test".into(),
            metrics: vec!["even/accuracy".into(), "odd/accuracy".into()],
            params: [("joint".to_string(), "1×".to_string())].into(),
            methods: [
                (
                    "independent".to_string(),
                    [
                        ("even/accuracy".to_string(), value(0.99, Some(0.001))),
                        ("odd/accuracy".to_string(), value(0.98, None)),
                    ]
                    .into(),
                ),
                (
                    "joint".to_string(),
                    [
                        ("even/accuracy".to_string(), value(0.995, None)),
                        ("odd/accuracy".to_string(), value(0.99, None)),
                    ]
                    .into(),
                ),
            ]
            .into(),
        }
    }

    #[test]
    fn table_names_the_optimiser_when_the_summary_records_it() {
        let options = TableOptions::new("Table 1");
        assert!(!render(&summary(), &options).contains("Optimiser"));
        let with = Summary {
            optimizer: "SGD (lr 0.01, momentum 0.9, weight decay 0.0005)".into(),
            ..summary()
        };
        assert!(render(&with, &options)
            .contains("Optimiser: SGD (lr 0.01, momentum 0.9, weight decay 0.0005), except"));
    }

    #[test]
    fn table_has_ours_paper_difference_and_delta_m() {
        let paper = paper();
        let order = vec!["joint".to_string(), "independent".to_string()];
        let options = TableOptions::new("Table 1")
            .with_paper(&paper)
            .with_order(&order)
            .with_baseline("independent");
        let table = render(&summary(), &options);
        assert!(table.starts_with("# mnist — Table 1\n"), "{table}");
        assert!(table.contains("full run: 3 epoch(s), seed(s) 0–1, device cpu"));
        assert!(table.contains("| Δm% ours | Δm% paper |"));
        // joint: even 98.00 ± 1.41 vs 99.50 → −1.50; odd 97.00 vs 99.00 → −2.00;
        // Δm ours = (0 + 0)/2 = 0; Δm paper = ((0.995/0.99 − 1) + (0.99/0.98 − 1))/2 × 100.
        let paper_dm = ((0.995 / 0.99 - 1.0) + (0.99 / 0.98 - 1.0)) / 2.0 * 100.0;
        let joint_row = format!(
            "| joint | 1× | 2 | 98.00 ± 1.41 | 99.50 | -1.50 | 97.00 ± 0.00 | 99.00 | -2.00 | \
             +0.00 | {paper_dm:+.2} |"
        );
        assert!(table.contains(&joint_row), "{table}\nwanted {joint_row}");
        assert!(table.contains(
            "| independent |  | 2 | 98.00 ± 0.00 | 99.00 (0.100) | -1.00 | 97.00 ± 0.00 | 98.00 | \
             -1.00 | ref | ref |"
        ));
        // a method missing a metric gets dashes, and no Δm
        assert!(table.contains("| wo-reg |  | 1 | 99.00 | – | – | – | – | – | – | – |"));
        // order: config order first, then the rest by name
        let joint = table.find("| joint |").unwrap();
        let independent = table.find("| independent |").unwrap();
        let wo_reg = table.find("| wo-reg |").unwrap();
        assert!(joint < independent && independent < wo_reg);
    }

    #[test]
    fn no_delta_m_without_a_present_baseline() {
        let table = render(&summary(), &TableOptions::new("t").with_baseline("stl"));
        assert!(!table.contains("Δm%"), "{table}");
        // without the paper, the columns are every metric of the summary
        assert!(table.contains("| even/accuracy ours | paper | Δ | odd/accuracy ours |"));
    }

    #[test]
    fn study_rows_are_paired_with_the_reference_under_the_same_schedule() {
        let acc = |values: &[f64]| method(&[("even/accuracy", values)]);
        let summary = Summary {
            methods: [
                ("joint".to_string(), acc(&[0.90, 0.92, 0.91])),
                ("joint[epochs = 50]".to_string(), acc(&[0.95, 0.95, 0.96])),
                ("mtcool".to_string(), acc(&[0.91, 0.93, 0.92])),
                ("mtcool[epochs = 50]".to_string(), acc(&[0.94, 0.95, 0.95])),
                ("mtcool[samples = 4]".to_string(), acc(&[0.90, 0.92, 0.93])),
            ]
            .into(),
            ..summary()
        };
        let rows = paired_rows(&summary, &[], "joint");
        let against: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.method.as_str(), r.reference.as_str()))
            .collect();
        assert_eq!(
            against,
            [
                ("mtcool", "joint"),
                ("mtcool[epochs = 50]", "joint[epochs = 50]"),
                ("mtcool[samples = 4]", "joint")
            ]
        );
        // mtcool − joint = +0.01 on every seed: sd 0, an interval of one point
        let d = rows[0].cells[0].unwrap();
        assert!((d.mean - 0.01).abs() < 1e-12 && d.sd < 1e-12 && d.excludes_zero());
        let options = TableOptions {
            paired_reference: Some("joint"),
            ..TableOptions::new("study")
        };
        let table = render(&summary, &options);
        assert!(
            table.contains("## Paired differences against `joint`"),
            "{table}"
        );
        assert!(
            table.contains("| mtcool | joint | 3 | +1.00 ± 0.00 | [+1.00, +1.00] * |"),
            "{table}"
        );
        assert!(
            table.contains("| mtcool[epochs = 50] | joint[epochs = 50] | 3 | -0.67 ± 0.58 |"),
            "{table}"
        );
    }

    #[test]
    fn directions_and_spans() {
        assert!(higher_is_better("seg/dice"));
        assert!(higher_is_better("even/accuracy"));
        assert!(!higher_is_better("even/loss"));
        assert!(!higher_is_better("box/mae"));
        assert!(!higher_is_better("seg/hd95"));
        assert_eq!(span(&[3].into()), "3");
        assert_eq!(span(&[0, 1, 2].into()), "0–2");
        assert_eq!(span(&[0, 2].into()), "0, 2");
        assert_eq!(
            default_delta_m_baseline(&["joint".into(), "independent".into()]),
            Some("independent")
        );
        assert_eq!(default_delta_m_baseline(&["joint".into()]), None);
    }
}
