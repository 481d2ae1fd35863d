//! The experiment grid: every method × run of an experiment, resumable.
//!
//! A run whose result file exists with the same settings fingerprint is not trained again;
//! each finished run is written at once (atomically), so an interrupted grid loses at most
//! the run in progress. A run that fails (e.g. a diverged loss) is reported and the grid
//! goes on. At the end `summary.json` and `table.md` are (re)written.

use std::path::{Path, PathBuf};

use candle_core::Device;

use crate::config::{json, ExperimentConfig, MethodSpec, Overrides, RunSettings};
use crate::error::{Result, TrainError};
use crate::progress::Progress;
use crate::results::{
    fingerprint, read_json, render_table, run_path, write_atomic, write_json, MethodSummary,
    RunRecord, Summary,
};
use crate::run::train_run;

/// What to run.
#[derive(Debug, Clone)]
pub struct GridRequest {
    /// The experiment.
    pub config: ExperimentConfig,
    /// Dataset root (`datasets/`).
    pub data_dir: PathBuf,
    /// Results root (`results/`); the experiment writes into `<out>/<name>/`.
    pub out_dir: PathBuf,
    /// Methods (or method variants, by label) to run (default: the config's list).
    pub methods: Option<Vec<String>>,
    /// `--quick`, `--epochs`, `--runs`, `--seed`.
    pub overrides: Overrides,
    /// Training device.
    pub device: Device,
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
    /// Runs trained now.
    pub trained: usize,
    /// Runs reused from earlier result files.
    pub reused: usize,
    /// Runs that failed, as `method seed S: reason`.
    pub failures: Vec<String>,
    /// Whether Ctrl-C stopped the grid early (the summary covers the finished runs).
    pub interrupted: bool,
    /// The settings used.
    pub settings: RunSettings,
    /// Per method: mean training images per second over the runs trained now.
    pub throughput: Vec<(String, f64)>,
}

/// Human name of a device (`cpu`, `cuda:0`).
pub fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// Parses `cpu`, `cuda` or `cuda:N` into a device, with a clear error when CUDA is not
/// available in this build or on this machine.
pub fn parse_device(spec: &str) -> Result<Device> {
    let fail = |problem: String| TrainError::Config {
        path: "--device".into(),
        problem,
    };
    match spec {
        "cpu" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let ordinal = s
                .strip_prefix("cuda:")
                .map(|n| {
                    n.parse::<usize>()
                        .map_err(|_| fail(format!("bad GPU index in `{s}`")))
                })
                .transpose()?
                .unwrap_or(0);
            if !candle_core::utils::cuda_is_available() {
                return Err(fail(
                    "this binary was built without CUDA support (build with `--features cuda`)"
                        .into(),
                ));
            }
            Device::new_cuda(ordinal)
                .map_err(|e| fail(format!("no usable CUDA device {ordinal}: {e}")))
        }
        other => Err(fail(format!(
            "unknown device `{other}` (expected cpu, cuda or cuda:N)"
        ))),
    }
}

fn run_fingerprint(
    config: &ExperimentConfig,
    settings: &RunSettings,
    method: &MethodSpec,
    seed: u64,
) -> String {
    fingerprint(&[
        &config.name,
        &method.label,
        &seed.to_string(),
        &settings.fingerprint_json(method.kind),
        &json(&config.data),
        &json(&config.model),
    ])
}

