//! The regression check: an experiment's `summary.json` against a committed baseline
//! (`experiments/baselines/<experiment>[-quick].json`), per method and metric, with
//! per-metric tolerances in points (percentage points of a fraction metric).
//!
//! A metric is **regressed** when it is worse than the baseline by more than its tolerance
//! (lower for accuracy-like metrics, higher for losses and errors), or worse than the
//! baseline's absolute `limits`, which apply to every method, new ones included. A method of
//! the baseline that produced no value for one of its metrics is **missing** and fails too.
//! Methods in the results but not in the baseline are **new** (reported, not failing: refresh
//! the baseline with `cargo xtask regress --update`); baseline methods absent from the results
//! (a grid run with `--methods`) are reported as not run and fail only when asked to.
//!
//! ```
//! use mtcool_report::regress::{compare, Baseline, CompareOptions, Status};
//! use mtcool_train::results::{MethodSummary, Summary};
//!
//! let method = |acc: f64| MethodSummary {
//!     runs: vec![],
//!     mean: [("even/accuracy".to_string(), acc)].into(),
//!     std: [("even/accuracy".to_string(), 0.0)].into(),
//! };
//! let summary = Summary {
//!     experiment: "mnist".into(),
//!     quick: true,
//!     device: "cpu".into(),
//!     optimizer: String::new(),
//!     methods: [("joint".into(), method(0.97))].into(),
//!     jobs: None,
//!     wall_seconds: None,
//! };
//! let baseline = Baseline::from_summary(&Summary {
//!     methods: [("joint".into(), method(0.99))].into(),
//!     ..summary.clone()
//! }, None, 1.0);
//! let outcome = compare(&summary, &baseline, &CompareOptions::default())?;
//! assert_eq!(outcome.rows[0].status, Status::Regressed);
//! assert!(outcome.failure_line().unwrap_or_default().contains("joint even/accuracy"));
//! # Ok::<(), mtcool_report::ReportError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mtcool_train::results::{read_json, write_json, Metrics, Summary};
use mtcool_train::table::higher_is_better;
use serde::{Deserialize, Serialize};

use crate::error::{ReportError, Result};

/// Default tolerance of a quick run (one short run: covers the rounding differences between
/// machines of the same kind), in points.
pub const QUICK_TOLERANCE_POINTS: f64 = 1.0;
/// Default tolerance of a full run (means over several runs), in points.
pub const FULL_TOLERANCE_POINTS: f64 = 0.5;

/// Small slack so that a value exactly at the tolerance passes despite rounding.
const EPS: f64 = 1e-9;

/// A committed baseline: one experiment's numbers to compare later results with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Experiment name (`mnist`).
    pub experiment: String,
    /// Whether the numbers come from quick runs.
    pub quick: bool,
    /// Device the baseline runs trained on.
    #[serde(default)]
    pub device: String,
    /// Free text for people: where the numbers come from.
    #[serde(default)]
    pub note: String,
    /// Tolerance in points for metrics not listed in `tolerances`.
    pub default_tolerance: f64,
    /// Tolerance in points per metric key (`even/accuracy`).
    #[serde(default)]
    pub tolerances: BTreeMap<String, f64>,
    /// Worst acceptable value per metric key, as a fraction (a floor for accuracy-like
    /// metrics, a ceiling for losses), checked for every method in the results.
    #[serde(default)]
    pub limits: BTreeMap<String, f64>,
    /// Per method, the mean of each metric (fractions, as in `summary.json`).
    pub methods: BTreeMap<String, Metrics>,
}

impl Baseline {
    /// A baseline from a summary's means. With `previous`, its note, tolerances, limits and
    /// the methods the summary lacks are kept (a refresh from a partial grid loses nothing);
    /// `default_tolerance` (points) is used only when there is no previous baseline.
    pub fn from_summary(
        summary: &Summary,
        previous: Option<&Baseline>,
        default_tolerance: f64,
    ) -> Self {
        let mut methods = previous.map(|p| p.methods.clone()).unwrap_or_default();
        for (name, ms) in &summary.methods {
            methods.insert(name.clone(), ms.mean.clone());
        }
        Self {
            experiment: summary.experiment.clone(),
            quick: summary.quick,
            device: summary.device.clone(),
            note: previous.map(|p| p.note.clone()).unwrap_or_default(),
            default_tolerance: previous.map_or(default_tolerance, |p| p.default_tolerance),
            tolerances: previous.map(|p| p.tolerances.clone()).unwrap_or_default(),
            limits: previous.map(|p| p.limits.clone()).unwrap_or_default(),
            methods,
        }
    }

