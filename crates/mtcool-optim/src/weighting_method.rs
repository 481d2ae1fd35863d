//! Loss-weighting methods: the step minimises one scalar objective built from the task
//! losses (Σ_i w_i L_i, or a learned form), so it costs a single backward pass, like Joint.

use candle_core::{Tensor, Var};
use mtcool_models::MultiTaskModel;
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::gradients::{forward_losses, loss_values, sum_terms};
use crate::method::{check_batches, Method, StepReport, TaskBatch};
use crate::optimizer::{Optimizer, OptimizerConfig};
use crate::state::{MethodState, VarNames};

/// Builds the scalar objective of a step from the task losses.
pub trait Weighting: std::fmt::Debug {
    /// The method's name.
    fn name(&self) -> &'static str;

    /// Learnable parameters of the weighting (trained by the same optimiser as the network).
    fn extra_vars(&self) -> Vec<Var> {
        Vec::new()
    }

    /// Called before each epoch (0-based).
    fn begin_epoch(&mut self, _epoch: usize) {}

    /// Draws this step's random choices (RLW's weights) from the run's generator, before
    /// [`Weighting::objective`]; nothing by default.
    fn draw(&mut self, _rng: &mut ChaCha8Rng) {}

    /// The objective to differentiate, from the loss tensors and their values.
    fn objective(&mut self, losses: &[Tensor], values: &[f64]) -> Result<Tensor>;

    /// Each loss's multiplier in this step's objective, ∂objective/∂L_i at the loss values
    /// `values` (called after [`Weighting::objective`]).
    fn applied_weights(&self, values: &[f64]) -> Result<Vec<f64>>;

    /// Whether [`Weighting::after_step`] needs the losses recomputed after the update.
    fn wants_losses_after_step(&self) -> bool {
        false
    }

    /// Sees the same batches' losses before and after the update (FAMO).
    fn after_step(&mut self, _before: &[f64], _after: &[f64]) -> Result<()> {
        Ok(())
    }

    /// What it remembers between steps besides its variables (loss histories, logits), for
    /// resuming a run; `Null` when nothing.
    fn memory(&self) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }

    /// Restores what [`Weighting::memory`] gave.
    fn restore_memory(&mut self, _memory: &serde_json::Value) -> Result<()> {
        Ok(())
    }
}

/// A [`Method`] made of a [`Weighting`] and SGD over every parameter.
#[derive(Debug)]
pub struct WeightedLoss<W: Weighting> {
    weighting: W,
    optimiser: Optimizer,
}

impl<W: Weighting> WeightedLoss<W> {
    /// The method over every parameter of `model` (and the weighting's own).
    pub fn new(
        weighting: W,
        model: &dyn MultiTaskModel,
        optimizer: impl Into<OptimizerConfig>,
    ) -> Self {
        let mut vars = model.all_params();
        vars.extend(weighting.extra_vars());
        Self {
            weighting,
            optimiser: Optimizer::new(vars, optimizer),
        }
    }

    /// The weighting.
    pub fn weighting(&self) -> &W {
        &self.weighting
    }
}

/// `Σ_i w_i L_i`.
pub(crate) fn weighted_sum(losses: &[Tensor], weights: &[f64]) -> Result<Tensor> {
    let terms = losses
        .iter()
        .zip(weights)
        .map(|(loss, &w)| Ok(if w == 1.0 { loss.clone() } else { (loss * w)? }));
    sum_terms(terms)?.ok_or_else(|| crate::OptimError::Config {
        method: "weighted loss".into(),
        problem: "no task losses".into(),
    })
}

impl<W: Weighting> Method for WeightedLoss<W> {
    fn name(&self) -> &str {
        self.weighting.name()
    }

    fn begin_epoch(&mut self, epoch: usize) {
        self.weighting.begin_epoch(epoch);
    }

    fn set_lr_scale(&mut self, scale: f64) {
        self.optimiser.set_lr_scale(scale);
    }

    fn state(&self, model: &dyn MultiTaskModel) -> Result<MethodState> {
        let names = VarNames::of(model)?;
        let vars = self.weighting.extra_vars();
        MethodState::of_parts(&names, &self.optimiser, &vars, self.weighting.memory()?)
    }

    fn restore(&mut self, model: &dyn MultiTaskModel, state: &MethodState) -> Result<()> {
        let names = VarNames::of(model)?;
        let vars = self.weighting.extra_vars();
        let memory = state.restore_parts(&names, &mut self.optimiser, &vars)?;
        self.weighting.restore_memory(&memory)
    }

    fn step(
        &mut self,
        model: &dyn MultiTaskModel,
        batches: &[TaskBatch],
        rng: &mut ChaCha8Rng,
    ) -> Result<StepReport> {
        check_batches(self.weighting.name(), model, batches)?;
        let losses = forward_losses(model, batches)?;
        let values = loss_values(&losses)?;
        self.weighting.draw(rng);
        let objective = self.weighting.objective(&losses, &values)?;
        let task_weights = self.weighting.applied_weights(&values)?;
        let grads = objective.backward()?;
        self.optimiser.step(&grads)?;
        if self.weighting.wants_losses_after_step() {
            let after = loss_values(&forward_losses(model, batches)?)?;
            self.weighting.after_step(&values, &after)?;
        }
        Ok(StepReport {
            clamped_fraction: vec![None; values.len()],
            losses: values,
            task_weights: Some(task_weights),
        })
    }
}
