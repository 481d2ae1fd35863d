//! Joint training: minimise Σ_t L_t with one backward pass through the whole network.
//!
//! On a hard-shared model this is the Joint baseline; on an independent model (one network
//! per task) the sum separates, so the same step trains every task's network on its own
//! loss — the Independent baseline.

use mtcool_models::{MultiTaskModel, SliceView};
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::loss::cross_entropy;
use crate::method::{check_batches, finite_loss, Method, StepReport, TaskBatch};
use crate::sgd::{Sgd, SgdConfig};

/// Sum-of-losses training with one SGD optimiser over every parameter.
#[derive(Debug)]
pub struct Joint {
    name: String,
    optimiser: Sgd,
}

impl Joint {
    /// A step named `name` (`joint` or `independent`) over every parameter of `model`.
    pub fn new(name: &str, model: &dyn MultiTaskModel, sgd: SgdConfig) -> Self {
        Self {
            name: name.to_string(),
            optimiser: Sgd::new(model.all_params(), sgd),
        }
    }
}

impl Method for Joint {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(
        &mut self,
        model: &dyn MultiTaskModel,
        batches: &[TaskBatch],
        _rng: &mut ChaCha8Rng,
    ) -> Result<StepReport> {
        check_batches(&self.name, model, batches)?;
        let view = SliceView::all();
        let mut total = None;
        let mut losses = Vec::with_capacity(batches.len());
        for (task, batch) in batches.iter().enumerate() {
            let logits = model.forward_task(&batch.input, task, &view)?;
            let loss = cross_entropy(&logits, &batch.target)?;
            losses.push(finite_loss(&loss, task)?);
            total = Some(match total {
                None => loss,
                Some(acc) => (acc + loss)?,
            });
        }
        if let Some(total) = total {
            let grads = total.backward()?;
            self.optimiser.step(&grads)?;
        }
        Ok(StepReport {
            clamped_fraction: vec![None; losses.len()],
            losses,
        })
    }
}
