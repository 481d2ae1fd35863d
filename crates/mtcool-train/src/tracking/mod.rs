//! Experiment tracking: each run's TensorBoard event file and `history.csv`, written live as
//! it trains (under `runs/<label>/seed-<S>[-quick]/`, see [`crate::results::tracking_dir`]),
//! and each experiment's `summary.csv`.
//!
//! A run that starts again or resumes rewrites its whole log from the history it has, so a log
//! never holds the epochs of an abandoned attempt. Tracking never stops training: a log that
//! cannot be written is reported once and left off for the rest of the run.

pub mod events;
pub mod history_csv;
pub mod scalars;
pub mod summary_csv;

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::results::{write_atomic, EpochRecord, RunRecord};

use events::EventLog;

/// The file name of a run's per-epoch CSV.
pub const HISTORY_CSV: &str = "history.csv";

/// The live log of one run.
#[derive(Debug)]
pub struct RunTracker {
    dir: PathBuf,
    events: EventLog,
}

impl RunTracker {
    /// Starts the log in `dir`: the run's settings as text (`config`, step 0), then the epochs
    /// of `history` (those a resumed run already has).
    ///
    /// # Errors
    /// The folder or a file cannot be written.
    pub fn start(dir: &Path, config_text: &str, history: &[EpochRecord]) -> Result<Self> {
        let mut events = EventLog::create(dir)?;
        events.text(0, "config", &markdown_code(config_text))?;
        for record in history {
            events.scalars(record.epoch as i64, &scalars::epoch_scalars(record))?;
        }
        let tracker = Self {
            dir: dir.to_path_buf(),
            events,
        };
        tracker.write_history(history)?;
        Ok(tracker)
    }

    /// Logs the last epoch of `history` and rewrites `history.csv`.
    ///
    /// # Errors
    /// A file cannot be written.
    pub fn epoch(&mut self, history: &[EpochRecord]) -> Result<()> {
        if let Some(record) = history.last() {
            self.events
                .scalars(record.epoch as i64, &scalars::epoch_scalars(record))?;
        }
        self.write_history(history)
    }

    /// Logs the finished run's test metrics (at its last epoch) and its final history.
    ///
    /// # Errors
    /// A file cannot be written.
    pub fn finish(&mut self, record: &RunRecord) -> Result<()> {
        let step = record.history.last().map_or(0, |r| r.epoch) as i64;
        self.events
            .scalars(step, &scalars::test_scalars(&record.metrics))?;
        self.write_history(&record.history)
    }

    fn write_history(&self, history: &[EpochRecord]) -> Result<()> {
        let path = self.dir.join(HISTORY_CSV);
        write_atomic(&path, history_csv::render(history).as_bytes())
    }
}

/// A run's tracking as training uses it: off when no folder is given, and off from the first
/// write that fails (with one warning), so that a full disk or a removed folder never stops a
/// run.
#[derive(Debug, Default)]
pub struct Tracking(Option<RunTracker>);

impl Tracking {
    /// [`RunTracker::start`] in `dir`, if given.
    pub fn start(dir: Option<&Path>, config_text: &str, history: &[EpochRecord]) -> Self {
        let Some(dir) = dir else {
            return Self(None);
        };
        match RunTracker::start(dir, config_text, history) {
            Ok(tracker) => Self(Some(tracker)),
            Err(e) => {
                warn_off(&e);
                Self(None)
            }
        }
    }

    /// [`RunTracker::epoch`].
    pub fn epoch(&mut self, history: &[EpochRecord]) {
        self.with(|t| t.epoch(history));
    }

    /// [`RunTracker::finish`].
    pub fn finish(&mut self, record: &RunRecord) {
        self.with(|t| t.finish(record));
    }

    fn with(&mut self, write: impl FnOnce(&mut RunTracker) -> Result<()>) {
        if let Some(tracker) = &mut self.0 {
            if let Err(e) = write(tracker) {
                warn_off(&e);
                self.0 = None;
            }
        }
    }
}

fn warn_off(error: &crate::error::TrainError) {
    tracing::warn!("{error}; this run's TensorBoard log and history.csv are left off");
}

/// Writes the whole log of a finished run (its settings are not in the run file, so the log
/// has no `config` text): for run files trained before tracking existed, or whose logs were
/// lost. `cargo xtask report` calls it for runs without a `history.csv`.
///
/// # Errors
/// The folder or a file cannot be written.
pub fn export(dir: &Path, record: &RunRecord) -> Result<()> {
    let mut events = EventLog::create(dir)?;
    for epoch in &record.history {
        events.scalars(epoch.epoch as i64, &scalars::epoch_scalars(epoch))?;
    }
    let mut tracker = RunTracker {
        dir: dir.to_path_buf(),
        events,
    };
    tracker.finish(record)
}

/// Text shown verbatim by TensorBoard's markdown renderer.
fn markdown_code(text: &str) -> String {
    let indented: Vec<String> = text.lines().map(|l| format!("    {l}")).collect();
    indented.join("\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn epoch(n: usize) -> EpochRecord {
        EpochRecord {
            epoch: n,
            seconds: 1.0,
            train_loss: [("a".to_string(), 1.0 / n as f64)].into(),
            val: [("a/accuracy".to_string(), 0.5)].into(),
            clamped_fraction: Default::default(),
            gradient_cosine: Default::default(),
            task_weights: Default::default(),
            learning_rate: Some(0.1),
        }
    }

    fn steps(dir: &Path) -> Vec<i64> {
        let files = events::event_files(dir).unwrap();
        assert_eq!(files.len(), 1);
        tfrecord::EventIter::open(&files[0], Default::default())
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| matches!(&e.what, Some(tfrecord::protobuf::event::What::Summary(_))))
            .map(|e| e.step)
            .collect()
    }

    #[test]
    fn a_resumed_run_rewrites_its_log_from_its_history() {
        let dir = tempfile::tempdir().unwrap();
        let mut history = vec![epoch(1)];
        let mut tracker = RunTracker::start(dir.path(), "epochs = 3", &[]).unwrap();
        tracker.epoch(&history).unwrap();
        history.push(epoch(2));
        tracker.epoch(&history).unwrap();
        // epoch 3 was logged, then the process died; the resume file holds epochs 1–2
        tracker.epoch(&[epoch(1), epoch(2), epoch(3)]).unwrap();
        drop(tracker);
        let mut tracker = RunTracker::start(dir.path(), "epochs = 3", &history).unwrap();
        history.push(epoch(3));
        tracker.epoch(&history).unwrap();
        assert_eq!(steps(dir.path()), [0, 1, 2, 3]);
        let csv = std::fs::read_to_string(dir.path().join(HISTORY_CSV)).unwrap();
        assert_eq!(csv.lines().count(), 4, "{csv}");
    }
}
