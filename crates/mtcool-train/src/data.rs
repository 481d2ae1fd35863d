//! From dataset files to tensors on the training device, and mini-batch sampling.
//!
//! Images are uploaded once, as 8-bit values, and normalised batch by batch on the device; a
//! batch is an `index_select` of them. Class-split datasets (MNIST, Fashion-MNIST,
//! OrganCMNIST) give each task its own images; the image-to-image datasets (REFUGE, HRF-AV,
//! pets) give every task the same images, so one batch tensor feeds every task and the
//! shared encoder runs once per step. HRF-AV trains on random patches drawn afresh every
//! epoch and is evaluated on whole images by sliding windows.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use mtcool_data::tasks::{split_by_class, task_subset, ImageSet};
use mtcool_data::{ClassTask, DenseSet, DenseSplits, Target};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::config::{DataConfig, ExperimentConfig};
use crate::error::{Result, TrainError};

/// Mean of MNIST's training pixels (in [0, 1]), for input normalisation.
pub const MNIST_MEAN: f32 = 0.1307;
/// Standard deviation of MNIST's training pixels.
pub const MNIST_STD: f32 = 0.3081;

/// What a task predicts, which decides its loss and metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskKind {
    /// One class per image.
    Class {
        /// Number of classes.
        classes: usize,
    },
    /// One class per pixel; `regions` are the unions of classes scored as binary masks
    /// (name, classes), e.g. REFUGE's disc = rim ∪ cup.
    Mask {
        /// Number of classes.
        classes: usize,
        /// Scored regions; an empty name gives plain keys (`dice`, `iou`, …).
        regions: Vec<(String, Vec<u32>)>,
    },
    /// A head box as fractions `[x0, y0, x1, y1]`.
    BoundingBox,
    /// Reconstruction of the (normalised) input image.
    Reconstruction {
        /// Image channels.
        channels: usize,
    },
}

/// One split of one task on the device.
#[derive(Debug, Clone)]
pub struct SplitTensors {
    /// Raw 8-bit images `(N, C, H, W)`.
    pub images: Tensor,
    /// Class indices `(N,)` or `(N, H, W)` as `u32`, box fractions `(N, 4)` as `f32`; `None`
    /// for reconstruction (the target is the input).
    pub targets: Option<Tensor>,
    /// Where metrics count, `(N, H, W)` `u8` (HRF's field of view).
    pub valid: Option<Tensor>,
    /// Number of samples.
    pub len: usize,
}

impl SplitTensors {
    /// The samples at `indices`: raw images and targets.
    pub fn batch(&self, indices: &[u32]) -> Result<(Tensor, Option<Tensor>)> {
        let idx = Tensor::from_slice(indices, indices.len(), self.images.device())?;
        Ok((
            self.images.index_select(&idx, 0)?,
            self.select_targets(&idx)?,
        ))
    }

    /// The targets at `indices` only (for tasks that share an input batch already drawn).
    pub fn targets(&self, indices: &[u32]) -> Result<Option<Tensor>> {
        self.select_targets(&Tensor::from_slice(
            indices,
            indices.len(),
            self.images.device(),
        )?)
    }

    fn select_targets(&self, idx: &Tensor) -> Result<Option<Tensor>> {
        Ok(match &self.targets {
            Some(t) => Some(t.index_select(idx, 0)?),
            None => None,
        })
    }

    /// Samples `start..end` (for evaluation in chunks): raw images, targets, valid masks.
    pub fn range(
        &self,
        start: usize,
        end: usize,
    ) -> Result<(Tensor, Option<Tensor>, Option<Tensor>)> {
        let len = end.min(self.len).saturating_sub(start);
        let narrow = |t: &Option<Tensor>| -> Result<Option<Tensor>> {
            Ok(match t {
                Some(t) => Some(t.narrow(0, start, len)?),
                None => None,
            })
        };
        Ok((
            self.images.narrow(0, start, len)?,
            narrow(&self.targets)?,
            narrow(&self.valid)?,
        ))
    }
}

