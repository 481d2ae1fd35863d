//! Training one planned run: claim it, read its data, train, write its result file, release
//! the claim. The same code serves the in-process grid, the worker processes of `--jobs N`
//! and SLURM array tasks (`mtcool train --run-index I`).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use candle_core::Device;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{describe_dataset, CheckpointMeta, CheckpointTarget};
use crate::data::Dataset;
use crate::error::{Result, TrainError};
use crate::results::{write_json, RunRecord};
use crate::run::{train_run, RunOutputs};

use super::claim::{lock_path, try_claim, ClaimAttempt, LockOwner};
use super::device::device_name;
use super::plan::{GridPlan, PlannedRun};

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Trained now; its result file is written.
    Trained,
    /// Its result file already existed with the same settings.
    Finished,
    /// Another live process holds its lock.
    HeldBy(LockOwner),
    /// Training failed (e.g. a diverged loss); nothing was written.
    Failed(String),
    /// Ctrl-C stopped it; nothing was written.
    Interrupted,
}

/// The dataset of the last split read, kept for the next run of the same split.
#[derive(Default)]
pub struct DataCache {
    loaded: Option<(u64, Dataset)>,
}

impl DataCache {
    /// The dataset of `split_seed`, read now unless it is the one held.
    pub fn get(
        &mut self,
        plan: &GridPlan,
        data_dir: &Path,
        split_seed: u64,
        device: &Device,
    ) -> Result<&Dataset> {
        if self.loaded.as_ref().is_some_and(|(s, _)| *s != split_seed) {
            self.loaded = None;
        }
        let entry = match self.loaded.take() {
            Some(entry) => entry,
            None => {
                let dataset = crate::data::load(
                    &plan.config,
                    data_dir,
                    plan.settings.train_limit,
                    split_seed,
                    device,
                )?;
                (split_seed, dataset)
            }
        };
        Ok(&self.loaded.insert(entry).1)
    }
}

/// Claims, trains and saves run `run` on `device`. Errors are what stops a whole grid (the
/// data cannot be read, the results folder cannot be written); a failed run is an outcome.
pub fn execute(
    plan: &GridPlan,
    run: &PlannedRun,
    data_dir: &Path,
    device: &Device,
    data: &mut DataCache,
    bar: Option<&ProgressBar>,
) -> Result<RunOutcome> {
    if plan.finished(run).is_some() {
        return Ok(RunOutcome::Finished);
    }
    let _claim = match try_claim(&lock_path(&run.path))? {
        ClaimAttempt::Claimed(claim) => claim,
        ClaimAttempt::HeldBy(owner) => return Ok(RunOutcome::HeldBy(owner)),
    };
    // Finished elsewhere between the check above and the claim.
    if plan.finished(run).is_some() {
        return Ok(RunOutcome::Finished);
    }
    let dataset = data.get(plan, data_dir, plan.split_seed(run.seed), device)?;
    if let Some(bar) = bar {
        let per_epoch = crate::data::iterations_per_epoch(dataset, plan.settings.batch_size);
        bar.set_length((per_epoch * plan.settings.epochs) as u64);
    }
    let method = &plan.methods[run.method];
    let target = checkpoint_target(plan, run, dataset)?;
    let outcome = train_run(
        method,
        run.seed,
        &plan.method_settings[run.method],
        dataset,
        device,
        RunOutputs {
            fingerprint: &run.fingerprint,
            bar,
            checkpoint: Some(&target),
            tracking: Some(&run.tracking),
        },
    );
    match outcome {
        Ok(mut record) => {
            stamp(&mut record, run, device);
            write_json(&run.path, &record)?;
            remove_resume_state(&target.resume_path());
            Ok(RunOutcome::Trained)
        }
        Err(TrainError::Interrupted) => Ok(RunOutcome::Interrupted),
        Err(e) => Ok(RunOutcome::Failed(e.to_string())),
    }
}

/// Where run `run` keeps its model (`runs/<run>.safetensors`), and what it records about it.
fn checkpoint_target(
    plan: &GridPlan,
    run: &PlannedRun,
    dataset: &Dataset,
) -> Result<CheckpointTarget> {
    let (tasks, normalisation) = describe_dataset(dataset)?;
    let settings = &plan.method_settings[run.method];
    Ok(CheckpointTarget {
        path: run.path.with_extension("safetensors"),
        meta: CheckpointMeta {
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            config: plan.config.clone(),
            model: settings.model.clone(),
            method: plan.methods[run.method].label.clone(),
            seed: run.seed,
            split_seed: plan.split_seed(run.seed),
            train_limit: settings.train_limit,
            quick: settings.quick,
            fingerprint: run.fingerprint.clone(),
            epoch: 0,
            tasks,
            normalisation,
        },
    })
}

/// Removes a finished run's resume state (its result and checkpoint are written).
fn remove_resume_state(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(
            "{}: cannot remove the finished run's resume state: {e}",
            path.display()
        ),
    }
}

/// Records where and when a run finished, and the fingerprint of its settings.
fn stamp(record: &mut RunRecord, run: &PlannedRun, device: &Device) {
    record.device = device_name(device);
    record.settings_fingerprint = run.settings_fingerprint.clone();
    record.finished_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
}
