//! `cargo xtask regress`: compare each `summary.json` under a results folder with its committed
//! baseline, print a markdown table per experiment, and fail on a regression. `--update` writes
//! (or refreshes) the baselines from the results instead. The logic is
//! `mtcool_report::regress`; this is the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use mtcool_report::regress::{
    compare, default_baseline_path, find_summaries, read_baseline, write_baseline, Baseline,
    CompareOptions, FULL_TOLERANCE_POINTS, QUICK_TOLERANCE_POINTS,
};
use mtcool_train::results::{read_json, Summary};

use crate::{in_workspace, workspace_root};

/// Options of `regress`.
#[derive(clap::Args)]
pub struct Args {
    /// Results folder: a results root (one folder per experiment) or one experiment folder.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Baseline file, instead of experiments/baselines/<experiment>[-quick].json.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// One tolerance for every metric, in points (percentage points), instead of the
    /// baseline's per-metric ones. With --update: the new baseline's default tolerance.
    #[arg(long, visible_alias = "tolerance")]
    tolerance_points: Option<f64>,
    /// Write or refresh the baseline from the results (methods not in the results are kept).
    #[arg(long)]
    update: bool,
    /// Fail when a baseline method is absent from the results (by default it is reported).
    #[arg(long)]
    require_all: bool,
}

/// A path as printed: relative to the workspace when inside it.
fn shown(path: &Path) -> String {
    let root = workspace_root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Runs the check (or the update); fails with one line naming every regressed method and metric.
pub fn run(args: Args) -> Result<ExitCode> {
    if let Some(t) = args.tolerance_points {
        if !t.is_finite() || t < 0.0 {
            bail!("--tolerance-points {t}: must be a non-negative number of points");
        }
    }
    let results = in_workspace(&args.results);
    let summaries = find_summaries(&results)?;
    let baselines_dir = workspace_root().join("experiments").join("baselines");
    let mut failures = Vec::new();
    for summary_path in summaries {
        let summary: Summary = read_json(&summary_path)?;
        let baseline_path = match &args.baseline {
            Some(p) => in_workspace(p),
            None => default_baseline_path(&baselines_dir, &summary.experiment, summary.quick),
        };
        if args.update {
            update(
                &summary,
                &summary_path,
                &baseline_path,
                args.tolerance_points,
            )?;
            continue;
        }
        let baseline = read_baseline(&baseline_path)?;
        let options = CompareOptions {
            tolerance_points: args.tolerance_points,
            require_all_methods: args.require_all,
        };
        let comparison = compare(&summary, &baseline, &options).with_context(|| {
            format!("{} against {}", shown(&summary_path), shown(&baseline_path))
        })?;
        println!(
            "## {}: {} against {}\n",
            comparison.label,
            shown(&summary_path),
            shown(&baseline_path)
        );
        println!("{}", comparison.markdown());
        let new: Vec<&str> = comparison
            .rows
            .iter()
            .filter(|r| r.status == mtcool_report::regress::Status::New)
            .map(|r| r.method.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !new.is_empty() {
            println!(
                "new (not in the baseline): {}; `cargo xtask regress --update` adds them\n",
                new.join(", ")
            );
        }
        match comparison.failure_line() {
            Some(line) => failures.push(line),
            None => println!("{}: no regression\n", comparison.label),
        }
    }
    if !failures.is_empty() {
        bail!("regression: {}", failures.join(" | "));
    }
    Ok(ExitCode::SUCCESS)
}

fn update(
    summary: &Summary,
    summary_path: &Path,
    baseline_path: &Path,
    tolerance: Option<f64>,
) -> Result<()> {
    let previous = if baseline_path.is_file() {
        Some(read_baseline(baseline_path)?)
    } else {
        None
    };
    let default = tolerance.unwrap_or(if summary.quick {
        QUICK_TOLERANCE_POINTS
    } else {
        FULL_TOLERANCE_POINTS
    });
    let mut baseline = Baseline::from_summary(summary, previous.as_ref(), default);
    if let Some(t) = tolerance {
        baseline.default_tolerance = t;
    }
    if baseline.note.is_empty() {
        baseline.note = format!(
            "from {} ({} run(s) per method, device {}); refresh with `cargo xtask regress --update`",
            shown(summary_path),
            summary.methods.values().map(|m| m.runs.len()).max().unwrap_or(0),
            summary.device
        );
    }
    write_baseline(baseline_path, &baseline)?;
    let kept: Vec<&str> = baseline
        .methods
        .keys()
        .filter(|m| !summary.methods.contains_key(*m))
        .map(String::as_str)
        .collect();
    println!(
        "wrote {} from {}: {} method(s){}",
        shown(baseline_path),
        shown(summary_path),
        summary.methods.len(),
        if kept.is_empty() {
            String::new()
        } else {
            format!("; kept from the previous baseline: {}", kept.join(", "))
        }
    );
    Ok(())
}