/// One task's data on the device.
#[derive(Debug, Clone)]
pub struct TaskTensors {
    /// Task name.
    pub name: String,
    /// What the task predicts.
    pub kind: TaskKind,
    /// Training split.
    pub train: SplitTensors,
    /// Validation split.
    pub val: SplitTensors,
    /// Test split.
    pub test: SplitTensors,
}

/// Per-channel input normalisation `(x / 255 − mean) / sd`, on the device.
#[derive(Debug, Clone)]
pub struct Normaliser {
    mean: Tensor,
    inv_sd: Tensor,
}

impl Normaliser {
    /// Normalisation with per-channel `mean` and `sd` (of pixels in [0, 1]).
    pub fn new(mean: &[f32], sd: &[f32], device: &Device) -> Result<Self> {
        let c = mean.len();
        let inv: Vec<f32> = sd.iter().map(|s| 1.0 / s.max(1e-6)).collect();
        Ok(Self {
            mean: Tensor::from_slice(mean, (1, c, 1, 1), device)?,
            inv_sd: Tensor::from_vec(inv, (1, c, 1, 1), device)?,
        })
    }

    /// The per-channel mean and sd (of pixels in [0, 1]).
    pub fn mean_sd(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        let mean = self.mean.flatten_all()?.to_vec1::<f32>()?;
        let inv = self.inv_sd.flatten_all()?.to_vec1::<f32>()?;
        Ok((mean, inv.iter().map(|i| 1.0 / i).collect()))
    }

    /// Per-channel mean and sd of `images` `(N, C, H, W)` (pixels scaled to [0, 1]).
    pub fn fit(images: &ndarray::Array4<u8>, device: &Device) -> Result<Self> {
        let c = images.dim().1;
        let mut mean = vec![0f32; c];
        let mut sd = vec![1f32; c];
        for ch in 0..c {
            let view = images.index_axis(ndarray::Axis(1), ch);
            let n = view.len().max(1) as f64;
            let (s, s2) = view.iter().fold((0f64, 0f64), |(s, s2), &p| {
                let x = f64::from(p) / 255.0;
                (s + x, s2 + x * x)
            });
            let m = s / n;
            mean[ch] = m as f32;
            sd[ch] = ((s2 / n - m * m).max(0.0).sqrt() as f32).max(1e-3);
        }
        Self::new(&mean, &sd, device)
    }

    /// The device the statistics live on.
    pub fn device(&self) -> &Device {
        self.mean.device()
    }

    /// Normalised `f32` images from raw 8-bit ones.
    pub fn apply(&self, raw: &Tensor) -> Result<Tensor> {
        let x = (raw.to_dtype(DType::F32)? / 255.0)?;
        Ok(x.broadcast_sub(&self.mean)?.broadcast_mul(&self.inv_sd)?)
    }
}

/// HRF-AV's patch training and sliding-window evaluation.
#[derive(Debug, Clone)]
pub struct PatchTraining {
    /// Whole training images on the host, patches are cut from.
    pub source: DenseSet,
    /// Patch side.
    pub size: usize,
    /// Patches per epoch.
    pub per_epoch: usize,
    /// Overlap of evaluation windows.
    pub overlap: usize,
}

/// An experiment's data on the device.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Every task's splits.
    pub tasks: Vec<TaskTensors>,
    /// Whether every task sees the same images (one batch tensor for all tasks).
    pub shared_input: bool,
    /// Input normalisation.
    pub normaliser: Normaliser,
    /// Patch training (HRF-AV).
    pub patches: Option<PatchTraining>,
}

impl Dataset {
    /// Task names in order.
    pub fn task_names(&self) -> Vec<String> {
        self.tasks.iter().map(|t| t.name.clone()).collect()
    }

    /// Training samples per epoch of the largest task.
    pub fn train_len(&self) -> usize {
        match &self.patches {
            Some(p) => p.per_epoch,
            None => self.tasks.iter().map(|t| t.train.len).max().unwrap_or(0),
        }
    }

