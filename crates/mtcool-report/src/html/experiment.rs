//! `<experiment>/index.html`: the settings, the table (ours beside the paper's, Δ, Δm%), the
//! regression status, every figure inlined as SVG, and per method its runs with links to
//! their files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mtcool_train::results::{tracking_dir, RunRecord};
use mtcool_train::table::{
    build, describe_runs, format_delta_m, format_ours, format_paired, format_paper, format_points,
    higher_is_better, paired_rows, table_metrics, DeltaMCell, Table,
};
use mtcool_train::tracking::HISTORY_CSV;

use super::{escape, href, page};
use crate::error::{ReportError, Result};
use crate::load::{run_stem, ExperimentResults};
use crate::regress::{Comparison, Status};
use crate::ReportContext;

/// The regression check shown on the page.
#[derive(Debug, Clone)]
pub enum Regression {
    /// The results compared with the committed baseline at `baseline`.
    Compared {
        /// The baseline file.
        baseline: PathBuf,
        /// The verdict.
        comparison: Comparison,
    },
    /// A baseline exists but could not be used (unreadable, or for another mode).
    Unusable(String),
}

/// What one experiment page shows.
#[derive(Debug, Clone, Copy)]
pub struct ExperimentPage<'a> {
    /// The loaded results folder.
    pub results: &'a ExperimentResults,
    /// Title, paper numbers, order, Δm baseline.
    pub context: &'a ReportContext,
    /// The figure files written (their SVGs are inlined, in this order).
    pub figures: &'a [PathBuf],
    /// The regression check, when the experiment has a baseline.
    pub regression: Option<&'a Regression>,
    /// What the report left out.
    pub warnings: &'a [String],
}

/// Renders the page.
///
/// # Errors
/// A figure's SVG cannot be read.
pub fn render(page_inputs: &ExperimentPage<'_>) -> Result<String> {
    let ExperimentPage {
        results, context, ..
    } = *page_inputs;
    let summary = &results.summary;
    let mut body = format!(
        "<p><a href=\"../index.html\">All experiments</a></p>\n<h1>{}</h1>\n<p class=\"sub\">{}</p>\n",
        escape(&summary.experiment),
        escape(&context.title)
    );
    body.push_str(&settings(page_inputs));
    let table = build(summary, &context.table_options());
    body.push_str(&table_html(&table));
    if let Some(reference) = &context.paired_reference {
        body.push_str(&paired_html(summary, &context.order, reference));
    }
    if let Some(regression) = page_inputs.regression {
        body.push_str(&regression_html(regression));
    }
    body.push_str(&figures_html(page_inputs.figures)?);
    body.push_str(&runs_html(results, &table));
    body.push_str(&files_html(&results.dir));
    if !page_inputs.warnings.is_empty() {
        body.push_str("<h2>Warnings</h2>\n<ul>\n");
        for w in page_inputs.warnings {
            let _ = writeln!(body, "<li class=\"warn\">{}</li>", escape(w));
        }
        body.push_str("</ul>\n");
    }
    let title = format!("{} — mtcool report", summary.experiment);
    Ok(page(&title, &body))
}

fn settings(inputs: &ExperimentPage<'_>) -> String {
    let summary = &inputs.results.summary;
    let mut rows: Vec<(&str, String)> = vec![("Runs", describe_runs(summary))];
    if !summary.optimizer.is_empty() {
        rows.push((
            "Optimiser",
            format!("{}, except in rows that name another", summary.optimizer),
        ));
    }
    if let Some(jobs) = summary.jobs {
        rows.push(("Worker processes", jobs.to_string()));
    }
    if let Some(wall) = summary.wall_seconds {
        rows.push(("Wall time", format!("{wall:.0} s")));
    }
    if let Some(paper) = inputs
        .context
        .paper
        .as_ref()
        .filter(|p| !p.source.is_empty())
    {
        rows.push(("Paper", paper.source.clone()));
    }
    let mut out = String::from("<h2>Settings</h2>\n<dl>\n");
    for (key, value) in rows {
        let _ = writeln!(out, "<dt>{key}</dt><dd>{}</dd>", escape(&value));
    }
    out.push_str("</dl>\n");
    out
}

