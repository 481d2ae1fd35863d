//! The experiment grid: every method × run of an experiment, resumable, on one or many
//! processes sharing one results folder.
//!
//! A run whose result file exists with the same settings fingerprint is not trained again;
//! each finished run is written at once (atomically), so an interrupted grid loses at most
//! the runs in progress. A run is claimed with a lock file before training ([`claim`]), so
//! that grids started at once on the same `--out` (on one machine, or SLURM array tasks on
//! many) train each run once; a run held elsewhere is picked up from its file. A run that
//! fails (e.g. a diverged loss, a crashed worker) is reported and the grid goes on. At the end
//! `summary.json` and `table.md` are rebuilt from the run files on disk ([`summary`]).

pub mod claim;
pub mod device;
pub mod execute;
pub mod plan;
pub mod pool;
pub mod protocol;
pub mod schedule;
pub mod summary;
pub mod ticker;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;

use crate::config::{ExperimentConfig, Overrides, RunSettings};
use crate::error::{Result, TrainError};
use crate::progress::Progress;
use crate::results::{read_json, Summary};

pub use device::{device_name, parse_device, parse_devices};
pub use execute::RunOutcome;
pub use plan::GridPlan;
pub use pool::WorkerCommand;

use execute::DataCache;
use schedule::{schedule, Executor, Tally};
use summary::{write_summary, SummaryMeta};

/// What to run.
#[derive(Debug, Clone)]
pub struct GridRequest {
    /// The experiment.
    pub config: ExperimentConfig,
    /// The file it was read from (workers and SLURM tasks read it again).
    pub config_path: Option<PathBuf>,
    /// Dataset root (`datasets/`).
    pub data_dir: PathBuf,
    /// Results root (`results/`); the experiment writes into `<out>/<name>/`.
    pub out_dir: PathBuf,
    /// Methods (or method variants, by label) to run (default: the config's list).
    pub methods: Option<Vec<String>>,
    /// `--quick`, `--epochs`, `--runs`, `--seed`.
    pub overrides: Overrides,
    /// Training device (of this process's runs, and of workers without `--devices`).
    pub device: Device,
    /// `--jobs`, `--devices` and the worker program.
    pub parallel: Parallel,
}

/// How many runs at once, where.
#[derive(Debug, Clone, PartialEq)]
pub struct Parallel {
    /// Worker processes (1: train in this process, one run after another).
    pub jobs: usize,
    /// Devices the workers take round-robin (`cpu`, `cuda:1`); empty: the request's device.
    pub devices: Vec<String>,
    /// The program started as a worker (`mtcool train`); needed when `jobs > 1`.
    pub worker: Option<WorkerCommand>,
}

impl Default for Parallel {
    fn default() -> Self {
        Self {
            jobs: 1,
            devices: Vec::new(),
            worker: None,
        }
    }
}

impl GridRequest {
    /// The options that make another process plan exactly this grid (`train --config …`):
    /// what workers and SLURM tasks are started with, before `--run-index`.
    pub fn run_args(&self) -> Result<Vec<String>> {
        let Some(config) = &self.config_path else {
            return Err(TrainError::Config {
                path: "--jobs".into(),
                problem: "worker processes and SLURM tasks read the config's file, and this \
                          grid's config was built in memory"
                    .into(),
            });
        };
        let path = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let mut args = vec![
            "--config".to_string(),
            path(config).display().to_string(),
            "--data".to_string(),
            path(&self.data_dir).display().to_string(),
            "--out".to_string(),
            path(&self.out_dir).display().to_string(),
        ];
        if let Some(methods) = &self.methods {
            args.extend(["--methods".to_string(), methods.join(",")]);
        }
        let o = &self.overrides;
        if o.quick {
            args.push("--quick".into());
        }
        let mut option = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                args.extend([name.to_string(), v]);
            }
        };
        option("--epochs", o.epochs.map(|v| v.to_string()));
        option("--runs", o.runs.map(|v| v.to_string()));
        option("--seed", o.seed.map(|v| v.to_string()));
        option(
            "--ops",
            o.ops
                .map(|v| crate::config::json(&v).trim_matches('"').to_string()),
        );
        Ok(args)
    }

    fn device_names(&self) -> Vec<String> {
        if self.parallel.devices.is_empty() {
            vec![device_name(&self.device)]
        } else {
            self.parallel.devices.clone()
        }
    }
}

