//! The abstraction every training method implements, and the registry of method names.

use std::str::FromStr;

use candle_core::Tensor;
use mtcool_models::MultiTaskModel;
use rand_chacha::ChaCha8Rng;

use crate::error::{OptimError, Result};
use crate::state::MethodState;

/// One task's mini-batch: inputs and class-index targets.
#[derive(Debug, Clone)]
pub struct TaskBatch {
    /// Model input, e.g. `(N, 1, 28, 28)` images.
    pub input: Tensor,
    /// Targets, e.g. `(N,)` class indices as `u32`.
    pub target: Tensor,
}

/// What one step did, for logging.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepReport {
    /// Each task's training loss in this step (for MT-COOL: the full objective of its step).
    pub losses: Vec<f64>,
    /// For methods with MT-COOL's clamp: per task, the fraction of θ_i elements that the clamp
    /// moved in this step (`None` when no clamp ran).
    pub clamped_fraction: Vec<Option<f64>>,
    /// The task weights the step applied: α of the shared update Σ_i α_i g_i for the gradient
    /// methods, each loss's multiplier in the objective for the loss weightings (∂objective /
    /// ∂L_i), 1 for Joint; `None` where no such weights exist (MT-COOL's alternating steps,
    /// GradDrop's element-wise masks).
    pub task_weights: Option<Vec<f64>>,
}

/// A multi-task training method: turns the task losses of a step into parameter updates.
pub trait Method {
    /// The method's name on the command line and in results files.
    fn name(&self) -> &str;

    /// Called before each epoch (0-based), e.g. to end a warm-up.
    fn begin_epoch(&mut self, _epoch: usize) {}

    /// Scales the learning rate of every optimiser updating the model's parameters by
    /// `scale` (a schedule's factor for the epoch) until the next call.
    fn set_lr_scale(&mut self, scale: f64);

    /// Performs one training iteration on one mini-batch per task (`batches[t]` for task t).
    fn step(
        &mut self,
        model: &dyn MultiTaskModel,
        batches: &[TaskBatch],
        rng: &mut ChaCha8Rng,
    ) -> Result<StepReport>;

    /// Everything the method remembers between steps (optimiser state, learned weights,
    /// loss histories), to resume a run after an epoch.
    fn state(&self, model: &dyn MultiTaskModel) -> Result<MethodState>;

    /// Restores what [`Method::state`] saved, for a method built the same way on `model`.
    fn restore(&mut self, model: &dyn MultiTaskModel, state: &MethodState) -> Result<()>;
}

pub use crate::registry::MethodKind;

impl std::fmt::Display for MethodKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MethodKind {
    type Err = OptimError;

    fn from_str(s: &str) -> Result<Self> {
        MethodKind::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| OptimError::Config {
                method: s.to_string(),
                problem: format!(
                    "unknown method; known methods: {}",
                    MethodKind::ALL.map(|m| m.name()).join(", ")
                ),
            })
    }
}

/// Fails unless there is exactly one batch per task.
pub(crate) fn check_batches(
    method: &str,
    model: &dyn MultiTaskModel,
    batches: &[TaskBatch],
) -> Result<()> {
    if batches.len() == model.num_tasks() {
        return Ok(());
    }
    Err(OptimError::Config {
        method: method.to_string(),
        problem: format!("{} batches for {} tasks", batches.len(), model.num_tasks()),
    })
}

/// Converts a loss tensor to f64 and fails on NaN or infinity.
pub(crate) fn finite_loss(loss: &Tensor, task: usize) -> Result<f64> {
    let value = loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(OptimError::NonFiniteLoss { task, value })
    }
}
