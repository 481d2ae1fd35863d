//! Evaluation of a task on a split: mean loss and accuracy (through `mtcool-metrics`).

use mtcool_models::{MultiTaskModel, SliceView};
use mtcool_optim::loss::cross_entropy;

use crate::data::SplitTensors;
use crate::error::Result;

/// Samples per forward pass during evaluation.
pub const EVAL_BATCH: usize = 1000;

/// Loss and accuracy of one task on one split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction of correct predictions.
    pub accuracy: f64,
}

/// Evaluates `task` of `model` on `split`.
pub fn evaluate(
    model: &dyn MultiTaskModel,
    task: usize,
    split: &SplitTensors,
) -> Result<Evaluation> {
    let view = SliceView::all();
    let mut predictions: Vec<u32> = Vec::with_capacity(split.len);
    let mut targets: Vec<u32> = Vec::with_capacity(split.len);
    let mut loss_sum = 0.0;
    for start in (0..split.len).step_by(EVAL_BATCH) {
        let (x, y) = split.range(start, start + EVAL_BATCH)?;
        let logits = model.forward_task(&x.detach(), task, &view)?.detach();
        let n = y.dims()[0] as f64;
        loss_sum += cross_entropy(&logits, &y)?.to_scalar::<f32>()? as f64 * n;
        predictions.extend(logits.argmax(1)?.to_vec1::<u32>()?);
        targets.extend(y.to_vec1::<u32>()?);
    }
    Ok(Evaluation {
        loss: if split.len == 0 {
            0.0
        } else {
            loss_sum / split.len as f64
        },
        accuracy: mtcool_metrics::accuracy(&predictions, &targets),
    })
}
