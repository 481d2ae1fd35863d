//! OrganCMNIST (MedMNIST v2): abdominal CT slices, 11 organ classes, in one `.npz` file.
//!
//! `organcmnist.npz` is a zip of `.npy` arrays: `train_images`, `train_labels`, `val_images`,
//! `val_labels`, `test_images`, `test_labels`. Images are `N×H×W` uint8 (28×28 in MedMNIST
//! v2), labels `N×1` (or `N`) integers in `0..=10`. Both stored and deflate-compressed
//! archives are read.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use ndarray::{Array1, Array2, Array3, ArrayD, Axis, Ix3, IxDyn, OwnedRepr};
use ndarray_npy::{NpzReader, NpzWriter, ReadNpyError, ReadNpzError, ReadableElement};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{DataError, Result};
use crate::tasks::ImageSet;

/// The file name of the dataset in its folder.
pub const FILE_NAME: &str = "organcmnist.npz";

/// Number of organ classes.
pub const CLASSES: usize = 11;

/// Side of the MedMNIST v2 images (the synthetic writer's size).
pub const SIDE: usize = 28;

/// The split names, in the order train, validation, test.
pub const SPLITS: [&str; 3] = ["train", "val", "test"];

const HINT: &str = "MedMNIST v2 (medmnist.com, zenodo record 10.5281/zenodo.6496656): \
                    download organcmnist.npz into this folder";

/// The three splits of OrganCMNIST.
#[derive(Debug, Clone)]
pub struct OrganCMnist {
    /// Training samples.
    pub train: ImageSet,
    /// Validation samples.
    pub val: ImageSet,
    /// Test samples.
    pub test: ImageSet,
}

