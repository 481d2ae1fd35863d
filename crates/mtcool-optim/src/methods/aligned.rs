//! `aligned-mtl` (Senushkin et al., CVPR 2023): the task gradients are replaced by the
//! closest set of orthogonal gradients of equal norm (scaled to the smallest singular
//! value), Ĝ = B G, and the update is Σ_i w_i ĝ_i.
//!
//! # The rule
//!
//! M = V Λ Vᵀ; over the kept eigen-directions (λ > tol), B = √λ_min V Λ^{-1/2} Vᵀ, the
//! aligned rows are Ĝ = B G and d = Σ_i w_i ĝ_i = Σ_j (B w)_j g_j (B is symmetric).

use nalgebra::{DMatrix, DVector};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::{check_finite, check_gramian, fail, symmetric_part};
use crate::error::Result;
use crate::gradient_method::{Aggregator, Combination};

/// Options of `aligned-mtl`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlignedConfig {
    /// Task weights w (empty: 1/K each).
    pub weights: Vec<f64>,
    /// Eigenvalues of G Gᵀ at or below this are dropped (default: LibMTL's relative rule).
    pub tolerance: Option<f64>,
}

/// Aligned-MTL.
#[derive(Debug)]
pub struct AlignedMtl {
    weights: DVector<f64>,
    tolerance: Option<f64>,
}

impl AlignedMtl {
    /// Aligned-MTL for `tasks` tasks.
    pub fn new(config: &AlignedConfig, tasks: usize) -> Result<Self> {
        let w = super::per_task(
            "aligned-mtl",
            "weights",
            &config.weights,
            tasks,
            1.0 / tasks.max(1) as f64,
        )?;
        Ok(Self {
            weights: DVector::from_vec(w),
            tolerance: config.tolerance,
        })
    }
}

impl Aggregator for AlignedMtl {
    fn name(&self) -> &'static str {
        "aligned-mtl"
    }

    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        _losses: &[f64],
        _rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        let alpha = weights(gramian, &self.weights, self.tolerance)?;
        Ok(Combination::shared(alpha.iter().copied().collect()))
    }
}

const METHOD: &str = "aligned-mtl";

/// The default eigenvalue cut-off: max(λ) · K · ε with ε the **f32** machine epsilon.
///
/// Both references compute `torch.max(λ) * max(M.shape) * torch.finfo().eps`, and
/// `torch.finfo()` without a dtype is the default float32 one (ε ≈ 1.19e-7), which also fits
/// Gramians computed from f32 gradients.
pub fn default_tolerance(max_eigenvalue: f64, k: usize) -> f64 {
    max_eigenvalue * k as f64 * f64::from(f32::EPSILON)
}

/// Aligned-MTL's weights alpha = B w, so that d = Σ_j alpha_j g_j = Σ_i w_i ĝ_i.
///
/// Eigen-directions with λ ≤ `tolerance` (default [`default_tolerance`]) are dropped, and
/// λ_min is the smallest kept eigenvalue. `task_weights` are the w_i: the spec uses w = 1/K,
/// both reference implementations use w = 1 (`B.sum(0)`). If no direction is kept (every
/// gradient zero) the weights are zero (d = 0 whatever they are).
pub fn weights(
    gram: &DMatrix<f64>,
    task_weights: &DVector<f64>,
    tolerance: Option<f64>,
) -> Result<DVector<f64>> {
    let k = check_gramian(METHOD, gram)?;
    check_finite(METHOD, "task weights", task_weights.as_slice(), k)?;
    if let Some(t) = tolerance {
        if !t.is_finite() || t < 0.0 {
            return Err(fail(
                METHOD,
                format!("the tolerance must be finite and ≥ 0, got {t}"),
            ));
        }
    }
    Ok(alignment(gram, tolerance)?.map_or_else(|| DVector::zeros(k), |b| b * task_weights))
}