    /// Image shape `(C, H, W)` a training batch has.
    pub fn input_shape(&self) -> Vec<usize> {
        match (&self.patches, self.tasks.first()) {
            (Some(p), Some(t)) => vec![t.train.images.dims()[1], p.size, p.size],
            (None, Some(t)) => t.train.images.dims()[1..].to_vec(),
            _ => Vec::new(),
        }
    }

    /// With patch training: fresh random patches for this epoch, as each task's training
    /// split (`None` otherwise: the fixed training splits are used).
    pub fn epoch_patches(&self, rng: &mut ChaCha8Rng) -> Result<Option<Vec<SplitTensors>>> {
        let Some(p) = &self.patches else {
            return Ok(None);
        };
        let set = mtcool_data::transforms::random_patches(&p.source, p.per_epoch, p.size, rng)?;
        let device = self.normaliser.device();
        Ok(Some(dense_split(&set, device)?))
    }
}

/// Reads the experiment's dataset from `data_dir` and uploads every task's splits.
/// `train_limit` keeps only the first that many training images (before the task split).
pub fn load(
    config: &ExperimentConfig,
    data_dir: &Path,
    train_limit: Option<usize>,
    seed: u64,
    device: &Device,
) -> Result<Dataset> {
    let folder = config.data_folder(data_dir);
    match &config.data {
        DataConfig::Mnist {
            train_size, tasks, ..
        }
        | DataConfig::FashionMnist {
            train_size, tasks, ..
        } => {
            let tasks: Vec<ClassTask> = tasks.iter().map(ClassTask::from).collect();
            let files = mtcool_data::mnist::load(&folder)?;
            let mut split = split_by_class(&files.train, &files.test, *train_size, &tasks)?;
            if let Some(limit) = train_limit {
                let limited = files.train.range(0, limit.min(*train_size));
                for (data, task) in split.iter_mut().zip(&tasks) {
                    data.train = task_subset(&limited, task);
                }
            }
            let normaliser = if matches!(config.data, DataConfig::Mnist { .. }) {
                Normaliser::new(&[MNIST_MEAN], &[MNIST_STD], device)?
            } else {
                fit_grey(&files.train.range(0, *train_size), device)?
            };
            class_dataset(split, normaliser, device)
        }
        DataConfig::Multi { train_size, .. } => {
            let (train, test) = mtcool_data::multi::read(&folder)?;
            let mut dataset = dense_dataset(
                &multi_splits(train, test, *train_size, train_limit)?,
                None,
                device,
            )?;
            // The authors normalise with MNIST's statistics.
            dataset.normaliser = Normaliser::new(&[MNIST_MEAN], &[MNIST_STD], device)?;
            Ok(dataset)
        }
        DataConfig::Organcmnist {
            tasks,
            train_limit: own_limit,
            ..
        } => {
            let tasks: Vec<ClassTask> = tasks.iter().map(ClassTask::from).collect();
            let path = folder.join(mtcool_data::organcmnist::FILE_NAME);
            let files = mtcool_data::organcmnist::load(&path)?;
            let limit = train_limit.or(*own_limit).unwrap_or(usize::MAX);
            let train = files.train.range(0, limit);
            let split = mtcool_data::tasks::split_by_class_with_val(
                &train,
                &files.val,
                &files.test,
                &tasks,
            )?;
            let normaliser = fit_grey(&train, device)?;
            class_dataset(split, normaliser, device)
        }
        DataConfig::Refuge {
            train,
            val,
            test,
            crop_size,
            output_size,
            ..
        } => {
            let options = mtcool_data::refuge::RefugeOptions {
                train: train_limit.map_or(*train, |l| l.min(*train)),
                val: *val,
                test: *test,
                crop_size: *crop_size,
                output_size: *output_size,
            };
            let splits = mtcool_data::refuge::load(&folder, &options, seed)?;
            dense_dataset(&splits, None, device)
        }
        DataConfig::Hrfav {
            train,
            av_folder,
            patch_size,
            patches_per_epoch,
            overlap,
            ..
        } => {
            let options = mtcool_data::hrfav::HrfAvOptions {
                train: *train,
                av_folder: av_folder.clone(),
            };
            let splits = mtcool_data::hrfav::load(&folder, &options, seed)?;
            let patches = PatchTraining {
                source: splits.train.clone(),
                size: *patch_size,
                per_epoch: train_limit.map_or(*patches_per_epoch, |l| l.min(*patches_per_epoch)),
                overlap: *overlap,
            };
            dense_dataset(&splits, Some(patches), device)
        }
        DataConfig::Pets {
            tasks,
            limit,
            release,
            ..
        } => {
            let limit = match (train_limit, limit) {
                (Some(a), Some(b)) => Some(a.min(*b)),
                (a, b) => a.or(*b),
            };
            let splits = if mtcool_data::pets_release::is_release_layout(&folder) {
                mtcool_data::pets_release::load(&folder, release, seed, limit)?
            } else {
                load_pets_hdf5(&folder, limit)?
            };
            let keep = |set: DenseSet| -> Result<DenseSet> { keep_tasks(set, tasks, &folder) };
            let splits = DenseSplits {
                train: keep(splits.train)?,
                val: keep(splits.val)?,
                test: keep(splits.test)?,
            };
            dense_dataset(&splits, None, device)
        }
    }
}

