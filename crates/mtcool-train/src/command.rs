//! The `train` command, shared by `mtcool train` and the worker processes a grid starts
//! (`xtask train` is the same command): its options, and what it prints.
//!
//! - without `--run-index`: the grid (`--jobs N` runs at once), then its table;
//! - with `--run-index I`: run I alone (a worker, or a SLURM array task), claimed with a lock
//!   file so that it is trained once whoever else works on the same results folder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{split_method_list, ExperimentConfig, Ops, Overrides};
use crate::error::{Result, TrainError};
use crate::grid::protocol::{emit, ProgressReporter, WorkerMessage};
use crate::grid::{
    parse_device, parse_devices, run_grid, run_one, GridRequest, Parallel, RunOutcome,
    WorkerCommand,
};

/// The options of a grid (`mtcool train`, `cargo xtask reproduce`).
#[derive(clap::Args, Debug, Clone)]
pub struct GridArgs {
    /// Comma-separated methods or method variants (default: the config's list), e.g.
    /// `joint,mtcool[noise_bound = 0.05]`.
    #[arg(long)]
    pub methods: Option<String>,
    /// Small but honest run of the same code path (fewer epochs and images, one run).
    #[arg(long)]
    pub quick: bool,
    /// Epochs per run, instead of the config's.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Runs (seeds) per method, instead of the config's.
    #[arg(long)]
    pub runs: Option<usize>,
    /// Seed of the first run.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Convolution and pooling ops: fast (custom CPU ops) or candle (candle's own).
    #[arg(long)]
    pub ops: Option<Ops>,
    /// Dataset root.
    #[arg(long, default_value = "datasets")]
    pub data: PathBuf,
    /// Results root; each experiment writes <out>/<experiment>/.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Training device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Runs at once, each in its own worker process with ⌊cores / N⌋ threads (1: one after
    /// another in this process).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Devices the workers take round-robin, e.g. `cuda:0,cuda:1` (default: --device).
    #[arg(long)]
    pub devices: Option<String>,
    /// Only warnings and errors on standard error: no progress bars, no per-epoch or per-run
    /// lines (the table is still printed). `RUST_LOG`, when set, wins.
    #[arg(long, short)]
    pub quiet: bool,
}

impl GridArgs {
    /// `--quick`, `--epochs`, `--runs`, `--seed`, `--ops`.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            quick: self.quick,
            epochs: self.epochs,
            runs: self.runs,
            seed: self.seed,
            ops: self.ops,
        }
    }

    /// The request for `config` (read from `config_path`), with the data and results roots
    /// given (callers may resolve `--data` / `--out` against a workspace). With `--quiet`, it
    /// also quietens this process ([`crate::cli::set_quiet`]).
    pub fn request(
        &self,
        config: ExperimentConfig,
        config_path: &Path,
        data_dir: PathBuf,
        out_dir: PathBuf,
        worker: Option<WorkerCommand>,
    ) -> Result<GridRequest> {
        if self.quiet {
            crate::cli::set_quiet();
        }
        if self.jobs == 0 {
            return Err(TrainError::Config {
                path: "--jobs".into(),
                problem: "must be at least 1".into(),
            });
        }
        let devices = match &self.devices {
            Some(list) => {
                parse_devices(list)?;
                list.split(',')
                    .map(|d| d.trim().to_string())
                    .filter(|d| !d.is_empty())
                    .collect()
            }
            None => Vec::new(),
        };
        // One run at a time in this process: on the first of `--devices`, if given.
        let device = match devices.first() {
            Some(first) if self.jobs == 1 => parse_device(first)?,
            _ => parse_device(&self.device)?,
        };
        Ok(GridRequest {
            config,
            config_path: Some(config_path.to_path_buf()),
            data_dir,
            out_dir,
            methods: self.methods.as_deref().map(split_method_list),
            overrides: self.overrides(),
            device,
            parallel: Parallel {
                jobs: self.jobs,
                devices,
                worker,
            },
        })
    }
}

