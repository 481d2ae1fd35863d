//! `mtcool`: the command-line interface of the mtcool multi-task learning toolkit.
//!
//! A thin layer over `mtcool-train`: every command reads an experiment config, and every
//! error is reported as one line naming the file and the problem.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use mtcool_train::ExperimentConfig;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "mtcool",
    about = "Multi-task learning experiments: MT-COOL and baselines",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the methods of an experiment config (resumable; `--jobs N` runs at once) and
    /// write summary.json and table.md; with `--run-index I`, train run I alone.
    Train(mtcool_train::command::TrainArgs),
    /// Rebuild summary.json, table.md and the figures of a grid from its run files (training
    /// nothing): what a SLURM merge job runs.
    Report {
        /// Experiment config, e.g. experiments/mnist.toml.
        #[arg(long)]
        config: PathBuf,
        /// The grid's options (the same as for `train`).
        #[command(flatten)]
        grid: mtcool_train::command::GridArgs,
    },
    /// Re-evaluate a run's saved model (`runs/<run>.safetensors`) exactly as training did.
    Eval {
        /// The checkpoint a run wrote beside its run file.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Which split to score: test (the run file's metrics) or val.
        #[arg(long, default_value = "test")]
        split: mtcool_train::checkpoint::EvalSplit,
        /// Dataset root.
        #[arg(long, default_value = "datasets")]
        data: PathBuf,
        /// cpu, cuda or cuda:N.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Print a JSON object of `<task>/<metric>` values instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Apply a run's saved model to new images of the dataset's format (masks, overlays and
    /// `predictions.csv` in `--out`).
    Predict {
        /// The checkpoint a run wrote beside its run file.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Image files or folders (walked for .png, .jpg, .tif, ...).
        #[arg(long, required = true, num_args = 1..)]
        input: Vec<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// HRF-AV: folder of field-of-view masks `<name>_mask.tif` (outside: background).
        #[arg(long)]
        fov: Option<PathBuf>,
        /// cpu, cuda or cuda:N.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Print the parameter count of each method's network for a config.
    Params {
        /// Experiment config.
        #[arg(long)]
        config: PathBuf,
    },
    /// Read and validate an experiment's dataset, and print its task sizes.
    CheckData {
        /// Experiment config.
        #[arg(long)]
        config: PathBuf,
        /// Dataset root.
        #[arg(long, default_value = "datasets")]
        data: PathBuf,
    },
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Train(args) => {
            let worker = mtcool_train::WorkerCommand::current_exe("train").ok();
            return Ok(mtcool_train::command::train(&args, worker));
        }
        Command::Report { config, grid } => report(&config, &grid)?,
        Command::Eval {
            checkpoint,
            split,
            data,
            device,
            json,
        } => {
            let device = mtcool_train::parse_device(&device)?;
            let (meta, metrics) =
                mtcool_train::checkpoint::evaluate_checkpoint(&checkpoint, &data, split, &device)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&metrics)?);
            } else {
                println!(
                    "{} seed {} ({}, epoch {}), {split:?} split:",
                    meta.method, meta.seed, meta.config.name, meta.epoch
                );
                for (key, value) in &metrics {
                    println!("{key}\t{value}");
                }
            }
        }
        Command::Predict {
            checkpoint,
            input,
            out,
            fov,
            device,
        } => {
            let device = mtcool_train::parse_device(&device)?;
            let request = mtcool_train::predict::PredictRequest {
                checkpoint,
                inputs: input,
                out,
                fov,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            let report = mtcool_train::predict::predict(&request, &device)?;
            println!(
                "{} image(s) predicted; wrote {} file(s) to {}",
                report.images,
                report.files.len(),
                request.out.display()
            );
        }
        Command::Params { config } => {
            let config = ExperimentConfig::load(&config)?;
            let (kinds, shape) = mtcool_train::data::configured_tasks(&config.data);
            println!(
                "{}: {:?} on {:?} inputs\n\n| method | sharing | parameters |\n|---|---|---:|",
                config.name, config.model.arch, shape
            );
            for spec in config.method_specs()? {
                let kind = spec.kind;
                let model = mtcool_train::run::build_network(
                    kind,
                    &kinds,
                    &shape,
                    &config.model,
                    &candle_core::Device::Cpu,
                    0,
                )?;
                println!(
                    "| {} | {} | {} |",
                    spec.label,
                    kind.sharing(),
                    model.param_count()
                );
            }
        }
        Command::CheckData { config, data } => {
            let config = ExperimentConfig::load(&config)?;
            let dataset =
                mtcool_train::data::load(&config, &data, None, 0, &candle_core::Device::Cpu)?;
            println!("input {:?}", dataset.input_shape());
            for t in &dataset.tasks {
                println!(
                    "{}: {:?}, {} train / {} validation / {} test images",
                    t.name, t.kind, t.train.len, t.val.len, t.test.len
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `report`: the summary and table of the grid's runs, then the figures.
fn report(config_path: &Path, grid: &mtcool_train::command::GridArgs) -> Result<()> {
    let config = ExperimentConfig::load(config_path)?;
    let mut context = mtcool_report::ReportContext::from_config(&config).with_data(&grid.data);
    if let Some(dir) = config_path.parent() {
        // experiments/<name>.toml beside experiments/baselines/
        context = context.with_baselines(&dir.join("baselines"));
    }
    let request = grid.request(
        config,
        config_path,
        grid.data.clone(),
        grid.out.clone(),
        None,
    )?;
    let written = mtcool_train::grid::merge_grid(&request)?;
    println!("{}", written.table);
    let exp_dir = written
        .summary_path
        .parent()
        .map_or_else(|| grid.out.clone(), Path::to_path_buf);
    let files = mtcool_report::write_report(&exp_dir, &context)?;
    for warning in &files.warnings {
        eprintln!("warning: {warning}");
    }
    println!(
        "wrote {}, {}, {} figure file(s) and the report {}",
        written.summary_path.display(),
        files.table.display(),
        files.figures.len(),
        files.html.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    mtcool_train::cli::init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
