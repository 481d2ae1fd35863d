//! Partitioned 2-D convolution.
//!
//! `x: (N, C_in, H, W) → y: (N, C_out, H', W')`, with the `C_out` kernels split between owners.
//!
//! ```
//! # fn main() -> candle_core::Result<()> {
//! use candle_core::{Device, Tensor};
//! use mtcool_models::partitioned::{Owner, PartitionedConv2d, SliceView};
//! use mtcool_models::ParamBuilder;
//! let pb = ParamBuilder::new(candle_nn::VarMap::new(), &Device::Cpu, 0);
//! let conv = PartitionedConv2d::new(&pb.pp("conv1"), 1, 10, 5, 0, &Owner::partition(2))?;
//! let x = Tensor::zeros((3, 1, 28, 28), candle_core::DType::F32, &Device::Cpu)?;
//! assert_eq!(conv.forward(&x, &SliceView::all())?.dims(), &[3, 10, 24, 24]);
//! assert_eq!(conv.params_of(Owner::Task(1))[0].dims(), &[5, 1, 5, 5]);
//! # Ok(()) }
//! ```

use candle_core::{Result, Tensor, Var};

use super::{materialise, owned, slices_from_full, split_sizes, Owner, Slice, SliceView};
use crate::ops::{self, OpsBackend};
use crate::ParamBuilder;

/// A convolution (square kernel, stride 1) whose output channels are split between owners.
#[derive(Debug, Clone)]
pub struct PartitionedConv2d {
    slices: Vec<Slice>,
    padding: usize,
    ops: OpsBackend,
}

impl PartitionedConv2d {
    /// Creates the layer; parameters are named `<prefix>.<owner>.weight|bias`.
    pub fn new(
        pb: &ParamBuilder,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        padding: usize,
        owners: &[Owner],
    ) -> Result<Self> {
        if owners.is_empty() || owners.len() > out_channels {
            candle_core::bail!(
                "cannot split {out_channels} channels between {} owners",
                owners.len()
            );
        }
        let bound = 1.0 / ((in_channels * kernel * kernel) as f64).sqrt();
        let slices = owners
            .iter()
            .zip(split_sizes(out_channels, owners.len()))
            .map(|(&owner, c)| {
                let p = pb.pp(owner.name());
                Ok(Slice {
                    owner,
                    weight: p.uniform("weight", (c, in_channels, kernel, kernel), bound)?,
                    bias: p.uniform("bias", c, bound)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            slices,
            padding,
            ops: OpsBackend::default(),
        })
    }

    /// Like [`Self::new`], but the initial values are drawn for the whole layer (weight, then
    /// bias) and then cut between the owners: built from the same seed, an n-way partitioned
    /// layer starts as exactly the same function as the shared one (U-Net-MT and Psi-Net use
    /// this; LeNet-MT keeps the per-slice order of [`Self::new`]).
    pub fn new_sliced(
        pb: &ParamBuilder,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        padding: usize,
        owners: &[Owner],
    ) -> Result<Self> {
        let bound = 1.0 / ((in_channels * kernel * kernel) as f64).sqrt();
        let slices = slices_from_full(
            pb,
            owners,
            out_channels,
            &[in_channels, kernel, kernel],
            bound,
        )?;
        Ok(Self {
            slices,
            padding,
            ops: OpsBackend::default(),
        })
    }

    /// Number of output channels.
    pub fn out_channels(&self) -> usize {
        self.slices.iter().map(|s| s.bias.elem_count()).sum()
    }

    /// The same layer computed with `ops` (candle's convolution or the fast custom op).
    pub fn with_ops(mut self, ops: OpsBackend) -> Self {
        self.ops = ops;
        self
    }

    /// Applies the convolution with the parameters as `view` sees them.
    pub fn forward(&self, x: &Tensor, view: &SliceView) -> Result<Tensor> {
        let (w, b) = materialise(&self.slices, view)?;
        ops::conv2d(x, &w, &b, 1, self.padding, self.ops)
    }

    /// The weight and bias of the slices owned by `owner`.
    pub fn params_of(&self, owner: Owner) -> Vec<Var> {
        owned(&self.slices, owner)
    }
}
