//! `fairgrad` (Ban & Ji, ICML 2024; OptMN-Lab/fairgrad): α-fair weights from
//! [`crate::aggregators::fairgrad`]. As in the authors' code the shared update is
//! K · Σ_i w_i g_i ("to match the sum loss"), clipped to `max_norm`, and the heads get their
//! plain gradients.

use nalgebra::DMatrix;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::{fail, fairgrad};
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
        let w = fairgrad::weights(gramian, self.config.alpha)?;
        Ok(Combination {
            shared: w.iter().map(|x| k * x).collect(),
            heads: None,
            max_norm: (self.config.max_norm > 0.0).then_some(self.config.max_norm),
        })
    }
}
