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

    /// The shared encoder's output for `x` (one or more tensors, e.g. a U-Net's skips and
    /// bottom), for methods that act on the shared representation (MGDA-UB, GradDrop).
    /// `Ok(None)` when the model has no single encoder shared by every task.
    fn encode(&self, _x: &Tensor, _view: &SliceView) -> Result<Option<Vec<Tensor>>> {
        Ok(None)
    }

    /// Task `task`'s output from the representation that [`MultiTaskModel::encode`] returned.
    fn decode(&self, _features: &[Tensor], task: usize, _view: &SliceView) -> Result<Tensor> {
        candle_core::bail!("this model does not expose its shared representation (task {task})")
    }

    /// θ_t: the encoder parameters owned by `task` (its slices when partitioned, its whole
    /// encoder when independent, none when shared).
    fn encoder_params(&self, task: usize) -> Vec<Var>;

    /// φ_t: the parameters of `task`'s own head or decoder.
    fn head_params(&self, task: usize) -> Vec<Var>;

    /// Encoder parameters owned by no task (hard sharing); empty otherwise.
    fn shared_params(&self) -> Vec<Var>;

    /// The named store of every parameter (for checkpoints).
    fn vars(&self) -> &VarMap;

    /// Every task's output for the batch `x`, in task order. Models whose tasks share an
    /// encoder override it to run the encoder once; the default calls
    /// [`Self::forward_task`] for each task.
    fn forward_tasks(&self, x: &Tensor, view: &SliceView) -> Result<Vec<Tensor>> {
        (0..self.num_tasks())
            .map(|t| self.forward_task(x, t, view))
            .collect()
    }

    /// The parameters of θ_t that MT-COOL perturbs when *another* task trains: by default all
    /// of θ_t; models with BatchNorm leave out its affine γ and β.
    fn perturbable_params(&self, task: usize) -> Vec<Var> {
        self.encoder_params(task)
    }

    /// Non-trainable state saved in checkpoints beside [`Self::vars`] (BatchNorm running
    /// statistics), if the model has any.
    fn buffers(&self) -> Option<&VarMap> {
        None
    }

    /// Switches between training mode (BatchNorm uses and updates batch statistics) and
    /// evaluation mode (BatchNorm uses its running statistics). Models without mode-dependent
    /// layers ignore it. New models start in training mode, as in PyTorch.
    fn set_training(&mut self, _training: bool) {}

    /// Whether forward passes run in training mode (see [`Self::set_training`]).
    fn is_training(&self) -> bool {
        true
    }

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
