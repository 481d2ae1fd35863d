//! The error type of the report crate.

use std::path::PathBuf;

/// What can stop a report or a regression check. Every variant names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A results file could not be read, parsed or written.
    #[error(transparent)]
    Results(#[from] mtcool_train::TrainError),
    /// A file exists but its content is not what it should be, or a figure could not be drawn.
    #[error("{path}: {problem}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A baseline does not fit the results it is compared with.
    #[error("{0}")]
    Mismatch(String),
}

impl ReportError {
    pub(crate) fn file(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        ReportError::File {
            path: path.into(),
            problem: problem.into(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ReportError>;
