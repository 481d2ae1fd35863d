//! Methods that draw several independent gradient samples per step (SDMGrad and MoDo's
//! "double sampling"): the weights come from the cross Gramian G_a G_bᵀ of two samples, so
//! that their estimate is unbiased, and the update combines a third sample's gradients.
//!
//! LibMTL's trainer draws three mini-batches for such a step. Here each task's mini-batch is
//! split into three disjoint, consecutive parts of (nearly) equal size, so an epoch sees the
//! same data as every other method; give such a row three times the batch size to match the
//! reference's per-sample batch.

use std::collections::HashMap;

use candle_core::{Tensor, TensorId};
use mtcool_models::MultiTaskModel;
use nalgebra::DMatrix;
use rand_chacha::ChaCha8Rng;

use crate::error::{OptimError, Result};
use crate::gradient_method::check_task_weights;
use crate::gradients::{backward_each, forward_losses, loss_values, TaskGradients, UpdateGrads};
use crate::method::{check_batches, Method, StepReport, TaskBatch};
use crate::optimizer::{Optimizer, OptimizerConfig};
use crate::state::{MethodState, VarNames};

/// How many gradient samples a step draws.
pub const SAMPLES: usize = 3;

/// The weighting rule of a sampled method.
pub trait SampledRule: std::fmt::Debug {
    /// The method's name.
    fn name(&self) -> &'static str;

    /// The two samples (0-based, < [`SAMPLES`]) whose cross Gramian G_a G_bᵀ the rule reads.
    fn pair(&self) -> (usize, usize);

    /// The sample whose task gradients the update combines.
    fn update_sample(&self) -> usize;

    /// Each head's gradient is this times the sum of its gradients over the samples.
    fn head_scale(&self) -> f64;

    /// The weights α of the update Σ_i α_i g_i from the cross Gramian.
    fn combine(&mut self, cross: &DMatrix<f64>) -> Result<Vec<f64>>;

    /// What it remembers between steps, for resuming a run.
    fn memory(&self) -> Result<serde_json::Value>;

    /// Restores what [`SampledRule::memory`] gave.
    fn restore_memory(&mut self, memory: &serde_json::Value) -> Result<()>;
}

/// A [`Method`] made of a [`SampledRule`] and the run's optimiser over the hard-shared model.
#[derive(Debug)]
pub struct SampledMethod<R: SampledRule> {
    rule: R,
    optimiser: Optimizer,
}

impl<R: SampledRule> SampledMethod<R> {
    /// The method over every parameter of `model`.
    pub fn new(rule: R, model: &dyn MultiTaskModel, optimizer: impl Into<OptimizerConfig>) -> Self {
        Self {
            rule,
            optimiser: Optimizer::new(model.all_params(), optimizer),
        }
    }

    /// The rule.
    pub fn rule(&self) -> &R {
        &self.rule
    }
}

/// Splits every task's batch into [`SAMPLES`] consecutive parts; tasks that share one input
/// tensor keep sharing each part, so the model still encodes it once.
pub(crate) fn split_batches(method: &str, batches: &[TaskBatch]) -> Result<Vec<Vec<TaskBatch>>> {
    let mut parts: Vec<Vec<TaskBatch>> = (0..SAMPLES).map(|_| Vec::new()).collect();
    let mut inputs: HashMap<TensorId, Vec<Tensor>> = HashMap::new();
    for (task, batch) in batches.iter().enumerate() {
        let n = batch.input.dim(0)?;
        if n < SAMPLES {
            return Err(OptimError::Config {
                method: method.into(),
                problem: format!(
                    "task {task}'s batch has {n} samples; this method splits each batch into \
                     {SAMPLES} parts, so it needs at least {SAMPLES}"
                ),
            });
        }
        let bounds: Vec<usize> = (0..=SAMPLES).map(|s| s * n / SAMPLES).collect();
        let input_parts = match inputs.get(&batch.input.id()) {
            Some(done) => done.clone(),
            None => {
                let split = (0..SAMPLES)
                    .map(|s| batch.input.narrow(0, bounds[s], bounds[s + 1] - bounds[s]))
                    .collect::<candle_core::Result<Vec<_>>>()?;
                inputs.insert(batch.input.id(), split.clone());
                split
            }
        };
        for (s, input) in input_parts.into_iter().enumerate() {
            let target = batch
                .target
                .narrow(0, bounds[s], bounds[s + 1] - bounds[s])?;
            parts[s].push(TaskBatch { input, target });
        }
    }
    Ok(parts)
}

