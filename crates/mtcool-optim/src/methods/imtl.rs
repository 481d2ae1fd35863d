//! `imtl` (Liu et al., ICLR 2021): impartial multi-task learning. IMTL-L scales each loss
//! as e^{s_i} L_i − s_i with learned s_i; IMTL-G combines the task gradients so that the
//! update has equal projections onto every task's unit gradient. `hybrid` (default) is both.
//!
//! # The rule
//!
//! With n_i = ‖g_i‖ = √M_ii and u_i = g_i/n_i, the rows D_i = g_1 − g_{i+1} and
//! U_i = u_1 − u_{i+1} (i = 1..K−1) give α_{2:K} = g_1 Uᵀ (D Uᵀ)⁻¹, α_1 = 1 − Σ α_{2:K}
//! (LibMTL `weighting/IMTL.py`). Every product is a Gramian entry:
//! (g_1 Uᵀ)_j = M_11/n_1 − M_{1,j}/n_j and (D Uᵀ)_{ij} = (M_11 − M_{i,1})/n_1 − (M_{1,j} − M_{i,j})/n_j.

use candle_core::{DType, Device, Tensor, Var};
use nalgebra::{DMatrix, DVector};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::{check_gramian, fail};
use crate::error::Result;
use crate::gradient_method::{Aggregator, Combination};

/// Which parts of IMTL are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImtlMode {
    /// IMTL-L and IMTL-G.
    #[default]
    Hybrid,
    /// IMTL-G only.
    Gradient,
    /// IMTL-L only (the shared update is then the plain sum).
    Loss,
}

/// Options of `imtl`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImtlConfig {
    /// Which parts are on.
    pub mode: ImtlMode,
}

/// IMTL.
#[derive(Debug)]
pub struct Imtl {
    mode: ImtlMode,
    scales: Vec<Var>,
}

impl Imtl {
    /// IMTL for `tasks` tasks; the loss scales s_i start at 0 on `device`.
    pub fn new(config: &ImtlConfig, tasks: usize, device: &Device) -> Result<Self> {
        let scales = match config.mode {
            ImtlMode::Gradient => Vec::new(),
            ImtlMode::Hybrid | ImtlMode::Loss => (0..tasks)
                .map(|_| Var::zeros((), DType::F32, device))
                .collect::<candle_core::Result<_>>()?,
        };
        Ok(Self {
            mode: config.mode,
            scales,
        })
    }
}

impl Aggregator for Imtl {
    fn name(&self) -> &'static str {
        "imtl"
    }

    fn extra_vars(&self) -> Vec<Var> {
        self.scales.clone()
    }

    fn scale_losses(&self, losses: Vec<Tensor>) -> Result<Vec<Tensor>> {
        if self.scales.is_empty() {
            return Ok(losses);
        }
        losses
            .into_iter()
            .zip(&self.scales)
            .map(|(l, s)| {
                let s = s.as_tensor();
                Ok(((s.exp()? * l)? - s)?)
            })
            .collect()
    }

    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        _losses: &[f64],
        _rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        let k = gramian.nrows();
        let alpha = match self.mode {
            ImtlMode::Loss => vec![1.0; k],
            ImtlMode::Hybrid | ImtlMode::Gradient => {
                gradient_weights(gramian)?.iter().copied().collect()
            }
        };
        Ok(Combination::shared(alpha))
    }
}

const METHOD: &str = "imtl";

/// D Uᵀ counts as singular when its smallest singular value is below this fraction of its
/// largest.
const SINGULAR_RCOND: f64 = 1e-12;

