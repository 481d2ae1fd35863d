//! The candle side of gradient-manipulation methods: task losses, one backward pass per
//! task, the task gradients over the shared parameters (or the shared representation) as a
//! K×d matrix, its Gramian, and the combined update.
//!
//! Aggregators (`crate::aggregators`) only ever see the K×K Gramian and return weights α;
//! the update is then `d = Σ_i α_i g_i`, one small matmul on the device that holds G.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Shape, Tensor, TensorId, Var};
use mtcool_models::{MultiTaskModel, SliceView};
use nalgebra::DMatrix;

use crate::error::{OptimError, Result};
use crate::method::{finite_loss, TaskBatch};

/// Task `task`'s training loss for `logits` (the single place that maps a batch to a loss).
pub(crate) fn task_loss(logits: &Tensor, batch: &TaskBatch) -> Result<Tensor> {
    Ok(crate::loss::task_loss(logits, &batch.target)?)
}

/// Every task's loss with the full parameters. When the model exposes its shared
/// representation, tasks that share one input tensor share one encoder pass.
pub(crate) fn forward_losses(
    model: &dyn MultiTaskModel,
    batches: &[TaskBatch],
) -> Result<Vec<Tensor>> {
    let view = SliceView::all();
    let mut encoded: HashMap<TensorId, Vec<Tensor>> = HashMap::new();
    let mut losses = Vec::with_capacity(batches.len());
    for (task, batch) in batches.iter().enumerate() {
        let shared_input = batches
            .iter()
            .enumerate()
            .any(|(other, b)| other != task && b.input.id() == batch.input.id());
        let logits = if shared_input {
            let key = batch.input.id();
            if let std::collections::hash_map::Entry::Vacant(slot) = encoded.entry(key) {
                if let Some(z) = model.encode(&batch.input, &view)? {
                    slot.insert(z);
                }
            }
            match encoded.get(&key) {
                Some(z) => model.decode(z, task, &view)?,
                None => model.forward_task(&batch.input, task, &view)?,
            }
        } else {
            model.forward_task(&batch.input, task, &view)?
        };
        losses.push(task_loss(&logits, batch)?);
    }
    Ok(losses)
}

/// Loss values as f64, failing on the first non-finite one.
pub(crate) fn loss_values(losses: &[Tensor]) -> Result<Vec<f64>> {
    losses
        .iter()
        .enumerate()
        .map(|(task, loss)| finite_loss(loss, task))
        .collect()
}

/// One backward pass per task loss.
pub(crate) fn backward_each(losses: &[Tensor]) -> Result<Vec<GradStore>> {
    losses
        .iter()
        .map(|l| l.backward().map_err(OptimError::from))
        .collect()
}

/// K task gradients over a fixed list of tensors, flattened into the rows of one K×d matrix.
pub(crate) struct TaskGradients {
    matrix: Tensor,
    shapes: Vec<Shape>,
}

