//! `cargo xtask reproduce`: the experiment grid, then its report: `table.md` beside the
//! paper's numbers and the figures (`mtcool_report`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use mtcool_train::config::{DataConfig, Overrides};
use mtcool_train::{ExperimentConfig, GridRequest};

use crate::{data, in_workspace, workspace_root};

/// Options of `reproduce`.
#[derive(clap::Args)]
pub struct Args {
    /// Experiments to run (configs in experiments/); default: mnist.
    experiments: Vec<String>,
    /// Small but honest run of the same code path (fewer epochs and images, one run).
    #[arg(long)]
    quick: bool,
    /// Runs (seeds) per method, instead of the config's.
    #[arg(long)]
    runs: Option<usize>,
    /// Epochs per run, instead of the config's.
    #[arg(long)]
    epochs: Option<usize>,
    /// Comma-separated methods or method variants, instead of the config's list (e.g.
    /// `joint,mtcool[noise_bound = 0.05]`).
    #[arg(long)]
    methods: Option<String>,
    /// Training device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Dataset root.
    #[arg(long, default_value = "datasets")]
    data: PathBuf,
    /// Results root; each experiment writes <out>/<experiment>/.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Seed of the first run.
    #[arg(long)]
    seed: Option<u64>,
    /// Convolution and pooling ops: fast (custom CPU ops) or candle (candle's own).
    #[arg(long)]
    ops: Option<mtcool_train::config::Ops>,
}

/// Runs the requested experiments; fails if any run failed.
pub fn run(args: Args) -> Result<ExitCode> {
    let experiments = if args.experiments.is_empty() {
        vec!["mnist".to_string()]
    } else {
        args.experiments.clone()
    };
    let methods = args
        .methods
        .as_deref()
        .map(mtcool_train::config::split_method_list);
    let device = mtcool_train::parse_device(&args.device)?;
    let data_dir = in_workspace(&args.data);
    let out_dir = in_workspace(&args.out);
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
        if let DataConfig::Mnist { folder, .. } = &config.data {
            if folder == "mnist" {
                data::ensure_mnist(&data_dir.join(folder), false)?;
            }
        }
        let context = mtcool_report::ReportContext::from_config(&config);
        let request = GridRequest {
            config,
            data_dir: data_dir.clone(),
            out_dir: out_dir.clone(),
            methods: methods.clone(),
            overrides: Overrides {
                quick: args.quick,
                epochs: args.epochs,
                runs: args.runs,
                seed: args.seed,
                ops: args.ops,
            },
            device: device.clone(),
        };
        let report =
            mtcool_train::run_grid(&request).with_context(|| format!("experiment {name}"))?;
        println!("{}", report.table);
        for (method, ips) in &report.throughput {
            println!("{method}: {ips:.0} training images/s");
        }
        println!(
            "{} run(s) trained, {} reused; wrote {} and {}",
            report.trained,
            report.reused,
            report.summary_path.display(),
            report.table_path.display()
        );
        let exp_dir = report
            .summary_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| out_dir.join(name));
        let files = mtcool_report::write_report(&exp_dir, &context)
            .with_context(|| format!("report of experiment {name}"))?;
        for warning in &files.warnings {
            eprintln!("warning: {warning}");
        }
        println!("table: {}", files.table.display());
        let pngs: Vec<String> = files
            .figures
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
            .map(|p| p.display().to_string())
            .collect();
        println!("figures (each also as .svg): {}", pngs.join(", "));
        for failure in &report.failures {
            eprintln!("error: run failed: {failure}");
            failed = true;
        }
        if report.interrupted {
            eprintln!("interrupted: the finished runs are saved; rerun the same command to resume");
            return Ok(ExitCode::from(130));
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
