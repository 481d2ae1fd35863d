//! `summary.json`, `table.md` and `summary.csv` rebuilt from the run files on disk, so that any process (the
//! last worker of a grid, a SLURM merge job, `cargo xtask report`) writes the same summary
//! from the same files, whoever trained them.
//!
//! Which run files are pooled: for the rows of the grid being summarised, exactly its planned
//! runs (their fingerprints); for every other row found in `runs/` (earlier grids with other
//! `--methods`), the runs sharing the settings of its most recently finished run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::config::ExperimentConfig;
use crate::error::{Result, TrainError};
use crate::results::{read_json, write_atomic, write_json, MethodSummary, RunRecord, Summary};

/// The file name of an experiment's per-method × metric CSV.
pub const SUMMARY_CSV: &str = "summary.csv";

/// What a rebuilt summary records beside the runs.
#[derive(Debug, Clone, Default)]
pub struct SummaryMeta {
    /// Per grid row (label): the fingerprints of its planned runs.
    pub planned: BTreeMap<String, BTreeSet<String>>,
    /// Worker processes of the grid.
    pub jobs: Option<usize>,
    /// The grid's measured wall time (else the span of the pooled runs).
    pub wall_seconds: Option<f64>,
    /// Device to record when no run file names one (files from older versions).
    pub fallback_device: String,
}

/// The written files.
#[derive(Debug, Clone)]
pub struct WrittenSummary {
    /// The summary.
    pub summary: Summary,
    /// `<exp>/summary.json`.
    pub summary_path: PathBuf,
    /// `<exp>/table.md`.
    pub table_path: PathBuf,
    /// The table's markdown.
    pub table: String,
}

/// Every run file of `exp_dir/runs/` of the quick or the full mode; unreadable files are
/// logged and skipped.
pub fn read_run_files(exp_dir: &Path, quick: bool) -> Result<Vec<RunRecord>> {
    let dir = exp_dir.join("runs");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(TrainError::io(&dir, e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| {
                !n.starts_with('.') && n.ends_with(".json") && n.ends_with("-quick.json") == quick
            })
        })
        .collect();
    paths.sort();
    let mut records = Vec::with_capacity(paths.len());
    for path in paths {
        match read_json::<RunRecord>(&path) {
            Ok(record) => records.push(record),
            Err(e) => tracing::warn!("{e}; left out of the summary"),
        }
    }
    Ok(records)
}

/// Groups run files by row, keeping the runs a summary pools (see the module docs).
pub fn select_runs(
    records: Vec<RunRecord>,
    planned: &BTreeMap<String, BTreeSet<String>>,
) -> BTreeMap<String, Vec<RunRecord>> {
    let mut by_label: BTreeMap<String, Vec<RunRecord>> = BTreeMap::new();
    for record in records {
        by_label
            .entry(record.method.clone())
            .or_default()
            .push(record);
    }
    for (label, runs) in &mut by_label {
        match planned.get(label) {
            Some(fingerprints) => runs.retain(|r| fingerprints.contains(&r.fingerprint)),
            None => {
                let latest = runs
                    .iter()
                    .max_by(|a, b| a.finished_unix.total_cmp(&b.finished_unix))
                    .map(|r| r.settings_fingerprint.clone());
                if let Some(latest) = latest {
                    runs.retain(|r| r.settings_fingerprint == latest);
                }
            }
        }
        runs.sort_by_key(|r| r.seed);
        runs.dedup_by_key(|r| r.seed);
    }
    by_label.retain(|_, runs| !runs.is_empty());
    by_label
}

