//! The error type of the trainer.

use std::path::PathBuf;

/// What can stop an experiment.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A dataset could not be read.
    #[error(transparent)]
    Data(#[from] mtcool_data::DataError),
    /// A training step failed (including a diverged loss).
    #[error(transparent)]
    Optim(#[from] mtcool_optim::OptimError),
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    /// A checkpoint could not be written or read, or does not fit its model.
    #[error(transparent)]
    Checkpoint(#[from] mtcool_models::checkpoint::CheckpointError),
    /// A metric could not be computed.
    #[error("metric: {0}")]
    Metric(#[from] mtcool_metrics::MetricsError),
    /// An experiment configuration is invalid.
    #[error("{path}: {problem}")]
    Config {
        /// The configuration file (or the option) at fault.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A results file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A results file exists but cannot be parsed.
    #[error("{path}: {problem}")]
    Results {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The run was interrupted by the user.
    #[error("interrupted")]
    Interrupted,
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, TrainError>;
