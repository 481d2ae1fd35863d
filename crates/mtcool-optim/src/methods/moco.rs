//! `moco` (Fernando, Shen, Liu, Chaudhury, Murugesan & Chen, ICLR 2023, "Mitigating Gradient
//! Bias in Multi-objective Learning: A Provably Convergent Approach"; LibMTL
//! `weighting/MoCo.py`, from the authors' code, whose defaults these are).
//!
//! MoCo tracks each task's gradient with a moving average y_i, so that the MGDA-like weights
//! λ are computed from less biased estimates than one mini-batch gives. Per step t:
//!
//! ```text
//! ĝ_i = L_i g_i / (‖g_i‖ + 10⁻⁸)                   (the reference's normalisation)
//! y_i ← y_i − (β / t^σβ) (y_i − ĝ_i)                y starts at 0
//! λ   ← softmax(λ − (γ / t^σγ) (Y Yᵀ + ρ I) λ)      λ starts at 1/K
//! shared update  Yᵀ λ = Σ_i λ_i y_i
//! ```
//!
//! Heads get their plain gradients. Gradients are taken over the shared parameters only.

use candle_core::{DType, Tensor};
use nalgebra::{DMatrix, DVector};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::{check_finite, check_gramian, fail};
use crate::error::Result;
use crate::gradient_method::{Aggregator, Combination};
use crate::state::{from_memory, to_memory, MethodState};

const METHOD: &str = "moco";

/// ε of the gradient normalisation.
pub const EPS: f64 = 1e-8;

/// Options of `moco` (LibMTL's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MocoConfig {
    /// β, the rate of the gradient tracking (`MoCo_beta`).
    pub beta: f64,
    /// σβ: β decays as β / t^σβ (`MoCo_beta_sigma`).
    pub beta_sigma: f64,
    /// γ, the step size of λ (`MoCo_gamma`).
    pub gamma: f64,
    /// σγ: γ decays as γ / t^σγ (`MoCo_gamma_sigma`).
    pub gamma_sigma: f64,
    /// ρ, the ℓ2 regularisation of λ's update (`MoCo_rho`).
    pub rho: f64,
}

impl Default for MocoConfig {
    fn default() -> Self {
        Self {
            beta: 0.5,
            beta_sigma: 0.5,
            gamma: 0.1,
            gamma_sigma: 0.5,
            rho: 0.0,
        }
    }
}

/// One update of MoCo's weights: softmax(λ − `step` (M + ρ I) λ), with M = Y Yᵀ the Gramian
/// of the tracked gradients.
pub fn update_weights(
    gram: &DMatrix<f64>,
    lambda: &DVector<f64>,
    step: f64,
    rho: f64,
) -> Result<DVector<f64>> {
    let k = check_gramian(METHOD, gram)?;
    check_finite(METHOD, "weights", lambda.as_slice(), k)?;
    let regularised = gram + DMatrix::identity(k, k) * rho;
    let z = lambda - (regularised * lambda) * step;
    Ok(DVector::from_vec(crate::methods::rlw::softmax(
        z.as_slice(),
    )))
}

/// MoCo.
#[derive(Debug)]
pub struct Moco {
    config: MocoConfig,
    steps: usize,
    lambda: DVector<f64>,
    tracked: Option<Tensor>,
}

impl Moco {
    /// λ = 1/K, nothing tracked yet.
    pub fn new(config: &MocoConfig, tasks: usize) -> Result<Self> {
        let fields = [
            ("beta", config.beta),
            ("beta_sigma", config.beta_sigma),
            ("gamma", config.gamma),
            ("gamma_sigma", config.gamma_sigma),
            ("rho", config.rho),
        ];
        for (key, value) in fields {
            if !(value.is_finite() && value >= 0.0) {
                return Err(fail(METHOD, format!("{key} must be ≥ 0, got {value}")));
            }
        }
        Ok(Self {
            config: config.clone(),
            steps: 0,
            lambda: DVector::from_element(tasks, 1.0 / tasks.max(1) as f64),
            tracked: None,
        })
    }

    /// The current weights λ.
    pub fn lambda(&self) -> &DVector<f64> {
        &self.lambda
    }
}

