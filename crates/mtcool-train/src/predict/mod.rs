//! `mtcool predict`: a trained run's model applied to new images in the provider's format.
//!
//! | experiment | input | written per image |
//! |---|---|---|
//! | REFUGE | fundus photograph | `<name>_mask.png` (REFUGE's 0 cup / 128 rim / 255 background, the input's size: the disc is found by [`mtcool_data::refuge::locate_disc`], cropped, predicted and pasted back), `<name>_overlay.png` (disc contour green, cup blue) |
//! | HRF-AV | fundus image, optional FOV mask | `<name>_vessel.png` (0 / 255), `<name>_av.png` (HRF-AV's colours: red artery, blue vein), `<name>_overlay.png`; sliding windows as in evaluation |
//! | pets | photograph | `<name>_mask.png` (trimap codes: 1 pet, 2 background), `<name>_overlay.png` (pet tinted, head box drawn) |
//! | MNIST-like | 28 × 28 greyscale image | — |
//!
//! Class outputs (glaucoma, species, digits, organs) go to `predictions.csv`: one row per
//! image, task and class with its probability. Everything is written to a staging folder
//! inside `--out` and moved into place only when every image has been predicted, so a bad
//! input leaves nothing half-written.

mod dense;
mod digits;
mod draw;
mod gallery;
mod inputs;
mod model;

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use crate::config::DataConfig;
use crate::error::{Result, TrainError};

pub use gallery::{gallery, Gallery};
pub use inputs::collect_inputs;
pub use model::LoadedModel;

/// What to predict and where.
#[derive(Debug, Clone)]
pub struct PredictRequest {
    /// The run's checkpoint (`runs/<run>.safetensors`).
    pub checkpoint: PathBuf,
    /// Image files or folders (walked for images).
    pub inputs: Vec<PathBuf>,
    /// Output folder.
    pub out: PathBuf,
    /// HRF-AV: folder of field-of-view masks `<name>_mask.{tif,png,…}`.
    pub fov: Option<PathBuf>,
    /// Show a progress bar.
    pub progress: bool,
}

/// One class probability of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassRow {
    /// The image's file name.
    pub file: String,
    /// The task.
    pub task: String,
    /// The class (the dataset's own label: the digit, the organ code, 0 / 1).
    pub class: u32,
    /// Its probability.
    pub probability: f64,
}

/// What a prediction wrote.
#[derive(Debug, Clone, Default)]
pub struct PredictReport {
    /// Images predicted.
    pub images: usize,
    /// Files written in the output folder (relative names).
    pub files: Vec<String>,
    /// Class probabilities, as in `predictions.csv`.
    pub rows: Vec<ClassRow>,
}

/// Where one image's outputs go: its stem and the staging folder.
pub(crate) struct Target<'a> {
    pub stem: &'a str,
    pub file: &'a str,
    pub dir: &'a Path,
}

impl Target<'_> {
    /// `<dir>/<stem>_<suffix>.png`.
    pub fn path(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}_{suffix}.png", self.stem))
    }
}

pub(crate) fn input_error(path: &Path, problem: impl Into<String>) -> TrainError {
    TrainError::Results {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// One row per class of task `task`'s classification `output` for `file`.
pub(crate) fn class_rows(
    loaded: &LoadedModel,
    file: &str,
    task: usize,
    output: &candle_core::Tensor,
) -> Result<Vec<ClassRow>> {
    let names = loaded.task_names();
    let name = names
        .get(task)
        .cloned()
        .unwrap_or_else(|| format!("task{task}"));
    let labels = loaded.class_labels(task);
    Ok(LoadedModel::probabilities(output)?
        .into_iter()
        .zip(labels)
        .map(|(probability, class)| ClassRow {
            file: file.to_string(),
            task: name.clone(),
            class,
            probability,
        })
        .collect())
}

/// Applies the checkpoint's model to every input image, writing into `request.out`.
pub fn predict(request: &PredictRequest, device: &candle_core::Device) -> Result<PredictReport> {
    let loaded = LoadedModel::open(&request.checkpoint, device)?;
    let images = collect_inputs(&request.inputs)?;
    std::fs::create_dir_all(&request.out).map_err(|source| TrainError::Io {
        path: request.out.clone(),
        source,
    })?;
    let staging = request
        .out
        .join(format!(".predict-staging-{}", std::process::id()));
    std::fs::create_dir_all(&staging).map_err(|source| TrainError::Io {
        path: staging.clone(),
        source,
    })?;
    let outcome = predict_into(&loaded, &images, request, &staging);
    let outcome = outcome.and_then(|mut report| {
        report.files = publish(&staging, &request.out)?;
        Ok(report)
    });
    // Best effort: the staging folder is ours, and empty after a successful publish.
    let _ = std::fs::remove_dir_all(&staging);
    outcome
}

fn predict_into(
    loaded: &LoadedModel,
    images: &[PathBuf],
    request: &PredictRequest,
    staging: &Path,
) -> Result<PredictReport> {
    let bar = if request.progress {
        let bar = ProgressBar::new(images.len() as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} images {msg}") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut report = PredictReport::default();
    for path in images {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = path
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        bar.set_message(file.clone());
        let target = Target {
            stem: &stem,
            file: &file,
            dir: staging,
        };
        let rows = match &loaded.meta.config.data {
            DataConfig::Refuge { .. } => dense::refuge(loaded, path, &target)?,
            DataConfig::Hrfav { .. } => {
                dense::hrfav(loaded, path, request.fov.as_deref(), &target)?
            }
            DataConfig::Pets { .. } => dense::pets(loaded, path, &target)?,
            _ => digits::classify(loaded, path, &target)?,
        };
        report.rows.extend(rows);
        report.images += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    if !report.rows.is_empty() {
        write_csv(&staging.join("predictions.csv"), &report.rows)?;
    }
    Ok(report)
}

fn write_csv(path: &Path, rows: &[ClassRow]) -> Result<()> {
    let mut text = String::from("file,task,class,probability\n");
    for r in rows {
        let file = if r.file.contains([',', '"']) {
            format!("\"{}\"", r.file.replace('"', "\"\""))
        } else {
            r.file.clone()
        };
        text.push_str(&format!(
            "{file},{},{},{}\n",
            r.task, r.class, r.probability
        ));
    }
    std::fs::write(path, text).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Moves every file of `staging` into `out`; their names, sorted.
fn publish(staging: &Path, out: &Path) -> Result<Vec<String>> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TrainError::Io { path, source }
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(staging).map_err(io(staging))? {
        let from = entry.map_err(io(staging))?.path();
        if let Some(name) = from.file_name() {
            std::fs::rename(&from, out.join(name)).map_err(io(&from))?;
            names.push(name.to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}
