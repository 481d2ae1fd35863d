//! The common in-memory form of the image-to-image datasets (REFUGE, HRF-AV, pets): images
//! with one target per task, validated by the readers, ready for `mtcool-train` to upload.

use ndarray::{Array1, Array2, Array3, Array4, Axis};

/// What one task learns from an image.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// One class per image, `(N,)`, values in `0..classes`.
    Class {
        /// Class indices.
        labels: Array1<u8>,
        /// Number of classes.
        classes: usize,
    },
    /// One class per pixel, `(N, H, W)`, values in `0..classes`, or [`IGNORE`] where the
    /// pixel counts neither in the loss nor in the metrics (e.g. A/V crossings).
    Mask {
        /// Class maps.
        maps: Array3<u8>,
        /// Number of classes.
        classes: usize,
    },
    /// Real values per image, `(N, k)` (e.g. a head box as fractions of the image size).
    Values(Array2<f32>),
    /// Reconstruct the input image itself (no stored target).
    Reconstruction,
}

/// Pixel label that is ignored by losses and metrics.
pub const IGNORE: u8 = 255;

impl Target {
    /// The targets of the samples at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Target {
        match self {
            Target::Class { labels, classes } => Target::Class {
                labels: labels.select(Axis(0), indices),
                classes: *classes,
            },
            Target::Mask { maps, classes } => Target::Mask {
                maps: maps.select(Axis(0), indices),
                classes: *classes,
            },
            Target::Values(v) => Target::Values(v.select(Axis(0), indices)),
            Target::Reconstruction => Target::Reconstruction,
        }
    }

    /// Number of samples held (`None` for [`Target::Reconstruction`]).
    pub fn count(&self) -> Option<usize> {
        match self {
            Target::Class { labels, .. } => Some(labels.len()),
            Target::Mask { maps, .. } => Some(maps.dim().0),
            Target::Values(v) => Some(v.nrows()),
            Target::Reconstruction => None,
        }
    }
}

/// Images `(N, C, H, W)` as 8-bit values, with one named target per task, in task order.
/// Every task sees the same images.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseSet {
    /// Pixels, `(N, C, H, W)`.
    pub images: Array4<u8>,
    /// `(task name, target)` in task order.
    pub targets: Vec<(String, Target)>,
    /// Where metrics count, `(N, H, W)`, 1 inside (e.g. HRF's field-of-view masks); `None`:
    /// everywhere.
    pub valid: Option<Array3<u8>>,
}

impl DenseSet {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.images.dim().0
    }

    /// True when the set holds no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The samples at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> DenseSet {
        DenseSet {
            images: self.images.select(Axis(0), indices),
            targets: self
                .targets
                .iter()
                .map(|(n, t)| (n.clone(), t.select(indices)))
                .collect(),
            valid: self.valid.as_ref().map(|v| v.select(Axis(0), indices)),
        }
    }

    /// Checks that every target holds one entry per image and that masks match the image
    /// size; `what` names the set in the error.
    pub fn check(&self, what: &str) -> crate::Result<()> {
        let (n, _, h, w) = self.images.dim();
        let bad = |problem: String| crate::DataError::Split(format!("{what}: {problem}"));
        for (name, target) in &self.targets {
            if let Some(len) = target.count() {
                if len != n {
                    return Err(bad(format!(
                        "task `{name}` has {len} targets for {n} images"
                    )));
                }
            }
            if let Target::Mask { maps, .. } = target {
                if maps.dim() != (n, h, w) {
                    return Err(bad(format!(
                        "task `{name}` masks are {:?}, images {h}×{w}",
                        maps.dim()
                    )));
                }
            }
        }
        if let Some(v) = &self.valid {
            if v.dim() != (n, h, w) {
                return Err(bad(format!("valid mask is {:?}, images {h}×{w}", v.dim())));
            }
        }
        Ok(())
    }
}

/// Train, validation and test sets of one dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseSplits {
    /// Training samples.
    pub train: DenseSet,
    /// Validation samples (may be empty).
    pub val: DenseSet,
    /// Test samples.
    pub test: DenseSet,
}
