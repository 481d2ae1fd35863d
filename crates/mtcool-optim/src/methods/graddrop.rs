//! `graddrop` (Chen et al., NeurIPS 2020): gradient sign dropout on the shared
//! representation. Per element of the representation, the sign purity
//! P = ½(1 + Σ_i s_i / Σ_i |s_i|) of the tasks' signals s_i = Σ_batch sign(z) ⊙ ∂L_i/∂z (LibMTL's
//! form, which also covers tasks with their own inputs) decides with one uniform draw U which
//! sign survives; task i's gradient keeps the elements of the surviving sign. With a leak
//! l_i, task i passes l_i g_i + (1 − l_i) · kept g_i. The encoder then gets the backward
//! pass of the summed kept gradients; heads get their plain gradients.
//!
//! # The rule
//!
//! Per element, with s_i task i's signal: P = ½(1 + Σ_i s_i / Σ_i |s_i|) (the "positive sign
//! purity"), U ~ Uniform(0, 1); task i's gradient is kept where (P > U and s_i > 0) or
//! (P < U and s_i < 0). With leak l_i, task i's gradient becomes l_i g_i + (1 − l_i) M_i g_i
//! with M_i the 0/1 keep mask ([`leak_multipliers`]), and the update is the sum over tasks.
//!
//! The signals: when the whole batch is shared by all tasks, the mask is per element of the
//! representation (not per sample) and the purity is taken over the batch. LibMTL
//! (`weighting/GradDrop.py`) forms s_i = Σ_batch sign(A) ⊙ ∂L_i/∂A, the task gradient
//! w.r.t. the representation A multiplied by the **sign** of A (not by A itself) and summed
//! over the batch dimension; [`signals`] computes exactly that. The mask is then broadcast
//! over the batch.

use std::collections::HashMap;

use candle_core::{Tensor, TensorId};
use mtcool_models::{MultiTaskModel, SliceView};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::fail;
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
            let masks = keep_mask(&signals, &uniform)?;
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

const METHOD: &str = "graddrop";

/// The keep masks: `mask[i][e]` is whether task i's gradient survives at element e.
///
/// `signed` has one row of n signals per task (see [`signals`]); `uniform` has the n draws
/// U ~ Uniform(0, 1) (draw them from the run's RNG). Where Σ_i |s_i| = 0, P = ½ (LibMTL
/// adds 1e-7 to the denominator, which differs only for signals that small). Elements with
/// s_i = 0 are never kept (they carry no gradient anyway). Fails on ragged rows, a length
/// mismatch, no tasks, or non-finite values.
pub fn keep_mask(signed: &[Vec<f32>], uniform: &[f32]) -> Result<Vec<Vec<bool>>> {
    let Some(first) = signed.first() else {
        return Err(fail(METHOD, "no tasks"));
    };
    let n = first.len();
    if let Some((i, row)) = signed.iter().enumerate().find(|(_, r)| r.len() != n) {
        return Err(fail(
            METHOD,
            format!("task {i} has {} signal elements, task 0 has {n}", row.len()),
        ));
    }
    if uniform.len() != n {
        return Err(fail(
            METHOD,
            format!("{} uniform draws for {n} elements", uniform.len()),
        ));
    }
    if signed
        .iter()
        .flatten()
        .chain(uniform)
        .any(|v| !v.is_finite())
    {
        return Err(fail(METHOD, "a signal or uniform draw is not finite"));
    }
    let mut masks = vec![vec![false; n]; signed.len()];
    for (e, &u) in uniform.iter().enumerate() {
        let (sum, abs) = signed.iter().fold((0.0_f64, 0.0_f64), |(s, a), row| {
            let v = f64::from(row[e]);
            (s + v, a + v.abs())
        });
        let p = if abs > 0.0 {
            0.5 * (1.0 + sum / abs)
        } else {
            0.5
        };
        let u = f64::from(u);
        for (mask, row) in masks.iter_mut().zip(signed) {
            let s = row[e];
            mask[e] = (p > u && s > 0.0) || (p < u && s < 0.0);
        }
    }
    Ok(masks)
}

/// Per-task, per-element gradient multipliers l_i + (1 − l_i) · \[kept\]: task i's
/// representation gradient times these (broadcast over the batch) is
/// l_i g_i + (1 − l_i) M_i g_i. `leaks` has one l_i per task (0 = plain GradDrop), each in
/// [0, 1].
pub fn leak_multipliers(masks: &[Vec<bool>], leaks: &[f32]) -> Result<Vec<Vec<f32>>> {
    if masks.len() != leaks.len() {
        return Err(fail(
            METHOD,
            format!("{} leaks for {} tasks", leaks.len(), masks.len()),
        ));
    }
    if let Some((i, l)) = leaks
        .iter()
        .enumerate()
        .find(|(_, l)| !(0.0..=1.0).contains(*l))
    {
        return Err(fail(METHOD, format!("leak {i} is {l}, not in [0, 1]")));
    }
    Ok(masks
        .iter()
        .zip(leaks)
        .map(|(mask, &l)| {
            mask.iter()
                .map(|&kept| if kept { 1.0 } else { l })
                .collect()
        })
        .collect())
}

