//! `db-mtl` (Lin, Ye, Xu, Shi & Zhang 2023, "Dual-Balancing Multi-Task Learning"; LibMTL
//! `weighting/DB_MTL.py`, which the defaults follow): loss-scale balancing by training on
//! log(L_i + ε), and gradient-magnitude balancing of a moving average of the task gradients.
//!
//! Per step t, with g_i = ∇_shared log(L_i + 10⁻⁸):
//!
//! ```text
//! ĝ_i ← g_i + (β / t^σ) (ĝ_i − g_i)            ĝ starts at 0
//! α_i = max_j ‖ĝ_j‖ / (‖ĝ_i‖ + 10⁻⁸)           (weights)
//! shared update  Σ_i α_i ĝ_i
//! ```
//!
//! so every task contributes a gradient as long as the largest one. The heads get their own
//! gradients of log(L_i + ε), as in the reference. Gradients are taken over the shared
//! parameters only (the reference rejects representation gradients too).

use candle_core::Tensor;
use nalgebra::{DMatrix, DVector};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::{check_gramian, fail};
use crate::error::Result;
use crate::gradient_method::{Aggregator, Combination};
use crate::state::{from_memory, to_memory, MethodState};

const METHOD: &str = "db-mtl";

/// ε of log(L + ε) and of the norm ratio.
pub const EPS: f64 = 1e-8;

/// Options of `db-mtl` (LibMTL's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DbMtlConfig {
    /// β, the weight of the previous average (`DB_beta`).
    pub beta: f64,
    /// σ: β decays as β / t^σ (`DB_beta_sigma`; 0 keeps it constant).
    pub beta_sigma: f64,
}

impl Default for DbMtlConfig {
    fn default() -> Self {
        Self {
            beta: 0.9,
            beta_sigma: 0.0,
        }
    }
}

/// DB-MTL's weights for the Gramian `gram` of the averaged gradients ĝ:
/// α_i = max_j ‖ĝ_j‖ / (‖ĝ_i‖ + ε), so that every α_i ĝ_i has (nearly) the largest norm.
pub fn weights(gram: &DMatrix<f64>) -> Result<DVector<f64>> {
    let k = check_gramian(METHOD, gram)?;
    let norms = DVector::from_fn(k, |i, _| gram[(i, i)].sqrt());
    let largest = norms.max();
    Ok(norms.map(|n| largest / (n + EPS)))
}

/// The averaging rate of step `t` (1-based): β / t^σ.
pub fn rate(config: &DbMtlConfig, t: usize) -> f64 {
    config.beta / (t as f64).powf(config.beta_sigma)
}

/// DB-MTL.
#[derive(Debug)]
pub struct DbMtl {
    config: DbMtlConfig,
    steps: usize,
    average: Option<Tensor>,
}

impl DbMtl {
    /// No average yet.
    pub fn new(config: &DbMtlConfig) -> Result<Self> {
        let valid = |v: f64| v.is_finite() && v >= 0.0;
        if !(valid(config.beta) && config.beta <= 1.0 && valid(config.beta_sigma)) {
            return Err(fail(
                METHOD,
                format!(
                    "beta must lie in [0, 1] and beta_sigma be ≥ 0, got {} and {}",
                    config.beta, config.beta_sigma
                ),
            ));
        }
        Ok(Self {
            config: config.clone(),
            steps: 0,
            average: None,
        })
    }
}

