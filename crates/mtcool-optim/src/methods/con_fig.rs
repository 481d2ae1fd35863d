//! `con-fig` (Liu, Chen & Thuerey 2024): the rule below; heads get their plain
//! gradients. No options.
//!
//! # The rule
//!
//! ConFIG, conflict-free inverse gradients (Liu, Chen & Thuerey, ICLR 2025 / arXiv 2024;
//! tum-pbs/ConFIG and torchjd's `ConFIG`): with unit gradients û_i = g_i/‖g_i‖, the direction
//! g_u = Ûᵀ (Û Ûᵀ)⁺ 1 has an equal, positive projection on every û_i; the update is
//! (Σ_i g_i · ĝ_u) ĝ_u, ĝ_u = g_u/‖g_u‖.
//!
//! In Gramian terms Û Ûᵀ = N⁻¹ G N⁻¹ (N = diag ‖g_i‖), g_u = Σ_i a_i g_i with a = N⁻¹ c,
//! c = (N⁻¹ G N⁻¹)⁺ 1, and the weights are w = (1ᵀ G a) a / (aᵀ G a). Zero gradients get unit
//! vector 0 (torchjd's `nan_to_num`) and weight 0.

use nalgebra::{DMatrix, DVector};
use rand_chacha::ChaCha8Rng;

use crate::aggregators::{check_gramian, symmetric_part};
use crate::error::Result;
use crate::gradient_method::{Aggregator, Combination};

/// ConFIG.
#[derive(Debug, Default)]
pub struct ConFig;

impl Aggregator for ConFig {
    fn name(&self) -> &'static str {
        "con-fig"
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
}

const METHOD: &str = "con-fig";

/// ConFIG's weights for the Gramian `gram`.
pub fn weights(gram: &DMatrix<f64>) -> Result<DVector<f64>> {
    let k = check_gramian(METHOD, gram)?;
    let g = symmetric_part(gram);
    let largest = (0..k).map(|i| g[(i, i)]).fold(0.0, f64::max);
    let inverse_norm = DVector::from_fn(k, |i, _| {
        let n2 = g[(i, i)];
        if n2 > 1e-24 * largest && n2 > 0.0 {
            1.0 / n2.sqrt()
        } else {
            0.0
        }
    });
    if inverse_norm.iter().all(|x| *x == 0.0) {
        return Ok(DVector::zeros(k));
    }
    let unit_gram = DMatrix::from_fn(k, k, |i, j| g[(i, j)] * inverse_norm[i] * inverse_norm[j]);
    let ones = DVector::from_fn(k, |i, _| if inverse_norm[i] > 0.0 { 1.0 } else { 0.0 });
    let c = unit_gram
        .clone()
        .pseudo_inverse(1e-12 * unit_gram.amax())
        .map_err(|e| crate::aggregators::fail(METHOD, e))?
        * ones;
    let a = c.component_mul(&inverse_norm);
    let squared = a.dot(&(&g * &a));
    if squared <= 0.0 {
        return Ok(DVector::zeros(k));
    }
    let length = (&g * &a).sum();
    Ok(a * (length / squared))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregators::testing::{gram, random_g};

    #[test]
    fn equal_projections_on_unit_gradients_and_the_summed_length() {
        for seed in 0..20 {
            let k = 2 + seed as usize % 3;
            let j = random_g(k, k + 4, 400 + seed);
            let w = weights(&gram(&j)).unwrap();
            let d = j.transpose() * &w;
            let unit_projections: Vec<f64> = (0..k)
                .map(|i| j.row(i).transpose().normalize().dot(&d))
                .collect();
            assert!(unit_projections.iter().all(|p| *p > 0.0));
            let spread = unit_projections
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max)
                - unit_projections
                    .iter()
                    .copied()
                    .fold(f64::INFINITY, f64::min);
            assert!(spread < 1e-9 * d.norm(), "{unit_projections:?}");
            // ‖d‖ = Σ_i g_i · d̂.
            let summed: f64 = (0..k)
                .map(|i| j.row(i).transpose().dot(&d.normalize()))
                .sum();
            assert!((d.norm() - summed).abs() < 1e-9 * summed.abs());
        }
    }

    #[test]
    fn two_orthogonal_gradients_closed_form() {
        // g1 = (2, 0), g2 = (0, 1): ĝ_u = (1, 1)/√2, length (2 + 1)/√2, d = (1.5, 1.5).
        let j = DMatrix::from_row_slice(2, 2, &[2.0, 0.0, 0.0, 1.0]);
        let w = weights(&(&j * j.transpose())).unwrap();
        let d = j.transpose() * w;
        assert!((d - DVector::from_vec(vec![1.5, 1.5])).amax() < 1e-12);
    }

    #[test]
    fn zero_gradients_get_zero_weight() {
        let j = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, 0.0]);
        let w = weights(&(&j * j.transpose())).unwrap();
        assert_eq!(w, DVector::from_vec(vec![1.0, 0.0]));
        assert_eq!(weights(&DMatrix::zeros(2, 2)).unwrap(), DVector::zeros(2));
    }
}
