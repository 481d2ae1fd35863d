//! The error type of every reader in this crate.

use std::path::PathBuf;

/// What can go wrong while reading a dataset. Every variant names the file involved, so that
/// the message alone tells a user what to fix.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A dataset file the reader needs is not there.
    #[error("{path}: file not found ({hint})")]
    Missing {
        /// The expected file.
        path: PathBuf,
        /// How to obtain it.
        hint: String,
    },
    /// The file exists but its content is not what the format requires.
    #[error("{path}: {problem}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, in a few words.
        problem: String,
    },
    /// Files that belong together disagree with each other (e.g. image and label counts).
    #[error("{path}: {problem}")]
    Mismatch {
        /// The file found to disagree.
        path: PathBuf,
        /// What disagrees.
        problem: String,
    },
    /// The requested split or task definition cannot be satisfied by the data.
    #[error("invalid task split: {0}")]
    Split(String),
}

impl DataError {
    pub(crate) fn format(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, DataError>;
