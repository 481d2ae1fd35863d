//! `sdmgrad` (Xiao, Ban & Ji, NeurIPS 2023, "Direction-oriented Multi-objective Learning:
//! Simple and Provable Stochastic Algorithms"; LibMTL `weighting/SDMGrad.py`, from
//! OptMN-Lab/sdmgrad, whose defaults these are).
//!
//! The update stays near the mean gradient g₀ while improving every task: with three
//! independent gradient samples ζ, ξ₁, ξ₂ per step ([`crate::sampled_method`]),
//!
//! ```text
//! GG = ξ₁ ξ₂ᵀ / (mean_i √max(GG_ii, 0))² + 10⁻⁸)      (unbiased Gramian, normalised)
//! w ← 20 steps of SGD (lr 5, momentum 0.5) on ½ wᵀ GG w + λ wᵀ (GG 1/K),
//!     each followed by the projection onto the simplex; w persists across steps
//! shared update (Σ_i w_i ζ_i + λ ζ̄) / (1 + λ),   ζ̄ = mean_i ζ_i
//! ```
//!
//! As in the reference each head's gradient is the sum over the three samples.

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use crate::aggregators::{check_finite, fail, project_to_simplex};
use crate::error::Result;
use crate::sampled_method::SampledRule;
use crate::state::{from_memory, to_memory};

const METHOD: &str = "sdmgrad";

/// The inner solver's learning rate (fixed in the reference).
pub const INNER_LR: f64 = 5.0;

/// The inner solver's momentum (fixed in the reference).
pub const INNER_MOMENTUM: f64 = 0.5;

/// Options of `sdmgrad` (LibMTL's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SdmGradConfig {
    /// λ, the pull towards the mean gradient (`SDMGrad_lamda`).
    pub lambda: f64,
    /// Iterations of the inner solver per step (`SDMGrad_niter`).
    pub iterations: usize,
}

impl Default for SdmGradConfig {
    fn default() -> Self {
        Self {
            lambda: 0.3,
            iterations: 20,
        }
    }
}

/// The cross Gramian divided by the squared mean gradient norm (negative diagonal entries
/// counted as 0), as the reference normalises it.
pub fn normalised_cross_gramian(cross: &DMatrix<f64>) -> DMatrix<f64> {
    let k = cross.nrows().max(1);
    let scale = (0..cross.nrows())
        .map(|i| cross[(i, i)].max(0.0).sqrt())
        .sum::<f64>()
        / k as f64;
    cross / (scale * scale + 1e-8)
}

/// The simplex weights after `iterations` projected momentum-SGD steps from `start` on the
/// normalised Gramian `gg` (see the module docs).
pub fn weights(
    gg: &DMatrix<f64>,
    start: &DVector<f64>,
    lambda: f64,
    iterations: usize,
) -> Result<DVector<f64>> {
    let k = gg.nrows();
    if gg.ncols() != k || start.len() != k {
        return Err(fail(
            METHOD,
            format!("{}×{} Gramian for {} weights", k, gg.ncols(), start.len()),
        ));
    }
    check_finite(METHOD, "Gramian entries", gg.as_slice(), k * k)?;
    let towards_mean = gg.column_mean() * lambda;
    let mut w = start.clone();
    let mut velocity = DVector::zeros(k);
    for i in 0..iterations {
        let gradient = gg * &w + &towards_mean;
        velocity = if i == 0 {
            gradient
        } else {
            velocity * INNER_MOMENTUM + gradient
        };
        w = project_to_simplex(&(w - &velocity * INNER_LR));
    }
    Ok(w)
}

/// The weights on the update sample's task gradients: (w + λ/K) / (1 + λ).
pub fn update_weights(w: &DVector<f64>, lambda: f64) -> Vec<f64> {
    let k = w.len().max(1) as f64;
    w.iter()
        .map(|wi| (wi + lambda / k) / (1.0 + lambda))
        .collect()
}

/// SDMGrad.
#[derive(Debug)]
pub struct SdmGrad {
    config: SdmGradConfig,
    w: DVector<f64>,
}

impl SdmGrad {
    /// w = 1/K.
    pub fn new(config: &SdmGradConfig, tasks: usize) -> Result<Self> {
        if !(config.lambda.is_finite() && config.lambda >= 0.0) {
            return Err(fail(
                METHOD,
                format!("lambda must be ≥ 0, got {}", config.lambda),
            ));
        }
        Ok(Self {
            config: config.clone(),
            w: DVector::from_element(tasks, 1.0 / tasks.max(1) as f64),
        })
    }
}

impl SampledRule for SdmGrad {
    fn name(&self) -> &'static str {
        METHOD
    }

    fn pair(&self) -> (usize, usize) {
        (1, 2)
    }

    fn update_sample(&self) -> usize {
        0
    }

    fn head_scale(&self) -> f64 {
        1.0
    }

    fn combine(&mut self, cross: &DMatrix<f64>) -> Result<Vec<f64>> {
        let gg = normalised_cross_gramian(cross);
        self.w = weights(&gg, &self.w, self.config.lambda, self.config.iterations)?;
        Ok(update_weights(&self.w, self.config.lambda))
    }

    fn memory(&self) -> Result<serde_json::Value> {
        to_memory(&self.w.as_slice())
    }

    fn restore_memory(&mut self, memory: &serde_json::Value) -> Result<()> {
        let w: Vec<f64> = from_memory(memory)?;
        super::check_saved_len(METHOD, "weights", w.len(), self.w.len())?;
        self.w = DVector::from_vec(w);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::aggregators::testing::{gram, random_g};

    #[test]
    fn weights_stay_on_the_simplex() {
        for seed in 0..10 {
            let gg = normalised_cross_gramian(&gram(&random_g(3, 6, seed)));
            let start = DVector::from_element(3, 1.0 / 3.0);
            let w = weights(&gg, &start, 0.3, 20).unwrap();
            assert!((w.sum() - 1.0).abs() < 1e-9 && w.iter().all(|x| *x >= 0.0));
        }
    }

    #[test]
    fn weights_go_to_the_dominating_smaller_gradient_and_keep_symmetry() {
        // g₂ = 0.1 g₁: the objective's gradient is larger on task 1 everywhere, so the
        // projected steps end at the vertex of task 2 (the min-norm point of the hull).
        let gg = DMatrix::from_row_slice(2, 2, &[1.0, 0.1, 0.1, 0.01]);
        let w = weights(&gg, &DVector::from_element(2, 0.5), 0.3, 20).unwrap();
        assert_eq!(w.as_slice(), &[0.0, 1.0]);
        // Orthogonal gradients of equal norm: the uniform weights are a fixed point.
        let w = weights(
            &DMatrix::identity(2, 2),
            &DVector::from_element(2, 0.5),
            0.3,
            20,
        );
        assert!((w.unwrap()[0] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn the_update_mixes_the_weights_with_the_mean() {
        let w = DVector::from_column_slice(&[1.0, 0.0]);
        let u = update_weights(&w, 0.3);
        assert!((u[0] - 1.15 / 1.3).abs() < 1e-12 && (u[1] - 0.15 / 1.3).abs() < 1e-12);
        assert!((u.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let zero = normalised_cross_gramian(&DMatrix::zeros(2, 2));
        assert!(zero.iter().all(|x| *x == 0.0));
    }
}
