//! `dualproj` (its adapter is [`crate::methods::upgrad::DualCone`]).
//!
//! DualProj (Quinton & Rey 2024; torchjd's `DualProj` with the mean preference): the mean
//! gradient projected onto the dual cone of the task gradients, w = argmin_{v ≥ 1/K} vᵀ G v
//! ([`crate::aggregators::dual_cone::project`]). Like UPGrad it never conflicts with a task (Gw ≥ 0).

use nalgebra::{DMatrix, DVector};

use crate::aggregators::{check_gramian, dual_cone};
use crate::error::Result;

const METHOD: &str = "dualproj";

/// DualProj's weights for the Gramian `gram` (mean preference).
pub fn weights(gram: &DMatrix<f64>) -> Result<DVector<f64>> {
    let k = check_gramian(METHOD, gram)?;
    dual_cone::project(METHOD, gram, &DVector::from_element(k, 1.0 / k as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregators::testing::{gram, random_g};

    #[test]
    fn weights_satisfy_the_projection_conditions() {
        for seed in 0..30 {
            let k = 2 + seed as usize % 4;
            let g = gram(&random_g(k, 2 + seed as usize % 6, 200 + seed));
            let w = weights(&g).unwrap();
            let r = &g * &w;
            for j in 0..k {
                let slack = w[j] - 1.0 / k as f64;
                assert!(slack >= -1e-9 && r[j] >= -1e-9 && (slack * r[j]).abs() <= 1e-9);
            }
        }
    }

    #[test]
    fn conflicting_pair_closed_form() {
        // g1 = (1, 0), g2 = (−1, 1); mean (0, ½) has g1·mean = 0, g2·mean = ½: kept.
        let j = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, -1.0, 1.0]);
        let w = weights(&(&j * j.transpose())).unwrap();
        assert!((w - DVector::from_vec(vec![0.5, 0.5])).amax() < 1e-12);
        // g1 = (1, 0), g2 = (−2, 1): mean (−½, ½) conflicts with g1; the projection onto
        // {x : x₁ ≥ 0, −2x₁ + x₂ ≥ 0} is (0, ½).
        let j = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, -2.0, 1.0]);
        let w = weights(&(&j * j.transpose())).unwrap();
        let d = j.transpose() * &w;
        assert!(
            (&d - DVector::from_vec(vec![0.0, 0.5])).amax() < 1e-12,
            "{d}"
        );
    }
}
