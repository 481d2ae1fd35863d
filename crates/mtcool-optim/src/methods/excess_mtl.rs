//! `excess-mtl` (He, Zhou, Wang & Zhao, ICML 2024, "Robust Multi-Task Learning with Excess
//! Risks"; LibMTL `weighting/ExcessMTL.py`, from yifei-he/ExcessMTL, whose default step size
//! this is).
//!
//! Each task's excess risk is estimated by a diagonal second-order (AdaGrad-like) bound on
//! how far its loss can still fall, and the loss weights follow an exponentiated-gradient
//! ascent on those estimates, so tasks far from their optimum gain weight. Per step:
//!
//! ```text
//! S_i ← S_i + g_i ⊙ g_i                               (element-wise, S starts at 0)
//! e_i = Σ_j g_ij² / √(S_ij + 10⁻⁷)                    (excess-risk estimate)
//! first step: e⁰ = e, w = 1
//! later:      w_i ← w_i exp(η e_i / e⁰_i),  w ← K w / Σ w
//! shared update Σ_i w_i g_i, head i gets w_i ∇L_i     (the gradient of Σ_i w_i L_i)
//! ```
//!
//! Gradients are taken over the shared parameters.

use candle_core::Tensor;
use nalgebra::DMatrix;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::{check_finite, fail};
use crate::error::Result;
use crate::gradient_method::{Aggregator, Combination};
use crate::state::{from_memory, to_memory, MethodState};

const METHOD: &str = "excess-mtl";

/// ε under the square root of the accumulated squares.
pub const EPS: f64 = 1e-7;

/// Options of `excess-mtl` (LibMTL's default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExcessMtlConfig {
    /// η, the step size of the weights' update (`robust_step_size`).
    pub robust_step_size: f64,
}

impl Default for ExcessMtlConfig {
    fn default() -> Self {
        Self {
            robust_step_size: 1e-2,
        }
    }
}

/// One update of the loss weights: w_i exp(η e_i / e⁰_i), rescaled to sum to K. A zero
/// initial estimate e⁰_i counts as ratio 0 (no change for that task).
pub fn update_weights(
    weights: &[f64],
    excess: &[f64],
    initial: &[f64],
    step_size: f64,
) -> Result<Vec<f64>> {
    let k = weights.len();
    check_finite(METHOD, "weights", weights, k)?;
    check_finite(METHOD, "excess risks", excess, k)?;
    check_finite(METHOD, "initial excess risks", initial, k)?;
    let grown: Vec<f64> = (0..k)
        .map(|i| {
            let ratio = if initial[i] > 0.0 {
                excess[i] / initial[i]
            } else {
                0.0
            };
            weights[i] * (step_size * ratio).exp()
        })
        .collect();
    let total: f64 = grown.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return Err(fail(
            METHOD,
            format!("the weights {grown:?} cannot be normalised"),
        ));
    }
    Ok(grown.iter().map(|w| w * k as f64 / total).collect())
}

/// ExcessMTL.
#[derive(Debug)]
pub struct ExcessMtl {
    config: ExcessMtlConfig,
    weights: Vec<f64>,
    initial: Option<Vec<f64>>,
    excess: Vec<f64>,
    squares: Option<Tensor>,
}

impl ExcessMtl {
    /// Weights 1, nothing accumulated.
    pub fn new(config: &ExcessMtlConfig, tasks: usize) -> Result<Self> {
        let eta = config.robust_step_size;
        if !(eta.is_finite() && eta >= 0.0) {
            return Err(fail(
                METHOD,
                format!("robust_step_size must be ≥ 0, got {eta}"),
            ));
        }
        Ok(Self {
            config: config.clone(),
            weights: vec![1.0; tasks],
            initial: None,
            excess: vec![0.0; tasks],
            squares: None,
        })
    }

    /// The current loss weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
}