/// IMTL-G's weights: d = Σ_j alpha_j g_j has d·u_i equal for every task i, and Σ alpha = 1.
///
/// K = 1 gives \[1\]. Fails (rather than silently falling back to the mean) when a task
/// gradient is zero (u_i undefined; LibMTL divides by zero) or when D Uᵀ is singular, e.g.
/// two identical or parallel task gradients or K > rank(G) + 1; the caller decides what to do
/// with such a step.
pub fn gradient_weights(gram: &DMatrix<f64>) -> Result<DVector<f64>> {
    let k = check_gramian(METHOD, gram)?;
    if k == 1 {
        return Ok(DVector::from_element(1, 1.0));
    }
    let n: Vec<f64> = (0..k).map(|i| gram[(i, i)].sqrt()).collect();
    let max_norm = n.iter().copied().fold(0.0, f64::max);
    if let Some(i) = (0..k).find(|&i| n[i] <= 1e-150 || n[i] <= 1e-12 * max_norm) {
        return Err(fail(
            METHOD,
            format!("task {i}'s gradient is zero: its unit vector is undefined"),
        ));
    }
    // Indices 1..K of the tasks are rows/columns 0..K−1 of the reduced system.
    let r = k - 1;
    let g1_ut = DVector::from_fn(r, |j, _| gram[(0, 0)] / n[0] - gram[(0, j + 1)] / n[j + 1]);
    let d_ut = DMatrix::from_fn(r, r, |i, j| {
        (gram[(0, 0)] - gram[(i + 1, 0)]) / n[0]
            - (gram[(0, j + 1)] - gram[(i + 1, j + 1)]) / n[j + 1]
    });
    let sv = d_ut.clone().svd(false, false).singular_values;
    let (smin, smax) = sv.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), &s| {
        (lo.min(s), hi.max(s))
    });
    if smax.is_nan() || smax <= 0.0 || smin <= SINGULAR_RCOND * smax {
        return Err(fail(
            METHOD,
            "D Uᵀ is singular (parallel or linearly dependent task gradients)",
        ));
    }
    // Row vector α_{2:K} = (g_1 Uᵀ)(D Uᵀ)⁻¹, i.e. (D Uᵀ)ᵀ α_{2:K} = (g_1 Uᵀ)ᵀ.
    let rest = d_ut
        .transpose()
        .lu()
        .solve(&g1_ut)
        .ok_or_else(|| fail(METHOD, "D Uᵀ is singular"))?;
    if let Some(bad) = rest.iter().find(|v| !v.is_finite()) {
        return Err(fail(
            METHOD,
            format!("the solved weights are not finite ({bad})"),
        ));
    }
    let mut alpha = DVector::zeros(k);
    alpha[0] = 1.0 - rest.sum();
    alpha.rows_mut(1, r).copy_from(&rest);
    Ok(alpha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregators::testing::{gram, random_g};

    #[test]
    fn equal_projections_on_unit_gradients() {
        for (k, d) in [(2, 2), (2, 5), (3, 3), (3, 7), (4, 4), (5, 9), (6, 6)] {
            for seed in 0..10 {
                let g = random_g(k, d, 4000 + 10 * k as u64 + seed);
                let m = gram(&g);
                let a = gradient_weights(&m).unwrap();
                assert!((a.sum() - 1.0).abs() < 1e-9);
                let dir = a.transpose() * &g;
                let proj: Vec<f64> = (0..k)
                    .map(|i| dir.dot(&g.row(i)) / g.row(i).norm())
                    .collect();
                let scale = dir.norm().max(1e-300);
                for p in &proj {
                    assert!(
                        (p - proj[0]).abs() < 1e-8 * scale,
                        "k {k} d {d} seed {seed}: {proj:?}"
                    );
                }
                // The same through the Gramian only.
                let ma = &m * &a;
                for i in 0..k {
                    let p = ma[i] / m[(i, i)].sqrt();
                    assert!((p - proj[i]).abs() < 1e-9 * scale);
                }
            }
        }
    }

    #[test]
    fn hand_case_two_tasks() {
        // g1 = (1, 0), g2 = (0, 2): u1 = e1, u2 = e2; d = α1 g1 + α2 g2 with α1 = 2 α2 ⇒
        // equal projections α1 = 2 α2 and α1 + α2 = 1: α = (2/3, 1/3).
        let m = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, 4.0]);
        let a = gradient_weights(&m).unwrap();
        assert!((a - DVector::from_vec(vec![2.0 / 3.0, 1.0 / 3.0])).norm() < 1e-14);
    }

    #[test]
    fn singular_and_degenerate_inputs_fail() {
        // Identical gradients.
        assert!(gradient_weights(&DMatrix::from_element(2, 2, 1.0)).is_err());
        // Parallel gradients of different lengths: U has a zero row.
        let m = DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 2.0, 4.0]);
        assert!(gradient_weights(&m).is_err());
        // A zero gradient.
        let m = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, 0.0]);
        let e = gradient_weights(&m).unwrap_err().to_string();
        assert!(e.contains("zero"), "{e}");
        // Four gradients in 2-D: D is 3×2, so the 3×3 D Uᵀ has rank ≤ 2.
        let g = random_g(4, 2, 1);
        assert!(gradient_weights(&gram(&g)).is_err());
        assert_eq!(
            gradient_weights(&DMatrix::from_element(1, 1, 3.0)).unwrap(),
            DVector::from_element(1, 1.0)
        );
        assert!(gradient_weights(&DMatrix::from_element(2, 2, f64::NAN)).is_err());
    }
}