    /// The tolerance of a metric, in points.
    pub fn tolerance(&self, metric: &str) -> f64 {
        self.tolerances
            .get(metric)
            .copied()
            .unwrap_or(self.default_tolerance)
    }

    /// `mnist` or `mnist (quick)`.
    pub fn label(&self) -> String {
        label(&self.experiment, self.quick)
    }
}

fn label(experiment: &str, quick: bool) -> String {
    if quick {
        format!("{experiment} (quick)")
    } else {
        experiment.to_string()
    }
}

/// The default baseline file of an experiment: `<dir>/<experiment>[-quick].json`.
pub fn default_baseline_path(baselines_dir: &Path, experiment: &str, quick: bool) -> PathBuf {
    let suffix = if quick { "-quick" } else { "" };
    baselines_dir.join(format!("{experiment}{suffix}.json"))
}

/// Reads a baseline file.
///
/// # Errors
/// One error naming the file: absent (with how to create it), not JSON, an unknown key, or a
/// negative or non-finite tolerance.
pub fn read_baseline(path: &Path) -> Result<Baseline> {
    if !path.is_file() {
        return Err(ReportError::file(
            path,
            "no such baseline (create it from results with `cargo xtask regress --update`)",
        ));
    }
    let baseline: Baseline = read_json(path)?;
    let tolerances = std::iter::once(("default_tolerance", &baseline.default_tolerance))
        .chain(baseline.tolerances.iter().map(|(k, v)| (k.as_str(), v)));
    for (key, tol) in tolerances {
        if !tol.is_finite() || *tol < 0.0 {
            return Err(ReportError::file(
                path,
                format!(
                    "tolerance of `{key}` is {tol}; it must be a non-negative number of points"
                ),
            ));
        }
    }
    Ok(baseline)
}

/// Writes a baseline file atomically (pretty JSON).
pub fn write_baseline(path: &Path, baseline: &Baseline) -> Result<()> {
    Ok(write_json(path, baseline)?)
}

/// Finds the summaries under a results folder: `<dir>/summary.json` itself, or else
/// `<dir>/<experiment>/summary.json` for each experiment folder, in name order.
///
/// # Errors
/// When the folder cannot be read or holds no summary.
pub fn find_summaries(results_dir: &Path) -> Result<Vec<PathBuf>> {
    let direct = results_dir.join("summary.json");
    if direct.is_file() {
        return Ok(vec![direct]);
    }
    let entries = std::fs::read_dir(results_dir).map_err(|e| {
        ReportError::file(
            results_dir,
            format!("cannot read the results folder ({e}); run `cargo xtask reproduce` first"),
        )
    })?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("summary.json"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(ReportError::file(
            results_dir,
            "no summary.json here or in its experiment folders; run `cargo xtask reproduce` first",
        ));
    }
    Ok(found)
}

/// How to compare.
#[derive(Debug, Clone, Default)]
pub struct CompareOptions {
    /// One tolerance in points for every metric, instead of the baseline's.
    pub tolerance_points: Option<f64>,
    /// Fail when a baseline method is absent from the results (by default it is reported).
    pub require_all_methods: bool,
}

/// The verdict on one method and metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Within the tolerance of the baseline.
    Ok,
    /// Better than the baseline by more than the tolerance (consider refreshing it).
    Improved,
    /// Worse than the baseline by more than the tolerance.
    Regressed,
    /// Worse than the baseline's absolute limit for the metric.
    BeyondLimit,
    /// The method ran but has no value for this baseline metric.
    Missing,
    /// The baseline method is not in the results (not run).
    NotRun,
    /// In the results but not in the baseline.
    New,
}

impl Status {
    /// Short text for the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Improved => "improved",
            Status::Regressed => "REGRESSED",
            Status::BeyondLimit => "BEYOND LIMIT",
            Status::Missing => "MISSING",
            Status::NotRun => "not run",
            Status::New => "new",
        }
    }
}

