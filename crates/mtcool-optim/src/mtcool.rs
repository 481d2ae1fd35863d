//! MT-COOL (Wu et al., 2023): cooperative multi-task learning by searching flat minima.
//!
//! Each task t owns a slice θ_t of the partitioned encoder and its head φ_t, and only it
//! updates them. Tasks take turns (Gauss–Seidel order, task t sees the slices that tasks < t
//! have just updated). Task t's step on its mini-batch (x, y):
//!
//! ```text
//! ref ← θ_t
//! P  = f(x; θ_t, θ_{−t})                        clean pass
//! P_j = f(x; θ_t, θ_{−t} + ε_j),  ε_j ~ U[−b, b]  j = 1..M, on every other task's slices
//! L_t = mean_j CE(P_j, y) + λ · mean_j KL(P ‖ P_j)
//! (θ_t, φ_t) ← SGD step on L_t;   θ_t ← clamp(θ_t, ref − b, ref + b)
//! ```
//!
//! Ablations: **w/o Reg** drops the KL term (λ = 0, so no clean pass is needed);
//! **Vanilla** drops noise, KL and clamp (plain alternating updates). The first
//! `warmup_epochs` epochs run the Vanilla scheme, since the other tasks' features are random
//! at the start. `b = 0` disables both noise and clamp: with no perturbation there is no
//! neighbourhood to stay within (and the step then equals Vanilla's when λ = 0).

use candle_core::{Tensor, Var};
use mtcool_models::{MultiTaskModel, NoiseMap, Sharing, SliceView};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Uniform};
use serde::{Deserialize, Serialize};

use crate::error::{OptimError, Result};
use crate::loss::{output_divergence, task_loss};
use crate::method::{check_batches, finite_loss, Method, StepReport, TaskBatch};
use crate::optimizer::{Optimizer, OptimizerConfig};
use crate::state::{MethodState, VarNames};

/// MT-COOL's hyper-parameters (defaults per the project's method notes).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MtCoolConfig {
    /// Noise and clamp bound b.
    pub noise_bound: f64,
    /// Number of noise samples M per step.
    pub samples: usize,
    /// Weight λ of the KL similarity term.
    pub kl_weight: f64,
    /// Optimiser steps K each task takes on its mini-batch per iteration.
    pub steps_per_task: usize,
    /// Epochs of Vanilla updates before noise, KL and clamp start.
    pub warmup_epochs: usize,
    /// How b scales: `absolute` (the paper's: ε ~ U[−b, b], clamp to ref ± b) or `relative`
    /// (to each weight: ε = u·b·|w| with u ~ U[−1, 1], clamp to ref ± b·|ref|).
    #[serde(skip_serializing_if = "is_default")]
    pub noise: NoiseScale,
    /// When tasks take turns: `batch` (the paper's: every mini-batch, each task steps in turn)
    /// or `epoch` (only task `epoch mod T` steps during an epoch, the warm-up included, so a
    /// task trains a whole epoch before the next one starts).
    #[serde(skip_serializing_if = "is_default")]
    pub alternation: Alternation,
}

/// How MT-COOL's noise and clamp bound b scales with the weights.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoiseScale {
    /// b itself, for every weight.
    #[default]
    Absolute,
    /// b·|w| for weight w (a weight at exactly 0 is neither perturbed nor moved by the clamp).
    Relative,
}

/// When MT-COOL's tasks take turns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Alternation {
    /// Every mini-batch.
    #[default]
    Batch,
    /// Every epoch.
    Epoch,
}

/// Defaults are left out of the JSON, so runs at the defaults keep their fingerprints.
fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl Default for MtCoolConfig {
    fn default() -> Self {
        Self {
            noise_bound: 0.01,
            samples: 1,
            kl_weight: 1.0,
            steps_per_task: 1,
            warmup_epochs: 5,
            noise: NoiseScale::Absolute,
            alternation: Alternation::Batch,
        }
    }
}

/// Which parts of MT-COOL are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Noise, KL term and clamp.
    Full,
    /// Noise and clamp, no KL term.
    WithoutReg,
    /// Alternating updates only.
    Vanilla,
}

/// The MT-COOL step and its ablations.
#[derive(Debug)]
pub struct MtCool {
    variant: Variant,
    config: MtCoolConfig,
    optimisers: Vec<Optimizer>,
    in_warmup: bool,
    epoch: usize,
}