impl TaskGradients {
    /// Gathers `stores[i]`'s gradient of every tensor in `wrt` (zeros where a task has
    /// none) as row i.
    pub(crate) fn gather(stores: &[GradStore], wrt: &[Tensor]) -> Result<Self> {
        let shapes: Vec<Shape> = wrt.iter().map(|t| t.shape().clone()).collect();
        let mut rows = Vec::with_capacity(stores.len());
        for store in stores {
            let parts = wrt
                .iter()
                .map(|t| match store.get(t) {
                    Some(g) => g.flatten_all(),
                    None => t.zeros_like()?.flatten_all(),
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            rows.push(Tensor::cat(&parts, 0)?.to_dtype(DType::F32)?);
        }
        Ok(Self {
            matrix: Tensor::stack(&rows, 0)?,
            shapes,
        })
    }

    /// The K×d matrix G (f32).
    pub(crate) fn matrix(&self) -> &Tensor {
        &self.matrix
    }

    /// The same layout with another K×d matrix (a method's replacement of the gradients).
    pub(crate) fn with_matrix(&self, matrix: Tensor) -> Result<Self> {
        if matrix.dims() != self.matrix.dims() {
            return Err(OptimError::Config {
                method: "gradient method".into(),
                problem: format!(
                    "replacement gradients have shape {:?}, not {:?}",
                    matrix.dims(),
                    self.matrix.dims()
                ),
            });
        }
        Ok(Self {
            matrix: matrix.to_dtype(DType::F32)?,
            shapes: self.shapes.clone(),
        })
    }

    /// The cross Gramian G Hᵀ of two gatherings over the same tensors, in f64.
    pub(crate) fn cross_gramian(&self, other: &TaskGradients) -> Result<DMatrix<f64>> {
        let k = self.matrix.dim(0)?;
        let m = self
            .matrix
            .matmul(&other.matrix.t()?)?
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        Ok(DMatrix::from_row_slice(k, k, &m))
    }

    /// The Gramian G Gᵀ in f64 (computed in f32 on G's device).
    pub(crate) fn gramian(&self) -> Result<DMatrix<f64>> {
        self.cross_gramian(self)
    }

    /// `d = Σ_i α_i g_i`, split back into the shapes of the gathered tensors.
    pub(crate) fn combine(&self, alpha: &[f64]) -> Result<Vec<Tensor>> {
        let weights = alpha.iter().map(|&a| a as f32).collect::<Vec<_>>();
        let row = Tensor::from_vec(weights, (1, alpha.len()), self.matrix.device())?;
        let d = row.matmul(&self.matrix)?.squeeze(0)?;
        self.split(&d)
    }

    /// Splits a flat length-d vector into the gathered tensors' shapes.
    pub(crate) fn split(&self, flat: &Tensor) -> Result<Vec<Tensor>> {
        let mut offset = 0;
        let mut parts = Vec::with_capacity(self.shapes.len());
        for shape in &self.shapes {
            let n = shape.elem_count();
            parts.push(flat.narrow(0, offset, n)?.reshape(shape)?);
            offset += n;
        }
        Ok(parts)
    }
}

/// Scales `parts` so that their joint L2 norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`, without its 1e-6 epsilon).
pub(crate) fn clip_norm(parts: Vec<Tensor>, max_norm: f64) -> Result<Vec<Tensor>> {
    let mut sq = 0f64;
    for p in &parts {
        sq += p
            .sqr()?
            .sum_all()?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
    }
    let norm = sq.sqrt();
    if norm <= max_norm || norm == 0.0 {
        return Ok(parts);
    }
    let scale = max_norm / norm;
    parts
        .into_iter()
        .map(|p| (p * scale).map_err(OptimError::from))
        .collect()
}

/// The gradients a step hands to SGD, keyed by parameter.
#[derive(Default)]
pub(crate) struct UpdateGrads {
    grads: HashMap<TensorId, Tensor>,
}

impl UpdateGrads {
    /// Sets `var`'s gradient.
    pub(crate) fn set(&mut self, var: &Var, grad: Tensor) {
        self.grads.insert(var.as_tensor().id(), grad);
    }

    /// Adds `grad` to `var`'s gradient.
    pub(crate) fn add(&mut self, var: &Var, grad: Tensor) -> Result<()> {
        let id = var.as_tensor().id();
        let sum = match self.grads.remove(&id) {
            Some(prev) => (prev + grad)?,
            None => grad,
        };
        self.grads.insert(id, sum);
        Ok(())
    }

    /// Task heads (and any per-task parameters not shared): `weights[t]` × task t's own
    /// gradient. `weights = None` means 1 for every task.
    pub(crate) fn set_heads(
        &mut self,
        model: &dyn MultiTaskModel,
        stores: &[GradStore],
        weights: Option<&[f64]>,
    ) -> Result<()> {
        for (task, store) in stores.iter().enumerate() {
            let w = weights.map_or(1.0, |w| w[task]);
            for var in model.task_params(task) {
                if let Some(g) = store.get(&var) {
                    let g = if w == 1.0 { g.clone() } else { (g * w)? };
                    self.add(&var, g)?;
                }
            }
        }
        Ok(())
    }

    /// Adds every task's gradient of `vars` (method parameters such as learned loss scales).
    pub(crate) fn add_from_all(&mut self, vars: &[Var], stores: &[GradStore]) -> Result<()> {
        for store in stores {
            for var in vars {
                if let Some(g) = store.get(var) {
                    self.add(var, g.clone())?;
                }
            }
        }
        Ok(())
    }

    /// The gradient of `var`, if set.
    pub(crate) fn get(&self, var: &Var) -> Option<Tensor> {
        self.grads.get(&var.as_tensor().id()).cloned()
    }
}

/// The shared representation of `input` (the encode half of encode-once-decode-per-task), or
/// an error naming `method` when the model has none.
pub(crate) fn representation(
    model: &dyn MultiTaskModel,
    input: &Tensor,
    method: &str,
) -> Result<Vec<Tensor>> {
    model
        .encode(input, &SliceView::all())?
        .ok_or_else(|| OptimError::Config {
            method: method.into(),
            problem: "the model does not expose a shared representation".into(),
        })
}

/// Leaf copies of a representation ([`leaves`]) as tensors, ready for `decode`: a task's
/// backward pass from its head then stops there, with the gradient w.r.t. each leaf.
pub(crate) fn leaf_tensors(z: &[Tensor]) -> Result<Vec<Tensor>> {
    Ok(leaves(z)?.iter().map(|v| v.as_tensor().clone()).collect())
}

/// Detached copies of `tensors` as new leaf variables, so that a backward pass from the
/// heads stops at the representation.
pub(crate) fn leaves(tensors: &[Tensor]) -> Result<Vec<Var>> {
    tensors
        .iter()
        .map(|t| Var::from_tensor(&t.detach()).map_err(OptimError::from))
        .collect()
}

/// The sum of `terms`, or `None` when there are none.
pub(crate) fn sum_terms(terms: impl IntoIterator<Item = Result<Tensor>>) -> Result<Option<Tensor>> {
    let mut total: Option<Tensor> = None;
    for term in terms {
        let term = term?;
        total = Some(match total {
            None => term,
            Some(acc) => (acc + term)?,
        });
    }
    Ok(total)
}

/// The encoder gradients of `Σ_j ⟨z_j, r_j⟩` for representation tensors `z` and their chosen
/// output gradients `r` (constants): one backward pass through the encoder.
pub(crate) fn backward_through(z: &[Tensor], r: &[Tensor]) -> Result<Option<GradStore>> {
    let total = sum_terms(
        z.iter()
            .zip(r)
            .map(|(zj, rj)| Ok((zj * rj.detach())?.sum_all()?)),
    )?;
    match total {
        Some(t) => Ok(Some(t.backward()?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use candle_core::Device;

    #[test]
    fn gramian_and_combination_match_hand_values() {
        let a = Var::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let b = Var::new(&[[3f32]], &Device::Cpu).unwrap();
        // loss_1 = a·(1, 0) + 2b → g_1 = (1, 0, 2); loss_2 = a·(0, 1) − b → g_2 = (0, 1, −1)
        let l1 = (a.as_tensor().narrow(0, 0, 1).unwrap().sum_all().unwrap()
            + (b.as_tensor().sum_all().unwrap() * 2.0).unwrap())
        .unwrap();
        let l2 = (a.as_tensor().narrow(0, 1, 1).unwrap().sum_all().unwrap()
            - b.as_tensor().sum_all().unwrap())
        .unwrap();
        let stores = backward_each(&[l1, l2]).unwrap();
        let g = TaskGradients::gather(&stores, &[a.as_tensor().clone(), b.as_tensor().clone()])
            .unwrap();
        let m = g.gramian().unwrap();
        assert_eq!(m, DMatrix::from_row_slice(2, 2, &[5.0, -2.0, -2.0, 2.0]));
        let d = g.combine(&[0.5, 2.0]).unwrap();
        assert_eq!(d[0].to_vec1::<f32>().unwrap(), vec![0.5, 2.0]);
        assert_eq!(d[1].to_vec2::<f32>().unwrap(), vec![vec![-1.0]]);
    }

    #[test]
    fn clipping_scales_the_joint_norm() {
        let parts = vec![
            Tensor::new(&[3f32], &Device::Cpu).unwrap(),
            Tensor::new(&[4f32], &Device::Cpu).unwrap(),
        ];
        let clipped = clip_norm(parts, 1.0).unwrap();
        let v: Vec<f32> = clipped
            .iter()
            .map(|t| t.to_vec1::<f32>().unwrap()[0])
            .collect();
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
    }
}