/// One line of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Method name.
    pub method: String,
    /// Metric key.
    pub metric: String,
    /// The baseline's value (fraction), if it has one.
    pub baseline: Option<f64>,
    /// The results' value (fraction), if any.
    pub now: Option<f64>,
    /// Tolerance in points.
    pub tolerance: f64,
    /// The verdict.
    pub status: Status,
    /// Whether this row fails the check.
    pub fails: bool,
}

impl Row {
    /// now − baseline in points, when both exist.
    pub fn delta_points(&self) -> Option<f64> {
        Some(100.0 * (self.now? - self.baseline?))
    }

    fn describe(&self) -> String {
        let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.2}%", 100.0 * v));
        match self.status {
            Status::Regressed => format!(
                "{} {} regressed: {} vs baseline {} ({:+.2} points, tolerance {:.2})",
                self.method,
                self.metric,
                pct(self.now),
                pct(self.baseline),
                self.delta_points().unwrap_or(f64::NAN),
                self.tolerance
            ),
            Status::BeyondLimit => format!(
                "{} {} is {}, beyond the limit {}",
                self.method,
                self.metric,
                pct(self.now),
                pct(self.baseline)
            ),
            Status::Missing => format!("{} {} missing from the results", self.method, self.metric),
            Status::NotRun => format!("{} {} not run", self.method, self.metric),
            _ => format!("{} {} {}", self.method, self.metric, self.status.as_str()),
        }
    }
}

/// The comparison of one summary with its baseline.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// `mnist (quick)`.
    pub label: String,
    /// Baseline rows first (baseline method order), then new methods.
    pub rows: Vec<Row>,
}

impl Comparison {
    /// The rows that fail the check.
    pub fn failures(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.fails)
    }

    /// Whether nothing failed.
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// One line naming every failing method and metric, or `None` when the check passed.
    pub fn failure_line(&self) -> Option<String> {
        let failures: Vec<String> = self.failures().map(Row::describe).collect();
        (!failures.is_empty()).then(|| format!("{}: {}", self.label, failures.join("; ")))
    }

    /// The markdown table: method, metric, baseline, now, Δ, tolerance, status. Baseline
    /// methods that were not run (and do not fail) are listed in one line below it.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| method | metric | baseline | now | Δ (points) | tolerance | status |\n\
             |---|---|---:|---:|---:|---:|---|\n",
        );
        let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.2}", 100.0 * v));
        let mut not_run: Vec<&str> = Vec::new();
        for row in &self.rows {
            if row.status == Status::NotRun && !row.fails {
                if not_run.last() != Some(&row.method.as_str()) {
                    not_run.push(&row.method);
                }
                continue;
            }
            let delta = row
                .delta_points()
                .map_or("–".into(), |d| format!("{d:+.2}"));
            let tolerance = match row.status {
                Status::BeyondLimit => "limit".to_string(),
                _ => format!("±{:.2}", row.tolerance),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                row.method,
                row.metric,
                pct(row.baseline),
                pct(row.now),
                delta,
                tolerance,
                row.status.as_str()
            );
        }
        if !not_run.is_empty() {
            let _ = writeln!(
                out,
                "\nnot run (in the baseline, not in the results): {}",
                not_run.join(", ")
            );
        }
        out
    }
}

/// Signed gain in points: positive when `now` is better than `reference`.
fn gain_points(metric: &str, now: f64, reference: f64) -> f64 {
    let d = 100.0 * (now - reference);
    if higher_is_better(metric) {
        d
    } else {
        -d
    }
}

