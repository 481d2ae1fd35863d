//! The error type of every fallible metric in this crate.

/// What can go wrong while computing a metric. Each variant says what the caller passed, so
/// that the message alone tells a user what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// Two slices that must pair up element by element have different lengths.
    #[error("length mismatch: {what} has {got} elements, expected {expected}")]
    LengthMismatch {
        /// Which argument disagrees (`"target"`, `"mask"`, `"labels"`, ...).
        what: &'static str,
        /// Its length.
        got: usize,
        /// The length of the slice it must match.
        expected: usize,
    },
    /// A label is not a class of the confusion matrix (and is not the ignore label).
    #[error("{what} label {label} at index {index} is out of range for {num_classes} classes")]
    LabelOutOfRange {
        /// `"pred"` or `"target"`.
        what: &'static str,
        /// The offending value.
        label: u32,
        /// Its position within the batch.
        index: usize,
        /// The number of classes of the matrix.
        num_classes: usize,
    },
    /// The number of classes is zero or too large for a dense confusion matrix.
    #[error(
        "invalid number of classes {0}: must be between 1 and {max}",
        max = crate::confusion::MAX_CLASSES
    )]
    InvalidNumClasses(usize),
    /// Two confusion matrices with different shapes or ignore labels cannot be merged.
    #[error("cannot merge confusion matrices: {0}")]
    Incompatible(String),
    /// A score passed to AUROC is NaN.
    #[error("score at index {index} is NaN")]
    NanScore {
        /// Its position within the batch.
        index: usize,
    },
    /// AUROC is undefined: the targets do not contain both classes.
    #[error(
        "AUROC is undefined with only one class present \
         ({positives} positives, {negatives} negatives)"
    )]
    SingleClass {
        /// Number of positive targets seen.
        positives: u64,
        /// Number of negative targets seen.
        negatives: u64,
    },
    /// An aggregation was asked for over no values.
    #[error("{0}: no values to aggregate")]
    Empty(&'static str),
    /// A Δm baseline value is zero or not finite, so the relative change is undefined.
    #[error("Δm term {index}: baseline {baseline} must be finite and non-zero")]
    InvalidBaseline {
        /// Position of the term.
        index: usize,
        /// The baseline value given.
        baseline: f64,
    },
    /// A value to aggregate is NaN or infinite.
    #[error("{what} {index}: value {value} is not finite")]
    NonFinite {
        /// What the value is (e.g. `"Δm term"`).
        what: &'static str,
        /// Its position.
        index: usize,
        /// The value.
        value: f64,
    },
}

/// Checks that `got` has the length `expected` of the slice it pairs with.
pub(crate) fn check_len(
    what: &'static str,
    got: usize,
    expected: usize,
) -> Result<(), MetricsError> {
    if got == expected {
        Ok(())
    } else {
        Err(MetricsError::LengthMismatch {
            what,
            got,
            expected,
        })
    }
}