impl Aggregator for ExcessMtl {
    fn name(&self) -> &'static str {
        METHOD
    }

    fn gradients(&mut self, gradients: &Tensor, _losses: &[f64]) -> Result<Option<Tensor>> {
        let squared = gradients.sqr()?;
        let squares = match &self.squares {
            Some(s) if s.dims() == gradients.dims() => (s + &squared)?,
            _ => squared.clone(),
        };
        let excess = squared.div(&(&squares + EPS)?.sqrt()?)?.sum(1)?;
        self.excess = excess.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?;
        self.squares = Some(squares);
        Ok(None)
    }

    fn combine(
        &mut self,
        _gramian: &DMatrix<f64>,
        _losses: &[f64],
        _rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        match &self.initial {
            None => self.initial = Some(self.excess.clone()),
            Some(initial) => {
                self.weights = update_weights(
                    &self.weights,
                    &self.excess,
                    initial,
                    self.config.robust_step_size,
                )?;
            }
        }
        Ok(Combination {
            shared: self.weights.clone(),
            heads: Some(self.weights.clone()),
            max_norm: None,
        })
    }

    fn memory(&self) -> Result<serde_json::Value> {
        to_memory(&(&self.weights, &self.initial))
    }

    fn restore_memory(&mut self, memory: &serde_json::Value) -> Result<()> {
        let (weights, initial): (Vec<f64>, Option<Vec<f64>>) = from_memory(memory)?;
        super::check_saved_len(METHOD, "weights", weights.len(), self.weights.len())?;
        self.weights = weights;
        self.initial = initial;
        Ok(())
    }

    fn buffers(&self) -> Vec<(&'static str, Tensor)> {
        self.squares
            .iter()
            .map(|s| ("squares", s.clone()))
            .collect()
    }

    fn restore_buffers(&mut self, saved: &MethodState) -> Result<()> {
        self.squares = saved.maybe_tensor("squares").cloned();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use candle_core::Device;
    use rand::SeedableRng;

    #[test]
    fn weights_grow_with_the_relative_excess_risk_and_sum_to_k() {
        let w = update_weights(&[1.0, 1.0], &[2.0, 1.0], &[1.0, 1.0], 0.5).unwrap();
        assert!((w.iter().sum::<f64>() - 2.0).abs() < 1e-12);
        let expected = 2.0 * 1f64.exp() / (1f64.exp() + 0.5f64.exp());
        assert!((w[0] - expected).abs() < 1e-12, "{w:?}");
        let same = update_weights(&[0.5, 1.5], &[3.0, 3.0], &[1.0, 1.0], 0.1).unwrap();
        assert!(
            (same[0] - 0.5).abs() < 1e-12,
            "equal ratios keep the weights"
        );
        assert!(update_weights(&[1.0], &[f64::NAN], &[1.0], 0.1).is_err());
    }

    #[test]
    fn the_first_step_fixes_the_reference_and_keeps_unit_weights() {
        let mut m = ExcessMtl::new(&ExcessMtlConfig::default(), 2).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let g = Tensor::new(&[[3f32, 4.0], [1.0, 0.0]], &Device::Cpu).unwrap();
        m.gradients(&g, &[1.0, 1.0]).unwrap();
        // e_i = Σ g² / √(g² + ε) = Σ |g| on the first step.
        assert!((m.excess[0] - 7.0).abs() < 1e-5 && (m.excess[1] - 1.0).abs() < 1e-5);
        let c = m
            .combine(&DMatrix::zeros(2, 2), &[1.0, 1.0], &mut rng)
            .unwrap();
        assert_eq!(c.shared, vec![1.0, 1.0]);
        // Second step, task 1's gradient halved, task 2's unchanged: S = g₁² + g₂².
        let g2 = Tensor::new(&[[1.5f32, 2.0], [1.0, 0.0]], &Device::Cpu).unwrap();
        m.gradients(&g2, &[1.0, 1.0]).unwrap();
        let e1 = (1.5f64 * 1.5 / (1.5f64 * 1.5 + 9.0).sqrt()) + (4.0 / 20f64.sqrt());
        let e2 = 1.0 / 2f64.sqrt();
        assert!((m.excess[0] - e1).abs() < 1e-5 && (m.excess[1] - e2).abs() < 1e-5);
        let c = m
            .combine(&DMatrix::zeros(2, 2), &[1.0, 1.0], &mut rng)
            .unwrap();
        let expected = update_weights(&[1.0, 1.0], &[e1, e2], &[7.0, 1.0], 0.01).unwrap();
        assert!((c.shared[0] - expected[0]).abs() < 1e-6, "{c:?}");
        assert_eq!(c.heads, Some(c.shared.clone()));
    }
}
