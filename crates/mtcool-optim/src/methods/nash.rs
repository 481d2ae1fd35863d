//! `nash-mtl` (Navon et al., ICML 2022): the update Σ_i α_i g_i with α > 0 solving
//! (G Gᵀ) α = 1/α (the Nash bargaining solution), on the Gramian normalised by its Frobenius
//! norm as in the authors' code; the weights scale the task losses (heads included) and the
//! shared update is clipped to `max_norm`.
//!
//! # The rule
//!
//! The authors (AvivNavon/nash-mtl `methods/weight_methods.py`) divide the Gramian by its
//! Frobenius norm, then approach the solution by a short sequence of convex problems solved
//! with CVXPY/ECOS, starting from α = 1 (and from the previous step's α afterwards). The same
//! α is the unique minimiser of the strictly convex
//! f(α) = ½ αᵀ M̃ α − Σ_i log α_i over α > 0 (∇f = M̃ α − 1/α), which is solved here by
//! damped Newton steps with a backtracking line search that keeps α > 0.

use nalgebra::{DMatrix, DVector};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::{check_gramian, fail, symmetric_part};
use crate::error::{OptimError, Result};
use crate::gradient_method::{Aggregator, Combination};
use crate::state::{from_memory, to_memory};

/// Options of `nash-mtl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NashConfig {
    /// Clip the shared update to this L2 norm (0 disables clipping).
    pub max_norm: f64,
    /// Newton iterations of the α solve.
    pub iterations: usize,
    /// Recompute α every this many steps (the authors' `update_weights_every`).
    pub update_every: usize,
}

impl Default for NashConfig {
    fn default() -> Self {
        Self {
            max_norm: 1.0,
            iterations: 20,
            update_every: 1,
        }
    }
}

/// Nash-MTL.
#[derive(Debug)]
pub struct NashMtl {
    config: NashConfig,
    steps: usize,
    alpha: Option<Vec<f64>>,
}

impl NashMtl {
    /// Nash-MTL with `config`.
    pub fn new(config: &NashConfig) -> Result<Self> {
        if config.update_every == 0 || config.iterations == 0 || config.max_norm < 0.0 {
            return Err(OptimError::Config {
                method: "nash-mtl".into(),
                problem: "update_every and iterations must be ≥ 1 and max_norm ≥ 0".into(),
            });
        }
        Ok(Self {
            config: config.clone(),
            steps: 0,
            alpha: None,
        })
    }
}

impl Aggregator for NashMtl {
    fn name(&self) -> &'static str {
        "nash-mtl"
    }

    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        _losses: &[f64],
        _rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        let alpha = match &self.alpha {
            Some(a) if !self.steps.is_multiple_of(self.config.update_every) => a.clone(),
            _ => weights(gramian, self.config.iterations)?
                .iter()
                .copied()
                .collect(),
        };
        self.steps += 1;
        self.alpha = Some(alpha.clone());
        Ok(Combination {
            heads: Some(alpha.clone()),
            shared: alpha,
            max_norm: (self.config.max_norm > 0.0).then_some(self.config.max_norm),
        })
    }

    fn memory(&self) -> Result<serde_json::Value> {
        to_memory(&(self.steps, &self.alpha))
    }

    fn restore_memory(&mut self, memory: &serde_json::Value) -> Result<()> {
        (self.steps, self.alpha) = from_memory(memory)?;
        Ok(())
    }
}

const METHOD: &str = "nash-mtl";

/// When the smallest eigenvalue of M̃ is below this, RIDGE · I is added to M̃.
const RIDGE: f64 = 1e-8;

/// Newton stops once ‖M̃ α − 1/α‖₂ is below this.
const TOLERANCE: f64 = 1e-13;

