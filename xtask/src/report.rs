//! `cargo xtask report`: rebuild `summary.json`, `table.md`, the figures and the HTML pages of experiment
//! folders from their run files, training nothing (after a SLURM array, a crash, or runs
//! copied in from other machines).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use mtcool_train::ExperimentConfig;

use crate::{in_workspace, workspace_root};

/// Options of `report`.
#[derive(clap::Args)]
pub struct Args {
    /// Results root (one folder per experiment) or one experiment folder.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Experiments to rebuild (default: every experiment folder under --results that has runs).
    experiments: Vec<String>,
    /// Rebuild from the quick runs (default: the mode of the existing summary).
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// Rebuild from the full runs.
    #[arg(long)]
    full: bool,
    /// Dataset root the runs were trained on: image-to-image experiments get the
    /// predictions figure from it (skipped when the folder is absent).
    #[arg(long, default_value = "datasets")]
    data: PathBuf,
}

/// Rebuilds each experiment's report and prints its table.
pub fn run(args: Args) -> Result<()> {
    let results = in_workspace(&args.results);
    let folders: Vec<PathBuf> = if results.join("runs").is_dir() {
        vec![results.clone()]
    } else if !args.experiments.is_empty() {
        args.experiments.iter().map(|e| results.join(e)).collect()
    } else {
        let entries = std::fs::read_dir(&results)
            .with_context(|| format!("{}: cannot read the results folder", results.display()))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("runs").is_dir())
            .collect();
        found.sort();
        found
    };
    if folders.is_empty() {
        bail!(
            "{}: no experiment folder with runs/ here",
            results.display()
        );
    }
    let quick = match (args.quick, args.full) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let mut index = None;
    for dir in folders {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let config_path = mtcool_train::grid::experiment_path(&workspace_root(), &name);
        if !config_path.is_file() {
            bail!(
                "{}: no experiment config {} for this folder",
                dir.display(),
                config_path.display()
            );
        }
        let config = ExperimentConfig::load(&config_path)?;
        let data = in_workspace(&args.data);
        let mut context = mtcool_report::ReportContext::from_config(&config)
            .with_baselines(&workspace_root().join("experiments/baselines"));
        if data.is_dir() {
            context = context.with_data(&data);
        }
        let (written, files) = mtcool_report::rebuild(&dir, &config, quick, &context)
            .with_context(|| format!("report of {}", dir.display()))?;
        println!("{}", written.table);
        for warning in &files.warnings {
            eprintln!("warning: {warning}");
        }
        println!(
            "{name}: {} row(s); wrote {}, {}, {} figure file(s) and the report {}",
            written.summary.methods.len(),
            written.summary_path.display(),
            files.table.display(),
            files.figures.len(),
            files.html.display()
        );
        index = Some(files.index);
    }
    if let Some(index) = index {
        println!("all experiments: {}", index.display());
    }
    Ok(())
}