impl MtCool {
    /// The method for `model` (which must be partitioned), one optimiser (SGD in the paper) per task over
    /// that task's θ_t and φ_t.
    pub fn new(
        model: &dyn MultiTaskModel,
        variant: Variant,
        config: MtCoolConfig,
        optimizer: impl Into<OptimizerConfig>,
    ) -> Result<Self> {
        let name = variant_name(variant);
        let optimizer = optimizer.into();
        if model.sharing() != Sharing::Partitioned {
            return Err(OptimError::Config {
                method: name.into(),
                problem: format!("needs a partitioned encoder, got a {} one", model.sharing()),
            });
        }
        if !config.noise_bound.is_finite() || config.noise_bound < 0.0 {
            return Err(OptimError::Config {
                method: name.into(),
                problem: format!(
                    "noise_bound must be finite and ≥ 0, got {}",
                    config.noise_bound
                ),
            });
        }
        if config.samples == 0 || config.steps_per_task == 0 {
            return Err(OptimError::Config {
                method: name.into(),
                problem: "samples and steps_per_task must be ≥ 1".into(),
            });
        }
        if config.kl_weight.is_nan() || config.kl_weight < 0.0 || config.kl_weight.is_infinite() {
            return Err(OptimError::Config {
                method: name.into(),
                problem: format!("kl_weight must be ≥ 0, got {}", config.kl_weight),
            });
        }
        let optimisers = (0..model.num_tasks())
            .map(|t| Optimizer::new(model.task_params(t), optimizer))
            .collect();
        Ok(Self {
            variant,
            config,
            optimisers,
            in_warmup: config.warmup_epochs > 0,
            epoch: 0,
        })
    }

    /// The variant this instance runs outside the warm-up.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// The variant in force now (Vanilla during the warm-up).
    fn effective_variant(&self) -> Variant {
        if self.in_warmup {
            Variant::Vanilla
        } else {
            self.variant
        }
    }

    /// Task `task`'s turn on its batch (K optimiser steps on θ_t and φ_t only); returns its
    /// loss and the fraction of θ_t elements the clamp moved (`None` when no clamp ran).
    pub fn task_step(
        &mut self,
        model: &dyn MultiTaskModel,
        task: usize,
        batch: &TaskBatch,
        rng: &mut ChaCha8Rng,
    ) -> Result<(f64, Option<f64>)> {
        let variant = self.effective_variant();
        let b = self.config.noise_bound;
        let perturbed = variant != Variant::Vanilla && b > 0.0;
        let theta = model.encoder_params(task);
        let reference: Option<Vec<Tensor>> = if perturbed {
            Some(
                theta
                    .iter()
                    .map(|v| v.as_tensor().detach().copy())
                    .collect::<candle_core::Result<_>>()?,
            )
        } else {
            None
        };
        let view = SliceView::task(task);
        let mut last_loss = 0.0;
        let mut clamped = None;
        for _ in 0..self.config.steps_per_task {
            let loss = if perturbed {
                self.perturbed_loss(model, task, batch, variant, rng)?
            } else {
                task_loss(
                    &model.forward_task(&batch.input, task, &view)?,
                    &batch.target,
                )?
            };
            last_loss = finite_loss(&loss, task)?;
            let grads = loss.backward()?;
            self.optimisers[task].step(&grads)?;
            if let Some(reference) = &reference {
                clamped = Some(clamp_to_reference(&theta, reference, b, self.config.noise)?);
            }
        }
        Ok((last_loss, clamped))
    }

    /// `mean_j CE(P_j, y) + λ · mean_j KL(P ‖ P_j)` (no KL term, nor clean pass, without Reg).
    fn perturbed_loss(
        &self,
        model: &dyn MultiTaskModel,
        task: usize,
        batch: &TaskBatch,
        variant: Variant,
        rng: &mut ChaCha8Rng,
    ) -> Result<Tensor> {
        let view = SliceView::task(task);
        let lambda = if variant == Variant::Full {
            self.config.kl_weight
        } else {
            0.0
        };
        let clean = if lambda > 0.0 {
            Some(model.forward_task(&batch.input, task, &view)?)
        } else {
            None
        };
        let m = self.config.samples;
        let mut ce_terms = Vec::with_capacity(m);
        let mut kl_terms = Vec::with_capacity(m);
        for _ in 0..m {
            let noise = draw_noise(model, task, self.config.noise_bound, self.config.noise, rng)?;
            let noisy = model.forward_task(&batch.input, task, &view.with_noise(&noise))?;
            ce_terms.push(task_loss(&noisy, &batch.target)?);
            if let Some(clean) = &clean {
                kl_terms.push(output_divergence(clean, &noisy, &batch.target)?);
            }
        }
        let mut loss = mean(&ce_terms)?;
        if !kl_terms.is_empty() {
            loss = (loss + (mean(&kl_terms)? * lambda)?)?;
        }
        Ok(loss)
    }
}

fn variant_name(variant: Variant) -> &'static str {
    match variant {
        Variant::Full => "mtcool",
        Variant::WithoutReg => "wo-reg",
        Variant::Vanilla => "vanilla",
    }
}

