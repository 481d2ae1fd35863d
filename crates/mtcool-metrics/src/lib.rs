//! Evaluation metrics for mtcool, defined exactly as scikit-learn defines them (and checked
//! against it on committed fixtures), edge cases included. Pure Rust, no tensor library.
//!
//! - [`binary`]: Dice, IoU, F1, precision, sensitivity, specificity and accuracy of binary
//!   masks, as slice functions ([`dice`], [`iou`], ...) and as the streaming
//!   [`BinaryCounts`];
//! - [`confusion`]: the multi-class [`ConfusionMatrix`] with per-class, micro and macro
//!   averages, a field-of-view mask and an ignore label;
//! - [`auroc`](mod@auroc): exact, tie-aware AUROC ([`auroc()`](auroc()),
//!   [`AurocAccumulator`]);
//! - [`aggregate`]: mean ± sample sd over runs ([`mean_std`]) and Δm% ([`delta_m`]).
//!
//! Accumulators add one batch (an image, a minibatch) at a time and never hold every pixel,
//! except [`AurocAccumulator`], which keeps one score per counted pixel because exact AUROC
//! needs them. Their `try_` methods return [`MetricsError`] for bad input and leave the
//! accumulator unchanged; the slice functions panic on mismatched lengths, a programming error.
//!
//! **Edge cases** (see each module): a ratio whose denominator is 0 is 0, as scikit-learn's
//! default `zero_division` gives, so Dice and IoU of two empty masks are 0; averages run over
//! the classes present; AUROC with one class or a NaN score is an error; the sd of one run is 0.
//!
//! ```
//! use mtcool_metrics::{accuracy, auroc, dice, mean_std, ClassMetric, ConfusionMatrix};
//!
//! // Binary masks.
//! let pred = [true, true, false, false];
//! let target = [true, false, true, false];
//! assert_eq!(dice(&pred, &target), 0.5);
//!
//! // Class labels.
//! assert_eq!(accuracy(&[0, 1, 2], &[0, 1, 1]), 2.0 / 3.0);
//!
//! // A segmentation evaluated image by image, inside the field of view.
//! let mut cm = ConfusionMatrix::new(3)?;
//! for (p, t, fov) in [([0u8, 1, 2], [0u8, 1, 1], [true, true, true])] {
//!     cm.try_add_masked(&p, &t, &fov)?;
//! }
//! let mean_iou = cm.macro_average(ClassMetric::Iou);
//! assert!((mean_iou - (1.0 + 0.5 + 0.0) / 3.0).abs() < 1e-12);
//!
//! // Vessel probabilities.
//! assert_eq!(auroc(&[0.2, 0.9, 0.4], &[false, true, false])?, 1.0);
//!
//! // Over runs.
//! let (mean, sd) = mean_std(&[0.91, 0.93]);
//! assert!((mean - 0.92).abs() < 1e-12 && (sd - 0.02f64.sqrt() / 10.0).abs() < 1e-12);
//! # Ok::<(), mtcool_metrics::MetricsError>(())
//! ```

pub mod aggregate;
pub mod auroc;
pub mod binary;
pub mod confusion;
pub mod error;
pub mod paired;

pub use aggregate::{delta_m, delta_m_per_task, mean_std, DeltaTerm};
pub use auroc::{auroc, AurocAccumulator};
pub use binary::{accuracy, dice, f1, iou, precision, sensitivity, specificity, BinaryCounts};
pub use confusion::{ClassMetric, ConfusionMatrix, MAX_CLASSES};
pub use error::MetricsError;
pub use paired::{paired_difference, PairedDifference};
