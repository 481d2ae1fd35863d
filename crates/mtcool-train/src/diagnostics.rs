//! Diagnostics MT-COOL's claim rests on, measured the same way for every method:
//!
//! - **gradient conflict**: the cosine between two tasks' gradients over the whole encoder
//!   (shared parameters and every task's slices), on a fixed probe batch, once per epoch;
//! - **flatness**: after training, each task's loss on a probe batch while the encoder
//!   parameters it does not own (the other tasks' slices under MT-COOL; the whole encoder
//!   under hard sharing) are perturbed with uniform noise of growing bound b. A flat task
//!   loss under such perturbations is what MT-COOL trains for.

use candle_core::{DType, Tensor, Var};
use mtcool_models::{MultiTaskModel, Sharing, SliceView};
use mtcool_optim::loss::task_loss;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::error::Result;

/// Which diagnostics a run records (`[diagnostics]` in a config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiagnosticsConfig {
    /// Log the task-gradient cosine after every epoch.
    pub gradient_conflict: bool,
    /// Noise bounds of the flatness probe (empty: no probe).
    pub flatness_bounds: Vec<f64>,
    /// Noise draws per bound.
    pub flatness_samples: usize,
    /// Images per task in the probe batch (the first ones of the validation split, or of the
    /// training split when there is no validation split).
    pub probe_size: usize,
}

impl Default for DiagnosticsConfig {
    fn default() -> Self {
        Self {
            gradient_conflict: true,
            flatness_bounds: vec![0.0, 0.005, 0.01, 0.02, 0.05, 0.1],
            flatness_samples: 3,
            probe_size: 512,
        }
    }
}

/// One point of the flatness probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlatnessPoint {
    /// The task whose loss is measured.
    pub task: String,
    /// Noise bound b.
    pub bound: f64,
    /// Mean loss over the noise draws.
    pub loss: f64,
    /// Sample standard deviation over the draws (0 for one draw).
    pub sd: f64,
}

/// The probe batch of every task: normalised inputs and targets. `size` counts 28 × 28
/// images; larger images are fewer, for the same number of pixels. Patch-trained datasets
/// probe on fixed patches (drawn with a seed of their own).
pub fn probe_batches(dataset: &Dataset, size: usize) -> Result<Vec<(Tensor, Tensor)>> {
    let fixed_patches = match &dataset.patches {
        Some(p) => {
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let count = (size * 28 * 28 / (p.size * p.size)).clamp(1, p.per_epoch);
            let set = mtcool_data::transforms::random_patches(&p.source, count, p.size, &mut rng)?;
            Some(crate::data::dense_split(&set, dataset.normaliser.device())?)
        }
        None => None,
    };
    dataset
        .tasks
        .iter()
        .enumerate()
        .map(|(t, task)| {
            let split = match &fixed_patches {
                Some(p) => &p[t],
                None if task.val.len > 0 => &task.val,
                None => &task.train,
            };
            let pixels: usize = split.images.dims()[2..].iter().product();
            let n = (size * 28 * 28 / pixels.max(1)).clamp(1, size.max(1));
            let (raw, target, _) = split.range(0, n.min(split.len))?;
            let x = dataset.normaliser.apply(&raw)?;
            let y = match target {
                Some(y) => y,
                None => x.clone(),
            };
            Ok((x, y))
        })
        .collect()
}

