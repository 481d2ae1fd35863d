//! From dataset files to tensors on the training device, and mini-batch sampling.
//!
//! Each task's images are uploaded once; a batch is an `index_select` of them on the device.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use mtcool_data::tasks::{split_by_class, task_subset};
use mtcool_data::{ClassTask, ImageSet};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::config::{DataConfig, ExperimentConfig};
use crate::error::Result;

/// Mean of MNIST's training pixels (in [0, 1]), for input normalisation.
pub const MNIST_MEAN: f32 = 0.1307;
/// Standard deviation of MNIST's training pixels.
pub const MNIST_STD: f32 = 0.3081;

/// A split of one task as tensors: images `(N, 1, H, W)` f32, normalised; labels `(N,)` u32.
#[derive(Debug, Clone)]
pub struct SplitTensors {
    /// Normalised images.
    pub images: Tensor,
    /// Class indices.
    pub labels: Tensor,
    /// Number of samples.
    pub len: usize,
}

impl SplitTensors {
    /// Uploads `set` to `device`.
    pub fn new(set: &ImageSet, device: &Device) -> Result<Self> {
        let (n, h, w) = set.images.dim();
        let pixels: Vec<f32> = set
            .images
            .iter()
            .map(|&p| (p as f32 / 255.0 - MNIST_MEAN) / MNIST_STD)
            .collect();
        let images = Tensor::from_vec(pixels, (n, 1, h, w), device)?;
        let labels: Vec<u32> = set.labels.iter().map(|&l| l as u32).collect();
        let labels = Tensor::from_vec(labels, n, device)?;
        Ok(Self {
            images,
            labels,
            len: n,
        })
    }

    /// The samples at `indices`.
    pub fn batch(&self, indices: &[u32]) -> Result<(Tensor, Tensor)> {
        let idx = Tensor::from_slice(indices, indices.len(), self.images.device())?;
        Ok((
            self.images.index_select(&idx, 0)?,
            self.labels.index_select(&idx, 0)?,
        ))
    }

    /// Samples `start..end` (for evaluation in chunks).
    pub fn range(&self, start: usize, end: usize) -> Result<(Tensor, Tensor)> {
        let len = end.min(self.len).saturating_sub(start);
        Ok((
            self.images.narrow(0, start, len)?,
            self.labels.narrow(0, start, len)?,
        ))
    }
}

/// One task's data on the device.
#[derive(Debug, Clone)]
pub struct TaskTensors {
    /// Task name.
    pub name: String,
    /// Number of classes.
    pub num_classes: usize,
    /// Training split.
    pub train: SplitTensors,
    /// Validation split.
    pub val: SplitTensors,
    /// Test split.
    pub test: SplitTensors,
}

/// Reads the experiment's dataset from `data_dir` and uploads every task's splits.
/// `train_limit` keeps only the first that many training images (before the task split).
pub fn load(
    config: &ExperimentConfig,
    data_dir: &Path,
    train_limit: Option<usize>,
    device: &Device,
) -> Result<Vec<TaskTensors>> {
    let DataConfig::Mnist {
        train_size, tasks, ..
    } = &config.data;
    let tasks: Vec<ClassTask> = tasks.iter().map(ClassTask::from).collect();
    let files = mtcool_data::mnist::load(&config.data_folder(data_dir))?;
    let mut split = split_by_class(&files.train, &files.test, *train_size, &tasks)?;
    if let Some(limit) = train_limit {
        let limited = files.train.range(0, limit.min(*train_size));
        for (data, task) in split.iter_mut().zip(&tasks) {
            data.train = task_subset(&limited, task);
        }
    }
    split
        .iter()
        .map(|t| {
            Ok(TaskTensors {
                name: t.name.clone(),
                num_classes: t.num_classes,
                train: SplitTensors::new(&t.train, device)?,
                val: SplitTensors::new(&t.val, device)?,
                test: SplitTensors::new(&t.test, device)?,
            })
        })
        .collect()
}

/// Draws mini-batches of one task's training set in a random order, reshuffling whenever the
/// set is exhausted (so a smaller task cycles within an epoch).
#[derive(Debug, Clone)]
pub struct Sampler {
    order: Vec<u32>,
    position: usize,
}

impl Sampler {
    /// A sampler over `len` samples.
    pub fn new(len: usize) -> Self {
        Self {
            order: (0..len as u32).collect(),
            position: len,
        }
    }

    /// Starts a fresh random pass.
    pub fn reshuffle(&mut self, rng: &mut ChaCha8Rng) {
        self.order.shuffle(rng);
        self.position = 0;
    }

    /// The next batch of at most `size` indices (fewer at the end of a pass).
    pub fn next_batch(&mut self, size: usize, rng: &mut ChaCha8Rng) -> &[u32] {
        if self.position >= self.order.len() {
            self.reshuffle(rng);
        }
        let start = self.position;
        self.position = (start + size).min(self.order.len());
        &self.order[start..self.position]
    }
}

/// Iterations per epoch: one pass over the largest task's training set.
pub fn iterations_per_epoch(tasks: &[TaskTensors], batch_size: usize) -> usize {
    tasks
        .iter()
        .map(|t| t.train.len.div_ceil(batch_size))
        .max()
        .unwrap_or(0)
}

/// Checks that the images are in the shape LeNet-MT expects.
pub fn check_input_shape(tasks: &[TaskTensors]) -> Result<()> {
    for t in tasks {
        let dims = t.train.images.dims();
        if dims[1..] != [1, 28, 28] {
            return Err(crate::error::TrainError::Config {
                path: t.name.clone().into(),
                problem: format!("LeNet-MT needs 1×28×28 images, got {:?}", &dims[1..]),
            });
        }
        debug_assert_eq!(t.train.images.dtype(), DType::F32);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn sampler_covers_every_sample_once_per_pass() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut s = Sampler::new(10);
        s.reshuffle(&mut rng);
        let mut seen: Vec<u32> = Vec::new();
        for _ in 0..3 {
            seen.extend_from_slice(s.next_batch(4, &mut rng));
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<u32>>());
        assert_eq!(s.next_batch(4, &mut rng).len(), 4); // next pass starts
    }
}