/// `train`: a grid, or one run of it.
#[derive(clap::Args, Debug, Clone)]
pub struct TrainArgs {
    /// Experiment config, e.g. experiments/mnist.toml.
    #[arg(long)]
    pub config: PathBuf,
    /// The grid's options.
    #[command(flatten)]
    pub grid: GridArgs,
    /// Train only run I of the grid: method ⌊I / runs⌋, seed `seed + I mod runs` (a SLURM
    /// array task); the summary is left to `mtcool report`.
    #[arg(long, value_name = "I")]
    pub run_index: Option<usize>,
    /// Report progress and outcome as JSON lines on stdout (for the grid that started this).
    #[arg(long, hide = true, requires = "run_index")]
    pub worker: bool,
}

/// Runs `train`; `worker` is the program a grid starts for `--jobs N`. Errors are printed as
/// one line; the exit code says how it went (130 after Ctrl-C).
pub fn train(args: &TrainArgs, worker: Option<WorkerCommand>) -> ExitCode {
    let result = ExperimentConfig::load(&args.config).and_then(|config| {
        args.grid.request(
            config,
            &args.config,
            args.grid.data.clone(),
            args.grid.out.clone(),
            worker,
        )
    });
    let request = match result {
        Ok(r) => r,
        Err(e) => return fail(args.worker, &e.to_string()),
    };
    match args.run_index {
        Some(index) if args.worker => train_as_worker(&request, index),
        Some(index) => train_one_run(&request, index),
        None => train_grid(&request),
    }
}

fn fail(worker: bool, message: &str) -> ExitCode {
    if worker {
        emit(&WorkerMessage::Outcome(RunOutcome::Failed(
            message.to_string(),
        )));
    }
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

fn train_grid(request: &GridRequest) -> ExitCode {
    let report = match run_grid(request) {
        Ok(r) => r,
        Err(e) => return fail(false, &e.to_string()),
    };
    println!("{}", report.table);
    println!("{}", report.describe());
    if report.interrupted {
        eprintln!("interrupted: the finished runs are saved; rerun the same command to resume");
        return ExitCode::from(130);
    }
    if let Some(first) = report.failures.first() {
        return fail(
            false,
            &format!("{} run(s) failed; first: {first}", report.failures.len()),
        );
    }
    ExitCode::SUCCESS
}

fn train_as_worker(request: &GridRequest, index: usize) -> ExitCode {
    let reporter = ProgressReporter::start(0);
    let result = run_one(request, index, Some(reporter.bar()));
    drop(reporter);
    match result {
        Ok((_, outcome)) => {
            let code = outcome_code(&outcome);
            emit(&WorkerMessage::Outcome(outcome));
            code
        }
        Err(e) => fail(true, &e.to_string()),
    }
}

fn train_one_run(request: &GridRequest, index: usize) -> ExitCode {
    let progress = crate::progress::Progress::new(1);
    let bar = progress.run_bar(&format!("run {index}"), 0);
    let result = run_one(request, index, Some(&bar));
    bar.finish_and_clear();
    progress.finish();
    let (plan, outcome) = match result {
        Ok(r) => r,
        Err(e) => return fail(false, &e.to_string()),
    };
    let Ok(run) = plan.run(index) else {
        return fail(false, "run index out of range");
    };
    let label = plan.label(run);
    let file = run.path.display();
    match &outcome {
        RunOutcome::Trained => println!("{label}: trained; wrote {file}"),
        RunOutcome::Finished => println!("{label}: already finished ({file})"),
        RunOutcome::HeldBy(owner) => println!("{label}: being trained by {owner}; nothing to do"),
        RunOutcome::Failed(reason) => return fail(false, &format!("{label} failed: {reason}")),
        RunOutcome::Interrupted => eprintln!("{label}: interrupted; nothing saved"),
    }
    outcome_code(&outcome)
}

fn outcome_code(outcome: &RunOutcome) -> ExitCode {
    match outcome {
        RunOutcome::Trained | RunOutcome::Finished | RunOutcome::HeldBy(_) => ExitCode::SUCCESS,
        RunOutcome::Failed(_) => ExitCode::FAILURE,
        RunOutcome::Interrupted => ExitCode::from(130),
    }
}