impl<R: SampledRule> Method for SampledMethod<R> {
    fn name(&self) -> &str {
        self.rule.name()
    }

    fn set_lr_scale(&mut self, scale: f64) {
        self.optimiser.set_lr_scale(scale);
    }

    fn state(&self, model: &dyn MultiTaskModel) -> Result<MethodState> {
        let names = VarNames::of(model)?;
        MethodState::of_parts(&names, &self.optimiser, &[], self.rule.memory()?)
    }

    fn restore(&mut self, model: &dyn MultiTaskModel, state: &MethodState) -> Result<()> {
        let names = VarNames::of(model)?;
        let memory = state.restore_parts(&names, &mut self.optimiser, &[])?;
        self.rule.restore_memory(&memory)
    }

    fn step(
        &mut self,
        model: &dyn MultiTaskModel,
        batches: &[TaskBatch],
        _rng: &mut ChaCha8Rng,
    ) -> Result<StepReport> {
        let name = self.rule.name();
        check_batches(name, model, batches)?;
        let shared = model.shared_params();
        let shared_tensors: Vec<Tensor> = shared.iter().map(|v| v.as_tensor().clone()).collect();
        let mut gradients = Vec::with_capacity(SAMPLES);
        let mut stores = Vec::with_capacity(SAMPLES);
        let mut losses = vec![0.0; batches.len()];
        for part in split_batches(name, batches)? {
            let part_losses = forward_losses(model, &part)?;
            for (total, value) in losses.iter_mut().zip(loss_values(&part_losses)?) {
                *total += value / SAMPLES as f64;
            }
            let part_stores = backward_each(&part_losses)?;
            gradients.push(TaskGradients::gather(&part_stores, &shared_tensors)?);
            stores.push(part_stores);
        }
        let (a, b) = self.rule.pair();
        let alpha = self
            .rule
            .combine(&gradients[a].cross_gramian(&gradients[b])?)?;
        check_task_weights(name, "shared", &alpha, batches.len())?;
        let mut update = UpdateGrads::default();
        let d = gradients[self.rule.update_sample()].combine(&alpha)?;
        for (var, grad) in shared.iter().zip(d) {
            update.set(var, grad);
        }
        let head_scale = vec![self.rule.head_scale(); batches.len()];
        for part_stores in &stores {
            update.set_heads(model, part_stores, Some(&head_scale))?;
        }
        self.optimiser.step_with(|v| update.get(v))?;
        Ok(StepReport {
            clamped_fraction: vec![None; losses.len()],
            losses,
            task_weights: Some(alpha),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use candle_core::Device;

    #[test]
    fn batches_split_into_three_consecutive_parts_and_shared_inputs_stay_shared() {
        let input = Tensor::arange(0f32, 7.0, &Device::Cpu).unwrap();
        let target = Tensor::arange(0u32, 7, &Device::Cpu).unwrap();
        let batch = TaskBatch {
            input: input.clone(),
            target: target.clone(),
        };
        let parts = split_batches("t", &[batch.clone(), batch]).unwrap();
        let sizes: Vec<usize> = parts.iter().map(|p| p[0].input.dim(0).unwrap()).collect();
        assert_eq!(sizes, vec![2, 2, 3]);
        assert_eq!(parts[2][0].target.to_vec1::<u32>().unwrap(), vec![4, 5, 6]);
        for part in &parts {
            assert_eq!(part[0].input.id(), part[1].input.id());
        }
        let small = TaskBatch {
            input: input.narrow(0, 0, 2).unwrap(),
            target: target.narrow(0, 0, 2).unwrap(),
        };
        let err = split_batches("t", &[small]).unwrap_err().to_string();
        assert!(err.contains("at least 3"), "{err}");
    }
}
