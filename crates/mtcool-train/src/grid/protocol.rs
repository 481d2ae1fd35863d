//! What a worker process (`train --run-index I --worker`) tells the grid that started it: one
//! JSON object per line on its standard output, its progress every half second and its
//! outcome at the end. Its log lines go to standard error, which the grid sends to
//! `<exp>/logs/<run>.log`.

use std::io::Write;
use std::time::Duration;

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use super::execute::RunOutcome;
use super::ticker::Ticker;

/// One line of a worker's standard output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerMessage {
    /// Iterations done of the run's total, and the last epoch's summary.
    Progress {
        /// Iterations done.
        pos: u64,
        /// Iterations in all.
        len: u64,
        /// The bar's message (the last epoch's losses).
        msg: String,
    },
    /// How the run ended.
    Outcome(RunOutcome),
}

impl WorkerMessage {
    /// Parses one line (`None` for anything else a library might have printed).
    pub fn parse(line: &str) -> Option<Self> {
        serde_json::from_str(line.trim()).ok()
    }
}

/// Writes one message line to standard output.
pub fn emit(message: &WorkerMessage) {
    if let Ok(line) = serde_json::to_string(message) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }
}

/// A hidden progress bar whose position a thread reports as [`WorkerMessage::Progress`].
pub struct ProgressReporter {
    bar: ProgressBar,
    _reports: Ticker,
}

impl ProgressReporter {
    /// Starts reporting a run of `len` iterations, every half second while it moves.
    pub fn start(len: u64) -> Self {
        let bar = ProgressBar::hidden();
        bar.set_length(len);
        let watched = bar.clone();
        let mut last = None;
        let reports = Ticker::start(Duration::from_millis(500), move || {
            let now = (watched.position(), watched.message().to_string());
            if last.as_ref() != Some(&now) {
                emit(&WorkerMessage::Progress {
                    pos: now.0,
                    len: watched.length().unwrap_or(0),
                    msg: now.1.clone(),
                });
                last = Some(now);
            }
        });
        Self {
            bar,
            _reports: reports,
        }
    }

    /// The bar the training loop advances.
    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::grid::claim::LockOwner;

    #[test]
    fn messages_round_trip_through_one_line() {
        for message in [
            WorkerMessage::Progress {
                pos: 3,
                len: 10,
                msg: "epoch 1".into(),
            },
            WorkerMessage::Outcome(RunOutcome::Trained),
            WorkerMessage::Outcome(RunOutcome::Failed("diverged".into())),
            WorkerMessage::Outcome(RunOutcome::HeldBy(LockOwner {
                host: "h".into(),
                pid: 7,
                token: "t".into(),
                since: 1,
            })),
        ] {
            let line = serde_json::to_string(&message).unwrap();
            assert!(!line.contains('\n'));
            assert_eq!(WorkerMessage::parse(&line), Some(message));
        }
        assert_eq!(WorkerMessage::parse("candle says hello"), None);
    }
}
