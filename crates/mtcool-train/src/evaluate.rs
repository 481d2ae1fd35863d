//! Evaluation of one task on one split: its mean loss and the metrics of its kind (through
//! `mtcool-metrics`).
//!
//! | kind | metrics (keys without the `<task>/` prefix) |
//! |---|---|
//! | class | `accuracy`; two classes also `auroc`, `sensitivity`, `specificity`, `f1` |
//! | mask | `accuracy` (pixel accuracy); per scored region `<region>_dice`, `_iou`, `_f1`, `_accuracy` (plain `dice`, `iou`, `f1` for a binary task); `f1` (mean over regions) |
//! | box | `iou` (mean IoU of predicted and true boxes) |
//! | reconstruction | `mse` |
//!
//! Every key also has `loss`. Pixels labelled [`mtcool_data::dense::IGNORE`] and pixels
//! outside a split's valid mask (HRF's field of view) count in no pixel metric. Images larger
//! than the patch size of a patch-trained dataset are evaluated by overlapping sliding windows
//! whose logits are averaged.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor, D};
use mtcool_metrics::{AurocAccumulator, BinaryCounts, ConfusionMatrix};
use mtcool_models::{MultiTaskModel, SliceView};
use mtcool_optim::loss::task_loss;

use crate::data::{Dataset, SplitTensors, TaskKind};
use crate::error::Result;

/// Pixels per forward pass during evaluation (1,000 MNIST images).
pub const EVAL_PIXELS: usize = 1000 * 28 * 28;

/// Metric name → value, for one task and split.
pub type TaskMetrics = BTreeMap<String, f64>;

/// Streaming state of one evaluation.
struct Accumulator {
    kind: TaskKind,
    loss_sum: f64,
    count: usize,
    predictions: Vec<u32>,
    targets: Vec<u32>,
    scores: AurocAccumulator,
    confusion: Option<ConfusionMatrix>,
    regions: Vec<BinaryCounts>,
    iou_sum: f64,
}

impl Accumulator {
    fn new(kind: &TaskKind) -> Result<Self> {
        let (confusion, regions) = match kind {
            TaskKind::Mask { classes, regions } => (
                Some(
                    ConfusionMatrix::new(*classes)?
                        .with_ignore_label(u32::from(mtcool_data::dense::IGNORE)),
                ),
                vec![BinaryCounts::default(); regions.len()],
            ),
            _ => (None, Vec::new()),
        };
        Ok(Self {
            kind: kind.clone(),
            loss_sum: 0.0,
            count: 0,
            predictions: Vec::new(),
            targets: Vec::new(),
            scores: AurocAccumulator::new(),
            confusion,
            regions,
            iou_sum: 0.0,
        })
    }

    /// Adds one chunk: the model's `output`, the `target` (the normalised input for
    /// reconstruction) and the valid mask.
    fn add(&mut self, output: &Tensor, target: &Tensor, valid: Option<&Tensor>) -> Result<()> {
        let n = output.dim(0)?;
        self.loss_sum += task_loss(output, target)?.to_scalar::<f32>()? as f64 * n as f64;
        self.count += n;
        match &self.kind {
            TaskKind::Class { classes } => {
                self.predictions.extend(output.argmax(1)?.to_vec1::<u32>()?);
                let labels = target.to_vec1::<u32>()?;
                if *classes == 2 {
                    let p = candle_nn::ops::softmax(output, 1)?.narrow(1, 1, 1)?;
                    let p: Vec<f32> = p.flatten_all()?.to_vec1()?;
                    let positive: Vec<bool> = labels.iter().map(|&l| l == 1).collect();
                    self.scores.try_add(&p, &positive)?;
                }
                self.targets.extend(labels);
            }
            TaskKind::Mask { regions, .. } => {
                let pred: Vec<u32> = output.argmax(1)?.flatten_all()?.to_vec1()?;
                let truth: Vec<u32> = target.flatten_all()?.to_vec1()?;
                let ignore = u32::from(mtcool_data::dense::IGNORE);
                let inside: Vec<bool> = match valid {
                    Some(v) => v
                        .flatten_all()?
                        .to_vec1::<u8>()?
                        .iter()
                        .zip(&truth)
                        .map(|(&v, &t)| v != 0 && t != ignore)
                        .collect(),
                    None => truth.iter().map(|&t| t != ignore).collect(),
                };
                if let Some(cm) = &mut self.confusion {
                    cm.try_add_masked(&pred, &truth, &inside)?;
                }
                for ((_, classes), counts) in regions.iter().zip(&mut self.regions) {
                    let p: Vec<bool> = pred.iter().map(|c| classes.contains(c)).collect();
                    let t: Vec<bool> = truth.iter().map(|c| classes.contains(c)).collect();
                    counts.try_add_masked(&p, &t, &inside)?;
                }
            }
            TaskKind::BoundingBox => {
                let p: Vec<Vec<f32>> = output.to_dtype(DType::F32)?.to_vec2()?;
                let t: Vec<Vec<f32>> = target.to_vec2()?;
                self.iou_sum += p.iter().zip(&t).map(|(p, t)| box_iou(p, t)).sum::<f64>();
            }
            TaskKind::Reconstruction { .. } => {}
        }
        Ok(())
    }

