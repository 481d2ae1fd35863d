//! Joint training: minimise Σ_t L_t with one backward pass through the whole network.
//!
//! On a hard-shared model this is the Joint baseline; on an independent model (one network
//! per task) the sum separates, so the same step trains every task's network on its own
//! loss — the Independent baseline.

use mtcool_models::MultiTaskModel;
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::gradients::{forward_losses, loss_values, sum_terms};
use crate::method::{check_batches, Method, StepReport, TaskBatch};
use crate::optimizer::{Optimizer, OptimizerConfig};
use crate::state::{MethodState, VarNames};

/// Sum-of-losses training with one SGD optimiser over every parameter.
#[derive(Debug)]
pub struct Joint {
    name: String,
    optimiser: Optimizer,
}

impl Joint {
    /// A step named `name` (`joint` or `independent`) over every parameter of `model`.
    pub fn new(
        name: &str,
        model: &dyn MultiTaskModel,
        optimizer: impl Into<OptimizerConfig>,
    ) -> Self {
        Self {
            name: name.to_string(),
            optimiser: Optimizer::new(model.all_params(), optimizer),
        }
    }
}

impl Method for Joint {
    fn name(&self) -> &str {
        &self.name
    }

    fn set_lr_scale(&mut self, scale: f64) {
        self.optimiser.set_lr_scale(scale);
    }

    fn state(&self, model: &dyn MultiTaskModel) -> Result<MethodState> {
        let names = VarNames::of(model)?;
        MethodState::of_parts(&names, &self.optimiser, &[], serde_json::Value::Null)
    }

    fn restore(&mut self, model: &dyn MultiTaskModel, state: &MethodState) -> Result<()> {
        let names = VarNames::of(model)?;
        state.restore_parts(&names, &mut self.optimiser, &[])?;
        Ok(())
    }

    fn step(
        &mut self,
        model: &dyn MultiTaskModel,
        batches: &[TaskBatch],
        _rng: &mut ChaCha8Rng,
    ) -> Result<StepReport> {
        check_batches(&self.name, model, batches)?;
        let terms = forward_losses(model, batches)?;
        let losses = loss_values(&terms)?;
        if let Some(total) = sum_terms(terms.iter().map(|t| Ok(t.clone())))? {
            let grads = total.backward()?;
            self.optimiser.step(&grads)?;
        }
        Ok(StepReport {
            clamped_fraction: vec![None; losses.len()],
            task_weights: Some(vec![1.0; losses.len()]),
            losses,
        })
    }
}
