//! Multi-task networks for mtcool, built on candle.
//!
//! - [`partitioned`]: layers whose output channels are split between tasks (MT-COOL's
//!   partitioned encoder: convolution, linear, BatchNorm, U-Net blocks) and the [`SliceView`]
//!   through which a forward pass sees them;
//! - [`LeNetMt`]: the MNIST network of paper Table 1, in every [`Sharing`] mode;
//! - [`UNetMt`]: the U-Net of paper Tables 2 and 3 (segmentation + segmentation, segmentation
//!   + classification), in every [`Sharing`] mode;
//! - [`PsiNet`]: one encoder, a decoder per dense task and dense heads (Oxford-IIIT Pet);
//! - [`MultiTaskModel`]: what optimisers and the trainer need from any network;
//! - [`checkpoint`]: safetensors save/load of any [`MultiTaskModel`].
//!
//! Models never name a training method: `mtcool-optim` works on any [`MultiTaskModel`].

/// Returns early with a one-line `candle_core::Error::Msg`. Unlike `candle_core::bail!`, it
/// attaches no backtrace (which `RUST_BACKTRACE=1` would append to the message).
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err(candle_core::Error::Msg(format!($($arg)*)))
    };
}
pub(crate) use fail;

pub mod checkpoint;
pub mod lenet;
pub mod model;
pub mod ops;
pub mod params;
pub mod partitioned;
pub mod psinet;
pub mod unet;

pub use checkpoint::CheckpointError;
pub use lenet::LeNetMt;
pub use model::{MultiTaskModel, Sharing};
pub use params::ParamBuilder;
pub use partitioned::{NoiseMap, Owner, SliceView};
pub use psinet::{PsiNet, PsiNetConfig, PsiTask};
pub use unet::{TaskHead, UNetConfig, UNetMt};
