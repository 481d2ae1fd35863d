//! Partitioned 2-D batch normalisation.
//!
//! `x: (N, C, H, W) → y = γ·(x − μ)/√(σ² + ε) + β` per channel, with the `C` channels split
//! between owners: each owner's slice has its own affine `γ`, `β` ([`Var`]s, trainable) and its
//! own running mean and variance (buffers, not trainable, saved in checkpoints).
//!
//! - **Training** (`train = true`): μ and σ² are the batch statistics over `(N, H, W)` (biased
//!   variance); the running statistics move towards them with momentum 0.1, the running
//!   variance towards the *unbiased* batch variance, as in PyTorch. A pass whose
//!   [`SliceView`] carries noise (MT-COOL's perturbed passes) leaves them unchanged.
//! - **Evaluation** (`train = false`): μ and σ² are the running statistics.
//!
//! The mode is an argument of every forward pass (models keep it as state, switched by
//! [`crate::MultiTaskModel::set_training`]). Training mode runs through
//! [`crate::ops::batch_norm_train`], so [`crate::ops::OpsBackend::Fast`] takes the fused CPU op.
//!
//! ```
//! # fn main() -> candle_core::Result<()> {
//! use candle_core::{Device, Tensor};
//! use mtcool_models::partitioned::{Owner, PartitionedBatchNorm2d, SliceView};
//! use mtcool_models::ParamBuilder;
//! let pb = ParamBuilder::new(candle_nn::VarMap::new(), &Device::Cpu, 0);
//! let bn = PartitionedBatchNorm2d::new(&pb.pp("bn1"), 6, &Owner::partition(2))?;
//! let x = Tensor::rand(0f32, 1f32, (4, 6, 8, 8), &Device::Cpu)?;
//! let y = bn.forward(&x, &SliceView::all(), true)?;
//! assert_eq!(y.dims(), &[4, 6, 8, 8]);
//! // every channel of y has mean 0 (γ = 1, β = 0 at initialisation)
//! let means = y.mean_keepdim((0, 2, 3))?.flatten_all()?.to_vec1::<f32>()?;
//! assert!(means.iter().all(|m| m.abs() < 1e-5));
//! // task 1 owns γ and β of channels 3..6, plus their running statistics
//! assert_eq!(bn.params_of(Owner::Task(1))[0].dims(), &[3]);
//! assert_eq!(pb.buffers().all_vars().len(), 4);
//! # Ok(()) }
//! ```

use candle_core::{Result, Tensor, Var};

use super::{materialise, owned, split_sizes, Owner, Slice, SliceView};
use crate::ops::{self, OpsBackend};
use crate::ParamBuilder;

/// Batch normalisation over the channels of `(N, C, H, W)` maps, channels split between owners.
#[derive(Debug, Clone)]
pub struct PartitionedBatchNorm2d {
    /// `weight` = γ (initialised to 1), `bias` = β (initialised to 0).
    slices: Vec<Slice>,
    running_mean: Vec<Var>,
    running_var: Vec<Var>,
    channels: usize,
    ops: OpsBackend,
}

impl PartitionedBatchNorm2d {
    /// ε added to the variance (PyTorch's default).
    pub const EPS: f64 = 1e-5;
    /// Weight of the current batch in the running statistics (PyTorch's default).
    pub const MOMENTUM: f64 = 0.1;

