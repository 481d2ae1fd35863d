//! `upgrad` and `dualproj` (Quinton & Rey 2024, torchjd): the task gradients' Gramian is
//! normalised by its trace and regularised with ε·I, as torchjd does before solving, and the
//! weights come from [`crate::aggregators::upgrad`] or [`crate::aggregators::dualproj`].
//! Heads get their own plain gradients (torchjd's `mtl_backward`).

use nalgebra::DMatrix;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::{dualproj, fail, upgrad};
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
            DualConeRule::UpGrad => upgrad::weights(&g)?,
            DualConeRule::DualProj => dualproj::weights(&g)?,
        };
        Ok(Combination::shared(w.iter().copied().collect()))
    }
}
