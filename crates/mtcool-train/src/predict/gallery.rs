//! The qualitative figure's content (the paper's Fig. 2): a few test images of an
//! image-to-image experiment, their ground truth, and each method's predicted mask drawn over
//! them.

use std::path::{Path, PathBuf};

use candle_core::Device;
use mtcool_data::transforms::resize_image;
use ndarray::{Array2, Array3};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::dense::{disc_cup_overlay, mask_overlay};
use super::LoadedModel;
use crate::checkpoint::read_meta;
use crate::config::DataConfig;
use crate::data::TaskKind;
use crate::error::{Result, TrainError};

/// Rows of pictures under column titles.
#[derive(Debug, Clone)]
pub struct Gallery {
    /// `image`, `ground truth`, then one title per method.
    pub columns: Vec<String>,
    /// One row per test image, one RGB picture `(3, H, W)` per column.
    pub rows: Vec<Vec<Array3<u8>>>,
    /// The test images shown, as indices into the test split.
    pub test_indices: Vec<usize>,
}

/// `image` with the class map `map` drawn as its experiment draws masks.
fn draw(data: &DataConfig, image: &Array3<u8>, map: &Array2<u8>) -> Array3<u8> {
    match data {
        DataConfig::Refuge { .. } => disc_cup_overlay(image, map),
        _ => mask_overlay(image, map),
    }
}

/// `picture` scaled to `width` pixels wide (aspect kept).
fn fit(picture: &Array3<u8>, width: usize) -> Array3<u8> {
    let (_, h, w) = picture.dim();
    let height = (h * width).div_ceil(w.max(1)).max(1);
    resize_image(picture, height, width)
}

fn gallery_error(problem: impl Into<String>) -> TrainError {
    TrainError::Config {
        path: "figures/predictions".into(),
        problem: problem.into(),
    }
}

/// The gallery of `k` test images (drawn with the first run's seed) for the runs `runs`
/// (title, checkpoint), their data read from `data_dir` as training did; pictures `width`
/// pixels wide. Every run must come from the same data split (the same seed).
pub fn gallery(
    runs: &[(String, PathBuf)],
    data_dir: &Path,
    k: usize,
    width: usize,
    device: &Device,
) -> Result<Gallery> {
    let (_, first) = runs
        .first()
        .ok_or_else(|| gallery_error("no run has a checkpoint"))?;
    let meta = read_meta(first)?;
    let dataset = meta.load_data(data_dir, device)?;
    let task = dataset
        .tasks
        .iter()
        .position(|t| matches!(t.kind, TaskKind::Mask { .. }))
        .ok_or_else(|| gallery_error("the experiment has no segmentation task"))?;
    let test = &dataset.tasks[task].test;
    let mut rng = ChaCha8Rng::seed_from_u64(meta.seed);
    let mut indices = rand::seq::index::sample(&mut rng, test.len, k.min(test.len)).into_vec();
    indices.sort_unstable();
    let models = runs
        .iter()
        .map(|(_, path)| {
            let loaded = LoadedModel::open(path, device)?;
            if loaded.meta.split_seed != meta.split_seed {
                return Err(gallery_error(format!(
                    "{} was trained on another data split than {}",
                    path.display(),
                    first.display()
                )));
            }
            Ok(loaded)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut rows = Vec::with_capacity(indices.len());
    for &i in &indices {
        let (raw, target, _) = test.range(i, i + 1)?;
        let image = to_image(&raw)?;
        let truth = match target {
            Some(t) => to_map(&t)?,
            None => return Err(gallery_error("the segmentation task has no targets")),
        };
        let mut row = vec![
            fit(&image, width),
            fit(&draw(&meta.config.data, &image, &truth), width),
        ];
        for loaded in &models {
            let map = loaded.mask_of(&image, task)?;
            row.push(fit(&draw(&meta.config.data, &image, &map), width));
        }
        rows.push(row);
    }
    let mut columns = vec!["image".to_string(), "ground truth".to_string()];
    columns.extend(runs.iter().map(|(title, _)| title.clone()));
    Ok(Gallery {
        columns,
        rows,
        test_indices: indices,
    })
}

fn to_image(raw: &candle_core::Tensor) -> Result<Array3<u8>> {
    let (_, c, h, w) = raw.dims4()?;
    let values: Vec<u8> = raw.flatten_all()?.to_vec1()?;
    Array3::from_shape_vec((c, h, w), values).map_err(|e| gallery_error(e.to_string()))
}

fn to_map(target: &candle_core::Tensor) -> Result<Array2<u8>> {
    let (_, h, w) = target.dims3()?;
    let values: Vec<u32> = target.flatten_all()?.to_vec1()?;
    // Ignored pixels (trimap borders) are drawn as background.
    let values = values
        .into_iter()
        .map(|v| {
            if v == u32::from(mtcool_data::dense::IGNORE) {
                0
            } else {
                v as u8
            }
        })
        .collect();
    Array2::from_shape_vec((h, w), values).map_err(|e| gallery_error(e.to_string()))
}