/// Compares a summary with its baseline.
///
/// # Errors
/// When the baseline is for another experiment or the other kind of run (quick / full).
pub fn compare(
    summary: &Summary,
    baseline: &Baseline,
    options: &CompareOptions,
) -> Result<Comparison> {
    let this = label(&summary.experiment, summary.quick);
    if summary.experiment != baseline.experiment || summary.quick != baseline.quick {
        return Err(ReportError::Mismatch(format!(
            "the baseline is for {}, the results are {this}: pass the matching --baseline",
            baseline.label()
        )));
    }
    let tolerance = |metric: &str| {
        options
            .tolerance_points
            .unwrap_or_else(|| baseline.tolerance(metric))
    };
    // a value worse than the metric's absolute limit fails, for every method
    let beyond_limit = |metric: &str, now: f64| {
        let limit = *baseline.limits.get(metric)?;
        (gain_points(metric, now, limit) < -EPS).then_some(limit)
    };
    let mut rows = Vec::new();
    for (method, metrics) in &baseline.methods {
        let results = summary.methods.get(method);
        for (metric, &reference) in metrics {
            let tol = tolerance(metric);
            let now = results.and_then(|r| r.mean.get(metric).copied());
            let (status, fails) = match (results, now) {
                (None, _) => (Status::NotRun, options.require_all_methods),
                (Some(_), None) => (Status::Missing, true),
                (Some(_), Some(v)) => {
                    let gain = gain_points(metric, v, reference);
                    if gain < -tol - EPS {
                        (Status::Regressed, true)
                    } else if let Some(limit) = beyond_limit(metric, v) {
                        rows.push(Row {
                            method: method.clone(),
                            metric: metric.clone(),
                            baseline: Some(limit),
                            now,
                            tolerance: tol,
                            status: Status::BeyondLimit,
                            fails: true,
                        });
                        continue;
                    } else if gain > tol + EPS {
                        (Status::Improved, false)
                    } else {
                        (Status::Ok, false)
                    }
                }
            };
            rows.push(Row {
                method: method.clone(),
                metric: metric.clone(),
                baseline: Some(reference),
                now,
                tolerance: tol,
                status,
                fails,
            });
        }
        // metrics the method now reports that the baseline does not know
        if let Some(r) = results {
            for (metric, &v) in r.mean.iter().filter(|(k, _)| !metrics.contains_key(*k)) {
                rows.push(new_row(method, metric, v, tolerance(metric), beyond_limit));
            }
        }
    }
    for (method, r) in summary
        .methods
        .iter()
        .filter(|(m, _)| !baseline.methods.contains_key(*m))
    {
        for (metric, &v) in &r.mean {
            rows.push(new_row(method, metric, v, tolerance(metric), beyond_limit));
        }
    }
    Ok(Comparison { label: this, rows })
}

