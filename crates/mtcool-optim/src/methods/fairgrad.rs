//! `fairgrad` (Ban & Ji, ICML 2024; OptMN-Lab/fairgrad): α-fair weights (the rule
//! below). As in the authors' code the shared update is
//! K · Σ_i w_i g_i ("to match the sum loss"), clipped to `max_norm`, and the heads get their
//! plain gradients.
//!
//! # The rule
//!
//! FairGrad (Ban & Ji, ICML 2024, "Fair Resource Allocation in Multi-Task Learning";
//! OptMN-Lab/fairgrad `methods/weight_methods.py`): α-fair weights, the positive solution of
//!
//! ```text
//! G w = w^(−1/α)        (element-wise power)
//! ```
//!
//! α = 0 would be the sum of losses, α = 1 proportional fairness (Nash-MTL's equation), α → ∞
//! max-min fairness. The reference solves it with `scipy.optimize.least_squares` on
//! Gw − w^(−1/α), w ∈ (0, ∞), from 1/K. Here it is the minimiser of the strictly convex
//! φ(w) = ½ wᵀGw − Σ_i h(w_i), h′(w) = w^(−1/α), found by Newton's method on ∇φ = 0 with a
//! backtracking line search that keeps w > 0; the residual is at rounding level when it
//! returns.
//!
//! When G is singular (a zero or linearly dependent gradient) the equation may have no finite
//! solution (a zero gradient asks for w_i = ∞); the weights are then those of G + δI with
//! δ = 1e-10 · λ_max, and for G = 0 they are 1/K (the update is zero whatever they are).

use nalgebra::{DMatrix, DVector};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::{check_gramian, fail, symmetric_part};
use crate::error::Result;
use crate::gradient_method::{Aggregator, Combination};

/// Options of `fairgrad` (the authors' class defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FairGradConfig {
    /// The fairness exponent α (1: proportional fairness; their QM9 script uses 2).
    pub alpha: f64,
    /// Clip the shared update to this L2 norm (0: no clipping).
    pub max_norm: f64,
}

impl Default for FairGradConfig {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            max_norm: 1.0,
        }
    }
}

/// FairGrad.
#[derive(Debug)]
pub struct FairGrad {
    config: FairGradConfig,
}

impl FairGrad {
    /// FairGrad with `config`.
    pub fn new(config: &FairGradConfig) -> Result<Self> {
        if !(config.alpha.is_finite() && config.alpha > 0.0) {
            return Err(fail(
                "fairgrad",
                format!("alpha must be > 0, got {}", config.alpha),
            ));
        }
        if !(config.max_norm.is_finite() && config.max_norm >= 0.0) {
            return Err(fail(
                "fairgrad",
                format!("max_norm must be ≥ 0, got {}", config.max_norm),
            ));
        }
        Ok(Self {
            config: config.clone(),
        })
    }
}

impl Aggregator for FairGrad {
    fn name(&self) -> &'static str {
        "fairgrad"
    }

    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        _losses: &[f64],
        _rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        let k = gramian.nrows() as f64;
        let w = weights(gramian, self.config.alpha)?;
        Ok(Combination {
            shared: w.iter().map(|x| k * x).collect(),
            heads: None,
            max_norm: (self.config.max_norm > 0.0).then_some(self.config.max_norm),
        })
    }
}

const METHOD: &str = "fairgrad";

/// FairGrad's weights for the Gramian `gram` and the fairness exponent `alpha` (> 0).
pub fn weights(gram: &DMatrix<f64>, alpha: f64) -> Result<DVector<f64>> {
    let k = check_gramian(METHOD, gram)?;
    if !(alpha.is_finite() && alpha > 0.0) {
        return Err(fail(
            METHOD,
            format!("alpha must be finite and > 0, got {alpha}"),
        ));
    }
    let mut g = symmetric_part(gram);
    let eigen = g.clone().symmetric_eigen();
    let largest = eigen.eigenvalues.max();
    if largest <= 0.0 {
        return Ok(DVector::from_element(k, 1.0 / k as f64));
    }
    if eigen.eigenvalues.min() <= 1e-10 * largest {
        for i in 0..k {
            g[(i, i)] += 1e-10 * largest;
        }
    }
    newton(&g, alpha)
}