/// What a grid did.
#[derive(Debug, Clone)]
pub struct GridReport {
    /// `<out>/<name>/summary.json`.
    pub summary_path: PathBuf,
    /// `<out>/<name>/table.md`.
    pub table_path: PathBuf,
    /// The table's markdown.
    pub table: String,
    /// Runs trained now, by this grid.
    pub trained: usize,
    /// Runs reused from earlier result files, or finished meanwhile by other processes.
    pub reused: usize,
    /// Runs that failed, as `method seed S: reason`.
    pub failures: Vec<String>,
    /// Whether Ctrl-C stopped the grid early (the summary covers the finished runs).
    pub interrupted: bool,
    /// The settings used.
    pub settings: RunSettings,
    /// Per method: mean training images per second over the runs trained now.
    pub throughput: Vec<(String, f64)>,
    /// Worker processes used.
    pub jobs: usize,
    /// Wall time of the grid, in seconds.
    pub wall_seconds: f64,
}

impl GridReport {
    /// `3 run(s) trained, 1 reused, 2 job(s), 41 s; wrote …/summary.json and …/table.md`.
    pub fn describe(&self) -> String {
        format!(
            "{} run(s) trained, {} reused, {} job(s), {:.0} s; wrote {} and {}",
            self.trained,
            self.reused,
            self.jobs,
            self.wall_seconds,
            self.summary_path.display(),
            self.table_path.display()
        )
    }
}

/// Runs (or resumes) the grid and writes `summary.json` and `table.md`.
pub fn run_grid(request: &GridRequest) -> Result<GridReport> {
    let start = Instant::now();
    let plan = GridPlan::new(request)?;
    check_writable(&plan.exp_dir)?;
    let pending = plan.pending();
    let reused = plan.runs.len() - pending.len();
    let tally = if pending.is_empty() {
        Tally::default()
    } else {
        train_pending(request, &plan, pending, reused)?
    };
    let jobs = request.parallel.jobs.max(1);
    let wall_seconds = start.elapsed().as_secs_f64();
    // A rerun that trained nothing keeps the jobs and wall time of the grid that did.
    let previous = (tally.trained == 0)
        .then(|| read_json::<Summary>(&plan.exp_dir.join("summary.json")).ok())
        .flatten()
        .filter(|s| s.quick == plan.settings.quick);
    let (summary_jobs, summary_wall) = match previous {
        Some(p) => (p.jobs, p.wall_seconds),
        None => (Some(jobs), Some(wall_seconds)),
    };
    let written = write_grid_summary(request, &plan, summary_jobs, summary_wall)?;
    Ok(GridReport {
        summary_path: written.summary_path,
        table_path: written.table_path,
        table: written.table,
        trained: tally.trained,
        reused: reused + tally.picked_up,
        failures: tally.failures,
        interrupted: tally.interrupted,
        settings: plan.settings,
        throughput: tally
            .throughput
            .into_iter()
            .map(|(n, v)| (n, v.iter().sum::<f64>() / v.len() as f64))
            .collect(),
        jobs,
        wall_seconds,
    })
}

