//! Reports on mtcool's results files: `table.md` (ours beside the paper's numbers, with Δm%),
//! figures (training curves, a bar chart with error bars, the gradient-conflict and flatness
//! diagnostics, parameter studies of variant rows and, for image-to-image experiments given
//! their data, each method's predictions on test images; PNG and SVG), and the regression check of `summary.json` against a
//! committed baseline ([`regress`]).
//!
//! Everything is read through the `mtcool_train::results` types, from the files the grid writes
//! (`<out>/<experiment>/summary.json` and `runs/<method>-seed<S>[-quick].json`), so a report can
//! be redrawn at any time without training. Every file is written atomically.
//!
//! Figures need no system library: text is drawn with a subset of DejaVu Sans embedded in this
//! crate (`assets/`, see its README) through plotters' `ab_glyph` feature, and PNGs are encoded
//! by the pure-Rust `image` crate.
//!
//! ```no_run
//! use mtcool_report::{write_report, ReportContext};
//!
//! let config = mtcool_train::ExperimentConfig::load("experiments/mnist.toml".as_ref())?;
//! let files = write_report("results/mnist".as_ref(), &ReportContext::from_config(&config))?;
//! println!("{}", files.table.display());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod error;
pub mod figures;
pub mod html;
pub mod load;
pub mod regress;

use std::path::{Path, PathBuf};

use mtcool_train::config::PaperTable;
use mtcool_train::results::write_atomic;
use mtcool_train::table::{render, TableOptions};
use mtcool_train::ExperimentConfig;

pub use error::{ReportError, Result};
pub use load::{load, ExperimentResults};

/// What a report shows beside the results files: the experiment's title, the paper's numbers,
/// the method order and the Δm% baseline (all from the experiment config).
#[derive(Debug, Clone, Default)]
pub struct ReportContext {
    /// One line describing the experiment (the config's description).
    pub title: String,
    /// The published numbers, if any.
    pub paper: Option<PaperTable>,
    /// Methods in table and legend order (the config's list).
    pub order: Vec<String>,
    /// The method Δm% is computed against (`independent` when the config runs it).
    pub delta_m_baseline: Option<String>,
    /// Whether the experiment predicts images (masks): it gets the qualitative figure.
    pub image_to_image: bool,
    /// The dataset root the runs were trained on; the qualitative figure needs it.
    pub data_dir: Option<PathBuf>,
    /// A study's reference method (`[study] reference`): the table pairs every row with it.
    pub paired_reference: Option<String>,
    /// The folder of committed regression baselines (`experiments/baselines`): the HTML page
    /// shows the check against `<experiment>[-quick].json` there, when that file exists.
    pub baselines_dir: Option<PathBuf>,
}

impl ReportContext {
    /// The context of an experiment config. The config has no key naming a Δm baseline, so
    /// `independent` (one network per task: the single-task reference of Δm) is used when the
    /// config's method list has it.
    pub fn from_config(config: &ExperimentConfig) -> Self {
        let table = TableOptions::from_config(config);
        Self {
            title: table.title.to_string(),
            paper: table.paper.cloned(),
            order: table.order.to_vec(),
            delta_m_baseline: table.delta_m_baseline.map(str::to_string),
            image_to_image: config.data.is_image_to_image(),
            data_dir: None,
            paired_reference: table.paired_reference.map(str::to_string),
            baselines_dir: None,
        }
    }

    /// This context with the regression baseline of its results under `baselines_dir`
    /// (`experiments/baselines`), if that file exists for the results' experiment and mode.
    pub fn with_baselines(mut self, baselines_dir: &Path) -> Self {
        self.baselines_dir = Some(baselines_dir.to_path_buf());
        self
    }

    /// This context with the dataset root the runs were trained on (for the qualitative
    /// figure of image-to-image experiments).
    pub fn with_data(mut self, data_dir: &Path) -> Self {
        self.data_dir = Some(data_dir.to_path_buf());
        self
    }

    fn table_options(&self) -> TableOptions<'_> {
        TableOptions {
            title: &self.title,
            paper: self.paper.as_ref(),
            order: &self.order,
            delta_m_baseline: self.delta_m_baseline.as_deref(),
            paired_reference: self.paired_reference.as_deref(),
        }
    }
}

/// The files a report wrote.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    /// `<experiment>/table.md`.
    pub table: PathBuf,
    /// `<experiment>/index.html`, the self-contained HTML report.
    pub html: PathBuf,
    /// `<out>/index.html`, linking every experiment beside this one.
    pub index: PathBuf,
    /// The figures under `<experiment>/figures/`, PNG and SVG of each.
    pub figures: Vec<PathBuf>,
    /// What was left out, e.g. run files listed in the summary but absent.
    pub warnings: Vec<String>,
}

/// Renders `table.md` for loaded results.
pub fn table(results: &ExperimentResults, context: &ReportContext) -> String {
    render(&results.summary, &context.table_options())
}

