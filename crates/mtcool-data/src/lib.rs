//! Dataset readers and task splits for the mtcool multi-task learning toolkit.
//!
//! Pure Rust (ndarray), no tensor library: readers turn the providers' files into validated
//! arrays, and every problem with a file is a [`DataError`] that names the file.
//!
//! - [`idx`]: the IDX format of MNIST and Fashion-MNIST (plain or gzipped);
//! - [`mnist`]: the four-file MNIST folder layout;
//! - [`pets_release`]: the original Oxford-IIIT Pet release (images, trimaps, head boxes);
//! - [`tasks`]: task splits by class (MNIST even / odd).

pub mod dense;
pub mod error;
pub mod hrfav;
pub mod idx;
pub mod image_io;
pub mod mnist;
pub mod multi;
pub mod organcmnist;
#[cfg(feature = "hdf5")]
pub mod pets;
mod pets_draw;
pub mod pets_release;
pub mod refuge;
pub mod synth;
pub mod tasks;
pub mod transforms;

pub use dense::{DenseSet, DenseSplits, Target};
pub use error::{DataError, Result};
pub use tasks::{ClassTask, ImageSet, TaskData};
