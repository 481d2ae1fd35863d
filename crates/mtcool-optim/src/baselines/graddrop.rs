//! `graddrop` (Chen et al., NeurIPS 2020): gradient sign dropout on the shared
//! representation. Per element of the representation, the sign purity
//! P = ½(1 + Σ_i s_i / Σ_i |s_i|) of the tasks' signals s_i = Σ_batch sign(z) ⊙ ∂L_i/∂z (LibMTL's
//! form, which also covers tasks with their own inputs) decides with one uniform draw U which
//! sign survives; task i's gradient keeps the elements of the surviving sign. With a leak
//! l_i, task i passes l_i g_i + (1 − l_i) · kept g_i. The encoder then gets the backward
//! pass of the summed kept gradients; heads get their plain gradients.

use std::collections::HashMap;

use candle_core::{Tensor, TensorId};
use mtcool_models::{MultiTaskModel, SliceView};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::graddrop;
use crate::error::{OptimError, Result};
use crate::gradients::{
    backward_through, leaf_tensors, loss_values, representation, task_loss, UpdateGrads,
};
use crate::method::{check_batches, Method, StepReport, TaskBatch};
use crate::optimizer::{Optimizer, OptimizerConfig};
use crate::state::{MethodState, VarNames};

/// Options of `graddrop`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GradDropConfig {
    /// Leak l_i per task (empty: 0 for every task).
    pub leak: Vec<f64>,
}

/// GradDrop.
#[derive(Debug)]
pub struct GradDrop {
    leak: Vec<f64>,
    optimiser: Optimizer,
}

impl GradDrop {
    /// GradDrop over every parameter of the hard-shared `model`.
    pub fn new(
        config: &GradDropConfig,
        model: &dyn MultiTaskModel,
        optimizer: impl Into<OptimizerConfig>,
    ) -> Result<Self> {
        let leak = super::per_task("graddrop", "leak", &config.leak, model.num_tasks(), 0.0)?;
        if leak.iter().any(|l| !(0.0..=1.0).contains(l)) {
            return Err(OptimError::Config {
                method: "graddrop".into(),
                problem: format!("leak values must lie in [0, 1], got {leak:?}"),
            });
        }
        Ok(Self {
            leak,
            optimiser: Optimizer::new(model.all_params(), optimizer),
        })
    }
}

/// Σ over the batch (dimension 0) of sign(z) ⊙ g, flattened (LibMTL's `GradDrop`).
fn batch_signal(z: &Tensor, g: &Tensor) -> Result<Vec<f32>> {
    Ok((z.sign()? * g)?
        .sum(0)?
        .flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?)
}

impl Method for GradDrop {
    fn name(&self) -> &str {
        "graddrop"
    }

    fn set_lr_scale(&mut self, scale: f64) {
        self.optimiser.set_lr_scale(scale);
    }

    fn state(&self, model: &dyn MultiTaskModel) -> Result<MethodState> {
        let names = VarNames::of(model)?;
        MethodState::of_parts(&names, &self.optimiser, &[], serde_json::Value::Null)
    }

    fn restore(&mut self, model: &dyn MultiTaskModel, state: &MethodState) -> Result<()> {
        let names = VarNames::of(model)?;
        state.restore_parts(&names, &mut self.optimiser, &[])?;
        Ok(())
    }

    fn step(
        &mut self,
        model: &dyn MultiTaskModel,
        batches: &[TaskBatch],
        rng: &mut ChaCha8Rng,
    ) -> Result<StepReport> {
        check_batches("graddrop", model, batches)?;
        let view = SliceView::all();
        let mut encoded: HashMap<TensorId, Vec<Tensor>> = HashMap::new();
        let mut reps = Vec::with_capacity(batches.len());
        let mut losses = Vec::with_capacity(batches.len());
        let mut task_leaves = Vec::with_capacity(batches.len());
        for (task, batch) in batches.iter().enumerate() {
            let key = batch.input.id();
            let z = match encoded.get(&key) {
                Some(z) => z.clone(),
                None => {
                    let z = representation(model, &batch.input, "graddrop")?;
                    encoded.insert(key, z.clone());
                    z
                }
            };
            let zl_tensors = leaf_tensors(&z)?;
            losses.push(task_loss(&model.decode(&zl_tensors, task, &view)?, batch)?);
            reps.push(z);
            task_leaves.push(zl_tensors);
        }
        let values = loss_values(&losses)?;
        let stores = crate::gradients::backward_each(&losses)?;
        // Each task's gradient w.r.t. its representation tensors.
        let mut rep_grads = Vec::with_capacity(batches.len());
        for (store, zl) in stores.iter().zip(&task_leaves) {
            rep_grads.push(
                zl.iter()
                    .map(|t| match store.get(t) {
                        Some(g) => Ok(g.clone()),
                        None => t.zeros_like(),
                    })
                    .collect::<candle_core::Result<Vec<_>>>()?,
            );
        }
        let pieces = reps.first().map_or(0, Vec::len);
        let mut kept: Vec<Vec<Tensor>> = vec![Vec::with_capacity(pieces); batches.len()];
        for j in 0..pieces {
            let signals = reps
                .iter()
                .zip(&rep_grads)
                .map(|(z, g)| batch_signal(&z[j], &g[j]))
                .collect::<Result<Vec<_>>>()?;
            let n = signals.first().map_or(0, Vec::len);
            let uniform: Vec<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
            let masks = graddrop::keep_mask(&signals, &uniform)?;
            for (task, mask) in masks.iter().enumerate() {
                let g = &rep_grads[task][j];
                let mask: Vec<f32> = mask.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
                let mask = Tensor::from_vec(mask, &g.dims()[1..], g.device())?
                    .to_dtype(g.dtype())?
                    .unsqueeze(0)?;
                let masked = g.broadcast_mul(&mask)?;
                let l = self.leak[task];
                let out = if l == 0.0 {
                    masked
                } else {
                    ((g * l)? + (masked * (1.0 - l))?)?
                };
                kept[task].push(out);
            }
        }
        let mut update = UpdateGrads::default();
        let z_all: Vec<Tensor> = reps.iter().flatten().cloned().collect();
        let r_all: Vec<Tensor> = kept.into_iter().flatten().collect();
        if let Some(encoder) = backward_through(&z_all, &r_all)? {
            for var in model.shared_params() {
                if let Some(g) = encoder.get(&var) {
                    update.set(&var, g.clone());
                }
            }
        }
        update.set_heads(model, &stores, None)?;
        self.optimiser.step_with(|v| update.get(v))?;
        Ok(StepReport {
            clamped_fraction: vec![None; values.len()],
            losses: values,
            task_weights: None,
        })
    }
}