/// The alignment matrix B = √λ_min V_r Λ_r^{-1/2} V_rᵀ over the kept directions, or `None`
/// when none is kept.
pub fn alignment(gram: &DMatrix<f64>, tolerance: Option<f64>) -> Result<Option<DMatrix<f64>>> {
    let k = check_gramian(METHOD, gram)?;
    let eig = symmetric_part(gram).symmetric_eigen();
    let max = eig.eigenvalues.max();
    let tol = tolerance.unwrap_or_else(|| default_tolerance(max, k));
    let kept: Vec<usize> = (0..k)
        .filter(|&i| eig.eigenvalues[i] > tol && eig.eigenvalues[i] > 0.0)
        .collect();
    let Some(lambda_min) = kept
        .iter()
        .map(|&i| eig.eigenvalues[i])
        .min_by(|a, b| a.total_cmp(b))
    else {
        return Ok(None);
    };
    let mut b = DMatrix::zeros(k, k);
    for &i in &kept {
        let v = eig.eigenvectors.column(i);
        b += (v * v.transpose()) * (lambda_min / eig.eigenvalues[i]).sqrt();
    }
    Ok(Some(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregators::testing::{gram, random_g};

    /// Non-zero eigenvalues (relative cut-off) of a symmetric PSD matrix.
    fn nonzero_eigenvalues(m: &DMatrix<f64>) -> Vec<f64> {
        let e = symmetric_part(m).symmetric_eigenvalues();
        let max = e.max();
        e.iter().copied().filter(|v| *v > 1e-9 * max).collect()
    }

    #[test]
    fn aligned_gramian_has_condition_number_one() {
        for (k, d, rank) in [(2, 5, 2), (3, 3, 3), (4, 10, 4), (4, 2, 2), (6, 3, 3)] {
            for seed in 0..5 {
                let g = random_g(k, d, 6000 + 10 * k as u64 + seed);
                let m = gram(&g);
                let b = alignment(&m, None).unwrap().unwrap();
                let aligned = &b * &g;
                let mm = &aligned * aligned.transpose();
                let ev = nonzero_eigenvalues(&mm);
                assert_eq!(ev.len(), rank, "k {k} d {d}");
                let (lo, hi) = ev
                    .iter()
                    .fold((f64::INFINITY, 0.0_f64), |(l, h), &v| (l.min(v), h.max(v)));
                assert!(
                    (hi / lo - 1.0).abs() < 1e-8,
                    "k {k} d {d}: cond {}",
                    hi / lo
                );
                // The common eigenvalue is λ_min of M over the kept directions.
                let lam = nonzero_eigenvalues(&m)
                    .into_iter()
                    .fold(f64::INFINITY, f64::min);
                assert!((lo / lam - 1.0).abs() < 1e-8);
                // alpha = B w reproduces Σ w_i ĝ_i.
                let w = DVector::from_element(k, 1.0 / k as f64);
                let alpha = weights(&m, &w, None).unwrap();
                let d1 = alpha.transpose() * &g;
                let d2 = w.transpose() * &aligned;
                assert!((d1 - d2).norm() < 1e-10);
            }
        }
    }

    #[test]
    fn orthogonal_hand_case() {
        // g1 = (2, 0), g2 = (0, 1): Ĝ rows have norm 1 (λ_min = 1), so alpha = (1/2, 1) w.
        let m = DMatrix::from_diagonal(&DVector::from_vec(vec![4.0, 1.0]));
        let a = weights(&m, &DVector::from_vec(vec![1.0, 1.0]), None).unwrap();
        assert!((a - DVector::from_vec(vec![0.5, 1.0])).norm() < 1e-14);
    }

    #[test]
    fn tolerance_and_degenerate_inputs() {
        let w = DVector::from_element(2, 0.5);
        assert_eq!(
            weights(&DMatrix::zeros(2, 2), &w, None).unwrap(),
            DVector::zeros(2)
        );
        assert!(weights(
            &DMatrix::identity(2, 2),
            &DVector::from_element(3, 1.0),
            None
        )
        .is_err());
        assert!(weights(&DMatrix::identity(2, 2), &w, Some(-1.0)).is_err());
        assert!(weights(&DMatrix::identity(2, 2), &w, Some(f64::NAN)).is_err());
        // A tolerance above every eigenvalue keeps nothing.
        assert_eq!(
            weights(&DMatrix::identity(2, 2), &w, Some(2.0)).unwrap(),
            DVector::zeros(2)
        );
        // Identical gradients: rank 1, the single kept direction is (1, 1)/√2.
        let m = DMatrix::from_element(2, 2, 1.0);
        let a = weights(&m, &DVector::from_element(2, 1.0), None).unwrap();
        assert!((a - DVector::from_element(2, 1.0)).norm() < 1e-12);
        assert!((default_tolerance(2.0, 3) - 6.0 * f64::from(f32::EPSILON)).abs() < 1e-20);
    }
}