impl Aggregator for DbMtl {
    fn name(&self) -> &'static str {
        METHOD
    }

    fn scale_losses(&self, losses: Vec<Tensor>) -> Result<Vec<Tensor>> {
        losses.into_iter().map(|l| Ok((l + EPS)?.log()?)).collect()
    }

    fn gradients(&mut self, gradients: &Tensor, _losses: &[f64]) -> Result<Option<Tensor>> {
        self.steps += 1;
        let rate = rate(&self.config, self.steps);
        let previous = match &self.average {
            Some(a) if a.dims() == gradients.dims() => a.clone(),
            _ => gradients.zeros_like()?,
        };
        let average = (gradients + ((previous - gradients)? * rate)?)?;
        self.average = Some(average.clone());
        Ok(Some(average))
    }

    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        _losses: &[f64],
        _rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        Ok(Combination::shared(
            weights(gramian)?.iter().copied().collect(),
        ))
    }

    fn memory(&self) -> Result<serde_json::Value> {
        to_memory(&self.steps)
    }

    fn restore_memory(&mut self, memory: &serde_json::Value) -> Result<()> {
        self.steps = from_memory(memory)?;
        Ok(())
    }

    fn buffers(&self) -> Vec<(&'static str, Tensor)> {
        self.average
            .iter()
            .map(|a| ("average", a.clone()))
            .collect()
    }

    fn restore_buffers(&mut self, saved: &MethodState) -> Result<()> {
        self.average = saved.maybe_tensor("average").cloned();
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
    fn weighted_gradients_all_have_the_largest_norm() {
        for seed in 0..20 {
            let g = random_g(3, 7, seed);
            let m = gram(&g);
            let w = weights(&m).unwrap();
            let largest = (0..3).map(|i| m[(i, i)].sqrt()).fold(0.0, f64::max);
            for i in 0..3 {
                let norm = w[i] * m[(i, i)].sqrt();
                assert!(
                    (norm - largest).abs() < 1e-6 * largest,
                    "{seed}: {norm} vs {largest}"
                );
            }
            assert!(w.iter().all(|x| *x >= 1.0 - 1e-8));
        }
    }

    #[test]
    fn a_zero_gradient_gets_a_large_but_finite_weight() {
        let m = DMatrix::from_row_slice(2, 2, &[4.0, 0.0, 0.0, 0.0]);
        let w = weights(&m).unwrap();
        assert_eq!(w[0], 2.0 / (2.0 + EPS));
        assert!(w[1].is_finite() && w[1] > 1e7);
        assert!(weights(&DMatrix::zeros(2, 2))
            .unwrap()
            .iter()
            .all(|x| *x == 0.0));
    }

    #[test]
    fn the_average_follows_the_reference_recursion() {
        let mut m = DbMtl::new(&DbMtlConfig::default()).unwrap();
        let g1 = Tensor::new(&[[1f32, 0.0], [0.0, 2.0]], &Device::Cpu).unwrap();
        let g2 = Tensor::new(&[[3f32, 1.0], [1.0, 0.0]], &Device::Cpu).unwrap();
        let a1 = m.gradients(&g1, &[1.0, 1.0]).unwrap().unwrap();
        // ĝ = g + 0.9 (0 − g) = 0.1 g.
        let a1 = a1.to_vec2::<f32>().unwrap();
        assert!((a1[0][0] - 0.1).abs() < 1e-7 && (a1[1][1] - 0.2).abs() < 1e-7);
        let a2 = m.gradients(&g2, &[1.0, 1.0]).unwrap().unwrap();
        // ĝ = g2 + 0.9 (0.1 g1 − g2) = 0.1 g2 + 0.09 g1.
        let a2 = a2.to_vec2::<f32>().unwrap();
        assert!((a2[0][0] - 0.39).abs() < 1e-6, "{a2:?}");
        assert!((a2[1][1] - 0.18).abs() < 1e-6, "{a2:?}");
        assert!(
            (rate(
                &DbMtlConfig {
                    beta: 0.9,
                    beta_sigma: 0.5
                },
                4
            ) - 0.45)
                .abs()
                < 1e-12
        );
    }

    #[test]
    fn the_average_survives_a_save_and_restore() {
        let mut m = DbMtl::new(&DbMtlConfig::default()).unwrap();
        let g = Tensor::new(&[[1f32, 0.0], [0.0, 2.0]], &Device::Cpu).unwrap();
        m.gradients(&g, &[1.0, 1.0]).unwrap();
        let mut saved = MethodState::default();
        for (name, t) in m.buffers() {
            saved.put_tensor(name, &t).unwrap();
        }
        let mut restored = DbMtl::new(&DbMtlConfig::default()).unwrap();
        restored.restore_memory(&m.memory().unwrap()).unwrap();
        restored.restore_buffers(&saved).unwrap();
        let a = m.gradients(&g, &[1.0, 1.0]).unwrap().unwrap();
        let b = restored.gradients(&g, &[1.0, 1.0]).unwrap().unwrap();
        assert_eq!(a.to_vec2::<f32>().unwrap(), b.to_vec2::<f32>().unwrap());
        assert!(DbMtl::new(&DbMtlConfig {
            beta: 1.5,
            beta_sigma: 0.0
        })
        .is_err());
    }
}
