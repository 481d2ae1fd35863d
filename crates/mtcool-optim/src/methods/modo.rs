//! `modo` (Chen, Fernando, Ying & Chen, NeurIPS 2023, "Three-Way Trade-Off in
//! Multi-Objective Learning: Optimization, Generalization and Conflict-Avoidance"; LibMTL
//! `weighting/MoDo.py`, from heshandevaka/Trade-Off-MOL, whose defaults these are).
//!
//! Multi-objective gradient with double sampling: with three independent gradient samples
//! G₀, G₁, G₂ per step ([`crate::sampled_method`]),
//!
//! ```text
//! λ ← Π_simplex(λ − γ (G₀ G₁ᵀ λ + ρ λ))      λ starts at 1/K
//! shared update  Σ_i λ_i (G₂)_i,   heads: the mean of their three gradients
//! ```
//!
//! G₀ G₁ᵀ is an unbiased estimate of the Gramian, so λ follows a stochastic MGDA descent.

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use crate::aggregators::{check_finite, fail, project_to_simplex};
use crate::error::Result;
use crate::sampled_method::{SampledRule, SAMPLES};
use crate::state::{from_memory, to_memory};

const METHOD: &str = "modo";

/// Options of `modo` (LibMTL's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MoDoConfig {
    /// γ, the step size of λ (`MoDo_gamma`).
    pub gamma: f64,
    /// ρ, the ℓ2 regularisation of λ's update (`MoDo_rho`).
    pub rho: f64,
}

impl Default for MoDoConfig {
    fn default() -> Self {
        Self {
            gamma: 1e-3,
            rho: 0.1,
        }
    }
}

/// One update of λ: Π_simplex(λ − γ (C λ + ρ λ)) for the cross Gramian C = G₀ G₁ᵀ.
pub fn update_weights(
    cross: &DMatrix<f64>,
    lambda: &DVector<f64>,
    gamma: f64,
    rho: f64,
) -> Result<DVector<f64>> {
    let k = lambda.len();
    if cross.nrows() != k || cross.ncols() != k {
        return Err(fail(
            METHOD,
            format!(
                "{}×{} Gramian for {k} weights",
                cross.nrows(),
                cross.ncols()
            ),
        ));
    }
    check_finite(METHOD, "Gramian entries", cross.as_slice(), k * k)?;
    check_finite(METHOD, "weights", lambda.as_slice(), k)?;
    Ok(project_to_simplex(
        &(lambda - (cross * lambda + lambda * rho) * gamma),
    ))
}

/// MoDo.
#[derive(Debug)]
pub struct MoDo {
    config: MoDoConfig,
    lambda: DVector<f64>,
}

impl MoDo {
    /// λ = 1/K.
    pub fn new(config: &MoDoConfig, tasks: usize) -> Result<Self> {
        for (key, value) in [("gamma", config.gamma), ("rho", config.rho)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(fail(METHOD, format!("{key} must be ≥ 0, got {value}")));
            }
        }
        Ok(Self {
            config: config.clone(),
            lambda: DVector::from_element(tasks, 1.0 / tasks.max(1) as f64),
        })
    }
}

impl SampledRule for MoDo {
    fn name(&self) -> &'static str {
        METHOD
    }

    fn pair(&self) -> (usize, usize) {
        (0, 1)
    }

    fn update_sample(&self) -> usize {
        2
    }

    fn head_scale(&self) -> f64 {
        1.0 / SAMPLES as f64
    }

    fn combine(&mut self, cross: &DMatrix<f64>) -> Result<Vec<f64>> {
        self.lambda = update_weights(cross, &self.lambda, self.config.gamma, self.config.rho)?;
        Ok(self.lambda.iter().copied().collect())
    }

    fn memory(&self) -> Result<serde_json::Value> {
        to_memory(&self.lambda.as_slice())
    }

    fn restore_memory(&mut self, memory: &serde_json::Value) -> Result<()> {
        let lambda: Vec<f64> = from_memory(memory)?;
        super::check_saved_len(METHOD, "weights", lambda.len(), self.lambda.len())?;
        self.lambda = DVector::from_vec(lambda);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::aggregators::testing::{gram, random_g};

    #[test]
    fn one_update_is_a_projected_gradient_step() {
        let c = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, 4.0]);
        let lambda = DVector::from_element(2, 0.5);
        let w = update_weights(&c, &lambda, 0.1, 0.0).unwrap();
        // λ − 0.1 (0.5, 2) = (0.45, 0.3), shifted by θ = −0.125 onto the simplex.
        assert!(
            (w[0] - 0.575).abs() < 1e-12 && (w[1] - 0.425).abs() < 1e-12,
            "{w}"
        );
    }

    #[test]
    fn repeated_updates_approach_the_min_norm_weights() {
        // Orthogonal gradients of norms 1 and 2: min ‖Σ λ g‖² on the simplex is at (0.8, 0.2).
        let c = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, 4.0]);
        let mut lambda = DVector::from_element(2, 0.5);
        for _ in 0..2000 {
            lambda = update_weights(&c, &lambda, 0.05, 0.0).unwrap();
        }
        assert!((lambda[0] - 0.8).abs() < 1e-6, "{lambda}");
        for seed in 0..10 {
            let m = gram(&random_g(3, 4, seed));
            let w = update_weights(&m, &DVector::from_element(3, 1.0 / 3.0), 1.0, 0.1).unwrap();
            assert!((w.sum() - 1.0).abs() < 1e-12 && w.iter().all(|x| *x >= 0.0));
        }
    }
}
