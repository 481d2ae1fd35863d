//! `gradnorm` (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018, "GradNorm: Gradient
//! Normalization for Adaptive Loss Balancing"; LibMTL `weighting/GradNorm.py`, whose form
//! and default α = 1.5 these are).
//!
//! Loss weights w = K · softmax(s) with learned logits s (trained by the run's optimiser, like
//! the network). In the first epoch the step is Joint's and the epoch's mean training losses
//! become the reference L_i(0). From the second epoch, with n_i = ‖g_i‖ over the shared
//! parameters:
//!
//! ```text
//! G_i = w_i n_i,  Ḡ = mean_i G_i,  r_i = L̃_i / mean_j L̃_j,  L̃_i = L_i / L_i(0)
//! L_grad = Σ_i |G_i − Ḡ r_i^α|            (Ḡ r_i^α held constant)
//! s ← optimiser step on ∂L_grad/∂s;  shared update Σ_i w_i g_i;  heads: plain gradients
//! ```
//!
//! The paper takes n_i at the last shared layer and renormalises raw weights to sum to K;
//! LibMTL's form (all shared parameters, softmax parametrisation) is the one followed here.

use candle_core::{DType, Device, Tensor, Var};
use nalgebra::DMatrix;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::{check_finite, check_gramian, fail};
use crate::error::Result;
use crate::gradient_method::{Aggregator, Combination};
use crate::state::{from_memory, to_memory};

const METHOD: &str = "gradnorm";

/// Options of `gradnorm` (LibMTL's default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GradNormConfig {
    /// α, the strength of the force pulling the tasks to a common training rate.
    pub alpha: f64,
}

impl Default for GradNormConfig {
    fn default() -> Self {
        Self { alpha: 1.5 }
    }
}

/// The loss weights K · softmax(s).
pub fn loss_weights(logits: &[f64]) -> Vec<f64> {
    let k = logits.len() as f64;
    crate::methods::rlw::softmax(logits)
        .iter()
        .map(|z| k * z)
        .collect()
}

/// L_grad and its gradient with respect to the logits s, from the task-gradient norms n_i,
/// the losses relative to their first-epoch means L̃_i, and α (see the module docs). At a
/// kink (G_i exactly on its target) the sign is taken as 0, as PyTorch's `abs` does.
pub fn balance_loss(
    logits: &[f64],
    norms: &[f64],
    relative_losses: &[f64],
    alpha: f64,
) -> Result<(f64, Vec<f64>)> {
    let k = logits.len();
    check_finite(METHOD, "logits", logits, k)?;
    check_finite(METHOD, "gradient norms", norms, k)?;
    check_finite(METHOD, "relative losses", relative_losses, k)?;
    let z = crate::methods::rlw::softmax(logits);
    let w: Vec<f64> = z.iter().map(|zi| k as f64 * zi).collect();
    let g: Vec<f64> = (0..k).map(|i| w[i] * norms[i]).collect();
    let g_mean = g.iter().sum::<f64>() / k as f64;
    let l_mean = relative_losses.iter().sum::<f64>() / k as f64;
    if l_mean.is_nan() || l_mean <= 0.0 {
        return Err(fail(
            METHOD,
            "the relative losses must have a positive mean",
        ));
    }
    let mut loss = 0.0;
    let mut by_weight = vec![0.0; k];
    for i in 0..k {
        let target = g_mean * (relative_losses[i] / l_mean).powf(alpha);
        let gap = g[i] - target;
        loss += gap.abs();
        let sign = if gap > 0.0 {
            1.0
        } else if gap < 0.0 {
            -1.0
        } else {
            0.0
        };
        by_weight[i] = sign * norms[i];
    }
    // ∂w_i/∂s_j = K z_i (δ_ij − z_j).
    let weighted: f64 = (0..k).map(|i| by_weight[i] * z[i]).sum();
    let by_logit = (0..k)
        .map(|j| k as f64 * z[j] * (by_weight[j] - weighted))
        .collect();
    Ok((loss, by_logit))
}

/// GradNorm.
#[derive(Debug)]
pub struct GradNorm {
    alpha: f64,
    logits: Var,
    epoch: usize,
    first_epoch_sums: Vec<f64>,
    first_epoch_steps: usize,
    reference: Option<Vec<f64>>,
    pending: Option<Vec<f64>>,
}

impl GradNorm {
    /// Logits s = 1 (uniform weights) on `device`.
    pub fn new(config: &GradNormConfig, tasks: usize, device: &Device) -> Result<Self> {
        if !(config.alpha.is_finite() && config.alpha >= 0.0) {
            return Err(fail(
                METHOD,
                format!("alpha must be ≥ 0, got {}", config.alpha),
            ));
        }
        Ok(Self {
            alpha: config.alpha,
            logits: Var::ones(tasks, DType::F32, device)?,
            epoch: 0,
            first_epoch_sums: vec![0.0; tasks],
            first_epoch_steps: 0,
            reference: None,
            pending: None,
        })
    }

    fn logit_values(&self) -> Result<Vec<f64>> {
        Ok(self
            .logits
            .as_tensor()
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?)
    }
}