/// Checks the data and the model on the first pending run's split, then trains every
/// pending run in this process or in workers.
fn train_pending(
    request: &GridRequest,
    plan: &GridPlan,
    pending: Vec<usize>,
    reused: usize,
) -> Result<Tally> {
    let first = &plan.runs[pending[0]];
    let mut data = DataCache::default();
    let dataset = data.get(
        plan,
        &request.data_dir,
        plan.split_seed(first.seed),
        &request.device,
    )?;
    // Fail on a model that does not fit the data before the first run starts.
    crate::run::build_model(
        plan.methods[first.method].kind,
        dataset,
        &plan.settings.model,
        &request.device,
        0,
    )?;
    let per_epoch = crate::data::iterations_per_epoch(dataset, plan.settings.batch_size);
    let jobs = request.parallel.jobs.max(1);
    tracing::info!(
        "{}: {} run(s) to train ({} reused), {} epoch(s) of {} iterations each, on {}{}",
        plan.config.name,
        pending.len(),
        reused,
        plan.settings.epochs,
        per_epoch,
        request.device_names().join(", "),
        if jobs > 1 {
            format!(", {jobs} at once")
        } else {
            String::new()
        }
    );
    let executor = if jobs == 1 {
        Executor::InProcess {
            device: request.device.clone(),
            data,
            data_dir: request.data_dir.clone(),
            iterations: per_epoch * plan.settings.epochs,
            done: Vec::new(),
        }
    } else {
        let worker = request
            .parallel
            .worker
            .clone()
            .ok_or_else(|| TrainError::Config {
                path: "--jobs".into(),
                problem: "this program cannot start worker processes".into(),
            })?;
        drop(data);
        // No more workers than runs, so that fewer runs get more threads each.
        Executor::Workers(pool::WorkerPool::new(
            worker,
            request.run_args()?,
            request.device_names(),
            jobs.min(pending.len()),
        ))
    };
    let mut progress = Progress::new(plan.runs.len());
    progress.reused(reused);
    let tally = schedule(plan, pending, executor, &progress);
    progress.finish();
    tally
}

/// Trains run `index` of the grid alone (`--run-index`: a worker, a SLURM array task),
/// advancing `bar`; the summary is left to whoever merges the grid.
pub fn run_one(
    request: &GridRequest,
    index: usize,
    bar: Option<&indicatif::ProgressBar>,
) -> Result<(GridPlan, RunOutcome)> {
    let plan = GridPlan::new(request)?;
    check_writable(&plan.exp_dir)?;
    let run = plan.run(index)?.clone();
    let outcome = execute::execute(
        &plan,
        &run,
        &request.data_dir,
        &request.device,
        &mut DataCache::default(),
        bar,
    )?;
    Ok((plan, outcome))
}

/// Rebuilds `summary.json` and `table.md` of a grid from the run files on disk, training
/// nothing (a SLURM merge job): its rows pool exactly its planned runs, and the wall time is
/// the span of the pooled runs.
pub fn merge_grid(request: &GridRequest) -> Result<summary::WrittenSummary> {
    let plan = GridPlan::new(request)?;
    let missing = plan.pending().len();
    if missing > 0 {
        tracing::warn!(
            "{}: {missing} of {} run(s) have no result; the summary covers the others",
            plan.config.name,
            plan.runs.len()
        );
    }
    write_grid_summary(request, &plan, None, None)
}

/// Writes the summary of `plan`'s rows (exactly its runs) and the other rows on disk.
fn write_grid_summary(
    request: &GridRequest,
    plan: &GridPlan,
    jobs: Option<usize>,
    wall_seconds: Option<f64>,
) -> Result<summary::WrittenSummary> {
    let meta = SummaryMeta {
        planned: planned_fingerprints(plan),
        jobs,
        wall_seconds,
        fallback_device: request.device_names().join(", "),
    };
    write_summary(&plan.exp_dir, &plan.config, plan.settings.quick, &meta)
}

/// Per row, the fingerprints of the grid's runs (what its summary pools).
fn planned_fingerprints(plan: &GridPlan) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for run in &plan.runs {
        out.entry(plan.methods[run.method].label.clone())
            .or_default()
            .insert(run.fingerprint.clone());
    }
    out
}

/// Fails at once, naming the folder, when the results cannot be written there.
pub fn check_writable(exp_dir: &Path) -> Result<()> {
    let runs = exp_dir.join("runs");
    let cannot = |e: std::io::Error| TrainError::Config {
        path: runs.clone(),
        problem: format!("cannot write results here ({e})"),
    };
    std::fs::create_dir_all(&runs).map_err(cannot)?;
    let probe = runs.join(format!(".write-test.{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(cannot)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Loads an experiment config from `experiments/<name>.toml` under `root`.
pub fn experiment_path(root: &Path, name: &str) -> PathBuf {
    root.join("experiments").join(format!("{name}.toml"))
}
