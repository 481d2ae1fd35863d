//! A run's trained model on disk: `runs/<run>.safetensors` beside its run file (and, with early
//! stopping, `runs/<run>-last.safetensors`, the last epoch's), holding parameters and buffers
//! (`mtcool_models::checkpoint`) and, in the header's metadata, everything needed to rebuild
//! and re-evaluate the model ([`CheckpointMeta`]): the resolved config, the row, the seed and
//! data split, the epoch, the input normalisation, the crate version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{ExperimentConfig, MethodSpec, ModelConfig};
use crate::data::{Dataset, SplitTensors, TaskTensors};
use crate::error::{Result, TrainError};
use crate::evaluate::evaluate;
use crate::results::Metrics;

/// Per-channel input mean and sd of pixels in [0, 1].
pub type InputStats = (Vec<f32>, Vec<f32>);

/// Task names and kinds, in head order.
pub type TaskList = Vec<(String, String)>;

/// The metadata key holding [`CheckpointMeta`] as JSON.
pub const META_KEY: &str = "mtcool";

/// What made a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// `mtcool-train`'s version that wrote it.
    pub crate_version: String,
    /// The experiment config after `--quick` (data, model, tasks).
    pub config: ExperimentConfig,
    /// The model settings the run used (`--ops` applied).
    pub model: ModelConfig,
    /// The grid row (method or variant label).
    pub method: String,
    /// The run's seed.
    pub seed: u64,
    /// The seed its data split was drawn with.
    pub split_seed: u64,
    /// The training-set limit of quick runs.
    pub train_limit: Option<usize>,
    /// Whether the run was a quick one.
    pub quick: bool,
    /// The run's settings fingerprint.
    pub fingerprint: String,
    /// Epochs of training in these weights (the best epoch's, with early stopping).
    pub epoch: usize,
    /// Task names and kinds, in head order.
    pub tasks: TaskList,
    /// Input normalisation: per-channel mean and sd of pixels in [0, 1].
    pub normalisation: InputStats,
}

impl CheckpointMeta {
    /// The run's data split, read from `data_dir` as training read it.
    pub fn load_data(&self, data_dir: &Path, device: &candle_core::Device) -> Result<Dataset> {
        crate::data::load(
            &self.config,
            data_dir,
            self.train_limit,
            self.split_seed,
            device,
        )
    }
}

/// Where a run saves its model, and what it says about it (all but the epoch).
#[derive(Debug, Clone)]
pub struct CheckpointTarget {
    /// `runs/<run>.safetensors`.
    pub path: PathBuf,
    /// Its metadata; `epoch` is set when saving.
    pub meta: CheckpointMeta,
}

impl CheckpointTarget {
    /// `runs/<run>-last.safetensors`, beside [`Self::path`].
    pub fn last_path(&self) -> PathBuf {
        self.sibling("last")
    }

    /// `runs/<run>-resume.safetensors`, beside [`Self::path`]: the state to resume from.
    pub fn resume_path(&self) -> PathBuf {
        self.sibling("resume")
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.path
            .with_file_name(format!("{stem}-{suffix}.safetensors"))
    }

    /// Saves `model`, trained for `epoch` epochs, to `path`.
    pub fn save(
        &self,
        model: &dyn mtcool_models::MultiTaskModel,
        path: &Path,
        epoch: usize,
    ) -> Result<()> {
        let meta = CheckpointMeta {
            epoch,
            ..self.meta.clone()
        };
        let text = serde_json::to_string(&meta).map_err(|e| TrainError::Results {
            path: path.to_path_buf(),
            problem: e.to_string(),
        })?;
        let header: BTreeMap<String, String> = [
            (META_KEY.to_string(), text),
            ("experiment".into(), meta.config.name.clone()),
            ("method".into(), meta.method.clone()),
            ("seed".into(), meta.seed.to_string()),
            ("epoch".into(), epoch.to_string()),
        ]
        .into();
        mtcool_models::checkpoint::save_with_metadata(model, path, &header)?;
        Ok(())
    }
}

/// The metadata of an mtcool run checkpoint.
pub fn read_meta(path: &Path) -> Result<CheckpointMeta> {
    let header = mtcool_models::checkpoint::read_metadata(path)?;
    let text = header.get(META_KEY).ok_or_else(|| TrainError::Results {
        path: path.to_path_buf(),
        problem: format!("not a checkpoint of an mtcool run (no `{META_KEY}` metadata)"),
    })?;
    serde_json::from_str(text).map_err(|e| TrainError::Results {
        path: path.to_path_buf(),
        problem: format!("unreadable run metadata ({e})"),
    })
}

/// The metadata a run of `dataset` writes (epoch 0 until saved).
pub fn describe_dataset(dataset: &Dataset) -> Result<(TaskList, InputStats)> {
    let tasks = dataset
        .tasks
        .iter()
        .map(|t| (t.name.clone(), format!("{:?}", t.kind)))
        .collect();
    Ok((tasks, dataset.normaliser.mean_sd()?))
}

/// Every task's metrics on one split, keyed `<task>/<metric>` (losses left out), as a run
/// file lists its test metrics.
pub fn split_metrics(
    model: &dyn mtcool_models::MultiTaskModel,
    dataset: &Dataset,
    split: fn(&TaskTensors) -> &SplitTensors,
) -> Result<Metrics> {
    let mut metrics = Metrics::new();
    for (t, task) in dataset.tasks.iter().enumerate() {
        for (metric, value) in evaluate(model, dataset, t, split(task))? {
            if metric != "loss" {
                metrics.insert(format!("{}/{metric}", task.name), value);
            }
        }
    }
    Ok(metrics)
}

/// Which split `eval` scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EvalSplit {
    /// The test split (the run file's metrics).
    #[default]
    Test,
    /// The validation split.
    Val,
}

impl std::str::FromStr for EvalSplit {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "test" => Ok(Self::Test),
            "val" | "validation" => Ok(Self::Val),
            other => Err(format!("unknown split `{other}` (expected test or val)")),
        }
    }
}

/// Rebuilds the model of the checkpoint at `path` from its metadata, reads its data split
/// from `data_dir` as training did, loads the weights and scores `split`.
pub fn evaluate_checkpoint(
    path: &Path,
    data_dir: &Path,
    split: EvalSplit,
    device: &candle_core::Device,
) -> Result<(CheckpointMeta, Metrics)> {
    let meta = read_meta(path)?;
    let dataset = meta.load_data(data_dir, device)?;
    let (_, normalisation) = describe_dataset(&dataset)?;
    if normalisation != meta.normalisation {
        tracing::warn!(
            "{}: the data under {} are not the run's (input statistics differ); metrics will \
             differ from the run file's",
            path.display(),
            data_dir.display()
        );
    }
    let spec: MethodSpec = meta.method.parse().map_err(|problem| TrainError::Results {
        path: path.to_path_buf(),
        problem,
    })?;
    let mut model = crate::run::build_model(spec.kind, &dataset, &meta.model, device, 0)?;
    mtcool_models::checkpoint::load(model.as_ref(), path)?;
    model.set_training(false);
    let metrics = match split {
        EvalSplit::Test => split_metrics(model.as_ref(), &dataset, |t| &t.test)?,
        EvalSplit::Val => split_metrics(model.as_ref(), &dataset, |t| &t.val)?,
    };
    Ok((meta, metrics))
}
