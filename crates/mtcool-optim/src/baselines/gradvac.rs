//! `gradvac` (Wang et al., ICLR 2021): [`crate::aggregators::gradvac`] over the whole shared
//! encoder (LibMTL's `GradVac_group_type = 0`), its target cosines kept across steps (and in
//! resume files); heads get their plain gradients.

use nalgebra::DMatrix;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::aggregators::{fail, gradvac};
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
        let alpha = gradvac::weights(gramian, &mut self.targets, self.beta, rng)?;
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
