//! `fixed`: minimise Σ_i w_i L_i with per-task weights from the config.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{OptimError, Result};
use crate::weighting_method::{weighted_sum, Weighting};

/// Options of `fixed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FixedConfig {
    /// One weight per task (required).
    pub weights: Vec<f64>,
}

/// Fixed loss weights.
#[derive(Debug)]
pub struct Fixed {
    weights: Vec<f64>,
}

impl Fixed {
    /// Checks the weights against the number of tasks.
    pub fn new(config: &FixedConfig, tasks: usize) -> Result<Self> {
        if config.weights.is_empty() {
            return Err(OptimError::Config {
                method: "fixed".into(),
                problem: format!("set [baselines.fixed] weights = [...] ({tasks} numbers)"),
            });
        }
        let weights = super::per_task("fixed", "weights", &config.weights, tasks, 1.0)?;
        Ok(Self { weights })
    }
}

impl Weighting for Fixed {
    fn name(&self) -> &'static str {
        "fixed"
    }

    fn objective(&mut self, losses: &[Tensor], _values: &[f64]) -> Result<Tensor> {
        weighted_sum(losses, &self.weights)
    }

    fn applied_weights(&self, _values: &[f64]) -> Result<Vec<f64>> {
        Ok(self.weights.clone())
    }
}
