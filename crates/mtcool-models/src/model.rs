//! What every multi-task network offers the optimisers and the trainer.

use candle_core::{Result, Tensor, Var};
use candle_nn::VarMap;

use crate::partitioned::SliceView;

/// How the encoder is shared between tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sharing {
    /// One encoder whose every layer's outputs are split between tasks (MT-COOL; Params 1×).
    Partitioned,
    /// One ordinary encoder trained by every task (Joint and the gradient baselines; 1×).
    Shared,
    /// One full network per task (Independent; Params n×).
    Independent,
}

impl std::fmt::Display for Sharing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sharing::Partitioned => "partitioned",
            Sharing::Shared => "shared",
            Sharing::Independent => "independent",
        })
    }
}

/// A network with one output per task. Optimisers see it only through this trait, so any
/// method runs with any architecture.
pub trait MultiTaskModel {
    /// Number of tasks.
    fn num_tasks(&self) -> usize;

    /// How the encoder is shared.
    fn sharing(&self) -> Sharing;

    /// Task `task`'s output (logits) for the batch `x`, with parameters as `view` sees them.
    fn forward_task(&self, x: &Tensor, task: usize, view: &SliceView) -> Result<Tensor>;

    /// θ_t: the encoder parameters owned by `task` (its slices when partitioned, its whole
    /// encoder when independent, none when shared).
    fn encoder_params(&self, task: usize) -> Vec<Var>;

    /// φ_t: the parameters of `task`'s own head or decoder.
    fn head_params(&self, task: usize) -> Vec<Var>;

    /// Encoder parameters owned by no task (hard sharing); empty otherwise.
    fn shared_params(&self) -> Vec<Var>;

    /// The named store of every parameter (for checkpoints).
    fn vars(&self) -> &VarMap;

    /// Every parameter task `task` may update on its own: θ_t followed by φ_t.
    fn task_params(&self, task: usize) -> Vec<Var> {
        let mut vars = self.encoder_params(task);
        vars.extend(self.head_params(task));
        vars
    }

    /// Every trainable parameter: shared, then each task's θ_t and φ_t.
    fn all_params(&self) -> Vec<Var> {
        let mut vars = self.shared_params();
        for t in 0..self.num_tasks() {
            vars.extend(self.task_params(t));
        }
        vars
    }

    /// Number of scalar parameters.
    fn param_count(&self) -> usize {
        crate::params::count(&self.all_params())
    }
}
