//! Partitioned fully connected layer.
//!
//! `x: (N, in) → y = x·Wᵀ + b: (N, out)`, with the `out` units split between owners.
//!
//! ```
//! # fn main() -> candle_core::Result<()> {
//! use candle_core::{Device, Tensor};
//! use mtcool_models::partitioned::{Owner, PartitionedLinear, SliceView};
//! use mtcool_models::ParamBuilder;
//! let pb = ParamBuilder::new(candle_nn::VarMap::new(), &Device::Cpu, 0);
//! let fc = PartitionedLinear::new(&pb.pp("fc1"), 320, 50, &Owner::partition(2))?;
//! let x = Tensor::ones((4, 320), candle_core::DType::F32, &Device::Cpu)?;
//! assert_eq!(fc.forward(&x, &SliceView::all())?.dims(), &[4, 50]);
//! # Ok(()) }
//! ```

use candle_core::{Result, Tensor, Var};

use super::{materialise, owned, slices_from_full, split_sizes, Owner, Slice, SliceView};
use crate::ParamBuilder;

/// A linear layer whose output units are split between owners.
#[derive(Debug, Clone)]
pub struct PartitionedLinear {
    slices: Vec<Slice>,
}

impl PartitionedLinear {
    /// Creates the layer; parameters are named `<prefix>.<owner>.weight|bias`.
    pub fn new(
        pb: &ParamBuilder,
        in_features: usize,
        out_features: usize,
        owners: &[Owner],
    ) -> Result<Self> {
        if owners.is_empty() || owners.len() > out_features {
            candle_core::bail!(
                "cannot split {out_features} units between {} owners",
                owners.len()
            );
        }
        let bound = 1.0 / (in_features as f64).sqrt();
        let slices = owners
            .iter()
            .zip(split_sizes(out_features, owners.len()))
            .map(|(&owner, units)| {
                let p = pb.pp(owner.name());
                Ok(Slice {
                    owner,
                    weight: p.uniform("weight", (units, in_features), bound)?,
                    bias: p.uniform("bias", units, bound)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { slices })
    }

    /// Like [`Self::new`], but the initial values are drawn for the whole layer (weight, then
    /// bias) and then cut between the owners, so that any partition built from one seed starts
    /// as the same function as the shared layer.
    pub fn new_sliced(
        pb: &ParamBuilder,
        in_features: usize,
        out_features: usize,
        owners: &[Owner],
    ) -> Result<Self> {
        let bound = 1.0 / (in_features as f64).sqrt();
        let slices = slices_from_full(pb, owners, out_features, &[in_features], bound)?;
        Ok(Self { slices })
    }

    /// Applies the layer with the parameters as `view` sees them.
    pub fn forward(&self, x: &Tensor, view: &SliceView) -> Result<Tensor> {
        let (w, b) = materialise(&self.slices, view)?;
        x.matmul(&w.t()?)?.broadcast_add(&b)
    }

    /// The weight and bias of the slices owned by `owner`.
    pub fn params_of(&self, owner: Owner) -> Vec<Var> {
        owned(&self.slices, owner)
    }
}
