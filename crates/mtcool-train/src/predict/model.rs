//! A run's model rebuilt from its checkpoint alone (no training data needed): the network
//! from the metadata's config and row, the weights from the file, the input normalisation
//! of its training set.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use mtcool_models::{MultiTaskModel, SliceView};
use ndarray::Array3;

use crate::checkpoint::{read_meta, CheckpointMeta};
use crate::config::{DataConfig, MethodSpec};
use crate::data::{configured_tasks, Normaliser, TaskKind};
use crate::error::{Result, TrainError};

/// A checkpoint's model, ready to predict.
pub struct LoadedModel {
    /// What made it.
    pub meta: CheckpointMeta,
    /// Its tasks' kinds, in head order.
    pub kinds: Vec<TaskKind>,
    /// The network input `(C, H, W)` it was trained on.
    pub input_shape: Vec<usize>,
    model: Box<dyn MultiTaskModel>,
    normaliser: Normaliser,
    device: Device,
}

impl LoadedModel {
    /// Reads the checkpoint at `path` and rebuilds its model on `device`. A file of another
    /// architecture or head layout names the first tensor that does not fit, and both shapes.
    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        let meta = read_meta(path)?;
        let spec: MethodSpec = meta.method.parse().map_err(|problem| TrainError::Results {
            path: path.to_path_buf(),
            problem,
        })?;
        let (kinds, input_shape) = configured_tasks(&meta.config.data);
        let model =
            crate::run::build_network(spec.kind, &kinds, &input_shape, &meta.model, device, 0)?;
        mtcool_models::checkpoint::load(model.as_ref(), path)?;
        let mut model = model;
        model.set_training(false);
        let (mean, sd) = &meta.normalisation;
        let normaliser = Normaliser::new(mean, sd, device)?;
        Ok(Self {
            meta,
            kinds,
            input_shape,
            model,
            normaliser,
            device: device.clone(),
        })
    }

    /// The task names, in head order.
    pub fn task_names(&self) -> Vec<String> {
        self.meta
            .tasks
            .iter()
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The network input of an 8-bit image `(C, H, W)`: `(1, C, H, W)`, normalised.
    pub fn input(&self, image: &Array3<u8>) -> Result<Tensor> {
        let (c, h, w) = image.dim();
        let raw: Vec<u8> = image.iter().copied().collect();
        let raw = Tensor::from_vec(raw, (1, c, h, w), &self.device)?;
        self.normaliser.apply(&raw)
    }

    /// Task `task`'s raw output for the network input `x`.
    pub fn output(&self, x: &Tensor, task: usize) -> Result<Tensor> {
        Ok(self
            .model
            .forward_task(x, task, &SliceView::all())?
            .detach())
    }

    /// Task `task`'s output for a whole image by overlapping `size`-pixel windows (HRF-AV).
    pub fn windowed_output(
        &self,
        x: &Tensor,
        task: usize,
        size: usize,
        overlap: usize,
    ) -> Result<Tensor> {
        crate::evaluate::sliding_window(self.model.as_ref(), task, x, size, overlap)
    }

    /// The class map of segmentation task `task` for a network-ready image `(C, H, W)` (as
    /// the test split holds it), by sliding windows for patch-trained experiments.
    pub fn mask_of(&self, image: &Array3<u8>, task: usize) -> Result<ndarray::Array2<u8>> {
        let x = self.input(image)?;
        let output = match &self.meta.config.data {
            DataConfig::Hrfav {
                patch_size,
                overlap,
                ..
            } => self.windowed_output(&x, task, *patch_size, *overlap)?,
            _ => self.output(&x, task)?,
        };
        Self::class_map(&output)
    }

    /// The class map `(H, W)` of a segmentation output `(1, K, H, W)`.
    pub fn class_map(output: &Tensor) -> Result<ndarray::Array2<u8>> {
        let (_, _, h, w) = output.dims4()?;
        let classes: Vec<u8> = output
            .argmax(1)?
            .to_dtype(DType::U8)?
            .flatten_all()?
            .to_vec1()?;
        ndarray::Array2::from_shape_vec((h, w), classes).map_err(|e| TrainError::Config {
            path: "predict".into(),
            problem: e.to_string(),
        })
    }

    /// The class probabilities of a classification output `(1, K)`.
    pub fn probabilities(output: &Tensor) -> Result<Vec<f64>> {
        let p = candle_nn::ops::softmax(&output.to_dtype(DType::F32)?, 1)?;
        Ok(p.flatten_all()?
            .to_vec1::<f32>()?
            .into_iter()
            .map(f64::from)
            .collect())
    }

    /// The classes of the task, as the dataset labels them (digit tasks: the original
    /// digits or organ codes).
    pub fn class_labels(&self, task: usize) -> Vec<u32> {
        let classes = match self.kinds.get(task) {
            Some(TaskKind::Class { classes }) => *classes,
            _ => 0,
        };
        let original = match &self.meta.config.data {
            DataConfig::Mnist { tasks, .. }
            | DataConfig::FashionMnist { tasks, .. }
            | DataConfig::Organcmnist { tasks, .. } => tasks.get(task).map(|t| t.classes.clone()),
            _ => None,
        };
        match original {
            Some(labels) if labels.len() == classes => labels.into_iter().map(u32::from).collect(),
            _ => (0..classes as u32).collect(),
        }
    }
}