/// Reads the results of one experiment folder and writes `table.md` and the figures into it.
///
/// # Errors
/// One error naming the file: a missing or malformed `summary.json` or run file, or a figure
/// that could not be drawn or written.
pub fn write_report(experiment_dir: &Path, context: &ReportContext) -> Result<ReportFiles> {
    let results = load(experiment_dir)?;
    let table_path = experiment_dir.join("table.md");
    write_atomic(&table_path, table(&results, context).as_bytes())?;
    let csv = mtcool_train::tracking::summary_csv::render(
        &results.summary,
        context.paper.as_ref(),
        &context.order,
    );
    let csv_path = experiment_dir.join(mtcool_train::grid::summary::SUMMARY_CSV);
    write_atomic(&csv_path, csv.as_bytes())?;
    let figures_dir = experiment_dir.join("figures");
    let mut figures = figures::write_figures(&results, context, &figures_dir)?;
    let mut warnings: Vec<String> = results
        .missing_runs
        .iter()
        .map(|p| format!("{}: no such run file; its curves are left out", p.display()))
        .collect();
    if let (true, Some(data)) = (context.image_to_image, &context.data_dir) {
        match figures::predictions::write(&results, context, data, &figures_dir) {
            Ok(Some(paths)) => figures.extend(paths),
            Ok(None) => {}
            Err(e) => warnings.push(format!("{e}; the predictions figure is left out")),
        }
    }
    let regression = regression(&results, context);
    let page = html::experiment::render(&html::experiment::ExperimentPage {
        results: &results,
        context,
        figures: &figures,
        regression: regression.as_ref(),
        warnings: &warnings,
    })?;
    let html_path = experiment_dir.join("index.html");
    write_atomic(&html_path, page.as_bytes())?;
    let out_dir = experiment_dir.parent().unwrap_or(Path::new("."));
    let index_path = out_dir.join("index.html");
    let index = html::index::render(&html::index::entries(out_dir));
    write_atomic(&index_path, index.as_bytes())?;
    Ok(ReportFiles {
        table: table_path,
        html: html_path,
        index: index_path,
        figures,
        warnings,
    })
}

/// The regression check of `results` against the baseline file of the context's folder for
/// its experiment and mode, when that file exists.
fn regression(
    results: &ExperimentResults,
    context: &ReportContext,
) -> Option<html::experiment::Regression> {
    use html::experiment::Regression;
    let summary = &results.summary;
    let dir = context.baselines_dir.as_ref()?;
    let path = regress::default_baseline_path(dir, &summary.experiment, summary.quick);
    if !path.is_file() {
        return None;
    }
    let compared = regress::read_baseline(&path).and_then(|baseline| {
        regress::compare(summary, &baseline, &regress::CompareOptions::default())
    });
    Some(match compared {
        Ok(comparison) => Regression::Compared {
            baseline: path,
            comparison,
        },
        Err(e) => Regression::Unusable(e.to_string()),
    })
}

/// Writes the TensorBoard log and `history.csv` of every run of the summary that has none
/// (runs trained before tracking existed, or copied in without their logs).
fn export_missing_logs(experiment_dir: &Path) -> Result<()> {
    let results = load(experiment_dir)?;
    for (method, runs) in &results.runs {
        for run in runs {
            let dir = mtcool_train::results::tracking_dir(
                experiment_dir,
                &load::run_stem(method),
                run.seed,
                results.summary.quick,
            );
            if !dir.join(mtcool_train::tracking::HISTORY_CSV).is_file() {
                mtcool_train::tracking::export(&dir, run)?;
            }
        }
    }
    Ok(())
}

/// Rebuilds an experiment folder's `summary.json`, `summary.csv`, `table.md`, figures and HTML
/// pages from the run files in `runs/`, training nothing (`cargo xtask report`), and writes
/// the TensorBoard log and `history.csv` of runs that lack them. Each row pools the runs
/// sharing the settings of its most recently finished run. `quick` picks the quick or full
/// runs (default: the mode of the folder's summary, else full runs when there are any);
/// `context` is usually [`ReportContext::from_config`] of `config`, with the data and
/// baselines folders.
///
/// # Errors
/// One error naming the file: the folder cannot be written, a figure cannot be drawn.
pub fn rebuild(
    experiment_dir: &Path,
    config: &ExperimentConfig,
    quick: Option<bool>,
    context: &ReportContext,
) -> Result<(mtcool_train::grid::summary::WrittenSummary, ReportFiles)> {
    use mtcool_train::grid::summary::{results_mode, write_summary, SummaryMeta};
    let quick = quick.unwrap_or_else(|| results_mode(experiment_dir));
    let previous: Option<mtcool_train::results::Summary> =
        mtcool_train::results::read_json(&experiment_dir.join("summary.json")).ok();
    let meta = SummaryMeta {
        jobs: previous.as_ref().and_then(|s| s.jobs),
        fallback_device: previous.map(|s| s.device).unwrap_or_default(),
        ..SummaryMeta::default()
    };
    let written = write_summary(experiment_dir, config, quick, &meta)?;
    export_missing_logs(experiment_dir)?;
    let files = write_report(experiment_dir, context)?;
    Ok((written, files))
}
