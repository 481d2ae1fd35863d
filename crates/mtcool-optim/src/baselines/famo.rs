//! `famo`: Fast Adaptive Multitask Optimization (Liu et al., NeurIPS 2023). The step
//! follows the gradient of Σ_i z_i log L_i (z = softmax(ξ)), rescaled; after the update the
//! same batches' new losses drive one Adam step on the logits ξ. That costs one extra
//! forward pass per step, as in the authors' code.

use candle_core::Tensor;

use crate::aggregators::famo::{Famo as FamoState, FamoConfig};
use crate::error::Result;
use crate::state::{from_memory, to_memory};
use crate::weighting_method::{weighted_sum, Weighting};

/// FAMO.
#[derive(Debug)]
pub struct Famo {
    state: FamoState,
}

impl Famo {
    /// Uniform task logits.
    pub fn new(config: &FamoConfig, tasks: usize) -> Self {
        Self {
            state: FamoState::new(tasks, config.clone()),
        }
    }
}

impl Weighting for Famo {
    fn name(&self) -> &'static str {
        "famo"
    }

    fn objective(&mut self, losses: &[Tensor], values: &[f64]) -> Result<Tensor> {
        let weights = self.state.loss_weights(values);
        weighted_sum(losses, &weights)
    }

    fn applied_weights(&self, values: &[f64]) -> Result<Vec<f64>> {
        Ok(self.state.loss_weights(values))
    }

    fn wants_losses_after_step(&self) -> bool {
        true
    }

    fn after_step(&mut self, before: &[f64], after: &[f64]) -> Result<()> {
        self.state.update(before, after)
    }

    fn memory(&self) -> Result<serde_json::Value> {
        to_memory(&self.state.memory())
    }

    fn restore_memory(&mut self, memory: &serde_json::Value) -> Result<()> {
        self.state.restore_memory(from_memory(memory)?);
        Ok(())
    }
}