/// LibMTL's sign signal of one task: s_e = Σ_b sign(A_{b,e}) · G_{b,e} over the batch, for a
/// representation `rep` and its task gradient `grad`, both `batch` × n in row-major order.
/// sign(0) = 0, as `torch.sign`.
pub fn signals(rep: &[f32], grad: &[f32], batch: usize) -> Result<Vec<f32>> {
    if rep.len() != grad.len() {
        return Err(fail(
            METHOD,
            format!(
                "representation has {} values, gradient {}",
                rep.len(),
                grad.len()
            ),
        ));
    }
    if batch == 0 || rep.len().checked_rem(batch) != Some(0) {
        return Err(fail(
            METHOD,
            format!("{} values do not split into {batch} samples", rep.len()),
        ));
    }
    let n = rep.len() / batch;
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut out = vec![0.0_f32; n];
    for (r_row, g_row) in rep.chunks_exact(n).zip(grad.chunks_exact(n)) {
        for ((o, &r), &g) in out.iter_mut().zip(r_row).zip(g_row) {
            let sign = if r > 0.0 {
                1.0
            } else if r < 0.0 {
                -1.0
            } else {
                0.0
            };
            *o += sign * g;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn draws(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.random::<f32>()).collect()
    }

    #[test]
    fn unanimous_elements() {
        // Element 0: every task positive (P = 1 > U): kept for all. Element 1: every task
        // negative (P = 0 < U for U > 0): kept for all. Element 2: all zero: kept for none.
        let signed = vec![vec![1.0, -2.0, 0.0], vec![3.0, -0.5, 0.0]];
        for seed in 0..20 {
            let mut u = draws(3, seed);
            u[1] = u[1].max(1e-6);
            let m = keep_mask(&signed, &u).unwrap();
            assert_eq!(m, vec![vec![true, true, false], vec![true, true, false]]);
        }
    }

    #[test]
    fn mixed_signs_keep_one_side() {
        // s = (3, −1): P = ½(1 + 2/4) = 0.75.
        let signed = vec![vec![3.0], vec![-1.0]];
        let m = keep_mask(&signed, &[0.5]).unwrap();
        assert_eq!(m, vec![vec![true], vec![false]]);
        let m = keep_mask(&signed, &[0.9]).unwrap();
        assert_eq!(m, vec![vec![false], vec![true]]);
        // Over many draws the positive task survives with probability P = 0.75.
        let u = draws(20_000, 1);
        let signed = vec![vec![3.0; 20_000], vec![-1.0; 20_000]];
        let m = keep_mask(&signed, &u).unwrap();
        let rate = m[0].iter().filter(|k| **k).count() as f64 / 20_000.0;
        assert!((rate - 0.75).abs() < 0.02, "{rate}");
        assert!(m[0].iter().zip(&m[1]).all(|(a, b)| a != b));
    }

    #[test]
    fn leak_and_signals() {
        let masks = vec![vec![true, false], vec![false, true]];
        let mult = leak_multipliers(&masks, &[0.0, 0.25]).unwrap();
        assert_eq!(mult, vec![vec![1.0, 0.0], vec![0.25, 1.0]]);
        assert!(leak_multipliers(&masks, &[0.0]).is_err());
        assert!(leak_multipliers(&masks, &[0.0, 1.5]).is_err());
        // Batch of 2, n = 3: sign(A) ⊙ G summed over the batch.
        let rep = [1.0, -2.0, 0.0, 0.5, 3.0, -1.0];
        let grad = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
        let s = signals(&rep, &grad, 2).unwrap();
        let expected = [0.1 + 0.4, -0.2 + 0.5, 0.0 - 0.6];
        assert!(s.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-6));
        assert!(signals(&rep, &grad[..5], 2).is_err());
        assert!(signals(&rep, &grad, 4).is_err());
        assert!(signals(&rep, &grad, 0).is_err());
        assert!(signals(&[], &[], 3).unwrap().is_empty());
    }

    #[test]
    fn bad_inputs() {
        assert!(keep_mask(&[], &[]).is_err());
        assert!(keep_mask(&[vec![1.0], vec![1.0, 2.0]], &[0.5]).is_err());
        assert!(keep_mask(&[vec![1.0]], &[0.5, 0.5]).is_err());
        assert!(keep_mask(&[vec![f32::NAN]], &[0.5]).is_err());
        assert!(keep_mask(&[vec![1.0]], &[f32::INFINITY]).is_err());
        assert_eq!(keep_mask(&[vec![]], &[]).unwrap(), vec![Vec::<bool>::new()]);
    }
}