fn one_line(text: impl ToString) -> String {
    text.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads an array of any integer type in `T`; `Ok(None)` when the element type differs.
fn try_read<T: ReadableElement>(
    npz: &mut NpzReader<File>,
    key: &str,
) -> std::result::Result<Option<ArrayD<T>>, ReadNpzError> {
    match npz.by_name::<OwnedRepr<T>, IxDyn>(key) {
        Ok(a) => Ok(Some(a)),
        Err(ReadNpzError::Npy(ReadNpyError::WrongDescriptor(_))) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads labels of any integer type as `i64`.
fn read_labels(npz: &mut NpzReader<File>, path: &Path, key: &str) -> Result<ArrayD<i64>> {
    let fail =
        |e: ReadNpzError| DataError::format(path, format!("cannot read `{key}` ({})", one_line(e)));
    macro_rules! attempt {
        ($($t:ty),*) => {
            $(
                if let Some(a) = try_read::<$t>(npz, key).map_err(fail)? {
                    return Ok(a.mapv(|v| v as i64));
                }
            )*
        };
    }
    attempt!(u8, i64, i32, i16, i8, u16, u32);
    if let Some(a) = try_read::<u64>(npz, key).map_err(fail)? {
        return Ok(a.mapv(|v| i64::try_from(v).unwrap_or(i64::MAX)));
    }
    Err(DataError::format(
        path,
        format!("`{key}` does not hold integers"),
    ))
}

fn read_split(npz: &mut NpzReader<File>, path: &Path, split: &str) -> Result<ImageSet> {
    let image_key = format!("{split}_images");
    let label_key = format!("{split}_labels");
    let images: ArrayD<u8> = match try_read::<u8>(npz, &image_key) {
        Ok(Some(a)) => a,
        Ok(None) => {
            return Err(DataError::format(
                path,
                format!("`{image_key}` is not uint8"),
            ))
        }
        Err(e) => {
            return Err(DataError::format(
                path,
                format!("cannot read `{image_key}` ({})", one_line(e)),
            ))
        }
    };
    let shape = images.shape().to_vec();
    let images: Array3<u8> = images.into_dimensionality::<Ix3>().map_err(|_| {
        DataError::format(
            path,
            format!("`{image_key}` has shape {shape:?}, expected N×H×W"),
        )
    })?;
    let labels = read_labels(npz, path, &label_key)?;
    let labels: Array1<i64> = match labels.shape() {
        [_] | [_, 1] => {
            let n = labels.shape()[0];
            labels
                .into_shape_with_order(n)
                .map_err(|e| DataError::format(path, format!("`{label_key}`: {e}")))?
        }
        shape => {
            return Err(DataError::format(
                path,
                format!("`{label_key}` has shape {shape:?}, expected N×1"),
            ))
        }
    };
    if labels.len() != images.dim().0 {
        return Err(DataError::Mismatch {
            path: path.to_path_buf(),
            problem: format!(
                "`{label_key}` holds {} labels for {} images in `{image_key}`",
                labels.len(),
                images.dim().0
            ),
        });
    }
    if let Some((i, v)) = labels
        .iter()
        .enumerate()
        .find(|(_, &v)| !(0..CLASSES as i64).contains(&v))
    {
        return Err(DataError::format(
            path,
            format!(
                "`{label_key}` row {i} has label {v} (expected 0..={})",
                CLASSES - 1
            ),
        ));
    }
    Ok(ImageSet {
        images,
        labels: labels.mapv(|v| v as u8),
    })
}

/// Reads and checks `organcmnist.npz` (the file itself, not its folder).
pub fn load(path: &Path) -> Result<OrganCMnist> {
    if !path.is_file() {
        return Err(DataError::Missing {
            path: path.to_path_buf(),
            hint: HINT.into(),
        });
    }
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut npz = NpzReader::new(file).map_err(|e| {
        DataError::format(path, format!("not a .npz (zip) archive ({})", one_line(e)))
    })?;
    let names = npz
        .names()
        .map_err(|e| DataError::format(path, format!("unreadable archive ({})", one_line(e))))?;
    for split in SPLITS {
        for part in ["images", "labels"] {
            let key = format!("{split}_{part}");
            if !names.contains(&key) {
                return Err(DataError::format(
                    path,
                    format!("missing array `{key}` (found: {})", names.join(", ")),
                ));
            }
        }
    }
    let train = read_split(&mut npz, path, "train")?;
    let val = read_split(&mut npz, path, "val")?;
    let test = read_split(&mut npz, path, "test")?;
    for (split, set) in [("val", &val), ("test", &test)] {
        if set.images.shape()[1..] != train.images.shape()[1..] {
            return Err(DataError::Mismatch {
                path: path.to_path_buf(),
                problem: format!(
                    "`{split}_images` are {:?}, `train_images` {:?}",
                    &set.images.shape()[1..],
                    &train.images.shape()[1..]
                ),
            });
        }
    }
    Ok(OrganCMnist { train, val, test })
}

/// One synthetic 28×28 slice of class `class`: a dim body outline plus an organ blob whose
/// position (on a ring), size and brightness depend on the class, with noise.
fn synthetic_image(rng: &mut ChaCha8Rng, class: usize) -> Array2<u8> {
    let side = SIDE as f32;
    let centre = side / 2.0;
    let angle = std::f32::consts::TAU * class as f32 / CLASSES as f32;
    let ox = centre + 7.0 * angle.cos() + rng.random_range(-1.5..1.5);
    let oy = centre + 7.0 * angle.sin() + rng.random_range(-1.5..1.5);
    let radius = 2.5 + (class % 3) as f32 + rng.random_range(-0.5..0.5);
    let elong = 1.0 + 0.4 * (class % 2) as f32;
    let bright = 120.0 + 12.0 * class as f32;
    let body_rx = rng.random_range(11.0..13.0);
    let body_ry = rng.random_range(9.0..12.0);
    Array2::from_shape_fn((SIDE, SIDE), |(y, x)| {
        let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
        let body = ((fx - centre) / body_rx).powi(2) + ((fy - centre) / body_ry).powi(2) <= 1.0;
        let organ = ((fx - ox) / (radius * elong)).powi(2) + ((fy - oy) / radius).powi(2) <= 1.0;
        let base = if organ {
            bright
        } else if body {
            60.0
        } else {
            10.0
        };
        let v: f32 = base + rng.random_range(-20.0..20.0);
        v.round().clamp(0.0, 255.0) as u8
    })
}

/// Writes a synthetic look-alike of `organcmnist.npz` at `path`: `counts` samples for train,
/// val and test, images `N×28×28` uint8, labels `N×1` uint8 in `0..=10`. Same seed, same file.
pub fn write_synthetic(path: &Path, counts: [usize; 3], seed: u64) -> Result<()> {
    let file = File::create(path).map_err(|e| DataError::io(path, e))?;
    let mut npz = NpzWriter::new(BufWriter::new(file));
    let fail = |e: ndarray_npy::WriteNpzError| {
        DataError::format(path, format!("cannot write .npz ({})", one_line(e)))
    };
    for (k, (split, &n)) in SPLITS.iter().zip(&counts).enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(k as u64);
        let mut images = Array3::<u8>::zeros((n, SIDE, SIDE));
        let mut labels = Array2::<u8>::zeros((n, 1));
        for i in 0..n {
            let class = rng.random_range(0..CLASSES);
            images
                .index_axis_mut(Axis(0), i)
                .assign(&synthetic_image(&mut rng, class));
            labels[[i, 0]] = class as u8;
        }
        npz.add_array(format!("{split}_images"), &images)
            .map_err(fail)?;
        npz.add_array(format!("{split}_labels"), &labels)
            .map_err(fail)?;
    }
    npz.finish().map_err(fail)?;
    Ok(())
}