/// The best mean of each column (for bold), by the metric's direction.
fn best_means(table: &Table) -> Vec<Option<f64>> {
    (0..table.metrics.len())
        .map(|i| {
            let means = table.rows.iter().filter_map(|r| r.cells[i].mean);
            if higher_is_better(&table.metrics[i]) {
                means.reduce(f64::max)
            } else {
                means.reduce(f64::min)
            }
        })
        .collect()
}

fn signed_class(value: Option<f64>, higher_better: bool) -> &'static str {
    match value {
        Some(v) if (v > 0.0) == higher_better && v != 0.0 => " better",
        Some(v) if v != 0.0 => " worse",
        _ => "",
    }
}

fn table_html(table: &Table) -> String {
    let mut out = String::from(
        "<h2>Results</h2>\n<p class=\"sub\">Test metrics in %: ours mean ± sd over n runs, the \
         paper's mean (sd), Δ = ours − paper in points; the best of ours in each column in \
         bold.</p>\n<table class=\"results\">\n<thead><tr><th rowspan=\"2\">Method</th>\
         <th rowspan=\"2\">Params</th><th rowspan=\"2\">n</th>",
    );
    for metric in &table.metrics {
        let _ = write!(out, "<th colspan=\"3\">{}</th>", escape(metric));
    }
    if let Some(b) = &table.baseline {
        let _ = write!(out, "<th colspan=\"2\">Δm% vs {}</th>", escape(b));
    }
    out.push_str("</tr>\n<tr>");
    for _ in &table.metrics {
        out.push_str("<th>ours</th><th>paper</th><th>Δ</th>");
    }
    if table.baseline.is_some() {
        out.push_str("<th>ours</th><th>paper</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let best = best_means(table);
    for row in &table.rows {
        let _ = write!(
            out,
            "<tr><td><a href=\"#runs-{}\">{}</a></td><td>{}</td><td class=\"num\">{}</td>",
            href(&row.method),
            escape(&row.method),
            escape(&row.params),
            row.n
        );
        for (i, cell) in row.cells.iter().enumerate() {
            let up = higher_is_better(&table.metrics[i]);
            let bold = if cell.mean.is_some() && cell.mean == best[i] {
                " best"
            } else {
                ""
            };
            let _ = write!(
                out,
                "<td class=\"num{bold}\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num{}\">{}</td>",
                format_ours(cell),
                format_paper(cell),
                signed_class(cell.delta(), up),
                format_points(cell.delta())
            );
        }
        match row.delta_m {
            Some(DeltaMCell::Reference) => {
                out.push_str("<td class=\"num\">ref</td><td class=\"num\">ref</td>")
            }
            Some(DeltaMCell::Values { ours, paper }) => {
                let _ = write!(
                    out,
                    "<td class=\"num{}\">{}</td><td class=\"num\">{}</td>",
                    signed_class(ours, true),
                    format_delta_m(ours),
                    format_delta_m(paper)
                );
            }
            None => {}
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

fn paired_html(
    summary: &mtcool_train::results::Summary,
    order: &[String],
    reference: &str,
) -> String {
    let rows = paired_rows(summary, order, reference);
    if rows.is_empty() {
        return String::new();
    }
    let metrics = table_metrics(summary, None);
    let mut out = format!(
        "<h2>Paired differences against {0}</h2>\n<p class=\"sub\">Row − reference seed by seed \
         (the {0} row with the same training keys, else {0}): mean ± sd over the n shared \
         seeds and the 95 % Student-t interval, in points; * marks an interval that excludes \
         0.</p>\n<table class=\"paired\">\n<thead><tr><th>Row</th><th>Against</th><th>n</th>",
        escape(reference)
    );
    for m in &metrics {
        let _ = write!(out, "<th>{0} Δ</th><th>{0} 95 % interval</th>", escape(m));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        let n = row.cells.iter().flatten().map(|d| d.n).max().unwrap_or(0);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{n}</td>",
            escape(&row.method),
            escape(&row.reference)
        );
        for (cell, metric) in row.cells.iter().zip(&metrics) {
            let (mean, interval) = cell
                .as_ref()
                .map_or(("–".into(), "–".into()), format_paired);
            let class = match cell {
                Some(d) if d.excludes_zero() && (d.mean > 0.0) == higher_is_better(metric) => {
                    " better"
                }
                Some(d) if d.excludes_zero() => " worse",
                _ => "",
            };
            let _ = write!(
                out,
                "<td class=\"num\">{mean}</td><td class=\"num{class}\">{interval}</td>"
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

fn regression_html(regression: &Regression) -> String {
    let mut out = String::from("<h2>Regression check</h2>\n");
    match regression {
        Regression::Unusable(why) => {
            let _ = writeln!(out, "<p class=\"warn\">{}</p>", escape(why));
        }
        Regression::Compared {
            baseline,
            comparison,
        } => {
            let (class, verdict) = if comparison.passed() {
                ("pass", "passed")
            } else {
                ("fail", "FAILED")
            };
            let _ = writeln!(
                out,
                "<p id=\"regression\" class=\"{class}\">{verdict}: {} against <code>{}</code></p>",
                escape(&comparison.label),
                escape(&short_path(baseline))
            );
            out.push_str(
                "<details><summary>Every method and metric</summary>\n<table>\n<thead><tr>\
                 <th>Method</th><th>Metric</th><th>Baseline</th><th>Now</th><th>Δ (points)</th>\
                 <th>Tolerance</th><th>Status</th></tr></thead>\n<tbody>\n",
            );
            let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.2}", 100.0 * v));
            for row in &comparison.rows {
                let class = if row.fails {
                    "fail"
                } else if row.status == Status::Improved {
                    "pass"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                     <td class=\"num\">{}</td><td class=\"num\">{:.2}</td>\
                     <td class=\"{class}\">{}</td></tr>",
                    escape(&row.method),
                    escape(&row.metric),
                    pct(row.baseline),
                    pct(row.now),
                    row.delta_points()
                        .map_or("–".into(), |d| format!("{d:+.2}")),
                    row.tolerance,
                    row.status.as_str()
                );
            }
            out.push_str("</tbody>\n</table>\n</details>\n");
        }
    }
    out
}

/// The last three components of a path (`experiments/baselines/mnist-quick.json`): enough to
/// find the file in the workspace, without the machine's own folders.
fn short_path(path: &Path) -> String {
    let parts: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts[parts.len().saturating_sub(3)..].join("/")
}

/// What each figure shows, by file stem.
fn caption(stem: &str) -> &str {
    match stem {
        "val_curves" => "Validation metrics per epoch, mean over runs.",
        "train_loss" => "Training loss per task and epoch, mean over runs.",
        "test_metrics" => "Test metrics, mean ± sd over runs.",
        "gradient_conflict" => "Cosine between the tasks' shared-encoder gradients per epoch.",
        "flatness" => {
            "Flatness probe: each task's loss after training while the encoder parameters it \
             does not own are perturbed by uniform noise of bound b."
        }
        "task_weights" => "Task weights each method applied, mean per epoch.",
        "parameter_study" => "Parameter study of the variant rows.",
        "paired_differences" => {
            "Each row minus its reference row, paired by seed: mean and 95 % Student-t \
             interval; green or red where the interval excludes 0."
        }
        "predictions" => "Predictions on test images.",
        other => other,
    }
}

fn figures_html(figures: &[PathBuf]) -> Result<String> {
    let svgs: Vec<&PathBuf> = figures
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    if svgs.is_empty() {
        return Ok(String::new());
    }
    let mut out = String::from("<h2>Figures</h2>\n");
    for path in svgs {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ReportError::file(path, format!("cannot read the figure ({e})")))?;
        let svg = text
            .find("<svg")
            .map(|start| &text[start..])
            .ok_or_else(|| ReportError::file(path, "not an SVG file"))?;
        let stem = path
            .file_stem()
            .map_or(String::new(), |s| s.to_string_lossy().into_owned());
        let png = format!("figures/{stem}.png");
        let _ = writeln!(
            out,
            "<figure id=\"figure-{}\">\n{}\n<figcaption>{} <a href=\"{}\">PNG</a> · \
             <a href=\"figures/{}.svg\">SVG</a></figcaption>\n</figure>",
            href(&stem),
            svg.trim_end(),
            escape(caption(&stem)),
            href(&png),
            href(&stem)
        );
    }
    Ok(out)
}

fn runs_html(results: &ExperimentResults, table: &Table) -> String {
    let mut out = String::from("<h2>Runs</h2>\n");
    let quick = results.summary.quick;
    for row in &table.rows {
        let runs = results.runs.get(&row.method).map_or(&[][..], Vec::as_slice);
        let _ = writeln!(
            out,
            "<details id=\"runs-{}\"><summary><b>{}</b>: {} run(s)</summary>",
            href(&row.method),
            escape(&row.method),
            runs.len()
        );
        let metrics: Vec<&String> = runs
            .iter()
            .flat_map(|r| r.metrics.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        out.push_str(
            "<table>\n<thead><tr><th>Seed</th><th>Epochs</th><th>Tested epoch</th><th>Seconds</th>",
        );
        for m in &metrics {
            let _ = write!(out, "<th>{}</th>", escape(m));
        }
        out.push_str("<th>Files</th></tr></thead>\n<tbody>\n");
        for run in runs {
            out.push_str(&run_row(&results.dir, &row.method, run, &metrics, quick));
        }
        out.push_str("</tbody>\n</table>\n</details>\n");
    }
    out
}

fn run_row(dir: &Path, method: &str, run: &RunRecord, metrics: &[&String], quick: bool) -> String {
    let stem = run_stem(method);
    let suffix = if quick { "-quick" } else { "" };
    let mut links = vec![format!(
        "<a href=\"{}\">run</a>",
        href(&format!("runs/{stem}-seed{}{suffix}.json", run.seed))
    )];
    if let Some(model) = &run.checkpoint {
        if dir.join("runs").join(model).is_file() {
            links.push(format!(
                "<a href=\"{}\">model</a>",
                href(&format!("runs/{model}"))
            ));
        }
    }
    let tracking = tracking_dir(Path::new(""), &stem, run.seed, quick);
    let tracking = tracking.to_string_lossy().replace('\\', "/");
    if dir.join(&tracking).join(HISTORY_CSV).is_file() {
        links.push(format!(
            "<a href=\"{}\">history.csv</a>",
            href(&format!("{tracking}/{HISTORY_CSV}"))
        ));
        links.push(format!(
            "<a href=\"{}/\">TensorBoard log</a>",
            href(&tracking)
        ));
    }
    let mut out = format!(
        "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{:.1}</td>",
        run.seed,
        run.epochs,
        run.best_epoch.unwrap_or(run.history.len()),
        run.seconds
    );
    for m in metrics {
        let cell = run
            .metrics
            .get(*m)
            .map_or("–".into(), |v| format!("{:.2}", 100.0 * v));
        let _ = write!(out, "<td class=\"num\">{cell}</td>");
    }
    let _ = writeln!(out, "<td>{}</td></tr>", links.join(" · "));
    out
}

fn files_html(dir: &Path) -> String {
    let mut out = String::from("<h2>Files</h2>\n<ul>\n");
    for (name, what) in [
        (
            "summary.json",
            "every run's test metrics, mean and sd per method",
        ),
        (
            "summary.csv",
            "one row per method × metric, beside the paper",
        ),
        ("table.md", "the table above, in markdown"),
    ] {
        if dir.join(name).is_file() {
            let _ = writeln!(out, "<li><a href=\"{name}\">{name}</a>: {what}</li>");
        }
    }
    out.push_str(
        "<li>TensorBoard: <code>tensorboard --logdir runs</code> in this folder shows every \
         run's curves.</li>\n</ul>\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_paths_are_shown_from_the_workspace() {
        let path = Path::new("/somewhere/ws/experiments/baselines/mnist-quick.json");
        assert_eq!(short_path(path), "experiments/baselines/mnist-quick.json");
        assert_eq!(short_path(Path::new("b.json")), "b.json");
    }
}