/// MultiMNIST-style splits as dense sets of two class targets: the first `train_size`
/// training images train (at most `limit`), the rest of the training images validate.
fn multi_splits(
    train: mtcool_data::multi::MultiSplit,
    test: mtcool_data::multi::MultiSplit,
    train_size: usize,
    limit: Option<usize>,
) -> Result<DenseSplits> {
    let n = train.left.len();
    let cut = train_size.min(n);
    let used = limit.map_or(cut, |l| l.min(cut));
    let set = |split: &mtcool_data::multi::MultiSplit, range: std::ops::Range<usize>| {
        let (count, h, w) = split.images.dim();
        let range = range.start.min(count)..range.end.min(count);
        let images = split
            .images
            .slice_axis(ndarray::Axis(0), ndarray::Slice::from(range.clone()))
            .to_owned()
            .into_shape_with_order((range.len(), 1, h, w))
            .map_err(|e| TrainError::Config {
                path: "multi".into(),
                problem: e.to_string(),
            })?;
        let labels = |l: &ndarray::Array1<u8>| {
            l.slice_axis(ndarray::Axis(0), ndarray::Slice::from(range.clone()))
                .to_owned()
        };
        Ok::<_, TrainError>(DenseSet {
            images,
            targets: vec![
                (
                    "left".into(),
                    Target::Class {
                        labels: labels(&split.left),
                        classes: 10,
                    },
                ),
                (
                    "right".into(),
                    Target::Class {
                        labels: labels(&split.right),
                        classes: 10,
                    },
                ),
            ],
            valid: None,
        })
    };
    Ok(DenseSplits {
        train: set(&train, 0..used)?,
        val: set(&train, cut..n)?,
        test: set(&test, 0..test.left.len())?,
    })
}

/// The coursework's HDF5 files (this build reads them).
#[cfg(feature = "hdf5")]
fn load_pets_hdf5(folder: &Path, limit: Option<usize>) -> Result<DenseSplits> {
    Ok(mtcool_data::pets::load(folder, limit)?)
}

/// The coursework's HDF5 files (this build cannot read them).
#[cfg(not(feature = "hdf5"))]
fn load_pets_hdf5(folder: &Path, _limit: Option<usize>) -> Result<DenseSplits> {
    Err(TrainError::Config {
        path: folder.to_path_buf(),
        problem: "holds no original release (annotations/list.txt, images/), and the \
                  coursework's HDF5 files need a build with HDF5 support: install the HDF5 C \
                  library (Debian: libhdf5-dev) and build with `--features hdf5`"
            .into(),
    })
}

/// Only the targets named in `tasks`, in that order.
fn keep_tasks(mut set: DenseSet, tasks: &[String], folder: &Path) -> Result<DenseSet> {
    let mut kept = Vec::with_capacity(tasks.len());
    for name in tasks {
        let Some(pos) = set.targets.iter().position(|(n, _)| n == name) else {
            return Err(TrainError::Config {
                path: folder.to_path_buf(),
                problem: format!("the dataset has no task `{name}`"),
            });
        };
        kept.push(set.targets.swap_remove(pos));
    }
    set.targets = kept;
    Ok(set)
}

