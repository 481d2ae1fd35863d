//! `nash-mtl` (Navon et al., ICML 2022): the update Σ_i α_i g_i with α > 0 solving
//! (G Gᵀ) α = 1/α (the Nash bargaining solution), on the Gramian normalised by its Frobenius
//! norm as in the authors' code; the weights scale the task losses (heads included) and the
//! shared update is clipped to `max_norm`.

use nalgebra::DMatrix;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::nash;
use crate::error::{OptimError, Result};
use crate::gradient_method::{Aggregator, Combination};
use crate::state::{from_memory, to_memory};

/// Options of `nash-mtl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NashConfig {
    /// Clip the shared update to this L2 norm (0 disables clipping).
    pub max_norm: f64,
    /// Newton iterations of the α solve.
    pub iterations: usize,
    /// Recompute α every this many steps (the authors' `update_weights_every`).
    pub update_every: usize,
}

impl Default for NashConfig {
    fn default() -> Self {
        Self {
            max_norm: 1.0,
            iterations: 20,
            update_every: 1,
        }
    }
}

/// Nash-MTL.
#[derive(Debug)]
pub struct NashMtl {
    config: NashConfig,
    steps: usize,
    alpha: Option<Vec<f64>>,
}

impl NashMtl {
    /// Nash-MTL with `config`.
    pub fn new(config: &NashConfig) -> Result<Self> {
        if config.update_every == 0 || config.iterations == 0 || config.max_norm < 0.0 {
            return Err(OptimError::Config {
                method: "nash-mtl".into(),
                problem: "update_every and iterations must be ≥ 1 and max_norm ≥ 0".into(),
            });
        }
        Ok(Self {
            config: config.clone(),
            steps: 0,
            alpha: None,
        })
    }
}

impl Aggregator for NashMtl {
    fn name(&self) -> &'static str {
        "nash-mtl"
    }

    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        _losses: &[f64],
        _rng: &mut ChaCha8Rng,
    ) -> Result<Combination> {
        let alpha = match &self.alpha {
            Some(a) if !self.steps.is_multiple_of(self.config.update_every) => a.clone(),
            _ => nash::weights(gramian, self.config.iterations)?
                .iter()
                .copied()
                .collect(),
        };
        self.steps += 1;
        self.alpha = Some(alpha.clone());
        Ok(Combination {
            heads: Some(alpha.clone()),
            shared: alpha,
            max_norm: (self.config.max_norm > 0.0).then_some(self.config.max_norm),
        })
    }

    fn memory(&self) -> Result<serde_json::Value> {
        to_memory(&(self.steps, &self.alpha))
    }

    fn restore_memory(&mut self, memory: &serde_json::Value) -> Result<()> {
        (self.steps, self.alpha) = from_memory(memory)?;
        Ok(())
    }
}
