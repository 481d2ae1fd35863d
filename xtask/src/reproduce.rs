//! `cargo xtask reproduce`: the experiment grid, then its report: `table.md` beside the
//! paper's numbers and the figures (`mtcool_report`). With `--jobs N` the runs train in N
//! worker processes; with `--slurm` the grid becomes a SLURM job array (`slurm.rs`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use mtcool_train::command::GridArgs;
use mtcool_train::config::DataConfig;
use mtcool_train::{ExperimentConfig, GridRequest, WorkerCommand};

use crate::{data, in_workspace, slurm, workspace_root};

/// Options of `reproduce`.
#[derive(clap::Args)]
pub struct Args {
    /// Experiments to run (configs in experiments/); default: mnist.
    experiments: Vec<String>,
    /// The grid's options.
    #[command(flatten)]
    grid: GridArgs,
    /// Submit the grid to SLURM as a job array (one task per pending run) and a merge job.
    #[command(flatten)]
    slurm: slurm::Args,
}

/// Runs the requested experiments; fails if any run failed.
pub fn run(args: Args) -> Result<ExitCode> {
    let experiments = if args.experiments.is_empty() {
        vec!["mnist".to_string()]
    } else {
        args.experiments.clone()
    };
    let data_dir = in_workspace(&args.grid.data);
    let out_dir = in_workspace(&args.grid.out);
    let worker = WorkerCommand::current_exe("train").ok();
    let mut failed = false;
    for name in &experiments {
        let path = mtcool_train::grid::experiment_path(&workspace_root(), name);
        if !path.is_file() {
            bail!(
                "{}: no such experiment config (experiment `{name}`)",
                path.display()
            );
        }
        let config = ExperimentConfig::load(&path)?;
        match &config.data {
            DataConfig::Mnist { folder, .. } if folder == "mnist" => {
                data::ensure_mnist(&data_dir.join(folder), false)?;
            }
            DataConfig::Multi { folder, .. } => crate::multi::ensure(&data_dir, folder)?,
            _ => {}
        }
        let context = mtcool_report::ReportContext::from_config(&config)
            .with_data(&data_dir)
            .with_baselines(&workspace_root().join("experiments/baselines"));
        let request = args.grid.request(
            config,
            &path,
            data_dir.clone(),
            out_dir.clone(),
            worker.clone(),
        )?;
        if args.slurm.enabled() {
            slurm::submit_grid(&request, &args.slurm)
                .with_context(|| format!("experiment {name}"))?;
            continue;
        }
        match run_local(&request, &context, name)? {
            Finish::Done => {}
            Finish::Failed => failed = true,
            Finish::Interrupted => return Ok(ExitCode::from(130)),
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

enum Finish {
    Done,
    Failed,
    Interrupted,
}

/// Trains the grid here (in this process or its workers), then writes the report.
fn run_local(
    request: &GridRequest,
    context: &mtcool_report::ReportContext,
    name: &str,
) -> Result<Finish> {
    let report = mtcool_train::run_grid(request).with_context(|| format!("experiment {name}"))?;
    println!("{}", report.table);
    for (method, ips) in &report.throughput {
        println!("{method}: {ips:.0} training images/s");
    }
    println!("{}", report.describe());
    let exp_dir = report
        .summary_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| request.out_dir.join(name));
    write_report(&exp_dir, context, name)?;
    for failure in &report.failures {
        eprintln!("error: run failed: {failure}");
    }
    if report.interrupted {
        eprintln!("interrupted: the finished runs are saved; rerun the same command to resume");
        return Ok(Finish::Interrupted);
    }
    Ok(if report.failures.is_empty() {
        Finish::Done
    } else {
        Finish::Failed
    })
}

/// Draws the figures and `table.md` of an experiment folder and prints where they are.
pub fn write_report(
    exp_dir: &Path,
    context: &mtcool_report::ReportContext,
    name: &str,
) -> Result<()> {
    let files = mtcool_report::write_report(exp_dir, context)
        .with_context(|| format!("report of experiment {name}"))?;
    for warning in &files.warnings {
        eprintln!("warning: {warning}");
    }
    println!("table: {}", files.table.display());
    println!(
        "report: {} (all experiments: {})",
        files.html.display(),
        files.index.display()
    );
    let pngs: Vec<String> = files
        .figures
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .map(|p| p.display().to_string())
        .collect();
    println!("figures (each also as .svg): {}", pngs.join(", "));
    Ok(())
}
