//! Multi-task networks for mtcool, built on candle.
//!
//! - [`partitioned`]: layers whose output channels are split between tasks (MT-COOL's
//!   partitioned encoder) and the [`SliceView`] through which a forward pass sees them;
//! - [`LeNetMt`]: the MNIST network of paper Table 1, in every [`Sharing`] mode;
//! - [`MultiTaskModel`]: what optimisers and the trainer need from any network.
//!
//! Models never name a training method: `mtcool-optim` works on any [`MultiTaskModel`].

pub mod lenet;
pub mod model;
pub mod ops;
pub mod params;
pub mod partitioned;

pub use lenet::LeNetMt;
pub use model::{MultiTaskModel, Sharing};
pub use params::ParamBuilder;
pub use partitioned::{NoiseMap, Owner, SliceView};