/// ‖G w − w^(−1/α)‖_∞ relative to ‖G w‖_∞: how far `w` is from solving FairGrad's equation.
pub fn residual(gram: &DMatrix<f64>, w: &DVector<f64>, alpha: f64) -> f64 {
    equation(gram, w, alpha).amax() / (gram * w).amax().max(f64::MIN_POSITIVE)
}

/// F(w) = G w − w^(−1/α), the gradient of φ.
fn equation(g: &DMatrix<f64>, w: &DVector<f64>, alpha: f64) -> DVector<f64> {
    g * w - w.map(|x| x.powf(-1.0 / alpha))
}

/// Newton's method on F = ∇φ (its Jacobian G + diag(w^(−1/α−1)/α) is positive definite),
/// with backtracking on ‖F‖, which each Newton direction decreases, keeping w > 0.
fn newton(g: &DMatrix<f64>, alpha: f64) -> Result<DVector<f64>> {
    let k = g.nrows();
    let mut w = DVector::from_element(k, 1.0 / k as f64);
    let mut f = equation(g, &w, alpha);
    for _ in 0..500 {
        let norm = f.norm();
        if norm <= 1e-14 * (g * &w).amax() {
            break;
        }
        let mut jacobian = g.clone();
        for i in 0..k {
            jacobian[(i, i)] += w[i].powf(-1.0 / alpha - 1.0) / alpha;
        }
        let Some(step) = jacobian.cholesky().map(|c| c.solve(&f)) else {
            return Err(fail(METHOD, "the Newton system is not positive definite"));
        };
        let mut t = 1.0;
        while (0..k).any(|i| w[i] - t * step[i] <= 0.0) {
            t *= 0.5;
        }
        let mut next = &w - &step * t;
        let mut next_f = equation(g, &next, alpha);
        while next_f.norm() > (1.0 - 1e-4 * t) * norm && t > 1e-12 {
            t *= 0.5;
            next = &w - &step * t;
            next_f = equation(g, &next, alpha);
        }
        if next_f.norm() >= norm {
            break;
        }
        (w, f) = (next, next_f);
    }
    if w.iter().all(|x| x.is_finite() && *x > 0.0) {
        Ok(w)
    } else {
        Err(fail(METHOD, format!("no positive solution found: {w}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregators::testing::{gram, random_g};

    #[test]
    fn solves_the_alpha_fair_equation() {
        for seed in 0..30 {
            let k = 2 + seed as usize % 4;
            let g = gram(&random_g(k, k + 3, 300 + seed));
            for alpha in [0.5, 1.0, 2.0, 5.0] {
                let w = weights(&g, alpha).unwrap();
                assert!(w.iter().all(|x| *x > 0.0));
                assert!(residual(&g, &w, alpha) < 1e-9, "seed {seed} α {alpha}");
            }
        }
    }

    #[test]
    fn orthogonal_gradients_closed_form() {
        // G = diag(a, b): a w₁ = w₁^(−1/α) → w₁ = a^(−α/(α+1)).
        let g = DMatrix::from_diagonal(&DVector::from_vec(vec![4.0, 0.25]));
        for alpha in [1.0, 2.0] {
            let w = weights(&g, alpha).unwrap();
            let expected = |a: f64| a.powf(-alpha / (alpha + 1.0));
            assert!((w[0] - expected(4.0)).abs() < 1e-12 && (w[1] - expected(0.25)).abs() < 1e-12);
        }
    }

    #[test]
    fn singular_and_zero_gramians_give_finite_weights() {
        let zero = DMatrix::zeros(3, 3);
        assert_eq!(
            weights(&zero, 1.0).unwrap(),
            DVector::from_element(3, 1.0 / 3.0)
        );
        let j = DMatrix::from_row_slice(3, 2, &[1.0, 0.0, 2.0, 0.0, 0.0, 0.0]);
        let w = weights(&(&j * j.transpose()), 1.0).unwrap();
        assert!(w.iter().all(|x| x.is_finite() && *x > 0.0), "{w}");
        assert!(weights(&DMatrix::identity(2, 2), 0.0).is_err());
    }
}
