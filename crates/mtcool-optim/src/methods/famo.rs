//! `famo`: Fast Adaptive Multitask Optimization (Liu et al., NeurIPS 2023). The step
//! follows the gradient of Σ_i z_i log L_i (z = softmax(ξ)), rescaled; after the update the
//! same batches' new losses drive one Adam step on the logits ξ. That costs one extra
//! forward pass per step, as in the authors' code.
//!
//! # The rule
//!
//! Following Cranial-XIX/FAMO `famo.py`: with z = softmax(ξ) and
//! D_i = L_i − L_i^min + `min_loss`, the training step minimises Σ_i (z_i / c) log D_i with
//! c = Σ_i z_i / D_i held constant, whose gradient is Σ_i w_i ∇L_i with
//! w_i = (z_i / D_i) / Σ_j (z_j / D_j) ([`FamoState::loss_weights`]). After the step, with the
//! new losses L', δ_i = log D_i − log D'_i and ξ takes one Adam step on the gradient of
//! Σ_i z_i δ_i w.r.t. ξ, i.e. J_softmaxᵀ δ with J = diag(z) − z zᵀ ([`FamoState::update`]).

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::aggregators::fail;
use crate::error::Result;
use crate::state::{from_memory, to_memory};
use crate::weighting_method::{weighted_sum, Weighting};

/// FAMO.
#[derive(Debug)]
pub struct Famo {
    state: FamoState,
}

impl Famo {
    /// Uniform task logits.
    pub fn new(config: &FamoConfig, tasks: usize) -> Self {
        Self {
            state: FamoState::new(tasks, config.clone()),
        }
    }
}

impl Weighting for Famo {
    fn name(&self) -> &'static str {
        "famo"
    }

    fn objective(&mut self, losses: &[Tensor], values: &[f64]) -> Result<Tensor> {
        let weights = self.state.loss_weights(values);
        weighted_sum(losses, &weights)
    }

    fn applied_weights(&self, values: &[f64]) -> Result<Vec<f64>> {
        Ok(self.state.loss_weights(values))
    }

    fn wants_losses_after_step(&self) -> bool {
        true
    }

    fn after_step(&mut self, before: &[f64], after: &[f64]) -> Result<()> {
        self.state.update(before, after)
    }

    fn memory(&self) -> Result<serde_json::Value> {
        to_memory(&self.state.memory())
    }

    fn restore_memory(&mut self, memory: &serde_json::Value) -> Result<()> {
        self.state.restore_memory(from_memory(memory)?);
        Ok(())
    }
}

const METHOD: &str = "famo";

/// Adam's β₁.
const BETA1: f64 = 0.9;
/// Adam's β₂.
const BETA2: f64 = 0.999;
/// Adam's ε.
const ADAM_EPS: f64 = 1e-8;

/// FAMO's options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FamoConfig {
    /// Learning rate γ of the logits ξ (Adam).
    pub lr: f64,
    /// Adam weight decay of ξ (L2, added to the gradient as in `torch.optim.Adam`).
    pub weight_decay: f64,
    /// The offset added to every loss before the logarithm, D_i = L_i − L_i^min + `min_loss`
    /// (`famo.py`'s 1e-8), so D_i ≥ `min_loss` > 0 whenever L_i ≥ L_i^min.
    pub min_loss: f64,
}

impl Default for FamoConfig {
    fn default() -> Self {
        Self {
            lr: 0.025,
            weight_decay: 1e-3,
            min_loss: 1e-8,
        }
    }
}

/// FAMO's state: the logits ξ, the per-task minimum losses L^min and Adam's moments.
#[derive(Debug, Clone)]
pub struct FamoState {
    config: FamoConfig,
    logits: Vec<f64>,
    min_losses: Vec<f64>,
    first_moment: Vec<f64>,
    second_moment: Vec<f64>,
    steps: i32,
}

/// What FAMO learns during training: ξ, L^min, Adam's moments and step count.
pub type FamoMemory = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, i32);

impl FamoState {
    /// Its learned state, for resuming a run.
    pub fn memory(&self) -> FamoMemory {
        (
            self.logits.clone(),
            self.min_losses.clone(),
            self.first_moment.clone(),
            self.second_moment.clone(),
            self.steps,
        )
    }

    /// Restores what [`FamoState::memory`] gave.
    pub fn restore_memory(&mut self, memory: FamoMemory) {
        (
            self.logits,
            self.min_losses,
            self.first_moment,
            self.second_moment,
            self.steps,
        ) = memory;
    }

    /// K tasks, ξ = 0 (uniform z), L^min = 0, fresh Adam state.
    pub fn new(k: usize, config: FamoConfig) -> Self {
        Self {
            config,
            logits: vec![0.0; k],
            min_losses: vec![0.0; k],
            first_moment: vec![0.0; k],
            second_moment: vec![0.0; k],
            steps: 0,
        }
    }