/// Runs (or resumes) the grid and writes `summary.json` and `table.md`.
pub fn run_grid(request: &GridRequest) -> Result<GridReport> {
    let config = &request.config.resolved(request.overrides.quick)?;
    let settings = config.settings(&request.overrides);
    let methods = match &request.methods {
        Some(m) => config.select_methods(m)?,
        None => config.method_specs()?,
    };
    let method_settings = methods
        .iter()
        .map(|m| settings.for_method(m))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|problem| TrainError::Config {
            path: "--methods".into(),
            problem,
        })?;
    let exp_dir = request.out_dir.join(&config.name);
    let device = device_name(&request.device);

    let mut records: Vec<(MethodSpec, Vec<RunRecord>)> =
        methods.iter().map(|m| (m.clone(), Vec::new())).collect();
    let mut pending = Vec::new();
    for (m, (method, done)) in records.iter_mut().enumerate() {
        for r in 0..settings.runs {
            let seed = settings.seed + r as u64;
            let fp = run_fingerprint(config, &method_settings[m], method, seed);
            let path = run_path(&exp_dir, &method.file_stem(), seed, settings.quick);
            match path.exists().then(|| read_json::<RunRecord>(&path)) {
                Some(Ok(record)) if record.fingerprint == fp => done.push(record),
                Some(Ok(_)) => {
                    tracing::info!("{}: settings changed, training again", path.display());
                    pending.push((m, seed, fp, path));
                }
                Some(Err(e)) => {
                    tracing::warn!("{e}; training again");
                    pending.push((m, seed, fp, path));
                }
                None => pending.push((m, seed, fp, path)),
            }
        }
    }
    let reused = records.iter().map(|(_, r)| r.len()).sum();
    let mut failures = Vec::new();
    let mut interrupted = false;
    let mut throughput: Vec<(String, Vec<f64>)> = Vec::new();
    // Datasets whose split depends on the run's seed (REFUGE, HRF-AV) are read once per seed:
    // run seed by seed.
    let seeded_split = config.data.split_depends_on_seed();
    if seeded_split {
        pending.sort_by_key(|p| (p.1, p.0));
    }
    if !pending.is_empty() {
        let split_seed = |seed: u64| if seeded_split { seed } else { settings.seed };
        let load = |seed: u64| {
            crate::data::load(
                config,
                &request.data_dir,
                settings.train_limit,
                seed,
                &request.device,
            )
        };
        let mut data_seed = split_seed(pending[0].1);
        let mut dataset = load(data_seed)?;
        // Fail on a model that does not fit the data before the first run starts.
        crate::run::build_model(
            records[pending[0].0].0.kind,
            &dataset,
            &settings.model,
            &request.device,
            0,
        )?;
        let iterations =
            crate::data::iterations_per_epoch(&dataset, settings.batch_size) * settings.epochs;
        tracing::info!(
            "{}: {} run(s) to train ({} reused), {} epoch(s) of {} iterations each, on {device}",
            config.name,
            pending.len(),
            reused,
            settings.epochs,
            iterations / settings.epochs.max(1)
        );
        let progress = Progress::new(pending.len() + reused);
        for _ in 0..reused {
            progress.run_done("reused earlier runs");
        }
        for (m, seed, fp, path) in pending {
            if crate::interrupt::requested() {
                interrupted = true;
                break;
            }
            if split_seed(seed) != data_seed {
                data_seed = split_seed(seed);
                dataset = load(data_seed)?;
            }
            let method = records[m].0.clone();
            let label = format!("{} seed {seed}", method.label);
            let bar = progress.run_bar(&label, iterations);
            let outcome = train_run(
                &method,
                seed,
                &method_settings[m],
                &dataset,
                &request.device,
                &fp,
                Some(&bar),
            );
            bar.finish_and_clear();
            match outcome {
                Ok(record) => {
                    write_json(&path, &record)?;
                    let accs: Vec<String> = record
                        .metrics
                        .iter()
                        .map(|(k, v)| {
                            if crate::table::higher_is_better(k) {
                                format!("{k} {:.2}%", 100.0 * v)
                            } else {
                                format!("{k} {v:.4}")
                            }
                        })
                        .collect();
                    tracing::info!(
                        "{label}: {} in {:.0} s ({:.0} images/s)",
                        accs.join(", "),
                        record.seconds,
                        record.images_per_second
                    );
                    match throughput.iter_mut().find(|(n, _)| *n == method.label) {
                        Some((_, v)) => v.push(record.images_per_second),
                        None => {
                            throughput.push((method.label.clone(), vec![record.images_per_second]))
                        }
                    }
                    records[m].1.push(record);
                    progress.run_done(&label);
                }
                Err(TrainError::Interrupted) => {
                    tracing::warn!("{label}: interrupted; this run is not saved");
                    interrupted = true;
                    break;
                }
                Err(e) => {
                    tracing::error!("{label} failed: {e}");
                    failures.push(format!("{label}: {e}"));
                    progress.run_done(&format!("{label} failed"));
                }
            }
        }
        progress.finish();
    }
    let trained = records.iter().map(|(_, r)| r.len()).sum::<usize>() - reused;

    let summary_path = exp_dir.join("summary.json");
    let mut summary = Summary {
        experiment: config.name.clone(),
        quick: settings.quick,
        device,
        optimizer: settings.optimizer_config().to_string(),
        methods: Default::default(),
    };
    if let Ok(previous) = read_json::<Summary>(&summary_path) {
        if previous.quick == settings.quick && previous.experiment == config.name {
            summary.methods = previous.methods;
        }
    }
    for (method, runs) in &records {
        let mut runs = runs.clone();
        runs.sort_by_key(|r| r.seed);
        if !runs.is_empty() {
            summary
                .methods
                .insert(method.label.clone(), MethodSummary::from_runs(&runs));
        }
    }
    write_json(&summary_path, &summary)?;
    let table = render_table(
        &summary,
        &config.paper,
        &config.methods,
        &settings,
        &config.description,
    );
    let table_path = exp_dir.join("table.md");
    write_atomic(&table_path, table.as_bytes())?;
    Ok(GridReport {
        summary_path,
        table_path,
        table,
        trained,
        reused,
        failures,
        interrupted,
        settings,
        throughput: throughput
            .into_iter()
            .map(|(n, v)| (n, v.iter().sum::<f64>() / v.len() as f64))
            .collect(),
    })
}

/// Loads an experiment config from `experiments/<name>.toml` under `root`.
pub fn experiment_path(root: &Path, name: &str) -> PathBuf {
    root.join("experiments").join(format!("{name}.toml"))
}
