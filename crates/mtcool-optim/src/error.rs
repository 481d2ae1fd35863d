//! The error type of training steps.

/// What can stop a training step.
#[derive(Debug, thiserror::Error)]
pub enum OptimError {
    /// A tensor operation failed (shape, device or backend error).
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    /// A task's loss became NaN or infinite: the run has diverged.
    #[error("task {task}'s loss is {value}: training diverged (try a smaller learning rate)")]
    NonFiniteLoss {
        /// Index of the task.
        task: usize,
        /// The loss value.
        value: f64,
    },
    /// A method's configuration cannot be used.
    #[error("invalid configuration of `{method}`: {problem}")]
    Config {
        /// The method.
        method: String,
        /// What is wrong.
        problem: String,
    },
    /// An aggregation rule got inputs it cannot use (bad shape, NaN/inf, singular system).
    #[error("`{method}` cannot aggregate: {problem}")]
    Aggregator {
        /// The method, e.g. `"mgda"`.
        method: &'static str,
        /// What is wrong, in one line.
        problem: String,
    },
    /// A saved state does not fit this method (resuming a run).
    #[error("saved method state does not fit: {problem}")]
    State {
        /// What is wrong, in one line.
        problem: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, OptimError>;