    fn finish(mut self) -> Result<TaskMetrics> {
        let mut m = TaskMetrics::new();
        let loss = if self.count == 0 {
            0.0
        } else {
            self.loss_sum / self.count as f64
        };
        m.insert("loss".into(), loss);
        match &self.kind {
            TaskKind::Class { classes } => {
                m.insert(
                    "accuracy".into(),
                    mtcool_metrics::accuracy(&self.predictions, &self.targets),
                );
                if *classes == 2 {
                    let p: Vec<bool> = self.predictions.iter().map(|&c| c == 1).collect();
                    let t: Vec<bool> = self.targets.iter().map(|&c| c == 1).collect();
                    let counts = BinaryCounts::from_slices(&p, &t);
                    m.insert("sensitivity".into(), counts.sensitivity());
                    m.insert("specificity".into(), counts.specificity());
                    m.insert("f1".into(), counts.f1());
                    if self.scores.positives() > 0 && self.scores.negatives() > 0 {
                        m.insert("auroc".into(), self.scores.compute()?);
                    } else {
                        tracing::warn!("AUROC needs both classes among the targets; not reported");
                    }
                }
            }
            TaskKind::Mask { regions, .. } => {
                if let Some(cm) = &self.confusion {
                    m.insert("accuracy".into(), cm.pixel_accuracy());
                }
                for ((name, _), counts) in regions.iter().zip(&self.regions) {
                    let prefix = if name.is_empty() {
                        String::new()
                    } else {
                        format!("{name}_")
                    };
                    m.insert(format!("{prefix}dice"), counts.dice());
                    m.insert(format!("{prefix}iou"), counts.iou());
                    m.insert(format!("{prefix}f1"), counts.f1());
                    if !name.is_empty() {
                        m.insert(format!("{prefix}accuracy"), counts.accuracy());
                    }
                }
                if regions.len() > 1 {
                    let mean = self.regions.iter().map(BinaryCounts::f1).sum::<f64>()
                        / self.regions.len() as f64;
                    m.insert("f1".into(), mean);
                }
            }
            TaskKind::BoundingBox => {
                m.insert("iou".into(), self.iou_sum / self.count.max(1) as f64);
            }
            TaskKind::Reconstruction { .. } => {
                m.insert("mse".into(), loss);
            }
        }
        Ok(m)
    }
}