    /// Creates the layer: parameters `<prefix>.<owner>.weight|bias` (γ = 1, β = 0; nothing is
    /// drawn from the generator) and buffers `<prefix>.<owner>.running_mean|running_var`
    /// (0 and 1) in the builder's buffer store.
    pub fn new(pb: &ParamBuilder, channels: usize, owners: &[Owner]) -> Result<Self> {
        if owners.is_empty() || owners.len() > channels {
            crate::fail!(
                "cannot split {channels} channels between {} owners",
                owners.len()
            );
        }
        let mut slices = Vec::with_capacity(owners.len());
        let mut running_mean = Vec::with_capacity(owners.len());
        let mut running_var = Vec::with_capacity(owners.len());
        for (&owner, c) in owners.iter().zip(split_sizes(channels, owners.len())) {
            let p = pb.pp(owner.name());
            slices.push(Slice {
                owner,
                weight: p.constant("weight", c, 1.0)?,
                bias: p.constant("bias", c, 0.0)?,
            });
            running_mean.push(p.buffer("running_mean", c, 0.0)?);
            running_var.push(p.buffer("running_var", c, 1.0)?);
        }
        Ok(Self {
            slices,
            running_mean,
            running_var,
            channels,
            ops: OpsBackend::default(),
        })
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The same layer computed with `ops` (the fast training-mode op or candle's ops).
    pub fn with_ops(mut self, ops: OpsBackend) -> Self {
        self.ops = ops;
        self
    }

    /// Normalises `x` with batch statistics (`train`, updating the running statistics unless
    /// `view` is noisy) or with the running statistics (`!train`).
    pub fn forward(&self, x: &Tensor, view: &SliceView, train: bool) -> Result<Tensor> {
        self.forward_impl(x, view, train, false)
    }

    /// `relu(self.forward(x, view, train))`, fused into one op where the backend allows.
    pub fn forward_relu(&self, x: &Tensor, view: &SliceView, train: bool) -> Result<Tensor> {
        self.forward_impl(x, view, train, true)
    }

    fn forward_impl(
        &self,
        x: &Tensor,
        view: &SliceView,
        train: bool,
        relu: bool,
    ) -> Result<Tensor> {
        let (n, c, h, w) = x.dims4()?;
        if c != self.channels {
            crate::fail!(
                "batch norm over {} channels got an input with {c} channels",
                self.channels
            );
        }
        let (gamma, beta) = materialise(&self.slices, view)?;
        if train {
            let count = n * h * w;
            if count < 2 {
                crate::fail!(
                    "batch norm in training mode needs more than one value per channel, got \
                     input {:?}",
                    x.dims()
                );
            }
            let (y, mean, var) =
                ops::batch_norm_train(x, &gamma, &beta, Self::EPS, relu, self.ops)?;
            if !view.is_noisy() {
                let unbiased = count as f64 / (count - 1) as f64;
                self.update_running(&mean, &var, unbiased)?;
            }
            return Ok(y);
        }
        let (mean, var) = self.running_stats()?;
        // y = x·scale + shift, per channel
        let scale = gamma.div(&(var + Self::EPS)?.sqrt()?)?;
        let shift = beta.sub(&mean.mul(&scale)?)?;
        let y = x
            .broadcast_mul(&scale.reshape((1, c, 1, 1))?)?
            .broadcast_add(&shift.reshape((1, c, 1, 1))?)?;
        if relu {
            y.relu()
        } else {
            Ok(y)
        }
    }

    /// `running ← (1 − m)·running + m·batch` for every owner's slice (`var_factor` turns the
    /// biased batch variance into the unbiased one).
    fn update_running(&self, mean: &Tensor, var: &Tensor, var_factor: f64) -> Result<()> {
        let m = Self::MOMENTUM;
        let (mean, var) = (mean.detach(), (var.detach() * var_factor)?);
        let mut start = 0;
        for (rm, rv) in self.running_mean.iter().zip(&self.running_var) {
            let len = rm.elem_count();
            let new_mean = (rm.as_tensor().detach().affine(1.0 - m, 0.0)?
                + mean.narrow(0, start, len)?.affine(m, 0.0)?)?;
            let new_var = (rv.as_tensor().detach().affine(1.0 - m, 0.0)?
                + var.narrow(0, start, len)?.affine(m, 0.0)?)?;
            rm.set(&new_mean)?;
            rv.set(&new_var)?;
            start += len;
        }
        Ok(())
    }

    /// The running mean and variance of all channels, `(C,)` each (no gradient).
    pub fn running_stats(&self) -> Result<(Tensor, Tensor)> {
        let cat = |vars: &[Var]| -> Result<Tensor> {
            let parts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().detach()).collect();
            Tensor::cat(&parts, 0)
        };
        Ok((cat(&self.running_mean)?, cat(&self.running_var)?))
    }

    /// γ and β of the slices owned by `owner`.
    pub fn params_of(&self, owner: Owner) -> Vec<Var> {
        owned(&self.slices, owner)
    }

    /// The running mean and variance of the slices owned by `owner`.
    pub fn buffers_of(&self, owner: Owner) -> Vec<Var> {
        self.slices
            .iter()
            .zip(self.running_mean.iter().zip(&self.running_var))
            .filter(|(s, _)| s.owner == owner)
            .flat_map(|(_, (m, v))| [m.clone(), v.clone()])
            .collect()
    }
}
