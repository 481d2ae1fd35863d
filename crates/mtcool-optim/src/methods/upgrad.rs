//! `upgrad` and `dualproj` (Quinton & Rey 2024, torchjd): the task gradients' Gramian is
//! normalised by its trace and regularised with ε·I, as torchjd does before solving, and the
//! weights come from the rule below or from [`crate::aggregators::dualproj`].
//! Heads get their own plain gradients (torchjd's `mtl_backward`).
//!
//! # The rule
//!
//! UPGrad, unconflicting projection of gradients (Quinton & Rey 2024, "Jacobian Descent for
//! Multi-Objective Optimization"; torchjd's `UPGrad` with the mean preference).
//!
//! Each task gradient g_i is projected onto the dual cone of all of them, and the
//! projections are averaged: in weight space, w = (1/K) Σ_i v_i with
//! v_i = argmin_{v ≥ e_i} vᵀ G v ([`crate::aggregators::dual_cone::project`]). The update Jᵀw then
//! conflicts with no task (Gw ≥ 0), and equals the mean gradient when no two gradients
//! conflict.

use nalgebra::{DMatrix, DVector};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::{check_gramian, dual_cone, dualproj, fail};
use crate::error::Result;
use crate::gradient_method::{Aggregator, Combination};

/// Options of `upgrad` and `dualproj` (torchjd's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DualConeConfig {
    /// A Gramian whose trace is below this is treated as zero.
    pub norm_eps: f64,
    /// ε added to the normalised Gramian's diagonal.
    pub reg_eps: f64,
}

impl Default for DualConeConfig {
    fn default() -> Self {
        Self {
            norm_eps: 1e-4,
            reg_eps: 1e-4,
        }
    }
}

/// Which projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DualConeRule {
    /// The mean of the projections of every task gradient.
    UpGrad,
    /// The projection of the mean gradient.
    DualProj,
}

/// UPGrad or DualProj.
#[derive(Debug)]
pub struct DualCone {
    rule: DualConeRule,
    config: DualConeConfig,
}

impl DualCone {
    /// The method `rule` with `config`.
    pub fn new(rule: DualConeRule, config: &DualConeConfig) -> Result<Self> {
        let name = Self::name_of(rule);
        for (key, value) in [("norm_eps", config.norm_eps), ("reg_eps", config.reg_eps)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(fail(name, format!("{key} must be ≥ 0, got {value}")));
            }
        }
        Ok(Self {
            rule,
            config: config.clone(),
        })
    }

    fn name_of(rule: DualConeRule) -> &'static str {
        match rule {
            DualConeRule::UpGrad => "upgrad",
            DualConeRule::DualProj => "dualproj",
        }
    }

    /// G / tr G (zero below `norm_eps`) + `reg_eps` · I.
    pub fn conditioned(&self, gramian: &DMatrix<f64>) -> DMatrix<f64> {
        let trace = gramian.trace();
        let k = gramian.nrows();
        let normalised = if trace < self.config.norm_eps {
            DMatrix::zeros(k, k)
        } else {
            gramian / trace
        };
        normalised + DMatrix::identity(k, k) * self.config.reg_eps
    }
}

impl Aggregator for DualCone {
    fn name(&self) -> &'static str {
        Self::name_of(self.rule)
    }

    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        _losses: &[f64],
        _rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        let g = self.conditioned(gramian);
        let w = match self.rule {
            DualConeRule::UpGrad => weights(&g)?,
            DualConeRule::DualProj => dualproj::weights(&g)?,
        };
        Ok(Combination::shared(w.iter().copied().collect()))
    }
}

const METHOD: &str = "upgrad";

/// UPGrad's weights for the Gramian `gram` (mean preference): the mean of the dual-cone
/// projections of the e_i.
pub fn weights(gram: &DMatrix<f64>) -> Result<DVector<f64>> {
    let k = check_gramian(METHOD, gram)?;
    let mut total = DVector::zeros(k);
    for i in 0..k {
        let mut e = DVector::zeros(k);
        e[i] = 1.0;
        total += dual_cone::project(METHOD, gram, &e)?;
    }
    Ok(total / k as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregators::testing::{gram, random_g};

    #[test]
    fn weights_are_the_mean_of_the_projections_of_each_e_i() {
        for seed in 0..30 {
            let k = 2 + seed as usize % 4;
            let g = gram(&random_g(k, 2 + seed as usize % 6, 100 + seed));
            let w = weights(&g).unwrap();
            let mut mean = DVector::zeros(k);
            for i in 0..k {
                let mut e = DVector::zeros(k);
                e[i] = 1.0;
                let v = dual_cone::project(METHOD, &g, &e).unwrap();
                let r = &g * &v;
                for j in 0..k {
                    assert!(v[j] - e[j] >= -1e-9 && r[j] >= -1e-9);
                    assert!(((v[j] - e[j]) * r[j]).abs() <= 1e-9);
                }
                mean += v;
            }
            assert!((w - mean / k as f64).amax() < 1e-12);
        }
    }

    #[test]
    fn two_conflicting_gradients_closed_form() {
        // g1 = (1, 0), g2 = (−1, 1), dual cone {x : x₁ ≥ 0, x₂ ≥ x₁}: g1 projects to
        // (½, ½), g2 to (0, 1); their mean is (¼, ¾).
        let j = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, -1.0, 1.0]);
        let g = &j * j.transpose();
        let w = weights(&g).unwrap();
        let d = j.transpose() * &w;
        assert!(
            (d - DVector::from_vec(vec![0.25, 0.75])).amax() < 1e-12,
            "{w}"
        );
    }
}
