//! Gradient-manipulation methods: one backward pass per task, the task gradients over the
//! shared parameters (or the shared representation) reduced to their Gramian, and an
//! [`Aggregator`] that turns the Gramian into weights of the combined update.
//!
//! The step, for task gradients g_i over the shared parameters:
//!
//! ```text
//! L_i = task losses (optionally rescaled by the aggregator, e.g. IMTL-L)
//! g_i = ∇_shared L_i                        K backward passes
//! α   = aggregator(G Gᵀ, L)                 K×K on the host
//! shared ← SGD on Σ_i α_i g_i               (optionally clipped to max_norm)
//! head_i ← SGD on w_i ∇_{head_i} L_i        w_i = 1, or α_i where the authors do so
//! ```
//!
//! In [`Space::Representation`] (MGDA-UB), g_i is the gradient w.r.t. the shared encoder's
//! output z instead, and the shared parameters get the gradient of ⟨z, Σ_i α_i g_i⟩: one
//! backward pass through the encoder in total. This needs one input shared by all tasks.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use mtcool_models::{MultiTaskModel, SliceView};
use nalgebra::DMatrix;
use rand_chacha::ChaCha8Rng;

use crate::error::{OptimError, Result};
use crate::gradients::{
    backward_each, backward_through, clip_norm, forward_losses, leaf_tensors, loss_values,
    representation, task_loss, TaskGradients, UpdateGrads,
};
use crate::method::{check_batches, Method, StepReport, TaskBatch};
use crate::optimizer::{Optimizer, OptimizerConfig};
use crate::state::{MethodState, VarNames};

/// Where the task gradients are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// Over the shared parameters (exact; K backward passes through the encoder).
    Parameters,
    /// Over the shared encoder's output (the "upper bound" variant; one encoder backward).
    Representation,
}

/// How an aggregator wants the update formed.
#[derive(Debug, Clone, PartialEq)]
pub struct Combination {
    /// α: the shared update is `Σ_i α_i g_i`.
    pub shared: Vec<f64>,
    /// Per-task multipliers of each head's own gradient (`None`: 1 for every task).
    pub heads: Option<Vec<f64>>,
    /// Clip the shared update to this L2 norm.
    pub max_norm: Option<f64>,
}

impl Combination {
    /// Weights α for the shared update; heads get their plain gradients.
    pub fn shared(alpha: Vec<f64>) -> Self {
        Self {
            shared: alpha,
            heads: None,
            max_norm: None,
        }
    }
}

/// Turns the Gramian of the task gradients into the weights of the combined update.
pub trait Aggregator: std::fmt::Debug {
    /// The method's name.
    fn name(&self) -> &'static str;

    /// Where the gradients are taken.
    fn space(&self) -> Space {
        Space::Parameters
    }

    /// Learnable parameters the method adds (trained by the same optimiser).
    fn extra_vars(&self) -> Vec<Var> {
        Vec::new()
    }

    /// Called before each epoch (0-based).
    fn begin_epoch(&mut self, _epoch: usize) {}

    /// Rewrites the task losses before differentiation (identity by default).
    fn scale_losses(&self, losses: Vec<Tensor>) -> Result<Vec<Tensor>> {
        Ok(losses)
    }

    /// Sees the K×d task-gradient matrix (f32, on the training device) and the loss values
    /// before the Gramian is formed, and may return the matrix to use instead (DB-MTL's and
    /// MoCo's moving averages). `None` (the default) keeps the gradients.
    fn gradients(&mut self, _gradients: &Tensor, _losses: &[f64]) -> Result<Option<Tensor>> {
        Ok(None)
    }

    /// Gradients of [`Aggregator::extra_vars`] that do not come from the task losses
    /// (GradNorm's loss scales), one per variable, set after [`Aggregator::combine`]; empty
    /// (the default) when the losses' own gradients apply.
    fn extra_var_grads(&mut self) -> Result<Vec<Tensor>> {
        Ok(Vec::new())
    }

    /// The weights for this step, from the Gramian and the (unscaled) loss values.
    fn combine(
        &mut self,
        gramian: &DMatrix<f64>,
        losses: &[f64],
        rng: &mut ChaCha8Rng,
    ) -> Result<Combination>;

