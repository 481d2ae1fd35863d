//! The U-Net building blocks, partitioned like every other layer.
//!
//! - [`ConvBnRelu`]: conv 3×3 (padding 1) → BatchNorm → ReLU, `(N, C_in, H, W) → (N, C_out, H, W)`;
//! - [`ConvBlock`]: two of them (`conv1`/`bn1`, `conv2`/`bn2`), a U-Net level;
//! - [`UpBlock`]: nearest ×2 up-sampling → [`ConvBnRelu`] (`upconv`/`upbn`) → concatenation
//!   with the skip connection (skip first) → [`ConvBlock`], `(N, C_in, H, W)` and skip
//!   `(N, C_skip, 2H, 2W)` → `(N, C_out, 2H, 2W)`.
//!
//! Up-sampling is [`crate::ops::upsample_nearest`] followed by a convolution rather than a
//! transposed convolution: both are differentiated by candle, but this way every convolution
//! goes through [`crate::ops::conv2d`] (and its fast CPU path).
//!
//! ```
//! # fn main() -> candle_core::Result<()> {
//! use candle_core::{Device, Tensor};
//! use mtcool_models::partitioned::{ConvBlock, Owner, SliceView, UpBlock};
//! use mtcool_models::ParamBuilder;
//! let pb = ParamBuilder::new(candle_nn::VarMap::new(), &Device::Cpu, 0);
//! let owners = Owner::partition(2);
//! let down = ConvBlock::new(&pb.pp("down1"), 3, 8, &owners)?;
//! let up = UpBlock::new(&pb.pp("up1"), 16, 8, 8, &[Owner::Task(0)])?;
//! let x = Tensor::rand(0f32, 1f32, (2, 3, 16, 16), &Device::Cpu)?;
//! let skip = down.forward(&x, &SliceView::all(), true)?;
//! assert_eq!(skip.dims(), &[2, 8, 16, 16]);
//! let deep = Tensor::rand(0f32, 1f32, (2, 16, 8, 8), &Device::Cpu)?;
//! assert_eq!(up.forward(&deep, &skip, &SliceView::all(), true)?.dims(), &[2, 8, 16, 16]);
//! # Ok(()) }
//! ```

use candle_core::{Result, Tensor, Var};

use super::{Owner, PartitionedBatchNorm2d, PartitionedConv2d, SliceView};
use crate::ops::{self, OpsBackend};
use crate::ParamBuilder;

/// Conv 3×3 (padding 1) → BatchNorm → ReLU, channels split between owners.
#[derive(Debug, Clone)]
pub struct ConvBnRelu {
    conv: PartitionedConv2d,
    bn: PartitionedBatchNorm2d,
}

impl ConvBnRelu {
    /// Creates the convolution under `conv` and the batch norm under `bn` (e.g.
    /// `pb.pp("conv1")`, `pb.pp("bn1")`), both split between `owners`.
    pub fn new(
        conv: &ParamBuilder,
        bn: &ParamBuilder,
        in_channels: usize,
        out_channels: usize,
        owners: &[Owner],
    ) -> Result<Self> {
        Ok(Self {
            conv: PartitionedConv2d::new_sliced(conv, in_channels, out_channels, 3, 1, owners)?,
            bn: PartitionedBatchNorm2d::new(bn, out_channels, owners)?,
        })
    }

    /// The same block computing its convolution with `ops`.
    pub fn with_ops(self, ops: OpsBackend) -> Self {
        Self {
            conv: self.conv.with_ops(ops),
            bn: self.bn.with_ops(ops),
        }
    }

    /// `relu(bn(conv(x)))`; `train` selects batch or running statistics.
    pub fn forward(&self, x: &Tensor, view: &SliceView, train: bool) -> Result<Tensor> {
        let y = self.conv.forward(x, view)?;
        self.bn.forward_relu(&y, view, train)
    }

    /// Convolution weight and bias, then BatchNorm γ and β, of the slices owned by `owner`.
    pub fn params_of(&self, owner: Owner) -> Vec<Var> {
        let mut vars = self.conv.params_of(owner);
        vars.extend(self.bn.params_of(owner));
        vars
    }

    /// The convolution weight and bias of `owner`'s slices (what MT-COOL perturbs; not the
    /// BatchNorm affine).
    pub fn conv_params_of(&self, owner: Owner) -> Vec<Var> {
        self.conv.params_of(owner)
    }

