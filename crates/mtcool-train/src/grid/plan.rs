//! The runs of a grid, numbered: run `i` is method `i / runs`, seed `seed + i % runs`, the same
//! in every process that reads the same config and options, so that `--run-index I` (a worker,
//! a SLURM array task) names one run without any other shared state.

use std::path::PathBuf;

use crate::config::{json, ExperimentConfig, MethodSpec, RunSettings};
use crate::error::{Result, TrainError};
use crate::results::{fingerprint, read_json, run_path, tracking_dir, RunRecord};

use super::GridRequest;

/// One run of the grid.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    /// Its number in the grid (`--run-index`).
    pub index: usize,
    /// Index into [`GridPlan::methods`].
    pub method: usize,
    /// Its seed.
    pub seed: u64,
    /// Fingerprint of everything that determines its numbers.
    pub fingerprint: String,
    /// Fingerprint of its settings without the seed (runs of one setting share it).
    pub settings_fingerprint: String,
    /// Its result file.
    pub path: PathBuf,
    /// Its TensorBoard log and `history.csv` (`runs/<label>/seed-<S>[-quick]/`).
    pub tracking: PathBuf,
}

/// The resolved grid.
#[derive(Debug, Clone)]
pub struct GridPlan {
    /// The config after `--quick`.
    pub config: ExperimentConfig,
    /// The grid's settings after the command-line overrides.
    pub settings: RunSettings,
    /// The rows, in table order.
    pub methods: Vec<MethodSpec>,
    /// Each row's settings (variants replace options).
    pub method_settings: Vec<RunSettings>,
    /// `<out>/<experiment>/`.
    pub exp_dir: PathBuf,
    /// Every run, by index.
    pub runs: Vec<PlannedRun>,
}

impl GridPlan {
    /// Resolves a request into its numbered runs.
    pub fn new(request: &GridRequest) -> Result<Self> {
        let config = request.config.resolved(request.overrides.quick)?;
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
        let mut runs = Vec::with_capacity(methods.len() * settings.runs);
        for (m, method) in methods.iter().enumerate() {
            let settings_fingerprint = fingerprint(&[
                &config.name,
                &method.label,
                &method_settings[m].fingerprint_json(method.kind),
                &json(&config.data),
                &json(&config.model),
            ]);
            for r in 0..settings.runs {
                let seed = settings.seed + r as u64;
                runs.push(PlannedRun {
                    index: runs.len(),
                    method: m,
                    seed,
                    fingerprint: run_fingerprint(&config, &method_settings[m], method, seed),
                    settings_fingerprint: settings_fingerprint.clone(),
                    path: run_path(&exp_dir, &method.file_stem(), seed, settings.quick),
                    tracking: tracking_dir(&exp_dir, &method.file_stem(), seed, settings.quick),
                });
            }
        }
        Ok(Self {
            config,
            settings,
            methods,
            method_settings,
            exp_dir,
            runs,
        })
    }

    /// Run `index`, or a clear error naming the grid's size.
    pub fn run(&self, index: usize) -> Result<&PlannedRun> {
        self.runs.get(index).ok_or_else(|| TrainError::Config {
            path: "--run-index".into(),
            problem: format!(
                "run {index} is out of range: this grid has {} run(s) (0..{})",
                self.runs.len(),
                self.runs.len().saturating_sub(1)
            ),
        })
    }

    /// `mtcool seed 3`.
    pub fn label(&self, run: &PlannedRun) -> String {
        format!("{} seed {}", self.methods[run.method].label, run.seed)
    }

    /// The run's finished result, if its file exists with the same settings; a file of other
    /// settings (or an unreadable one) is logged and treated as absent.
    pub fn finished(&self, run: &PlannedRun) -> Option<RunRecord> {
        if !run.path.exists() {
            return None;
        }
        match read_json::<RunRecord>(&run.path) {
            Ok(record) if record.fingerprint == run.fingerprint => Some(record),
            Ok(_) => {
                tracing::info!("{}: settings changed, training again", run.path.display());
                None
            }
            Err(e) => {
                tracing::warn!("{e}; training again");
                None
            }
        }
    }

    /// The indices of the runs without a finished result (see [`Self::finished`]).
    pub fn pending(&self) -> Vec<usize> {
        self.runs
            .iter()
            .filter(|run| self.finished(run).is_none())
            .map(|run| run.index)
            .collect()
    }

    /// The seed whose data split a run reads (REFUGE and HRF-AV split by the run's seed; the
    /// others by the grid's).
    pub fn split_seed(&self, seed: u64) -> u64 {
        if self.config.data.split_depends_on_seed() {
            seed
        } else {
            self.settings.seed
        }
    }

    /// The order to train pending runs in: by method, or seed by seed where the split depends
    /// on the seed (so that one process reads each split once).
    pub fn training_order(&self, mut pending: Vec<usize>) -> Vec<usize> {
        if self.config.data.split_depends_on_seed() {
            pending.sort_by_key(|&i| (self.runs[i].seed, self.runs[i].method));
        }
        pending
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