    /// What it remembers between steps besides its variables (loss histories, logits), for
    /// resuming a run; `Null` when nothing.
    fn memory(&self) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }

    /// Restores what [`Aggregator::memory`] gave.
    fn restore_memory(&mut self, _memory: &serde_json::Value) -> Result<()> {
        Ok(())
    }

    /// Tensors it keeps between steps (moving averages of the task gradients), by name, for
    /// resuming a run; none by default.
    fn buffers(&self) -> Vec<(&'static str, Tensor)> {
        Vec::new()
    }

    /// Restores what [`Aggregator::buffers`] gave (a name missing from `saved` means the
    /// buffer did not exist yet).
    fn restore_buffers(&mut self, _saved: &MethodState) -> Result<()> {
        Ok(())
    }
}

/// A [`Method`] made of an [`Aggregator`] and SGD over the hard-shared model.
#[derive(Debug)]
pub struct GradientMethod<A: Aggregator> {
    aggregator: A,
    optimiser: Optimizer,
}

impl<A: Aggregator> GradientMethod<A> {
    /// The method over every parameter of `model` (and the aggregator's own).
    pub fn new(
        aggregator: A,
        model: &dyn MultiTaskModel,
        optimizer: impl Into<OptimizerConfig>,
    ) -> Self {
        let mut vars = model.all_params();
        vars.extend(aggregator.extra_vars());
        Self {
            aggregator,
            optimiser: Optimizer::new(vars, optimizer),
        }
    }

    /// The aggregator.
    pub fn aggregator(&self) -> &A {
        &self.aggregator
    }

    /// The aggregator's own variables: their gradients from the losses, or those the
    /// aggregator computed itself.
    fn set_extra_grads(&mut self, update: &mut UpdateGrads, stores: &[GradStore]) -> Result<()> {
        let vars = self.aggregator.extra_vars();
        update.add_from_all(&vars, stores)?;
        for (var, grad) in vars.iter().zip(self.aggregator.extra_var_grads()?) {
            update.set(var, grad);
        }
        Ok(())
    }

    fn step_parameters(
        &mut self,
        model: &dyn MultiTaskModel,
        batches: &[TaskBatch],
        rng: &mut ChaCha8Rng,
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let losses = forward_losses(model, batches)?;
        let values = loss_values(&losses)?;
        let losses = self.aggregator.scale_losses(losses)?;
        let stores = backward_each(&losses)?;
        let shared = model.shared_params();
        let shared_tensors: Vec<Tensor> = shared.iter().map(|v| v.as_tensor().clone()).collect();
        let g = TaskGradients::gather(&stores, &shared_tensors)?;
        let g = match self.aggregator.gradients(g.matrix(), &values)? {
            Some(replaced) => g.with_matrix(replaced)?,
            None => g,
        };
        let combination = self.aggregator.combine(&g.gramian()?, &values, rng)?;
        check_weights(self.aggregator.name(), &combination, batches.len())?;
        let mut d = g.combine(&combination.shared)?;
        if let Some(max_norm) = combination.max_norm {
            d = clip_norm(d, max_norm)?;
        }
        let mut update = UpdateGrads::default();
        for (var, grad) in shared.iter().zip(d) {
            update.set(var, grad);
        }
        update.set_heads(model, &stores, combination.heads.as_deref())?;
        self.set_extra_grads(&mut update, &stores)?;
        self.optimiser.step_with(|v| update.get(v))?;
        Ok((values, combination.shared))
    }

