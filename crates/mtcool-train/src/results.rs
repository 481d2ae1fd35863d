//! Results files: one JSON file per finished run, `summary.json` and `table.md` per
//! experiment (the contract in the architecture notes). Every write is atomic (temporary file
//! in the same folder, then rename), so an interrupted grid never leaves a half-written file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// Metric values by key `<task>/<metric>`, fractions in [0, 1] (or losses).
pub type Metrics = BTreeMap<String, f64>;

/// What happened in one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Wall time of the epoch's training iterations, in seconds.
    pub seconds: f64,
    /// Mean training loss per task.
    pub train_loss: BTreeMap<String, f64>,
    /// Validation metrics: `<task>/loss` and `<task>/accuracy`.
    pub val: Metrics,
    /// Mean fraction of θ_t elements moved by MT-COOL's clamp, per task (absent when no clamp ran).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clamped_fraction: BTreeMap<String, f64>,
    /// Cosine between two tasks' encoder gradients on the probe batch, keyed `a~b`
    /// (absent for independent networks or when the diagnostic is off).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub gradient_cosine: BTreeMap<String, f64>,
    /// Mean over the epoch's steps of the task weights the method applied
    /// (`StepReport::task_weights`), per task; absent for methods without such weights.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub task_weights: BTreeMap<String, f64>,
    /// The learning rate of the epoch: the optimiser's, times the schedule's factor (absent
    /// in files written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
}

/// One finished run of one method with one seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Method name.
    pub method: String,
    /// Seed of the run.
    pub seed: u64,
    /// Epochs trained.
    pub epochs: usize,
    /// Wall time of the whole run, in seconds.
    pub seconds: f64,
    /// Training images processed per second (all tasks, training iterations only).
    pub images_per_second: f64,
    /// Test metrics after the last epoch.
    pub metrics: Metrics,
    /// Number of parameters of the network.
    pub params: usize,
    /// Fingerprint of the settings that produced this run (a changed config reruns it).
    pub fingerprint: String,
    /// Per-epoch history.
    pub history: Vec<EpochRecord>,
    /// With early stopping: the epoch (from 1) whose parameters were tested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    /// The flatness probe after training (empty when off or for independent networks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flatness: Vec<crate::diagnostics::FlatnessPoint>,
    /// The device it trained on (`cpu`, `cuda:0`); empty in files written before it was kept.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device: String,
    /// Fingerprint of its settings without the seed: the runs a summary may pool.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub settings_fingerprint: String,
    /// When it finished, in seconds since the Unix epoch (0 when unknown).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub finished_unix: f64,
    /// Its model as tested (`.safetensors`), relative to the run file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// One method's runs and their aggregate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MethodSummary {
    /// The runs (seed, epochs, seconds, metrics).
    pub runs: Vec<RunBrief>,
    /// Mean of each metric over runs.
    pub mean: Metrics,
    /// Sample standard deviation (n − 1) of each metric over runs; 0 for one run.
    pub std: Metrics,
}

/// A run as listed in the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunBrief {
    /// Seed.
    pub seed: u64,
    /// Epochs trained.
    pub epochs: usize,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Test metrics.
    pub metrics: Metrics,
}

/// `summary.json` of one experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Experiment name.
    pub experiment: String,
    /// Whether these are quick runs.
    pub quick: bool,
    /// Device the runs trained on.
    pub device: String,
    /// The experiment's optimiser with its settings (rows may name another); empty in
    /// summaries written before it was recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub optimizer: String,
    /// Per method, in table order.
    pub methods: BTreeMap<String, MethodSummary>,
    /// Worker processes of the grid that wrote it (absent in older summaries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<usize>,
    /// Wall time of that grid in seconds: the command's own time, or, when rebuilt from run
    /// files alone (a SLURM merge, `report`), from the first run's start to the last's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_seconds: Option<f64>,
}

impl MethodSummary {
    /// Aggregates finished runs.
    pub fn from_runs(runs: &[RunRecord]) -> Self {
        let mut mean = Metrics::new();
        let mut std = Metrics::new();
        let keys: std::collections::BTreeSet<&String> =
            runs.iter().flat_map(|r| r.metrics.keys()).collect();
        for key in keys {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.metrics.get(key).copied())
                .collect();
            let (m, s) = mtcool_metrics::mean_std(&values);
            mean.insert(key.clone(), m);
            std.insert(key.clone(), s);
        }
        Self {
            runs: runs
                .iter()
                .map(|r| RunBrief {
                    seed: r.seed,
                    epochs: r.epochs,
                    seconds: r.seconds,
                    metrics: r.metrics.clone(),
                })
                .collect(),
            mean,
            std,
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique among the writers of one folder: processes on several hosts, threads of one.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let host = crate::grid::claim::host_name();
    let tmp = dir.join(format!(".{name}.{host}.{}.{n}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| TrainError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))
}

/// Serialises `value` as pretty JSON into `path`, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| TrainError::Results {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Reads a JSON results file.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| TrainError::Results {
        path: path.to_path_buf(),
        problem: format!("not a valid results file ({e})"),
    })
}

/// Where the run file of (`method`, `seed`) lives.
pub fn run_path(experiment_dir: &Path, method: &str, seed: u64, quick: bool) -> PathBuf {
    let suffix = if quick { "-quick" } else { "" };
    experiment_dir
        .join("runs")
        .join(format!("{method}-seed{seed}{suffix}.json"))
}

/// Where the TensorBoard log and `history.csv` of (`method`, `seed`) live:
/// `runs/<method>/seed-<S>[-quick]/`, so that `tensorboard --logdir <exp>/runs` names each run
/// `<method>/seed-<S>`.
pub fn tracking_dir(experiment_dir: &Path, method: &str, seed: u64, quick: bool) -> PathBuf {
    let suffix = if quick { "-quick" } else { "" };
    experiment_dir
        .join("runs")
        .join(method)
        .join(format!("seed-{seed}{suffix}"))
}

/// A stable 64-bit FNV-1a hash of the settings that determine a run, as hex.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0)) {
            hash ^= byte as u64;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(seed: u64, acc: f64) -> RunRecord {
        RunRecord {
            method: "joint".into(),
            seed,
            epochs: 1,
            seconds: 1.0,
            images_per_second: 1.0,
            metrics: [("even/accuracy".to_string(), acc)].into(),
            params: 1,
            fingerprint: "x".into(),
            history: vec![],
            best_epoch: None,
            flatness: vec![],
            device: String::new(),
            settings_fingerprint: String::new(),
            finished_unix: 0.0,
            checkpoint: None,
        }
    }

    #[test]
    fn summary_uses_sample_standard_deviation() {
        let s = MethodSummary::from_runs(&[record(0, 0.9), record(1, 0.8), record(2, 0.7)]);
        assert!((s.mean["even/accuracy"] - 0.8).abs() < 1e-12);
        assert!((s.std["even/accuracy"] - 0.1).abs() < 1e-12);
    }

    #[test]
    fn fingerprint_is_stable_and_sensitive() {
        assert_eq!(fingerprint(&["a", "b"]), fingerprint(&["a", "b"]));
        assert_ne!(fingerprint(&["a", "b"]), fingerprint(&["ab"]));
        assert_eq!(fingerprint(&[]), "cbf29ce484222325");
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("f.json");
        write_json(&path, &record(0, 0.5)).unwrap();
        write_json(&path, &record(1, 0.6)).unwrap();
        let back: RunRecord = read_json(&path).unwrap();
        assert_eq!(back.seed, 1);
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1);
    }
}