fn new_row(
    method: &str,
    metric: &str,
    now: f64,
    tolerance: f64,
    beyond_limit: impl Fn(&str, f64) -> Option<f64>,
) -> Row {
    let limit = beyond_limit(metric, now);
    Row {
        method: method.to_string(),
        metric: metric.to_string(),
        baseline: limit,
        now: Some(now),
        tolerance,
        status: if limit.is_some() {
            Status::BeyondLimit
        } else {
            Status::New
        },
        fails: limit.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtcool_train::results::MethodSummary;

    fn method(even: f64, odd: f64) -> MethodSummary {
        let mean: Metrics = [
            ("even/accuracy".to_string(), even),
            ("odd/accuracy".to_string(), odd),
        ]
        .into();
        MethodSummary {
            runs: vec![],
            std: mean.keys().map(|k| (k.clone(), 0.0)).collect(),
            mean,
        }
    }

    fn summary(methods: &[(&str, MethodSummary)]) -> Summary {
        Summary {
            experiment: "mnist".into(),
            quick: true,
            device: "cpu".into(),
            optimizer: String::new(),
            methods: methods
                .iter()
                .map(|(n, m)| (n.to_string(), m.clone()))
                .collect(),
            jobs: None,
            wall_seconds: None,
        }
    }

    fn baseline() -> Baseline {
        Baseline::from_summary(
            &summary(&[
                ("joint", method(0.99, 0.985)),
                ("mtcool", method(0.99, 0.98)),
            ]),
            None,
            QUICK_TOLERANCE_POINTS,
        )
    }

    #[test]
    fn identical_results_pass() {
        let b = baseline();
        let s = summary(&[
            ("joint", method(0.99, 0.985)),
            ("mtcool", method(0.99, 0.98)),
        ]);
        let c = compare(&s, &b, &CompareOptions::default()).unwrap();
        assert!(c.passed(), "{}", c.markdown());
        assert_eq!(c.rows.len(), 4);
        assert!(c.rows.iter().all(|r| r.status == Status::Ok));
        assert_eq!(c.failure_line(), None);
        assert!(c
            .markdown()
            .contains("| joint | even/accuracy | 99.00 | 99.00 | +0.00 | ±1.00 | ok |"));
    }

    #[test]
    fn two_points_lower_fails_naming_method_and_metric() {
        let b = baseline();
        let s = summary(&[
            ("joint", method(0.99, 0.985)),
            ("mtcool", method(0.97, 0.98)),
        ]);
        let c = compare(&s, &b, &CompareOptions::default()).unwrap();
        assert!(!c.passed());
        let failing: Vec<&Row> = c.failures().collect();
        assert_eq!(failing.len(), 1);
        assert_eq!(
            (failing[0].method.as_str(), failing[0].metric.as_str()),
            ("mtcool", "even/accuracy")
        );
        assert_eq!(failing[0].status, Status::Regressed);
        let line = c.failure_line().unwrap();
        assert!(
            line.starts_with("mnist (quick): mtcool even/accuracy regressed"),
            "{line}"
        );
        assert!(!line.contains('\n'));
        assert!(c
            .markdown()
            .contains("| mtcool | even/accuracy | 99.00 | 97.00 | -2.00 | ±1.00 | REGRESSED |"));
        // a wider tolerance lets it pass
        let wide = CompareOptions {
            tolerance_points: Some(2.5),
            ..Default::default()
        };
        assert!(compare(&s, &b, &wide).unwrap().passed());
    }

    #[test]
    fn within_tolerance_and_improvements_pass() {
        let b = baseline();
        let s = summary(&[
            ("joint", method(0.9805, 0.999)),
            ("mtcool", method(0.99, 0.98)),
        ]);
        let c = compare(&s, &b, &CompareOptions::default()).unwrap();
        assert!(c.passed(), "{}", c.markdown());
        let status = |m: &str, k: &str| {
            c.rows
                .iter()
                .find(|r| r.method == m && r.metric == k)
                .unwrap()
                .status
        };
        assert_eq!(status("joint", "even/accuracy"), Status::Ok);
        assert_eq!(status("joint", "odd/accuracy"), Status::Improved);
    }

    #[test]
    fn missing_metric_fails_and_missing_method_is_reported() {
        let b = baseline();
        let mut joint = method(0.99, 0.985);
        joint.mean.remove("odd/accuracy");
        let s = summary(&[("joint", joint)]);
        let c = compare(&s, &b, &CompareOptions::default()).unwrap();
        let row = |m: &str, k: &str| {
            c.rows
                .iter()
                .find(|r| r.method == m && r.metric == k)
                .unwrap()
        };
        assert_eq!(row("joint", "odd/accuracy").status, Status::Missing);
        assert!(row("joint", "odd/accuracy").fails);
        assert_eq!(row("mtcool", "even/accuracy").status, Status::NotRun);
        assert!(!row("mtcool", "even/accuracy").fails);
        let line = c.failure_line().unwrap();
        assert!(line.contains("joint odd/accuracy missing"), "{line}");
        assert!(c
            .markdown()
            .contains("| joint | odd/accuracy | 98.50 | – | – | ±1.00 | MISSING |"));
        let table = c.markdown();
        assert!(table.contains("not run (in the baseline, not in the results): mtcool"));
        assert!(!table.contains("| mtcool |"), "{table}");
        // with --require-all, a method not run fails too
        let strict = CompareOptions {
            require_all_methods: true,
            ..Default::default()
        };
        let c = compare(&s, &b, &strict).unwrap();
        assert!(c
            .failure_line()
            .unwrap()
            .contains("mtcool even/accuracy not run"));
        let table = c.markdown();
        assert!(table.contains("| mtcool | even/accuracy | 99.00 | – | – | ±1.00 | not run |"));
    }

    #[test]
    fn new_methods_are_reported_not_failing_unless_beyond_a_limit() {
        let mut b = baseline();
        let s = summary(&[
            ("joint", method(0.99, 0.985)),
            ("mtcool", method(0.99, 0.98)),
            ("pcgrad", method(0.96, 0.99)),
        ]);
        let c = compare(&s, &b, &CompareOptions::default()).unwrap();
        assert!(c.passed());
        assert!(c
            .markdown()
            .contains("| pcgrad | even/accuracy | – | 96.00 | – | ±1.00 | new |"));
        b.limits.insert("even/accuracy".into(), 0.97);
        let c = compare(&s, &b, &CompareOptions::default()).unwrap();
        assert!(c
            .failure_line()
            .unwrap()
            .contains("pcgrad even/accuracy is 96.00%, beyond the limit 97.00%"));
    }

    #[test]
    fn lower_is_better_metrics_regress_upwards() {
        let loss = |v: f64| MethodSummary {
            runs: vec![],
            mean: [("seg/loss".to_string(), v)].into(),
            std: [("seg/loss".to_string(), 0.0)].into(),
        };
        let b = Baseline::from_summary(&summary(&[("joint", loss(0.10))]), None, 1.0);
        let worse = compare(
            &summary(&[("joint", loss(0.12))]),
            &b,
            &CompareOptions::default(),
        )
        .unwrap();
        assert_eq!(worse.rows[0].status, Status::Regressed);
        let better = compare(
            &summary(&[("joint", loss(0.08))]),
            &b,
            &CompareOptions::default(),
        )
        .unwrap();
        assert_eq!(better.rows[0].status, Status::Improved);
    }

    #[test]
    fn wrong_experiment_or_kind_is_an_error() {
        let b = baseline();
        let mut s = summary(&[("joint", method(0.99, 0.985))]);
        s.quick = false;
        let e = compare(&s, &b, &CompareOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mnist (quick)") && e.contains("--baseline"),
            "{e}"
        );
    }

    #[test]
    fn refresh_keeps_settings_and_methods_not_rerun() {
        let mut old = baseline();
        old.note = "hand-written".into();
        old.tolerances.insert("odd/accuracy".into(), 0.7);
        old.limits.insert("odd/accuracy".into(), 0.97);
        let s = summary(&[
            ("joint", method(0.995, 0.99)),
            ("pcgrad", method(0.99, 0.99)),
        ]);
        let new = Baseline::from_summary(&s, Some(&old), 5.0);
        assert_eq!(new.note, "hand-written");
        assert_eq!(new.default_tolerance, QUICK_TOLERANCE_POINTS);
        assert_eq!(new.tolerance("odd/accuracy"), 0.7);
        assert_eq!(new.limits["odd/accuracy"], 0.97);
        assert_eq!(new.methods["joint"]["even/accuracy"], 0.995);
        assert_eq!(new.methods["mtcool"]["odd/accuracy"], 0.98);
        assert!(new.methods.contains_key("pcgrad"));
    }

    #[test]
    fn baseline_files_round_trip_and_reject_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = default_baseline_path(dir.path(), "mnist", true);
        assert!(path.ends_with("mnist-quick.json"));
        let e = read_baseline(&path).unwrap_err().to_string();
        assert!(
            e.contains("mnist-quick.json") && e.contains("--update"),
            "{e}"
        );
        write_baseline(&path, &baseline()).unwrap();
        assert_eq!(read_baseline(&path).unwrap(), baseline());
        std::fs::write(
            &path,
            r#"{"experiment": "mnist", "quick": true, "tolerance": 1}"#,
        )
        .unwrap();
        let e = read_baseline(&path).unwrap_err().to_string();
        assert!(
            e.contains("mnist-quick.json") && e.contains("unknown field"),
            "{e}"
        );
        let mut bad = baseline();
        bad.default_tolerance = -1.0;
        write_baseline(&path, &bad).unwrap();
        let e = read_baseline(&path).unwrap_err().to_string();
        assert!(e.contains("non-negative"), "{e}");
    }

    #[test]
    fn summaries_are_found_in_experiment_folders_or_directly() {
        let dir = tempfile::tempdir().unwrap();
        assert!(find_summaries(dir.path()).is_err());
        let s = summary(&[("joint", method(0.99, 0.985))]);
        write_json(&dir.path().join("mnist/summary.json"), &s).unwrap();
        write_json(&dir.path().join("a/summary.json"), &s).unwrap();
        let found = find_summaries(dir.path()).unwrap();
        assert_eq!(found.len(), 2);
        assert!(found[0].ends_with("a/summary.json"));
        let direct = find_summaries(&dir.path().join("mnist")).unwrap();
        assert_eq!(direct, vec![dir.path().join("mnist/summary.json")]);
        assert!(find_summaries(&dir.path().join("nope")).is_err());
    }
}