    /// Running statistics of `owner`'s slices.
    pub fn buffers_of(&self, owner: Owner) -> Vec<Var> {
        self.bn.buffers_of(owner)
    }
}

/// Two [`ConvBnRelu`]s: one U-Net level.
#[derive(Debug, Clone)]
pub struct ConvBlock {
    first: ConvBnRelu,
    second: ConvBnRelu,
}

impl ConvBlock {
    /// Creates `conv1`, `bn1` (`in → out`) and `conv2`, `bn2` (`out → out`) under `pb`.
    pub fn new(
        pb: &ParamBuilder,
        in_channels: usize,
        out_channels: usize,
        owners: &[Owner],
    ) -> Result<Self> {
        Ok(Self {
            first: ConvBnRelu::new(
                &pb.pp("conv1"),
                &pb.pp("bn1"),
                in_channels,
                out_channels,
                owners,
            )?,
            second: ConvBnRelu::new(
                &pb.pp("conv2"),
                &pb.pp("bn2"),
                out_channels,
                out_channels,
                owners,
            )?,
        })
    }

    /// The same block computing its convolutions with `ops`.
    pub fn with_ops(self, ops: OpsBackend) -> Self {
        Self {
            first: self.first.with_ops(ops),
            second: self.second.with_ops(ops),
        }
    }

    /// Both stages in turn.
    pub fn forward(&self, x: &Tensor, view: &SliceView, train: bool) -> Result<Tensor> {
        let y = self.first.forward(x, view, train)?;
        self.second.forward(&y, view, train)
    }

    /// Every parameter of `owner`'s slices.
    pub fn params_of(&self, owner: Owner) -> Vec<Var> {
        let mut vars = self.first.params_of(owner);
        vars.extend(self.second.params_of(owner));
        vars
    }

    /// The convolution parameters of `owner`'s slices.
    pub fn conv_params_of(&self, owner: Owner) -> Vec<Var> {
        let mut vars = self.first.conv_params_of(owner);
        vars.extend(self.second.conv_params_of(owner));
        vars
    }

    /// Running statistics of `owner`'s slices.
    pub fn buffers_of(&self, owner: Owner) -> Vec<Var> {
        let mut vars = self.first.buffers_of(owner);
        vars.extend(self.second.buffers_of(owner));
        vars
    }
}

/// A U-Net decoder level: up-sample ×2, conv, concatenate with the skip connection, two convs.
#[derive(Debug, Clone)]
pub struct UpBlock {
    up: ConvBnRelu,
    block: ConvBlock,
    ops: OpsBackend,
}

impl UpBlock {
    /// Creates `upconv`, `upbn` (`in → out`) and the [`ConvBlock`] (`skip + out → out`).
    pub fn new(
        pb: &ParamBuilder,
        in_channels: usize,
        skip_channels: usize,
        out_channels: usize,
        owners: &[Owner],
    ) -> Result<Self> {
        Ok(Self {
            up: ConvBnRelu::new(
                &pb.pp("upconv"),
                &pb.pp("upbn"),
                in_channels,
                out_channels,
                owners,
            )?,
            block: ConvBlock::new(pb, skip_channels + out_channels, out_channels, owners)?,
            ops: OpsBackend::default(),
        })
    }

    /// The same block computing its convolutions with `ops`.
    pub fn with_ops(self, ops: OpsBackend) -> Self {
        Self {
            up: self.up.with_ops(ops),
            block: self.block.with_ops(ops),
            ops,
        }
    }

    /// `block(cat[skip, up(upsample(x))])`; `skip` must have twice `x`'s height and width.
    pub fn forward(
        &self,
        x: &Tensor,
        skip: &Tensor,
        view: &SliceView,
        train: bool,
    ) -> Result<Tensor> {
        let up = self
            .up
            .forward(&ops::upsample_nearest(x, 2, self.ops)?, view, train)?;
        let joined = Tensor::cat(&[skip, &up], 1)?;
        self.block.forward(&joined, view, train)
    }

    /// Every parameter of `owner`'s slices.
    pub fn params_of(&self, owner: Owner) -> Vec<Var> {
        let mut vars = self.up.params_of(owner);
        vars.extend(self.block.params_of(owner));
        vars
    }

    /// Running statistics of `owner`'s slices.
    pub fn buffers_of(&self, owner: Owner) -> Vec<Var> {
        let mut vars = self.up.buffers_of(owner);
        vars.extend(self.block.buffers_of(owner));
        vars
    }
}
