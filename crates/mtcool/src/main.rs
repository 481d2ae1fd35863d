//! `mtcool`: the command-line interface of the mtcool multi-task learning toolkit.
//!
//! A thin layer over `mtcool-train`: every command reads an experiment config, and every
//! error is reported as one line naming the file and the problem.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use mtcool_train::config::Overrides;
use mtcool_train::{ExperimentConfig, GridRequest};

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
    /// Train the methods of an experiment config (resumable) and write summary.json and table.md.
    Train {
        /// Experiment config, e.g. experiments/mnist.toml.
        #[arg(long)]
        config: PathBuf,
        /// Comma-separated methods or method variants (default: the config's list), e.g.
        /// `joint,mtcool[noise_bound = 0.05]`.
        #[arg(long)]
        methods: Option<String>,
        /// Small but honest run of the same code path.
        #[arg(long)]
        quick: bool,
        /// Epochs per run.
        #[arg(long)]
        epochs: Option<usize>,
        /// Runs per method.
        #[arg(long)]
        runs: Option<usize>,
        /// Seed of the first run.
        #[arg(long)]
        seed: Option<u64>,
        /// Convolution and pooling ops: fast or candle.
        #[arg(long)]
        ops: Option<mtcool_train::config::Ops>,
        /// Dataset root.
        #[arg(long, default_value = "datasets")]
        data: PathBuf,
        /// Results root.
        #[arg(long, default_value = "results")]
        out: PathBuf,
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

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train {
            config,
            methods,
            quick,
            epochs,
            runs,
            seed,
            ops,
            data,
            out,
            device,
        } => {
            let request = GridRequest {
                config: ExperimentConfig::load(&config)?,
                data_dir: data,
                out_dir: out,
                methods: methods
                    .as_deref()
                    .map(mtcool_train::config::split_method_list),
                overrides: Overrides {
                    quick,
                    epochs,
                    runs,
                    seed,
                    ops,
                },
                device: mtcool_train::parse_device(&device)?,
            };
            let report = mtcool_train::run_grid(&request)?;
            println!("{}", report.table);
            println!(
                "wrote {} and {}",
                report.summary_path.display(),
                report.table_path.display()
            );
            if report.interrupted {
                anyhow::bail!("interrupted; the finished runs are saved, rerun to resume");
            }
            if let Some(first) = report.failures.first() {
                anyhow::bail!("{} run(s) failed; first: {first}", report.failures.len());
            }
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
    Ok(())
}

fn main() -> ExitCode {
    mtcool_train::cli::init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