    fn step_representation(
        &mut self,
        model: &dyn MultiTaskModel,
        batches: &[TaskBatch],
        rng: &mut ChaCha8Rng,
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let name = self.aggregator.name();
        let input = &batches[0].input;
        if batches.iter().any(|b| b.input.id() != input.id()) {
            return Err(OptimError::Config {
                method: name.into(),
                problem: "gradients w.r.t. the shared representation need one input batch \
                          shared by all tasks; these tasks have their own inputs (use the \
                          parameter-space variant)"
                    .into(),
            });
        }
        let view = SliceView::all();
        let z = representation(model, input, name)?;
        let z_leaf_tensors = leaf_tensors(&z)?;
        let mut losses = Vec::with_capacity(batches.len());
        for (task, batch) in batches.iter().enumerate() {
            let logits = model.decode(&z_leaf_tensors, task, &view)?;
            losses.push(task_loss(&logits, batch)?);
        }
        let values = loss_values(&losses)?;
        let losses = self.aggregator.scale_losses(losses)?;
        let stores = backward_each(&losses)?;
        let g = TaskGradients::gather(&stores, &z_leaf_tensors)?;
        let g = match self.aggregator.gradients(g.matrix(), &values)? {
            Some(replaced) => g.with_matrix(replaced)?,
            None => g,
        };
        let combination = self.aggregator.combine(&g.gramian()?, &values, rng)?;
        check_weights(name, &combination, batches.len())?;
        let r = g.combine(&combination.shared)?;
        let mut update = UpdateGrads::default();
        if let Some(encoder) = backward_through(&z, &r)? {
            let mut d = Vec::new();
            let shared = model.shared_params();
            for var in &shared {
                d.push(match encoder.get(var) {
                    Some(g) => g.clone(),
                    None => var.as_tensor().zeros_like()?,
                });
            }
            if let Some(max_norm) = combination.max_norm {
                d = clip_norm(d, max_norm)?;
            }
            for (var, grad) in shared.iter().zip(d) {
                update.set(var, grad);
            }
        }
        update.set_heads(model, &stores, combination.heads.as_deref())?;
        self.set_extra_grads(&mut update, &stores)?;
        self.optimiser.step_with(|v| update.get(v))?;
        Ok((values, combination.shared))
    }
}

/// Fails unless the weights are finite and one per task.
fn check_weights(method: &str, c: &Combination, tasks: usize) -> Result<()> {
    check_task_weights(method, "shared", &c.shared, tasks)?;
    if let Some(h) = &c.heads {
        check_task_weights(method, "head", h, tasks)?;
    }
    Ok(())
}

/// Fails unless `weights` (`what` names them) are `tasks` finite numbers.
pub(crate) fn check_task_weights(
    method: &str,
    what: &str,
    weights: &[f64],
    tasks: usize,
) -> Result<()> {
    if weights.len() != tasks || weights.iter().any(|x| !x.is_finite()) {
        return Err(OptimError::Config {
            method: method.into(),
            problem: format!("{what} weights {weights:?} are not {tasks} finite numbers"),
        });
    }
    Ok(())
}

impl<A: Aggregator> Method for GradientMethod<A> {
    fn name(&self) -> &str {
        self.aggregator.name()
    }

    fn begin_epoch(&mut self, epoch: usize) {
        self.aggregator.begin_epoch(epoch);
    }

    fn set_lr_scale(&mut self, scale: f64) {
        self.optimiser.set_lr_scale(scale);
    }

    fn state(&self, model: &dyn MultiTaskModel) -> Result<MethodState> {
        let names = VarNames::of(model)?;
        let vars = self.aggregator.extra_vars();
        let mut state =
            MethodState::of_parts(&names, &self.optimiser, &vars, self.aggregator.memory()?)?;
        let mut buffers = MethodState::default();
        for (name, tensor) in self.aggregator.buffers() {
            buffers.put_tensor(name, &tensor)?;
        }
        state.nest("buffers", buffers);
        Ok(state)
    }

    fn restore(&mut self, model: &dyn MultiTaskModel, state: &MethodState) -> Result<()> {
        let names = VarNames::of(model)?;
        let vars = self.aggregator.extra_vars();
        let memory = state.restore_parts(&names, &mut self.optimiser, &vars)?;
        self.aggregator.restore_memory(&memory)?;
        self.aggregator.restore_buffers(&state.scope("buffers"))
    }

    fn step(
        &mut self,
        model: &dyn MultiTaskModel,
        batches: &[TaskBatch],
        rng: &mut ChaCha8Rng,
    ) -> Result<StepReport> {
        check_batches(self.aggregator.name(), model, batches)?;
        let (losses, alpha) = match self.aggregator.space() {
            Space::Parameters => self.step_parameters(model, batches, rng)?,
            Space::Representation => self.step_representation(model, batches, rng)?,
        };
        Ok(StepReport {
            clamped_fraction: vec![None; losses.len()],
            losses,
            task_weights: Some(alpha),
        })
    }
}