/// Rebuilds and writes `summary.json` and `table.md` of `config`'s experiment under
/// `exp_dir` from the run files there.
pub fn write_summary(
    exp_dir: &Path,
    config: &ExperimentConfig,
    quick: bool,
    meta: &SummaryMeta,
) -> Result<WrittenSummary> {
    let runs = select_runs(read_run_files(exp_dir, quick)?, &meta.planned);
    let all: Vec<&RunRecord> = runs.values().flatten().collect();
    let devices: BTreeSet<&str> = all
        .iter()
        .map(|r| r.device.as_str())
        .filter(|d| !d.is_empty())
        .collect();
    let device = if devices.is_empty() {
        meta.fallback_device.clone()
    } else {
        devices.into_iter().collect::<Vec<_>>().join(", ")
    };
    let settings = config.settings(&crate::config::Overrides {
        quick,
        ..Default::default()
    });
    let summary = Summary {
        experiment: config.name.clone(),
        quick,
        device,
        optimizer: settings.optimizer_config().to_string(),
        methods: runs
            .iter()
            .map(|(label, runs)| (label.clone(), MethodSummary::from_runs(runs)))
            .collect(),
        jobs: meta.jobs,
        wall_seconds: meta.wall_seconds.or_else(|| span_seconds(&all)),
    };
    let summary_path = exp_dir.join("summary.json");
    write_json(&summary_path, &summary)?;
    let table = crate::table::render(&summary, &crate::table::TableOptions::from_config(config));
    let table_path = exp_dir.join("table.md");
    write_atomic(&table_path, table.as_bytes())?;
    let csv = crate::tracking::summary_csv::render(&summary, Some(&config.paper), &config.methods);
    write_atomic(&exp_dir.join(SUMMARY_CSV), csv.as_bytes())?;
    Ok(WrittenSummary {
        summary,
        summary_path,
        table_path,
        table,
    })
}

/// From the first run's start to the last run's end (runs that recorded when they finished).
fn span_seconds(runs: &[&RunRecord]) -> Option<f64> {
    let timed: Vec<&&RunRecord> = runs.iter().filter(|r| r.finished_unix > 0.0).collect();
    let end = timed.iter().map(|r| r.finished_unix).reduce(f64::max)?;
    let start = timed
        .iter()
        .map(|r| r.finished_unix - r.seconds)
        .reduce(f64::min)?;
    Some(end - start)
}

/// The mode of an experiment folder's results: that of its `summary.json`, else full runs if
/// any run file is of a full run, else quick.
pub fn results_mode(exp_dir: &Path) -> bool {
    if let Ok(summary) = read_json::<Summary>(&exp_dir.join("summary.json")) {
        return summary.quick;
    }
    read_run_files(exp_dir, false).is_ok_and(|full| full.is_empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(label: &str, seed: u64, settings: &str, finished: f64) -> RunRecord {
        serde_json::from_value(serde_json::json!({
            "method": label, "seed": seed, "epochs": 1, "seconds": 10.0,
            "images_per_second": 1.0, "metrics": {"a/accuracy": 0.5}, "params": 1,
            "fingerprint": format!("{label}-{seed}-{settings}"), "history": [],
            "settings_fingerprint": settings, "finished_unix": finished
        }))
        .unwrap()
    }

    #[test]
    fn planned_rows_pool_their_runs_and_others_their_latest_setting() {
        let records = vec![
            record("joint", 0, "s1", 100.0),
            record("joint", 1, "s1", 110.0),
            record("joint", 2, "s2", 50.0),
            record("pcgrad", 0, "old", 10.0),
            record("pcgrad", 1, "new", 200.0),
            record("pcgrad", 2, "new", 190.0),
        ];
        let planned = [(
            "joint".to_string(),
            ["joint-0-s1".to_string(), "joint-2-s2".to_string()].into(),
        )]
        .into();
        let runs = select_runs(records.clone(), &planned);
        let seeds = |l: &str| runs[l].iter().map(|r| r.seed).collect::<Vec<_>>();
        assert_eq!(seeds("joint"), [0, 2]);
        assert_eq!(seeds("pcgrad"), [1, 2]);
        let refs: Vec<&RunRecord> = records.iter().collect();
        assert_eq!(span_seconds(&refs), Some(200.0 - 0.0));
    }
}
