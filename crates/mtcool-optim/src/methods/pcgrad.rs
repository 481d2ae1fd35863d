//! `pcgrad` (Yu et al., NeurIPS 2020): each task gradient is projected off the original
//! gradients it conflicts with, visiting the other tasks in a fresh random order (from the
//! run's RNG) every step; the update is the sum of the projected gradients.
//!
//! # The rule
//!
//! Each projected g_i^PC is a linear combination Σ_k C_ik g_k of the original rows, tracked
//! by its coefficient row C_i (starting at e_i), so every dot product comes from the Gramian:
//! g_i^PC·g_j = Σ_k C_ik M_kj. The update d = Σ_i g_i^PC has weights α_k = Σ_i C_ik.

use nalgebra::{DMatrix, DVector};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::aggregators::check_gramian;
use crate::error::Result;
use crate::gradient_method::{Aggregator, Combination};

/// PCGrad.
#[derive(Debug, Default)]
pub struct PcGrad;

impl Aggregator for PcGrad {
    fn name(&self) -> &'static str {
        "pcgrad"
    }

    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        _losses: &[f64],
        rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        let alpha = weights(gramian, rng)?;
        Ok(Combination::shared(alpha.iter().copied().collect()))
    }
}

const METHOD: &str = "pcgrad";

/// PCGrad's weights: d = Σ_j alpha_j g_j = Σ_i g_i^PC.
///
/// For each task i in order 0..K, the other tasks are visited in a fresh random order
/// (one `shuffle` of the K − 1 other indices per i, drawn from `rng`, so a seeded RNG
/// repeats the step); whenever g_i^PC·g_j < 0, g_i^PC ← g_i^PC − (g_i^PC·g_j)/‖g_j‖² g_j,
/// projecting against the **original** g_j. Tasks with ‖g_j‖² = 0 are skipped as projection
/// targets. The references (tianheyu927/PCGrad, LibMTL) shuffle all K tasks including i
/// itself; projecting g_i^PC against its own g_i only acts when g_i^PC·g_i < 0, and the spec
/// visits the other tasks only, as here.
pub fn weights<R: Rng + ?Sized>(gram: &DMatrix<f64>, rng: &mut R) -> Result<DVector<f64>> {
    let k = check_gramian(METHOD, gram)?;
    let mut coef = DMatrix::<f64>::identity(k, k);
    for i in 0..k {
        let mut order: Vec<usize> = (0..k).filter(|&j| j != i).collect();
        order.shuffle(rng);
        for j in order {
            let norm2 = gram[(j, j)];
            if norm2 <= 0.0 {
                continue;
            }
            let dot = coef.row(i).dot(&gram.column(j).transpose());
            if dot < 0.0 {
                coef[(i, j)] -= dot / norm2;
            }
        }
    }
    Ok(coef.row_sum().transpose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use crate::aggregators::testing::{gram, random_g};

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    #[test]
    fn non_conflicting_gradients_are_summed() {
        // Pairwise non-negative dot products.
        let g = DMatrix::from_row_slice(3, 3, &[1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 2.0, 1.0]);
        let a = weights(&gram(&g), &mut rng(0)).unwrap();
        assert_eq!(a, DVector::from_element(3, 1.0));
    }

    #[test]
    fn two_conflicting_gradients_become_orthogonal() {
        for seed in 0..30 {
            let mut g = random_g(2, 4, seed);
            let m0 = gram(&g);
            if m0[(0, 1)] >= 0.0 {
                // Make them conflict.
                let r = -g.row(1);
                g.row_mut(1).copy_from(&r);
            }
            let m = gram(&g);
            assert!(m[(0, 1)] < 0.0);
            let a = weights(&m, &mut rng(seed)).unwrap();
            // Explicitly: g1^PC = g1 − (g1·g2)/‖g2‖² g2 ⊥ g2, and symmetrically.
            let (g1, g2) = (g.row(0), g.row(1));
            let p1 = g1 - g2 * (g1.dot(&g2) / g2.norm_squared());
            let p2 = g2 - g1 * (g1.dot(&g2) / g1.norm_squared());
            assert!(p1.dot(&g2).abs() < 1e-12 && p2.dot(&g1).abs() < 1e-12);
            let d = g1 * a[0] + g2 * a[1];
            assert!((d - (p1 + p2)).norm() < 1e-12, "seed {seed}");
        }
    }

    #[test]
    fn projection_is_against_original_gradients() {
        // Replays the rule on explicit vectors with the same shuffles and compares.
        for seed in 0..20 {
            let k = 4;
            let g = random_g(k, 3, 500 + seed);
            let m = gram(&g);
            let a = weights(&m, &mut rng(seed)).unwrap();
            let mut r = rng(seed);
            let mut d = nalgebra::RowDVector::zeros(3);
            for i in 0..k {
                let mut order: Vec<usize> = (0..k).filter(|&j| j != i).collect();
                order.shuffle(&mut r);
                let mut pc = g.row(i).clone_owned();
                for j in order {
                    let gj = g.row(j);
                    let dot = pc.dot(&gj);
                    if dot < 0.0 {
                        pc -= gj * (dot / gj.norm_squared());
                        assert!(pc.dot(&gj).abs() < 1e-10);
                    }
                }
                d += pc;
            }
            let d_alpha = a.transpose() * &g;
            assert!((d_alpha - d).norm() < 1e-10, "seed {seed}");
        }
    }

    #[test]
    fn seeded_rng_repeats_and_zero_gradients_are_skipped() {
        let g = random_g(5, 3, 9);
        let m = gram(&g);
        assert_eq!(
            weights(&m, &mut rng(3)).unwrap(),
            weights(&m, &mut rng(3)).unwrap()
        );
        // A zero gradient is never a projection target and contributes nothing itself.
        let mut g = random_g(3, 2, 4);
        g.row_mut(2).fill(0.0);
        let a = weights(&gram(&g), &mut rng(1)).unwrap();
        assert!(a.iter().all(|v| v.is_finite()));
        assert_eq!(a[2], 1.0);
        assert!(weights(&DMatrix::zeros(2, 3), &mut rng(0)).is_err());
        assert_eq!(
            weights(&DMatrix::from_element(1, 1, 2.0), &mut rng(0)).unwrap(),
            DVector::from_element(1, 1.0)
        );
    }
}
