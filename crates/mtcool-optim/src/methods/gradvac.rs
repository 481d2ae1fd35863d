//! `gradvac` (Wang et al., ICLR 2021): the rule below over the whole shared
//! encoder (LibMTL's `GradVac_group_type = 0`), its target cosines kept across steps (and in
//! resume files); heads get their plain gradients.
//!
//! # The rule
//!
//! Gradient Vaccine (Wang, Tsvetkov, Firat & Cao, ICLR 2021; LibMTL `weighting/GradVac.py`,
//! whole-model grouping): like PCGrad, but each pair (i, j) keeps a target cosine φ̂_ij, an
//! exponential moving average of the observed cosines, and g_i^PC is moved towards g_j
//! whenever their cosine φ_ij falls below φ̂_ij:
//!
//! ```text
//! g_i^PC ← g_i^PC + g_j · ‖g_i^PC‖ (φ̂ √(1 − φ²) − φ √(1 − φ̂²)) / (‖g_j‖ √(1 − φ̂²))
//! φ̂_ij ← (1 − β) φ̂_ij + β φ_ij
//! ```
//!
//! with φ_ij = cos(g_i^PC, g_j) measured before the change. As in [`crate::aggregators::pcgrad`], each
//! g_i^PC is tracked as coefficients on the original gradients, so only the Gramian is needed;
//! the update is Σ_i g_i^PC. The targets start at 0, so the first steps act like PCGrad.

use nalgebra::{DMatrix, DVector};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::{check_gramian, fail};
use crate::error::Result;
use crate::gradient_method::{Aggregator, Combination};
use crate::state::{from_memory, to_memory};

/// Options of `gradvac`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GradVacConfig {
    /// β, the rate of the targets' moving average (the paper's 0.01; LibMTL's default 0.5).
    pub beta: f64,
}

impl Default for GradVacConfig {
    fn default() -> Self {
        Self { beta: 0.01 }
    }
}

/// Gradient Vaccine.
#[derive(Debug)]
pub struct GradVac {
    beta: f64,
    targets: DMatrix<f64>,
}

impl GradVac {
    /// Targets at 0 for `tasks` tasks.
    pub fn new(config: &GradVacConfig, tasks: usize) -> Result<Self> {
        if !(0.0..=1.0).contains(&config.beta) {
            return Err(fail(
                "gradvac",
                format!("beta must lie in [0, 1], got {}", config.beta),
            ));
        }
        Ok(Self {
            beta: config.beta,
            targets: DMatrix::zeros(tasks, tasks),
        })
    }
}

impl Aggregator for GradVac {
    fn name(&self) -> &'static str {
        "gradvac"
    }

    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        _losses: &[f64],
        rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        let alpha = weights(gramian, &mut self.targets, self.beta, rng)?;
        Ok(Combination::shared(alpha.iter().copied().collect()))
    }

    fn memory(&self) -> Result<serde_json::Value> {
        to_memory(&(self.targets.nrows(), self.targets.as_slice()))
    }

    fn restore_memory(&mut self, memory: &serde_json::Value) -> Result<()> {
        let (k, values): (usize, Vec<f64>) = from_memory(memory)?;
        if values.len() != k * k {
            return Err(fail(
                "gradvac",
                format!("{} saved targets for {k} tasks", values.len()),
            ));
        }
        self.targets = DMatrix::from_vec(k, k, values);
        Ok(())
    }
}

const METHOD: &str = "gradvac";

/// LibMTL's guard in the denominators.
const EPS: f64 = 1e-8;

/// One GradVac step: the weights of d = Σ_i g_i^PC, updating the K×K target cosines
/// `targets` (start at zeros) with rate `beta`. For each task i the other tasks are visited in
/// a fresh random order from `rng`.
pub fn weights<R: Rng + ?Sized>(
    gram: &DMatrix<f64>,
    targets: &mut DMatrix<f64>,
    beta: f64,
    rng: &mut R,
) -> Result<DVector<f64>> {
    let k = check_gramian(METHOD, gram)?;
    if targets.shape() != (k, k) {
        return Err(fail(
            METHOD,
            format!("{:?} target cosines for {k} tasks", targets.shape()),
        ));
    }
    if !(0.0..=1.0).contains(&beta) {
        return Err(fail(METHOD, format!("beta must lie in [0, 1], got {beta}")));
    }
    let mut coef = DMatrix::<f64>::identity(k, k);
    for i in 0..k {
        let mut order: Vec<usize> = (0..k).filter(|&j| j != i).collect();
        order.shuffle(rng);
        for j in order {
            let row = coef.row(i).transpose();
            let norm_i = row.dot(&(gram * &row)).max(0.0).sqrt();
            let norm_j = gram[(j, j)].sqrt();
            let cosine = row.dot(&gram.column(j)) / (norm_i * norm_j + EPS);
            let target = targets[(i, j)];
            if cosine < target {
                let w = norm_i
                    * (target * (1.0 - cosine * cosine).max(0.0).sqrt()
                        - cosine * (1.0 - target * target).max(0.0).sqrt())
                    / (norm_j * (1.0 - target * target).max(0.0).sqrt() + EPS);
                coef[(i, j)] += w;
            }
            targets[(i, j)] = (1.0 - beta) * target + beta * cosine;
        }
    }
    Ok(coef.row_sum().transpose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use crate::aggregators::pcgrad;
    use crate::aggregators::testing::{gram, random_g};

    #[test]
    fn with_zero_targets_and_conflicts_it_is_pcgrad() {
        // Target 0: a conflicting pair is moved exactly to orthogonality, as PCGrad projects.
        for seed in 0..10 {
            let g = gram(&random_g(3, 5, 500 + seed));
            let mut targets = DMatrix::zeros(3, 3);
            let w = weights(&g, &mut targets, 0.0, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
            let p = pcgrad::weights(&g, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
            assert!((w - p).amax() < 1e-6, "seed {seed}");
        }
    }

    #[test]
    fn a_pair_below_its_target_is_raised_to_the_target_cosine() {
        // g1 = (1, 0), g2 = (0, 1): cosine 0 < target ½, so g1 moves to cosine ½ with g2.
        let j = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, 1.0]);
        let g = &j * j.transpose();
        let mut targets = DMatrix::from_element(2, 2, 0.5);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let w = weights(&g, &mut targets, 0.25, &mut rng).unwrap();
        // Task 1's new gradient is g1 + w g2 with cos = ½: w = 1/√3; likewise for task 2.
        let expected = 1.0 + 1.0 / 3f64.sqrt();
        assert!(
            (w[0] - expected).abs() < 1e-6 && (w[1] - expected).abs() < 1e-6,
            "{w}"
        );
        // The targets moved a quarter of the way to the observed cosine 0.
        assert!((targets[(0, 1)] - 0.375).abs() < 1e-12);
    }
}