/// Every encoder parameter: shared ones and each task's slices.
fn encoder_vars(model: &dyn MultiTaskModel) -> Vec<Var> {
    let mut vars = model.shared_params();
    for t in 0..model.num_tasks() {
        vars.extend(model.encoder_params(t));
    }
    vars
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// Cosine between each pair of tasks' loss gradients over the encoder, as
/// `(task a, task b, cosine)` for a < b. `None` for independent networks (no common
/// parameters).
pub fn gradient_cosines(
    model: &dyn MultiTaskModel,
    probes: &[(Tensor, Tensor)],
) -> Result<Option<Vec<(usize, usize, f64)>>> {
    if model.sharing() == Sharing::Independent {
        return Ok(None);
    }
    let vars = encoder_vars(model);
    let view = SliceView::all();
    let mut grads: Vec<Vec<Tensor>> = Vec::with_capacity(probes.len());
    for (task, (x, y)) in probes.iter().enumerate() {
        let loss = task_loss(&model.forward_task(x, task, &view)?, y)?;
        let store = loss.backward()?;
        grads.push(
            vars.iter()
                .map(|v| match store.get(v) {
                    Some(g) => Ok(g.clone()),
                    None => v.as_tensor().zeros_like(),
                })
                .collect::<candle_core::Result<_>>()?,
        );
    }
    let dot = |a: &[Tensor], b: &[Tensor]| -> Result<f64> {
        let mut sum = 0.0;
        for (x, y) in a.iter().zip(b) {
            sum += scalar(&(x * y)?.sum_all()?)?;
        }
        Ok(sum)
    };
    let norms = grads
        .iter()
        .map(|g| dot(g, g).map(f64::sqrt))
        .collect::<Result<Vec<_>>>()?;
    let mut out = Vec::new();
    for a in 0..grads.len() {
        for b in a + 1..grads.len() {
            let denom = norms[a] * norms[b];
            let cos = if denom > 0.0 {
                dot(&grads[a], &grads[b])? / denom
            } else {
                0.0
            };
            out.push((a, b, cos));
        }
    }
    Ok(Some(out))
}

/// The encoder parameters that task `task` does not own.
fn foreign_vars(model: &dyn MultiTaskModel, task: usize) -> Vec<Var> {
    match model.sharing() {
        Sharing::Shared => model.shared_params(),
        Sharing::Partitioned => (0..model.num_tasks())
            .filter(|&s| s != task)
            .flat_map(|s| model.encoder_params(s))
            .collect(),
        Sharing::Independent => Vec::new(),
    }
}

/// The flatness probe (see the module docs); parameters are restored afterwards. Empty
/// for independent networks.
pub fn flatness(
    model: &dyn MultiTaskModel,
    task_names: &[String],
    probes: &[(Tensor, Tensor)],
    config: &DiagnosticsConfig,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<FlatnessPoint>> {
    let mut points = Vec::new();
    if model.sharing() == Sharing::Independent {
        return Ok(points);
    }
    let view = SliceView::all();
    for (task, (x, y)) in probes.iter().enumerate() {
        let vars = foreign_vars(model, task);
        let saved: Vec<Tensor> = vars
            .iter()
            .map(|v| v.as_tensor().copy())
            .collect::<candle_core::Result<_>>()?;
        for &bound in &config.flatness_bounds {
            let draws = if bound == 0.0 {
                1
            } else {
                config.flatness_samples.max(1)
            };
            let mut losses = Vec::with_capacity(draws);
            for _ in 0..draws {
                if bound > 0.0 {
                    for (var, orig) in vars.iter().zip(&saved) {
                        let noise: Vec<f32> = (0..orig.elem_count())
                            .map(|_| rng.random_range(-bound..=bound) as f32)
                            .collect();
                        let noise = Tensor::from_vec(noise, orig.shape(), orig.device())?
                            .to_dtype(orig.dtype())?;
                        var.set(&(orig + noise)?)?;
                    }
                }
                let logits = model.forward_task(&x.detach(), task, &view)?.detach();
                losses.push(scalar(&task_loss(&logits, y)?)?);
            }
            for (var, orig) in vars.iter().zip(&saved) {
                var.set(orig)?;
            }
            let (loss, sd) = mtcool_metrics::mean_std(&losses);
            points.push(FlatnessPoint {
                task: task_names.get(task).cloned().unwrap_or_default(),
                bound,
                loss,
                sd,
            });
        }
    }
    Ok(points)
}