    /// The logits ξ.
    pub fn logits(&self) -> &[f64] {
        &self.logits
    }

    /// z = softmax(ξ).
    pub fn task_weights(&self) -> Vec<f64> {
        let max = self
            .logits
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let exp: Vec<f64> = self.logits.iter().map(|x| (x - max).exp()).collect();
        let total: f64 = exp.iter().sum();
        exp.iter().map(|e| e / total).collect()
    }

    /// Sets the per-task minimum losses L^min (`famo.py`'s `set_min_losses`; default 0);
    /// an error unless it has one finite entry per task.
    pub fn set_min_losses(&mut self, min_losses: &[f64]) -> Result<()> {
        self.check_len("minimum losses", min_losses)?;
        if min_losses.iter().any(|l| !l.is_finite()) {
            return Err(fail(
                METHOD,
                format!("minimum losses {min_losses:?} are not finite"),
            ));
        }
        self.min_losses = min_losses.to_vec();
        Ok(())
    }

    fn check_len(&self, what: &str, values: &[f64]) -> Result<()> {
        if values.len() == self.logits.len() {
            Ok(())
        } else {
            Err(fail(
                METHOD,
                format!("{} {what} for {} tasks", values.len(), self.logits.len()),
            ))
        }
    }

    /// D_i = L_i − L_i^min + `min_loss`, floored at `min_loss` (a loss below its minimum
    /// counts as at the minimum; the reference would take the log of a non-positive number).
    fn offsets(&self, losses: &[f64]) -> Vec<f64> {
        losses
            .iter()
            .zip(&self.min_losses)
            .map(|(l, lmin)| {
                let excess = l - lmin;
                // Not `max`, which would turn a NaN loss into 0.
                (if excess < 0.0 { 0.0 } else { excess }) + self.config.min_loss
            })
            .collect()
    }

    /// The per-task loss multipliers of this step: the gradient of Σ_i w_i L_i equals that of
    /// `famo.py`'s Σ_i (z_i / c) log D_i, so w_i = (z_i / D_i) / Σ_j (z_j / D_j); they sum
    /// to 1. `losses` should have K finite entries (the output has min(K, len) entries; a NaN
    /// loss gives NaN weights, as in the reference).
    pub fn loss_weights(&self, losses: &[f64]) -> Vec<f64> {
        let z = self.task_weights();
        let ratios: Vec<f64> = z
            .iter()
            .zip(self.offsets(losses))
            .map(|(z, d)| z / d)
            .collect();
        let total: f64 = ratios.iter().sum();
        ratios.iter().map(|r| r / total).collect()
    }

