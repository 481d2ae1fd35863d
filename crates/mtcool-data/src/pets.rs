//! Oxford-IIIT Pet as the HDF5 files of the UCL coursework.
//!
//! A root folder holds `train/`, `val/` and `test/`, each with four files that hold one
//! dataset named as the file:
//!
//! - `images.h5` → `/images`, `N×H×W×3` uint8 (256×256 in the coursework files);
//! - `masks.h5` → `/masks`, `N×H×W×1` integers, 1 = pet, 0 = background;
//! - `binary.h5` → `/binary`, `N×1` (or `N`) integers, the species: 0 = cat, 1 = dog
//!   (assumed from the original release's `SPECIES` column, 1 = cat, 2 = dog, minus one);
//! - `bboxes.h5` → `/bboxes`, `N×4` numbers, the head box.
//!
//! The head box's order and unit are not documented by the coursework. The reader assumes the
//! order `[x0, y0, x1, y1]` of the original release's xml files (`xmin, ymin, xmax, ymax`),
//! and detects the unit from the value range: if every value of the file is at most 1.5 the
//! values are fractions of the image size, otherwise pixels, divided by the image width (x)
//! and height (y). Boxes are returned as fractions in `[0, 1]`.
//!
//! [`PetsSplit::open`] only checks keys, shapes, types and counts (plus one pass over the
//! small box file to detect its unit); [`PetsSplit::read`] reads a batch by hyperslab and
//! checks its values.

use std::path::{Path, PathBuf};

use hdf5::types::TypeDescriptor;
use ndarray::{Array1, Array2, Array3, Array4, Axis, Ix1, Ix2, Ix4};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::dense::{DenseSet, DenseSplits, Target};
use crate::error::{DataError, Result};
use crate::pets_draw::synthetic_sample;

/// The split folders of a pets root, in the order train, validation, test.
pub const SPLITS: [&str; 3] = ["train", "val", "test"];

/// The four file stems of a split folder; file `x.h5` holds dataset `/x`.
pub const FILES: [&str; 4] = ["images", "masks", "binary", "bboxes"];

/// Where to get the files, shown when one is missing.
const HINT: &str = "the Oxford-IIIT Pet HDF5 files of the UCL coursework; \
                    the original images are at www.robots.ox.ac.uk/~vgg/data/pets/";

/// Box files whose values are all at most this are read as fractions, others as pixels.
const FRACTION_LIMIT: f64 = 1.5;

/// How far (as a fraction of the image size) a box may stick out of the image before it is
/// rejected; boxes within this margin are clamped to `[0, 1]`.
const BOX_SLACK: f64 = 0.02;

/// Number of species classes (cat, dog).
pub const SPECIES: usize = 2;

/// One line from an HDF5 error (the library's messages can span lines).
fn h5_message(e: &hdf5::Error) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The kinds of element type a dataset may need.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Unsigned 8-bit integers only.
    U8,
    /// Any integer or floating-point number.
    Number,
}

/// One open file of a split and its dataset.
#[derive(Debug)]
struct Member {
    path: PathBuf,
    /// Kept open for the dataset's sake.
    _file: hdf5::File,
    data: hdf5::Dataset,
    shape: Vec<usize>,
    desc: TypeDescriptor,
}