/// Nash-MTL's weights α > 0 with M̃ α = 1/α, M̃ = M / ‖M‖_F; d = Σ_j α_j g_j.
///
/// Damped Newton from the authors' start α = 1, at most `iterations` Newton steps (the
/// authors' default budget is 20 convex sub-problems); it stops early once the residual
/// ‖M̃α − 1/α‖₂ < 1e-13. If the budget runs out first, the last iterate (positive, and
/// better than the start) is returned, as the authors keep their last iterate.
///
/// A solution exists iff no non-zero α ≥ 0 has M̃ α = 0 (e.g. g_1 = −g_2 has none). To
/// keep the problem solvable, when the smallest eigenvalue of M̃ is below 1e-8 a ridge
/// 1e-8 · I is added to M̃ (documented deviation; the authors' solver fails there and keeps
/// its previous α). Fails when every gradient is zero (M = 0: no solution at all).
pub fn weights(gram: &DMatrix<f64>, iterations: usize) -> Result<DVector<f64>> {
    let k = check_gramian(METHOD, gram)?;
    let sym = symmetric_part(gram);
    let frobenius = sym.norm();
    if frobenius.is_nan() || frobenius <= 0.0 {
        return Err(fail(
            METHOD,
            "every task gradient is zero: M α = 1/α has no solution",
        ));
    }
    let mut m = sym / frobenius;
    let lambda_min = m.clone().symmetric_eigenvalues().min();
    if lambda_min.is_nan() || lambda_min < RIDGE {
        for i in 0..k {
            m[(i, i)] += RIDGE;
        }
    }
    let objective =
        |a: &DVector<f64>| 0.5 * a.dot(&(&m * a)) - a.iter().map(|v| v.ln()).sum::<f64>();
    let mut alpha = DVector::from_element(k, 1.0);
    let mut f = objective(&alpha);
    for _ in 0..iterations {
        let grad = &m * &alpha - alpha.map(|v| 1.0 / v);
        if grad.norm() < TOLERANCE {
            break;
        }
        let mut hessian = m.clone();
        for i in 0..k {
            hessian[(i, i)] += 1.0 / (alpha[i] * alpha[i]);
        }
        let Some(chol) = hessian.cholesky() else {
            break;
        };
        let step = -chol.solve(&grad);
        let slope = grad.dot(&step);
        if slope.is_nan() || slope >= 0.0 {
            break;
        }
        // Backtracking: stay in α > 0, then Armijo.
        let mut t = 1.0;
        let mut accepted = false;
        while t > 1e-20 {
            let candidate = &alpha + &step * t;
            if candidate.iter().all(|v| *v > 0.0) {
                let fc = objective(&candidate);
                if fc <= f + 0.25 * t * slope {
                    alpha = candidate;
                    f = fc;
                    accepted = true;
                    break;
                }
            }
            t *= 0.5;
        }
        if !accepted {
            break;
        }
    }
    if let Some(bad) = alpha.iter().find(|v| !v.is_finite() || **v <= 0.0) {
        return Err(fail(
            METHOD,
            format!("Newton produced an invalid weight ({bad})"),
        ));
    }
    Ok(alpha)
}

/// ‖M̃ α − 1/α‖₂ with M̃ = M / ‖M‖_F: how far `alpha` is from solving Nash-MTL's equations.
pub fn residual(gram: &DMatrix<f64>, alpha: &DVector<f64>) -> f64 {
    let m = symmetric_part(gram);
    let m = &m / m.norm();
    (&m * alpha - alpha.map(|v| 1.0 / v)).norm()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregators::testing::{gram, random_g};

    #[test]
    fn solves_the_equations_on_random_pd_gramians() {
        for k in 2..=5 {
            for seed in 0..20 {
                let g = random_g(k, k + 3, 5000 + 100 * k as u64 + seed);
                let m = gram(&g);
                let a = weights(&m, 20).unwrap();
                assert!(a.iter().all(|v| *v > 0.0));
                let r = residual(&m, &a);
                assert!(r < 1e-6, "k {k} seed {seed}: residual {r}");
            }
        }
    }

    #[test]
    fn scale_of_the_gramian_does_not_matter() {
        let m = gram(&random_g(3, 5, 11));
        let a = weights(&m, 50).unwrap();
        let b = weights(&(&m * 1e-6), 50).unwrap();
        assert!((a - b).norm() < 1e-9);
    }

    #[test]
    fn hand_cases() {
        // Orthogonal gradients: M̃ = diag(m_i)/‖m‖, α_i = 1/√(M̃_ii).
        let m = DMatrix::from_diagonal(&DVector::from_vec(vec![1.0, 4.0]));
        let a = weights(&m, 50).unwrap();
        let f = 17f64.sqrt();
        let expected = DVector::from_vec(vec![f.sqrt(), (f / 4.0).sqrt()]);
        assert!((a - expected).norm() < 1e-10);
        // One task: M̃ = 1, α = 1.
        let a = weights(&DMatrix::from_element(1, 1, 9.0), 20).unwrap();
        assert!((a[0] - 1.0).abs() < 1e-15);
        // Zero budget: the start.
        assert_eq!(weights(&m, 0).unwrap(), DVector::from_element(2, 1.0));
    }

    #[test]
    fn degenerate_inputs() {
        assert!(weights(&DMatrix::zeros(2, 2), 20).is_err());
        assert!(weights(&DMatrix::from_element(2, 2, f64::NAN), 20).is_err());
        // Opposite gradients: no exact solution; the ridge keeps α finite and positive.
        let m = DMatrix::from_row_slice(2, 2, &[1.0, -1.0, -1.0, 1.0]);
        let a = weights(&m, 200).unwrap();
        assert!(a.iter().all(|v| v.is_finite() && *v > 0.0));
        // Identical gradients (singular, but solvable): α_1 = α_2, M̃α = 1/α.
        let m = DMatrix::from_element(2, 2, 2.0);
        let a = weights(&m, 50).unwrap();
        assert!((a[0] - a[1]).abs() < 1e-9);
        assert!(residual(&m, &a) < 1e-6);
    }
}
