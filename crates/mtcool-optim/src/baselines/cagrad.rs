//! `cagrad` (Liu et al., NeurIPS 2021): conflict-averse gradient descent. The update
//! maximises the worst task's improvement within a ball of radius c‖g_0‖ around the mean
//! gradient g_0; heads get their plain gradients.

use nalgebra::DMatrix;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::cagrad;
use crate::error::{OptimError, Result};
use crate::gradient_method::{Aggregator, Combination};

/// Options of `cagrad`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CagradConfig {
    /// The radius c (0 gives the mean gradient).
    pub c: f64,
    /// Divide the update by 1 + c² (the reference's `rescale = 1`).
    pub rescale: bool,
}

impl Default for CagradConfig {
    fn default() -> Self {
        Self {
            c: 0.4,
            rescale: true,
        }
    }
}

/// CAGrad.
#[derive(Debug)]
pub struct CaGrad {
    config: CagradConfig,
}

impl CaGrad {
    /// CAGrad with `config`.
    pub fn new(config: &CagradConfig) -> Result<Self> {
        if !config.c.is_finite() || config.c < 0.0 {
            return Err(OptimError::Config {
                method: "cagrad".into(),
                problem: format!("c must be finite and ≥ 0, got {}", config.c),
            });
        }
        Ok(Self {
            config: config.clone(),
        })
    }
}

impl Aggregator for CaGrad {
    fn name(&self) -> &'static str {
        "cagrad"
    }

    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        _losses: &[f64],
        _rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        let alpha = cagrad::weights(gramian, self.config.c, self.config.rescale)?;
        Ok(Combination::shared(alpha.iter().copied().collect()))
    }
}