impl Member {
    fn open(dir: &Path, name: &str, kind: Kind) -> Result<Self> {
        let path = dir.join(format!("{name}.h5"));
        if !path.is_file() {
            return Err(DataError::Missing {
                path,
                hint: HINT.into(),
            });
        }
        let file = hdf5::File::open(&path).map_err(|e| {
            DataError::format(
                &path,
                format!("not a readable HDF5 file ({})", h5_message(&e)),
            )
        })?;
        if !file.link_exists(name) {
            let found = file
                .member_names()
                .map(|names| {
                    if names.is_empty() {
                        "nothing".to_string()
                    } else {
                        names
                            .iter()
                            .map(|n| format!("`/{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                })
                .unwrap_or_else(|e| format!("unreadable members ({})", h5_message(&e)));
            return Err(DataError::format(
                &path,
                format!("expected dataset `/{name}`, found {found}"),
            ));
        }
        let data = file.dataset(name).map_err(|e| {
            DataError::format(
                &path,
                format!("`/{name}` is not a readable dataset ({})", h5_message(&e)),
            )
        })?;
        let desc = data.dtype().and_then(|t| t.to_descriptor()).map_err(|e| {
            DataError::format(
                &path,
                format!(
                    "`/{name}` has an unsupported element type ({})",
                    h5_message(&e)
                ),
            )
        })?;
        let ok = matches!(
            (&desc, kind),
            (TypeDescriptor::Unsigned(hdf5::types::IntSize::U1), _)
                | (
                    TypeDescriptor::Unsigned(_)
                        | TypeDescriptor::Integer(_)
                        | TypeDescriptor::Float(_),
                    Kind::Number,
                )
        );
        if !ok {
            let wanted = match kind {
                Kind::U8 => "uint8",
                Kind::Number => "numbers",
            };
            return Err(DataError::format(
                &path,
                format!("`/{name}` holds {desc}, expected {wanted}"),
            ));
        }
        let shape = data.shape();
        Ok(Member {
            path,
            _file: file,
            data,
            shape,
            desc,
        })
    }

    fn bad_shape(&self, expected: &str) -> DataError {
        DataError::format(
            &self.path,
            format!(
                "dataset has shape {}, expected {expected}",
                shape_text(&self.shape)
            ),
        )
    }

    fn read_error(&self, e: hdf5::Error) -> DataError {
        DataError::format(
            &self.path,
            format!("cannot read the dataset ({})", h5_message(&e)),
        )
    }
}

fn shape_text(shape: &[usize]) -> String {
    if shape.is_empty() {
        return "scalar".into();
    }
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("×")
}

/// The four open files of one split folder (`images.h5`, `masks.h5`, `binary.h5`,
/// `bboxes.h5`), checked for keys, shapes, types and counts.
#[derive(Debug)]
pub struct PetsSplit {
    dir: PathBuf,
    images: Member,
    masks: Member,
    binary: Member,
    bboxes: Member,
    len: usize,
    height: usize,
    width: usize,
    /// True when the box file holds pixels rather than fractions.
    box_pixels: bool,
}

impl PetsSplit {
    /// Opens the four files of `dir` and checks their dataset keys, shapes, element types and
    /// sample counts (not their values).
    pub fn open(dir: &Path) -> Result<Self> {
        let images = Member::open(dir, "images", Kind::U8)?;
        let masks = Member::open(dir, "masks", Kind::Number)?;
        let binary = Member::open(dir, "binary", Kind::Number)?;
        let bboxes = Member::open(dir, "bboxes", Kind::Number)?;

        let (len, height, width) = match images.shape[..] {
            [n, h, w, 3] if h > 0 && w > 0 => (n, h, w),
            _ => return Err(images.bad_shape("N×H×W×3 (RGB images)")),
        };
        match masks.shape[..] {
            [_, h, w, 1] if (h, w) == (height, width) => {}
            [_, _, _, 1] => {
                return Err(DataError::Mismatch {
                    path: masks.path.clone(),
                    problem: format!(
                        "masks are {}, but images.h5 images are {height}×{width}",
                        shape_text(&masks.shape[1..3])
                    ),
                })
            }
            _ => return Err(masks.bad_shape(&format!("N×{height}×{width}×1"))),
        }
        match binary.shape[..] {
            [_] | [_, 1] => {}
            _ => return Err(binary.bad_shape("N×1")),
        }
        match bboxes.shape[..] {
            [_, 4] => {}
            _ => return Err(bboxes.bad_shape("N×4")),
        }
        for member in [&masks, &binary, &bboxes] {
            if member.shape[0] != len {
                return Err(DataError::Mismatch {
                    path: member.path.clone(),
                    problem: format!("{} samples, but images.h5 holds {len}", member.shape[0]),
                });
            }
        }
        // The box file is tiny (N×4): one pass decides between fractions and pixels.
        let box_pixels = if len == 0 {
            false
        } else {
            let all: Array2<f64> = bboxes.data.read_2d().map_err(|e| bboxes.read_error(e))?;
            all.iter().any(|&v| v.is_nan() || v > FRACTION_LIMIT)
        };
        Ok(PetsSplit {
            dir: dir.to_path_buf(),
            images,
            masks,
            binary,
            bboxes,
            len,
            height,
            width,
            box_pixels,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the split holds no sample.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Image size as (height, width).
    pub fn image_size(&self) -> (usize, usize) {
        (self.height, self.width)
    }

    /// Reads samples `start..start + count` (clamped to the split) and checks their values.
    ///
    /// Images are `(N, 3, H, W)`; targets, in order: `seg` (mask, 2 classes), `cls` (species,
    /// 2 classes), `box` (head box `[x0, y0, x1, y1]` as fractions of the image size) and
    /// `rec` (reconstruction).
    pub fn read(&self, start: usize, count: usize) -> Result<DenseSet> {
        let start = start.min(self.len);
        let end = start.saturating_add(count).min(self.len);
        let n = end - start;
        let (h, w) = (self.height, self.width);
        let set = if n == 0 {
            DenseSet {
                images: Array4::zeros((0, 3, h, w)),
                targets: vec![
                    (
                        "seg".into(),
                        Target::Mask {
                            maps: Array3::zeros((0, h, w)),
                            classes: 2,
                        },
                    ),
                    (
                        "cls".into(),
                        Target::Class {
                            labels: Array1::zeros(0),
                            classes: SPECIES,
                        },
                    ),
                    ("box".into(), Target::Values(Array2::zeros((0, 4)))),
                    ("rec".into(), Target::Reconstruction),
                ],
                valid: None,
            }
        } else {
            // Hyperslabs as tuples of ranges: ndarray's `s!` expands to `unsafe` code, which
            // the workspace forbids.
            let hwc: Array4<u8> = self
                .images
                .data
                .read_slice::<u8, _, Ix4>((start..end, .., .., ..))
                .map_err(|e| self.images.read_error(e))?;
            let images = hwc
                .permuted_axes([0, 3, 1, 2])
                .as_standard_layout()
                .to_owned();
            DenseSet {
                images,
                targets: vec![
                    (
                        "seg".into(),
                        Target::Mask {
                            maps: self.read_masks(start, end)?,
                            classes: 2,
                        },
                    ),
                    (
                        "cls".into(),
                        Target::Class {
                            labels: self.read_binary(start, end)?,
                            classes: SPECIES,
                        },
                    ),
                    ("box".into(), Target::Values(self.read_boxes(start, end)?)),
                    ("rec".into(), Target::Reconstruction),
                ],
                valid: None,
            }
        };
        set.check(&self.dir.display().to_string())?;
        Ok(set)
    }

    fn read_masks(&self, start: usize, end: usize) -> Result<Array3<u8>> {
        let m = &self.masks;
        let maps: Array3<u8> =
            if matches!(m.desc, TypeDescriptor::Unsigned(hdf5::types::IntSize::U1)) {
                let raw: Array4<u8> = m
                    .data
                    .read_slice::<u8, _, Ix4>((start..end, .., .., ..))
                    .map_err(|e| m.read_error(e))?;
                raw.index_axis_move(Axis(3), 0)
            } else {
                let raw: Array4<f64> = m
                    .data
                    .read_slice::<f64, _, Ix4>((start..end, .., .., ..))
                    .map_err(|e| m.read_error(e))?;
                let raw = raw.index_axis_move(Axis(3), 0);
                if let Some(((i, _, _), v)) =
                    raw.indexed_iter().find(|(_, &v)| v != 0.0 && v != 1.0)
                {
                    return Err(bad_mask(&m.path, start + i, &v.to_string()));
                }
                raw.mapv(|v| v as u8)
            };
        if let Some(((i, _, _), v)) = maps.indexed_iter().find(|(_, &v)| v > 1) {
            return Err(bad_mask(&m.path, start + i, &v.to_string()));
        }
        Ok(maps)
    }

    fn read_binary(&self, start: usize, end: usize) -> Result<Array1<u8>> {
        let b = &self.binary;
        let values: Array1<f64> = if b.shape.len() == 1 {
            b.data
                .read_slice::<f64, _, Ix1>(start..end)
                .map_err(|e| b.read_error(e))?
        } else {
            b.data
                .read_slice::<f64, _, Ix2>((start..end, ..))
                .map_err(|e| b.read_error(e))?
                .index_axis_move(Axis(1), 0)
        };
        if let Some((i, v)) = values
            .iter()
            .enumerate()
            .find(|(_, &v)| v != 0.0 && v != 1.0)
        {
            return Err(DataError::format(
                &b.path,
                format!(
                    "row {} has species value {v} (expected 0 = cat or 1 = dog)",
                    start + i
                ),
            ));
        }
        Ok(values.mapv(|v| v as u8))
    }

    fn read_boxes(&self, start: usize, end: usize) -> Result<Array2<f32>> {
        let b = &self.bboxes;
        let raw: Array2<f64> = b
            .data
            .read_slice::<f64, _, Ix2>((start..end, ..))
            .map_err(|e| b.read_error(e))?;
        let (sx, sy) = if self.box_pixels {
            (self.width as f64, self.height as f64)
        } else {
            (1.0, 1.0)
        };
        let unit = if self.box_pixels {
            "pixels"
        } else {
            "fractions"
        };
        let mut out = Array2::<f32>::zeros((end - start, 4));
        for (i, row) in raw.outer_iter().enumerate() {
            let frac = [row[0] / sx, row[1] / sy, row[2] / sx, row[3] / sy];
            let bad = |problem: &str| {
                DataError::format(
                    &b.path,
                    format!(
                        "row {} box [{}, {}, {}, {}] (read as [x0, y0, x1, y1] {unit}) {problem}",
                        start + i,
                        row[0],
                        row[1],
                        row[2],
                        row[3]
                    ),
                )
            };
            if frac
                .iter()
                .any(|v| !v.is_finite() || *v < -BOX_SLACK || *v > 1.0 + BOX_SLACK)
            {
                return Err(bad("lies outside the image"));
            }
            if frac[2] < frac[0] || frac[3] < frac[1] {
                return Err(bad("has x1 < x0 or y1 < y0"));
            }
            for (k, v) in frac.iter().enumerate() {
                out[[i, k]] = v.clamp(0.0, 1.0) as f32;
            }
        }
        Ok(out)
    }
}

fn bad_mask(path: &Path, sample: usize, value: &str) -> DataError {
    DataError::format(
        path,
        format!("sample {sample} has mask value {value} (expected 0 = background, 1 = pet)"),
    )
}

/// Reads `root/{train,val,test}`, at most `limit` samples of each split (all when `None`).
pub fn load(root: &Path, limit: Option<usize>) -> Result<DenseSplits> {
    let mut sets = Vec::with_capacity(3);
    for name in SPLITS {
        let split = PetsSplit::open(&root.join(name))?;
        let count = limit.map_or(split.len(), |l| l.min(split.len()));
        sets.push(split.read(0, count)?);
    }
    let (h, w) = (sets[0].images.dim().2, sets[0].images.dim().3);
    for (name, set) in SPLITS.iter().zip(&sets).skip(1) {
        let (_, _, sh, sw) = set.images.dim();
        if (sh, sw) != (h, w) {
            return Err(DataError::Mismatch {
                path: root.join(name).join("images.h5"),
                problem: format!("images are {sh}×{sw}, but train/images.h5 images are {h}×{w}"),
            });
        }
    }
    let mut sets = sets.into_iter();
    match (sets.next(), sets.next(), sets.next()) {
        (Some(train), Some(val), Some(test)) => Ok(DenseSplits { train, val, test }),
        _ => Err(DataError::Split("pets: expected three splits".into())),
    }
}

fn write_h5<A: hdf5::H5Type, D: ndarray::Dimension>(
    path: &Path,
    name: &str,
    data: &ndarray::Array<A, D>,
) -> Result<()> {
    let fail = |e: hdf5::Error| {
        DataError::format(path, format!("cannot write HDF5 file ({})", h5_message(&e)))
    };
    let file = hdf5::File::create(path).map_err(fail)?;
    file.new_dataset_builder()
        .with_data(data)
        .create(name)
        .map_err(fail)?;
    file.close().map_err(fail)
}

/// Writes a synthetic look-alike of the coursework files: `root/{train,val,test}/` with
/// `images.h5` (`N×S×S×3` uint8), `masks.h5` (`N×S×S×1` uint8), `binary.h5` (`N×1` int64, as
/// numpy writes through h5py) and `bboxes.h5` (`N×4` float64 pixels, `[x0, y0, x1, y1]`),
/// `counts` samples per split, `S = size` (at least 16). Same seed, same files.
pub fn write_synthetic(root: &Path, counts: [usize; 3], size: usize, seed: u64) -> Result<()> {
    if size < 16 {
        return Err(DataError::format(
            root,
            format!("synthetic pets need an image size of at least 16, not {size}"),
        ));
    }
    for (k, (name, &n)) in SPLITS.iter().zip(&counts).enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(k as u64);
        let mut images = Array4::<u8>::zeros((n, size, size, 3));
        let mut masks = Array4::<u8>::zeros((n, size, size, 1));
        let mut binary = Array2::<i64>::zeros((n, 1));
        let mut bboxes = Array2::<f64>::zeros((n, 4));
        for i in 0..n {
            let sample = synthetic_sample(&mut rng, size, size);
            images.index_axis_mut(Axis(0), i).assign(&sample.image);
            masks
                .index_axis_mut(Axis(0), i)
                .index_axis_mut(Axis(2), 0)
                .assign(&sample.mask);
            binary[[i, 0]] = sample.species;
            for (c, v) in sample.head_box.iter().enumerate() {
                bboxes[[i, c]] = *v;
            }
        }
        write_h5(&dir.join("images.h5"), "images", &images)?;
        write_h5(&dir.join("masks.h5"), "masks", &masks)?;
        write_h5(&dir.join("binary.h5"), "binary", &binary)?;
        write_h5(&dir.join("bboxes.h5"), "bboxes", &bboxes)?;
    }
    Ok(())
}