impl Aggregator for GradNorm {
    fn name(&self) -> &'static str {
        METHOD
    }

    fn extra_vars(&self) -> Vec<Var> {
        vec![self.logits.clone()]
    }

    fn begin_epoch(&mut self, epoch: usize) {
        self.epoch = epoch;
        if epoch >= 1 && self.reference.is_none() && self.first_epoch_steps > 0 {
            let n = self.first_epoch_steps as f64;
            self.reference = Some(self.first_epoch_sums.iter().map(|s| s / n).collect());
        }
    }

    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        losses: &[f64],
        _rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        let k = check_gramian(METHOD, gramian)?;
        check_finite(METHOD, "losses", losses, k)?;
        let Some(reference) = self.reference.as_ref().filter(|_| self.epoch >= 1) else {
            for (sum, loss) in self.first_epoch_sums.iter_mut().zip(losses) {
                *sum += loss;
            }
            self.first_epoch_steps += 1;
            return Ok(Combination::shared(vec![1.0; k]));
        };
        let relative: Vec<f64> = losses
            .iter()
            .zip(reference)
            .map(|(l, r)| if *r > 0.0 { l / r } else { 1.0 })
            .collect();
        let norms: Vec<f64> = (0..k).map(|i| gramian[(i, i)].sqrt()).collect();
        let logits = self.logit_values()?;
        let (_, gradient) = balance_loss(&logits, &norms, &relative, self.alpha)?;
        self.pending = Some(gradient);
        Ok(Combination::shared(loss_weights(&logits)))
    }

    fn extra_var_grads(&mut self) -> Result<Vec<Tensor>> {
        let Some(gradient) = self.pending.take() else {
            return Ok(Vec::new());
        };
        let values: Vec<f32> = gradient.iter().map(|&g| g as f32).collect();
        let n = values.len();
        Ok(vec![Tensor::from_vec(values, n, self.logits.device())?])
    }

    fn memory(&self) -> Result<serde_json::Value> {
        to_memory(&(
            &self.first_epoch_sums,
            self.first_epoch_steps,
            &self.reference,
        ))
    }

    fn restore_memory(&mut self, memory: &serde_json::Value) -> Result<()> {
        let (sums, steps, reference): (Vec<f64>, usize, Option<Vec<f64>>) = from_memory(memory)?;
        super::check_saved_len(METHOD, "losses", sums.len(), self.first_epoch_sums.len())?;
        self.first_epoch_sums = sums;
        self.first_epoch_steps = steps;
        self.reference = reference;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_logit_gradient_matches_finite_differences() {
        let cases = [
            (
                vec![0.3, -0.2, 0.5],
                vec![1.0, 2.0, 0.5],
                vec![1.0, 0.8, 1.3],
                1.5,
            ),
            (vec![1.0, 1.0], vec![3.0, 1.0], vec![0.9, 0.5], 0.0),
            (
                vec![-1.0, 2.0, 0.0, 0.4],
                vec![0.1, 0.2, 4.0, 1.0],
                vec![1.0; 4],
                2.0,
            ),
        ];
        for (s, n, r, alpha) in cases {
            let (_, grad) = balance_loss(&s, &n, &r, alpha).unwrap();
            for j in 0..s.len() {
                let h = 1e-6;
                let mut up = s.clone();
                up[j] += h;
                let mut down = s.clone();
                down[j] -= h;
                // The target Ḡ r^α is held constant, as in the reference.
                let fixed = |logits: &[f64]| {
                    let w = loss_weights(logits);
                    let g0: Vec<f64> = loss_weights(&s)
                        .iter()
                        .zip(&n)
                        .map(|(w, n)| w * n)
                        .collect();
                    let mean = g0.iter().sum::<f64>() / g0.len() as f64;
                    let rm = r.iter().sum::<f64>() / r.len() as f64;
                    (0..w.len())
                        .map(|i| (w[i] * n[i] - mean * (r[i] / rm).powf(alpha)).abs())
                        .sum::<f64>()
                };
                let numeric = (fixed(&up) - fixed(&down)) / (2.0 * h);
                assert!(
                    (numeric - grad[j]).abs() < 1e-5,
                    "{j}: {numeric} vs {}",
                    grad[j]
                );
            }
        }
    }

    #[test]
    fn weights_sum_to_k_and_the_gradient_is_balanced_at_equal_rates() {
        let w = loss_weights(&[0.0, 1.0, -1.0]);
        assert!((w.iter().sum::<f64>() - 3.0).abs() < 1e-12);
        // Equal gradient norms and equal rates: every G_i is on its target.
        let (loss, grad) = balance_loss(&[0.0, 0.0], &[2.0, 2.0], &[0.7, 0.7], 1.5).unwrap();
        assert_eq!(loss, 0.0);
        assert!(grad.iter().all(|g| *g == 0.0));
        // The task with the larger gradient loses weight.
        let (_, grad) = balance_loss(&[0.0, 0.0], &[3.0, 1.0], &[1.0, 1.0], 1.5).unwrap();
        assert!(grad[0] > 0.0 && grad[1] < 0.0, "{grad:?}");
    }

    #[test]
    fn the_first_epoch_is_joint_and_sets_the_reference_losses() {
        let mut m = GradNorm::new(&GradNormConfig::default(), 2, &Device::Cpu).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let gram = DMatrix::from_row_slice(2, 2, &[9.0, 0.0, 0.0, 1.0]);
        m.begin_epoch(0);
        for losses in [[2.0, 1.0], [4.0, 3.0]] {
            let c = m.combine(&gram, &losses, &mut rng).unwrap();
            assert_eq!(c.shared, vec![1.0, 1.0]);
            assert!(m.extra_var_grads().unwrap().is_empty());
        }
        m.begin_epoch(1);
        assert_eq!(m.reference, Some(vec![3.0, 2.0]));
        let c = m.combine(&gram, &[3.0, 2.0], &mut rng).unwrap();
        assert!((c.shared[0] - 1.0).abs() < 1e-12);
        let grads = m.extra_var_grads().unwrap();
        let g = grads[0].to_vec1::<f32>().unwrap();
        assert!(g[0] > 0.0 && g[1] < 0.0, "{g:?}");
    }
}
