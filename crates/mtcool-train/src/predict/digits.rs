//! Predictions of the digit and organ experiments: class probabilities of 28 × 28 images.

use std::path::Path;

use mtcool_data::image_io::read_gray;

use super::{class_rows, input_error, ClassRow, LoadedModel, Target};
use crate::data::TaskKind;
use crate::error::Result;

/// Every class task's probabilities for one 28 × 28 greyscale image (as the IDX files store
/// them: bright strokes on black for MNIST).
pub(crate) fn classify(
    loaded: &LoadedModel,
    path: &Path,
    target: &Target<'_>,
) -> Result<Vec<ClassRow>> {
    let image = read_gray(path)?;
    let (h, w) = image.dim();
    let want = (
        loaded.input_shape.get(1).copied(),
        loaded.input_shape.get(2).copied(),
    );
    if (Some(h), Some(w)) != want {
        return Err(input_error(
            path,
            format!(
                "is {w}×{h} pixels; this model reads {}×{} greyscale images",
                want.1.unwrap_or(28),
                want.0.unwrap_or(28)
            ),
        ));
    }
    let x = loaded.input(&image.insert_axis(ndarray::Axis(0)))?;
    let mut rows = Vec::new();
    for (t, kind) in loaded.kinds.iter().enumerate() {
        if matches!(kind, TaskKind::Class { .. }) {
            rows.extend(class_rows(loaded, target.file, t, &loaded.output(&x, t)?)?);
        }
    }
    Ok(rows)
}