/// IoU of two boxes `[x0, y0, x1, y1]` (coordinates sorted first, so a degenerate prediction
/// scores 0 rather than failing).
pub fn box_iou(a: &[f32], b: &[f32]) -> f64 {
    let sorted = |v: &[f32]| {
        let (x0, x1) = (v[0].min(v[2]) as f64, v[0].max(v[2]) as f64);
        let (y0, y1) = (v[1].min(v[3]) as f64, v[1].max(v[3]) as f64);
        (x0, y0, x1, y1)
    };
    if a.len() < 4 || b.len() < 4 {
        return 0.0;
    }
    let (ax0, ay0, ax1, ay1) = sorted(a);
    let (bx0, by0, bx1, by1) = sorted(b);
    let iw = (ax1.min(bx1) - ax0.max(bx0)).max(0.0);
    let ih = (ay1.min(by1) - ay0.max(by0)).max(0.0);
    let inter = iw * ih;
    let union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Evaluates task `task` of `model` on `split` of `dataset`.
pub fn evaluate(
    model: &dyn MultiTaskModel,
    dataset: &Dataset,
    task: usize,
    split: &SplitTensors,
) -> Result<TaskMetrics> {
    let kind = &dataset.tasks[task].kind;
    let mut acc = Accumulator::new(kind)?;
    let dims = split.images.dims();
    let pixels = dims
        .get(2..)
        .map_or(1, |d| d.iter().product::<usize>())
        .max(1);
    let window = dataset.patches.as_ref().map(|p| (p.size, p.overlap));
    let tiled =
        window.is_some_and(|(size, _)| dims.len() == 4 && (dims[2] > size || dims[3] > size));
    let chunk = if tiled {
        1
    } else {
        (EVAL_PIXELS / pixels).max(1)
    };
    let view = SliceView::all();
    for start in (0..split.len).step_by(chunk) {
        let (raw, target, valid) = split.range(start, start + chunk)?;
        let x = dataset.normaliser.apply(&raw)?.detach();
        let output = match window {
            Some((size, overlap)) if tiled => sliding_window(model, task, &x, size, overlap)?,
            _ => model.forward_task(&x, task, &view)?.detach(),
        };
        let target = match target {
            Some(t) => t,
            None => x.clone(),
        };
        acc.add(&output, &target, valid.as_ref())?;
    }
    acc.finish()
}

/// The task's output for one image `(1, C, H, W)`, computed on overlapping `size × size`
/// windows (smaller where the image is) and averaged where windows overlap.
pub(crate) fn sliding_window(
    model: &dyn MultiTaskModel,
    task: usize,
    x: &Tensor,
    size: usize,
    overlap: usize,
) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let (th, tw) = (size.min(h), size.min(w));
    let ys = mtcool_data::transforms::tile_origins(h, th, overlap);
    let xs = mtcool_data::transforms::tile_origins(w, tw, overlap);
    let view = SliceView::all();
    let mut sum: Option<Tensor> = None;
    let mut count = vec![0f32; h * w];
    for &y0 in &ys {
        for &x0 in &xs {
            let tile = x.narrow(2, y0, th)?.narrow(3, x0, tw)?;
            let out = model.forward_task(&tile, task, &view)?.detach();
            let placed = out
                .pad_with_zeros(D::Minus2, y0, h - y0 - th)?
                .pad_with_zeros(D::Minus1, x0, w - x0 - tw)?;
            sum = Some(match sum {
                None => placed,
                Some(s) => (s + placed)?,
            });
            for y in y0..y0 + th {
                for c in &mut count[y * w + x0..y * w + x0 + tw] {
                    *c += 1.0;
                }
            }
        }
    }
    let Some(sum) = sum else {
        return Ok(model.forward_task(x, task, &view)?.detach());
    };
    let count = Tensor::from_vec(count, (1, 1, h, w), x.device())?;
    Ok(sum.broadcast_div(&count)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_iou_of_known_boxes() {
        assert_eq!(box_iou(&[0., 0., 1., 1.], &[0., 0., 1., 1.]), 1.0);
        let half = box_iou(&[0., 0., 0.5, 1.], &[0., 0., 1., 1.]);
        assert!((half - 0.5).abs() < 1e-9);
        assert_eq!(box_iou(&[0., 0., 0.2, 0.2], &[0.5, 0.5, 1., 1.]), 0.0);
        // Swapped corners are sorted first.
        assert_eq!(box_iou(&[1., 1., 0., 0.], &[0., 0., 1., 1.]), 1.0);
    }
}