fn mean(terms: &[Tensor]) -> Result<Tensor> {
    if let [only] = terms {
        return Ok(only.clone());
    }
    let sum = Tensor::stack(terms, 0)?.sum_all()?;
    Ok((sum / terms.len() as f64)?)
}

/// ε ~ U[−b, b] element-wise (times |w| with [`NoiseScale::Relative`]) for the perturbable
/// encoder parameters ([`MultiTaskModel::perturbable_params`]: θ without BatchNorm's γ and β)
/// of every task other than `task`, drawn from the run's generator in a fixed order (tasks
/// ascending, parameters in model order).
pub fn draw_noise(
    model: &dyn MultiTaskModel,
    task: usize,
    bound: f64,
    scale: NoiseScale,
    rng: &mut ChaCha8Rng,
) -> Result<NoiseMap> {
    let dist =
        Uniform::new_inclusive(-bound as f32, bound as f32).map_err(|e| OptimError::Config {
            method: "mtcool".into(),
            problem: format!("noise bound {bound}: {e}"),
        })?;
    let mut noise = NoiseMap::new();
    for other in (0..model.num_tasks()).filter(|&t| t != task) {
        for var in model.perturbable_params(other) {
            let values: Vec<f32> = (0..var.elem_count()).map(|_| dist.sample(rng)).collect();
            let mut eps = Tensor::from_vec(values, var.shape(), var.device())?;
            if scale == NoiseScale::Relative {
                eps = (eps * var.as_tensor().detach().abs()?)?;
            }
            noise.insert(var.id(), eps);
        }
    }
    Ok(noise)
}

/// θ ← clamp(θ, ref − b, ref + b) (ref ± b·|ref| with [`NoiseScale::Relative`]); returns the
/// fraction of elements the clamp moved.
pub fn clamp_to_reference(
    theta: &[Var],
    reference: &[Tensor],
    bound: f64,
    scale: NoiseScale,
) -> Result<f64> {
    let mut moved = 0f64;
    let mut total = 0usize;
    for (var, r) in theta.iter().zip(reference) {
        let current = var.as_tensor().detach();
        let clamped = match scale {
            NoiseScale::Absolute => current.clamp(&(r - bound)?, &(r + bound)?)?,
            NoiseScale::Relative => {
                let width = (r.abs()? * bound)?;
                current.clamp(&(r - &width)?, &(r + &width)?)?
            }
        };
        moved += current
            .ne(&clamped)?
            .to_dtype(candle_core::DType::F32)?
            .sum_all()?
            .to_scalar::<f32>()? as f64;
        total += var.elem_count();
        var.set(&clamped)?;
    }
    Ok(if total == 0 {
        0.0
    } else {
        moved / total as f64
    })
}

impl Method for MtCool {
    fn name(&self) -> &str {
        variant_name(self.variant)
    }

    fn begin_epoch(&mut self, epoch: usize) {
        self.in_warmup = epoch < self.config.warmup_epochs;
        self.epoch = epoch;
    }

    fn set_lr_scale(&mut self, scale: f64) {
        for optimiser in &mut self.optimisers {
            optimiser.set_lr_scale(scale);
        }
    }

    fn state(&self, model: &dyn MultiTaskModel) -> Result<MethodState> {
        let names = VarNames::of(model)?;
        let mut state = MethodState::default();
        for (t, optimiser) in self.optimisers.iter().enumerate() {
            state.nest(&format!("task{t}"), optimiser.state(&names)?);
        }
        Ok(state)
    }

    fn restore(&mut self, model: &dyn MultiTaskModel, state: &MethodState) -> Result<()> {
        let names = VarNames::of(model)?;
        for (t, optimiser) in self.optimisers.iter_mut().enumerate() {
            optimiser.restore(&names, &state.scope(&format!("task{t}")))?;
        }
        Ok(())
    }

    fn step(
        &mut self,
        model: &dyn MultiTaskModel,
        batches: &[TaskBatch],
        rng: &mut ChaCha8Rng,
    ) -> Result<StepReport> {
        check_batches(self.name(), model, batches)?;
        let mut report = StepReport::default();
        let turn = match self.config.alternation {
            Alternation::Batch => None,
            Alternation::Epoch => Some(self.epoch % batches.len().max(1)),
        };
        for (task, batch) in batches.iter().enumerate() {
            if turn.is_some_and(|t| t != task) {
                // Not this task's epoch: its loss is reported, nothing is updated.
                let view = SliceView::task(task);
                let loss = task_loss(
                    &model.forward_task(&batch.input, task, &view)?,
                    &batch.target,
                )?;
                report.losses.push(finite_loss(&loss, task)?);
                report.clamped_fraction.push(None);
                continue;
            }
            let (loss, clamped) = self.task_step(model, task, batch, rng)?;
            report.losses.push(loss);
            report.clamped_fraction.push(clamped);
        }
        Ok(report)
    }
}