    /// One Adam step on ξ after a training step: `previous_losses` are the losses the step
    /// was taken on, `new_losses` the same batches' losses after it. The gradient is
    /// J_softmax(ξ)ᵀ δ, δ_i = log D_i(previous) − log D_i(new), plus `weight_decay` · ξ;
    /// Adam as `torch.optim.Adam` (β = 0.9/0.999, ε = 1e-8, bias-corrected). An error, with
    /// ξ left as it was, when either slice does not have K entries or δ is not finite (a
    /// loss that is NaN or infinite: the run is diverging, and the reference would carry the
    /// NaN into ξ).
    pub fn update(&mut self, previous_losses: &[f64], new_losses: &[f64]) -> Result<()> {
        let k = self.logits.len();
        self.check_len("losses before the step", previous_losses)?;
        self.check_len("losses after the step", new_losses)?;
        let before = self.offsets(previous_losses);
        let after = self.offsets(new_losses);
        let delta: Vec<f64> = before
            .iter()
            .zip(&after)
            .map(|(b, a)| b.ln() - a.ln())
            .collect();
        if delta.iter().any(|d| !d.is_finite()) {
            return Err(fail(
                METHOD,
                format!(
                    "the losses {previous_losses:?} → {new_losses:?} give a non-finite log ratio"
                ),
            ));
        }
        let z = self.task_weights();
        let mean: f64 = z.iter().zip(&delta).map(|(z, d)| z * d).sum();
        self.steps = self.steps.saturating_add(1);
        let bias1 = 1.0 - BETA1.powi(self.steps);
        let bias2 = 1.0 - BETA2.powi(self.steps);
        for i in 0..k {
            let grad = z[i] * (delta[i] - mean) + self.config.weight_decay * self.logits[i];
            let m = &mut self.first_moment[i];
            *m = BETA1 * *m + (1.0 - BETA1) * grad;
            let v = &mut self.second_moment[i];
            *v = BETA2 * *v + (1.0 - BETA2) * grad * grad;
            let denom = self.second_moment[i].sqrt() / bias2.sqrt() + ADAM_EPS;
            self.logits[i] -= self.config.lr / bias1 * self.first_moment[i] / denom;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < tol, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn matches_a_numpy_replay_of_famo_py() {
        // Constants from a float64 numpy replay of Cranial-XIX/FAMO `famo.py`
        // (`get_weighted_loss`, `update` through the softmax Jacobian, `torch.optim.Adam`
        // with lr 0.025, weight_decay 1e-3, betas 0.9/0.999, eps 1e-8; offset 1e-8).
        let mut famo = FamoState::new(3, FamoConfig::default());
        let l0 = [1.0, 2.0, 0.5];
        let l1 = [0.8, 1.9, 0.45];
        let l2 = [0.7, 1.88, 0.3];
        // z uniform: w_i ∝ 1/L_i = (1, 0.5, 2)/3.5 (up to the 1e-8 offset).
        close(
            &famo.loss_weights(&l0),
            &[
                0.285_714_287_142_857_1,
                0.142_857_144_285_714_28,
                0.571_428_568_571_428_7,
            ],
            1e-15,
        );
        famo.update(&l0, &l1).unwrap();
        close(
            famo.logits(),
            &[
                -0.024_999_992_231_558_39,
                0.024_999_990_040_614_99,
                0.024_999_964_686_996_71,
            ],
            1e-14,
        );
        close(
            &famo.loss_weights(&l1),
            &[
                0.301_971_868_584_103_5,
                0.133_664_965_907_671_2,
                0.564_363_165_508_225_2,
            ],
            1e-14,
        );
        famo.update(&l1, &l2).unwrap();
        close(
            famo.logits(),
            &[
                -0.031_535_337_423_625_99,
                0.048_688_031_958_792_66,
                0.008_050_826_942_788_86,
            ],
            1e-14,
        );
        close(
            &famo.loss_weights(&l2),
            &[
                0.261_028_773_117_390_3,
                0.105_309_886_186_434_78,
                0.633_661_340_696_174_9,
            ],
            1e-14,
        );
    }

    #[test]
    fn weights_reproduce_the_log_objective_gradient() {
        // ∂/∂L_i of Σ z_i log D_i / c equals z_i / (c D_i) = w_i.
        let mut famo = FamoState::new(2, FamoConfig::default());
        famo.logits = vec![0.3, -0.2];
        let z = famo.task_weights();
        let losses = [0.7, 1.3];
        let d: Vec<f64> = losses.iter().map(|l| l + 1e-8).collect();
        let c: f64 = z.iter().zip(&d).map(|(z, d)| z / d).sum();
        let w = famo.loss_weights(&losses);
        for i in 0..2 {
            assert!((w[i] - z[i] / (c * d[i])).abs() < 1e-15);
        }
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    }

    #[test]
    fn config_deserializes_with_defaults_and_rejects_unknown_fields() {
        use serde::de::value::{Error, MapDeserializer};
        let de = MapDeserializer::<_, Error>::new(vec![("lr", 0.1)].into_iter());
        let c = FamoConfig::deserialize(de).unwrap();
        assert_eq!((c.lr, c.weight_decay, c.min_loss), (0.1, 1e-3, 1e-8));
        let de = MapDeserializer::<_, Error>::new(vec![("gamma", 0.1)].into_iter());
        assert!(FamoConfig::deserialize(de).is_err());
    }

    #[test]
    fn nan_losses_are_not_hidden() {
        let famo = FamoState::new(2, FamoConfig::default());
        assert!(famo
            .loss_weights(&[f64::NAN, 1.0])
            .iter()
            .all(|w| w.is_nan()));
    }

    #[test]
    fn config_and_guards() {
        let c = FamoConfig::default();
        assert_eq!((c.lr, c.weight_decay, c.min_loss), (0.025, 1e-3, 1e-8));
        let mut famo = FamoState::new(2, c);
        let short = famo.update(&[1.0], &[1.0, 2.0]).unwrap_err().to_string();
        assert!(
            short.contains("1 losses before the step for 2 tasks"),
            "{short}"
        );
        let nan = famo.update(&[1.0, f64::NAN], &[1.0, 2.0]).unwrap_err();
        assert!(nan.to_string().contains("non-finite"), "{nan}");
        assert!(famo.update(&[1.0, f64::INFINITY], &[1.0, 2.0]).is_err());
        assert_eq!(famo.logits(), &[0.0, 0.0]);
        assert_eq!(famo.steps, 0);
        // Unchanged losses: δ = 0, only weight decay of ξ = 0 acts: no move.
        famo.update(&[1.0, 2.0], &[1.0, 2.0]).unwrap();
        assert_eq!(famo.logits(), &[0.0, 0.0]);
        // Minimum losses shift the offsets; a loss below its minimum is clamped.
        famo.set_min_losses(&[0.5, 0.0]).unwrap();
        let w = famo.loss_weights(&[0.25, 1.0]);
        assert!(w[0] > 0.999_999 && w.iter().all(|v| v.is_finite()));
        assert!(famo.set_min_losses(&[1.0]).is_err());
        assert!(famo.set_min_losses(&[1.0, f64::NAN]).is_err());
        assert_eq!(famo.min_losses, vec![0.5, 0.0]);
    }
}