impl Aggregator for Moco {
    fn name(&self) -> &'static str {
        METHOD
    }

    fn gradients(&mut self, gradients: &Tensor, losses: &[f64]) -> Result<Option<Tensor>> {
        self.steps += 1;
        let t = self.steps as f64;
        let rate = self.config.beta / t.powf(self.config.beta_sigma);
        let k = gradients.dim(0)?;
        check_finite(METHOD, "losses", losses, k)?;
        let norms = (gradients.sqr()?.sum_keepdim(1)?.sqrt()? + EPS)?;
        let losses: Vec<f32> = losses.iter().map(|&l| l as f32).collect();
        let losses = Tensor::from_vec(losses, (k, 1), gradients.device())?.to_dtype(DType::F32)?;
        let normalised = gradients.broadcast_div(&norms)?.broadcast_mul(&losses)?;
        let previous = match &self.tracked {
            Some(y) if y.dims() == gradients.dims() => y.clone(),
            _ => gradients.zeros_like()?,
        };
        let tracked = (&previous - ((&previous - normalised)? * rate)?)?;
        self.tracked = Some(tracked.clone());
        Ok(Some(tracked))
    }

    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        _losses: &[f64],
        _rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        let t = self.steps.max(1) as f64;
        let step = self.config.gamma / t.powf(self.config.gamma_sigma);
        self.lambda = update_weights(gramian, &self.lambda, step, self.config.rho)?;
        Ok(Combination::shared(self.lambda.iter().copied().collect()))
    }

    fn memory(&self) -> Result<serde_json::Value> {
        to_memory(&(self.steps, self.lambda.as_slice()))
    }

    fn restore_memory(&mut self, memory: &serde_json::Value) -> Result<()> {
        let (steps, lambda): (usize, Vec<f64>) = from_memory(memory)?;
        super::check_saved_len(METHOD, "weights", lambda.len(), self.lambda.len())?;
        self.steps = steps;
        self.lambda = DVector::from_vec(lambda);
        Ok(())
    }

    fn buffers(&self) -> Vec<(&'static str, Tensor)> {
        self.tracked
            .iter()
            .map(|y| ("tracked", y.clone()))
            .collect()
    }

    fn restore_buffers(&mut self, saved: &MethodState) -> Result<()> {
        self.tracked = saved.maybe_tensor("tracked").cloned();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::aggregators::testing::{gram, random_g};
    use candle_core::Device;

    #[test]
    fn weights_stay_on_the_simplex_and_move_towards_the_smaller_gradient() {
        for seed in 0..20 {
            let m = gram(&random_g(3, 5, seed));
            let lambda = DVector::from_element(3, 1.0 / 3.0);
            let w = update_weights(&m, &lambda, 0.1, 0.0).unwrap();
            assert!((w.sum() - 1.0).abs() < 1e-12 && w.iter().all(|x| *x > 0.0));
        }
        // Orthogonal gradients of norms 1 and 2: (Mλ)_i = M_ii/2, so the first task gains.
        let m = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, 4.0]);
        let w = update_weights(&m, &DVector::from_element(2, 0.5), 1.0, 0.0).unwrap();
        let expected = 1.0 / (1.0 + (-1.5f64).exp());
        assert!((w[0] - expected).abs() < 1e-12, "{w}");
        // A zero step gives softmax(λ), as in the reference (λ itself is not kept).
        let same = update_weights(&m, &DVector::from_column_slice(&[0.3, 0.7]), 0.0, 0.0);
        let expected = 1.0 / (1.0 + 0.4f64.exp());
        assert!((same.unwrap()[0] - expected).abs() < 1e-12);
    }

    #[test]
    fn tracking_follows_the_reference_recursion() {
        let mut moco = Moco::new(&MocoConfig::default(), 2).unwrap();
        let g = Tensor::new(&[[3f32, 4.0], [0.0, 2.0]], &Device::Cpu).unwrap();
        // Step 1: rate 0.5, y = 0.5 ĝ with ĝ_1 = 2 (3, 4)/5 and ĝ_2 = 1 (0, 1).
        let y = moco.gradients(&g, &[2.0, 1.0]).unwrap().unwrap();
        let y = y.to_vec2::<f32>().unwrap();
        assert!(
            (y[0][0] - 0.6).abs() < 1e-6 && (y[0][1] - 0.8).abs() < 1e-6,
            "{y:?}"
        );
        assert!((y[1][1] - 0.5).abs() < 1e-6, "{y:?}");
        // Step 2: rate 0.5 / √2 towards the same ĝ.
        let y2 = moco.gradients(&g, &[2.0, 1.0]).unwrap().unwrap();
        let r = 0.5 / 2f64.sqrt();
        let expected = 0.6 + r * (1.2 - 0.6);
        assert!((f64::from(y2.to_vec2::<f32>().unwrap()[0][0]) - expected).abs() < 1e-6);
    }

    #[test]
    fn rejects_negative_options() {
        let config = MocoConfig {
            gamma: -1.0,
            ..MocoConfig::default()
        };
        assert!(Moco::new(&config, 2).is_err());
    }
}