fn fit_grey(set: &ImageSet, device: &Device) -> Result<Normaliser> {
    let (n, h, w) = set.images.dim();
    let images = set
        .images
        .clone()
        .into_shape_with_order((n, 1, h, w))
        .map_err(|e| TrainError::Config {
            path: "images".into(),
            problem: e.to_string(),
        })?;
    Normaliser::fit(&images, device)
}

fn class_split(set: &ImageSet, device: &Device) -> Result<SplitTensors> {
    let (n, h, w) = set.images.dim();
    let pixels: Vec<u8> = set.images.iter().copied().collect();
    let labels: Vec<u32> = set.labels.iter().map(|&l| u32::from(l)).collect();
    Ok(SplitTensors {
        images: Tensor::from_vec(pixels, (n, 1, h, w), device)?,
        targets: Some(Tensor::from_vec(labels, n, device)?),
        valid: None,
        len: n,
    })
}

fn class_dataset(
    split: Vec<mtcool_data::TaskData>,
    normaliser: Normaliser,
    device: &Device,
) -> Result<Dataset> {
    let tasks = split
        .iter()
        .map(|t| {
            Ok(TaskTensors {
                name: t.name.clone(),
                kind: TaskKind::Class {
                    classes: t.num_classes,
                },
                train: class_split(&t.train, device)?,
                val: class_split(&t.val, device)?,
                test: class_split(&t.test, device)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Dataset {
        tasks,
        shared_input: false,
        normaliser,
        patches: None,
    })
}

/// Per task, the split's tensors (the images tensor is shared, not copied).
pub(crate) fn dense_split(set: &DenseSet, device: &Device) -> Result<Vec<SplitTensors>> {
    let (n, c, h, w) = set.images.dim();
    let images = Tensor::from_vec(set.images.iter().copied().collect(), (n, c, h, w), device)?;
    let valid = match &set.valid {
        Some(v) => Some(Tensor::from_vec(
            v.iter().copied().collect(),
            (n, h, w),
            device,
        )?),
        None => None,
    };
    set.targets
        .iter()
        .map(|(_, target)| {
            let targets = match target {
                Target::Class { labels, .. } => Some(Tensor::from_vec(
                    labels.iter().map(|&l| u32::from(l)).collect(),
                    n,
                    device,
                )?),
                Target::Mask { maps, .. } => Some(Tensor::from_vec(
                    maps.iter().map(|&l| u32::from(l)).collect(),
                    (n, h, w),
                    device,
                )?),
                Target::Values(v) => Some(Tensor::from_vec(
                    v.iter().copied().collect(),
                    v.dim(),
                    device,
                )?),
                Target::Reconstruction => None,
            };
            Ok(SplitTensors {
                images: images.clone(),
                targets,
                valid: valid.clone(),
                len: n,
            })
        })
        .collect()
}

/// The kinds of a configuration's tasks and its input shape `(C, H, W)` (pets: 256 × 256,
/// the coursework files' size), known without reading the data.
pub fn configured_tasks(config: &DataConfig) -> (Vec<TaskKind>, Vec<usize>) {
    let class = |classes: usize| TaskKind::Class { classes };
    match config {
        DataConfig::Mnist { tasks, .. }
        | DataConfig::FashionMnist { tasks, .. }
        | DataConfig::Organcmnist { tasks, .. } => (
            tasks.iter().map(|t| class(t.classes.len())).collect(),
            vec![1, 28, 28],
        ),
        DataConfig::Multi { .. } => (vec![class(10), class(10)], vec![1, 28, 28]),
        DataConfig::Refuge { output_size, .. } => (
            vec![mask_kind("seg", 3), class(2)],
            vec![3, *output_size as usize, *output_size as usize],
        ),
        DataConfig::Hrfav { patch_size, .. } => (
            vec![mask_kind("vessel", 2), mask_kind("av", 3)],
            vec![3, *patch_size, *patch_size],
        ),
        DataConfig::Pets { tasks, release, .. } => (
            tasks
                .iter()
                .map(|t| match t.as_str() {
                    "seg" => mask_kind("seg", 2),
                    "cls" => class(2),
                    "box" => TaskKind::BoundingBox,
                    _ => TaskKind::Reconstruction { channels: 3 },
                })
                .collect(),
            vec![3, release.size, release.size],
        ),
    }
}

/// A segmentation task and its scored regions.
fn mask_kind(name: &str, classes: usize) -> TaskKind {
    let regions: Vec<(String, Vec<u32>)> = match (name, classes) {
        // REFUGE: 0 background, 1 rim, 2 cup.
        ("seg", 3) => vec![("cup".into(), vec![2]), ("disc".into(), vec![1, 2])],
        // HRF-AV: 0 background, 1 artery, 2 vein.
        ("av", 3) => vec![("artery".into(), vec![1]), ("vein".into(), vec![2])],
        (_, 2) => vec![(String::new(), vec![1])],
        (_, k) => (1..k as u32)
            .map(|c| (format!("class{c}"), vec![c]))
            .collect(),
    };
    TaskKind::Mask { classes, regions }
}

/// How a dataset's target is scored.
fn dense_kind(name: &str, target: &Target, channels: usize) -> TaskKind {
    match target {
        Target::Class { classes, .. } => TaskKind::Class { classes: *classes },
        Target::Mask { classes, .. } => mask_kind(name, *classes),
        Target::Values(_) => TaskKind::BoundingBox,
        Target::Reconstruction => TaskKind::Reconstruction { channels },
    }
}

fn dense_dataset(
    splits: &DenseSplits,
    patches: Option<PatchTraining>,
    device: &Device,
) -> Result<Dataset> {
    let channels = splits.train.images.dim().1;
    let normaliser = Normaliser::fit(&splits.train.images, device)?;
    let train = dense_split(&splits.train, device)?;
    let val = dense_split(&splits.val, device)?;
    let test = dense_split(&splits.test, device)?;
    let tasks = splits
        .train
        .targets
        .iter()
        .zip(train.into_iter().zip(val).zip(test))
        .map(|((name, target), ((train, val), test))| TaskTensors {
            name: name.clone(),
            kind: dense_kind(name, target, channels),
            train,
            val,
            test,
        })
        .collect();
    Ok(Dataset {
        tasks,
        shared_input: true,
        normaliser,
        patches,
    })
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

    /// Its current order and position in it, for saving.
    pub fn state(&self) -> (&[u32], usize) {
        (&self.order, self.position)
    }

    /// A sampler at a saved order and position; `None` unless `order` has `len` entries and
    /// the position lies within it.
    pub fn restored(len: usize, order: Vec<u32>, position: usize) -> Option<Self> {
        (order.len() == len && position <= len).then_some(Self { order, position })
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
pub fn iterations_per_epoch(dataset: &Dataset, batch_size: usize) -> usize {
    dataset.train_len().div_ceil(batch_size)
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

    #[test]
    fn normaliser_gives_zero_mean_unit_sd() {
        let dev = Device::Cpu;
        let images = ndarray::Array4::from_shape_fn((4, 2, 3, 3), |(n, c, h, w)| {
            ((n * 31 + c * 7 + h * 5 + w * 11) % 256) as u8
        });
        let norm = Normaliser::fit(&images, &dev).unwrap();
        let raw = Tensor::from_vec(images.iter().copied().collect(), (4, 2, 3, 3), &dev).unwrap();
        let x = norm.apply(&raw).unwrap();
        for c in 0..2 {
            let ch = x.narrow(1, c, 1).unwrap().flatten_all().unwrap();
            let v: Vec<f32> = ch.to_vec1().unwrap();
            let m = v.iter().sum::<f32>() / v.len() as f32;
            let sd = (v.iter().map(|a| (a - m) * (a - m)).sum::<f32>() / v.len() as f32).sqrt();
            assert!(m.abs() < 1e-4 && (sd - 1.0).abs() < 1e-3, "{m} {sd}");
        }
    }
}
