//! REFUGE 2018: optic disc / cup segmentation and glaucoma classification of fundus images.
//!
//! The release holds 1,200 images (120 glaucomatous) in three parts, each unpacked into the
//! dataset folder:
//!
//! - `Training400/{Glaucoma,Non-Glaucoma}/<stem>.jpg` with masks
//!   `Annotation-Training400/Disc_Cup_Masks/{Glaucoma,Non-Glaucoma}/<stem>.bmp`;
//! - `REFUGE-Validation400/VNNNN.jpg` with masks
//!   `REFUGE-Validation400-GT/Disc_Cup_Masks/VNNNN.bmp` and the glaucoma labels in an `.xlsx`
//!   (or `.csv`) sheet in `REFUGE-Validation400-GT/`;
//! - `REFUGE-Test400/TNNNN.jpg` (or `REFUGE-Test400/Test400/TNNNN.jpg`) with masks
//!   `REFUGE-Test-GT/Disc_Cup_Masks/{G,N}/TNNNN.bmp` and the sheet
//!   `REFUGE-Test-GT/Glaucoma_label_and_Fovea_location.xlsx`.
//!
//! Masks are 8-bit single channel: 0 = cup, 128 = disc rim, 255 = background; they become
//! class maps 0 = background, 1 = rim, 2 = cup. Images may be `.jpg` or `.png`, masks `.bmp`
//! or `.png`. The paper protocol pools every image found and draws stratified train / test
//! sets (800 / 400 by default) with the seed, then crops a square around the optic disc.

use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Array3, Array4, Axis};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dense::{DenseSet, DenseSplits, Target};
use crate::error::{DataError, Result};
use crate::image_io;
use crate::transforms::{
    box_blur, centroid, crop_padded, crop_padded_map, resize_image, resize_labels,
};

const HINT: &str = "REFUGE 2018 is distributed by the challenge organisers \
    (refuge.grand-challenge.org) after registration; unpack it into this folder";

const TRAIN_DIR: &str = "Training400";
const TRAIN_MASKS: &str = "Annotation-Training400/Disc_Cup_Masks";
const VAL_DIR: &str = "REFUGE-Validation400";
const VAL_GT: &str = "REFUGE-Validation400-GT";
const TEST_DIR: &str = "REFUGE-Test400";
const TEST_GT: &str = "REFUGE-Test-GT";
const TEST_SHEET: &str = "Glaucoma_label_and_Fovea_location.xlsx";

/// Split sizes and crop geometry of [`load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefugeOptions {
    /// Training images (default 800).
    pub train: usize,
    /// Validation images carved from the pool (default 0: the paper uses the final epoch).
    pub val: usize,
    /// Test images (default 400).
    pub test: usize,
    /// Side of the square crop around the optic disc, in original pixels (default 512).
    pub crop_size: u32,
    /// Side of the crop after resizing (default 256).
    pub output_size: u32,
}

impl Default for RefugeOptions {
    fn default() -> Self {
        RefugeOptions {
            train: 800,
            val: 0,
            test: 400,
            crop_size: 512,
            output_size: 256,
        }
    }
}

/// One REFUGE image with its disc/cup mask and glaucoma label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefugeEntry {
    /// The fundus image.
    pub image: PathBuf,
    /// Its disc/cup mask.
    pub mask: PathBuf,
    /// True for a glaucomatous eye.
    pub glaucoma: bool,
}

fn has_ext(path: &Path, exts: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn stem_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Image files (`.jpg`, `.jpeg`, `.png`) directly in `dir`, sorted; empty when `dir` is absent.
fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for item in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let path = item.map_err(|e| DataError::io(dir, e))?.path();
        if path.is_file() && has_ext(&path, &["jpg", "jpeg", "png"]) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// The mask of `stem` in `dir` (`.bmp` or `.png`).
fn find_mask(dir: &Path, stem: &str) -> Option<PathBuf> {
    ["bmp", "png", "BMP", "PNG"]
        .iter()
        .map(|ext| dir.join(format!("{stem}.{ext}")))
        .find(|p| p.is_file())
}

fn missing_mask(dir: &Path, stem: &str, image: &Path) -> DataError {
    DataError::Missing {
        path: dir.join(format!("{stem}.bmp")),
        hint: format!(
            "the disc/cup mask of {} (also tried .png); {HINT}",
            image.display()
        ),
    }
}

/// Every image of the releases present under `root`: training, then validation, then test,
/// each sorted by path. Labels come from the class folder where there is one, otherwise from
/// the release's label sheet; where both exist they must agree.
pub fn scan(root: &Path) -> Result<Vec<RefugeEntry>> {
    let mut out = Vec::new();
    let mut found_any = false;

    // Training400: class folders for images and masks.
    let train_dir = root.join(TRAIN_DIR);
    if train_dir.is_dir() {
        found_any = true;
        for (folder, glaucoma) in [("Glaucoma", true), ("Non-Glaucoma", false)] {
            let mask_dir = root.join(TRAIN_MASKS).join(folder);
            for image in list_images(&train_dir.join(folder))? {
                let stem = stem_of(&image);
                let mask = find_mask(&mask_dir, &stem)
                    .ok_or_else(|| missing_mask(&mask_dir, &stem, &image))?;
                out.push(RefugeEntry {
                    image,
                    mask,
                    glaucoma,
                });
            }
        }
    }

    // Validation400: flat images, flat masks, label sheet.
    let val_dir = root.join(VAL_DIR);
    if val_dir.is_dir() {
        found_any = true;
        out.extend(scan_flat(
            &list_images(&val_dir)?,
            &root.join(VAL_GT),
            None,
        )?);
    }

    // Test400: flat images (optionally nested in Test400/), masks in G/N folders, sheet.
    let test_dir = root.join(TEST_DIR);
    if test_dir.is_dir() {
        found_any = true;
        let mut images = list_images(&test_dir)?;
        images.extend(list_images(&test_dir.join("Test400"))?);
        images.sort();
        out.extend(scan_flat(&images, &root.join(TEST_GT), Some(TEST_SHEET))?);
    }

    if !found_any {
        return Err(DataError::Missing {
            path: root.join(TRAIN_DIR),
            hint: format!("nor {VAL_DIR}/ nor {TEST_DIR}/; {HINT}"),
        });
    }
    if out.is_empty() {
        return Err(DataError::Missing {
            path: root.to_path_buf(),
            hint: format!("no .jpg/.png fundus image in the REFUGE folders; {HINT}"),
        });
    }
    Ok(out)
}

/// A release without class folders for images: masks in `gt/Disc_Cup_Masks` (directly or in
/// `G`/`N`/`Glaucoma`/`Non-Glaucoma` subfolders, which then give the label) and a label sheet
/// in `gt` (`.xlsx` or `.csv`; `preferred` names the expected file when there are several).
fn scan_flat(images: &[PathBuf], gt: &Path, preferred: Option<&str>) -> Result<Vec<RefugeEntry>> {
    let mask_root = gt.join("Disc_Cup_Masks");
    let sheet_path = find_sheet(gt, preferred)?;
    let sheet = match &sheet_path {
        Some(p) => Some(read_sheet(p)?),
        None => None,
    };
    let folders: [(&str, Option<bool>); 5] = [
        ("", None),
        ("G", Some(true)),
        ("N", Some(false)),
        ("Glaucoma", Some(true)),
        ("Non-Glaucoma", Some(false)),
    ];
    let mut out = Vec::with_capacity(images.len());
    for image in images {
        let stem = stem_of(image);
        let (mask, folder_label) = folders
            .iter()
            .find_map(|(f, l)| find_mask(&mask_root.join(f), &stem).map(|m| (m, *l)))
            .ok_or_else(|| missing_mask(&mask_root, &stem, image))?;
        let sheet_label = sheet.as_ref().and_then(|s| s.get(&stem).copied());
        let glaucoma = match (folder_label, sheet_label, &sheet_path) {
            (Some(f), Some(s), Some(sp)) if f != s => {
                return Err(DataError::Mismatch {
                    path: sp.clone(),
                    problem: format!(
                    "image {stem}: the sheet says glaucoma = {}, but its mask folder {} says {}",
                    u8::from(s),
                    mask.display(),
                    u8::from(f)
                ),
                })
            }
            (Some(f), _, _) => f,
            (None, Some(s), _) => s,
            (None, None, Some(sp)) => {
                return Err(DataError::Mismatch {
                    path: sp.clone(),
                    problem: format!("no glaucoma label for image {}", image.display()),
                })
            }
            (None, None, None) => {
                return Err(DataError::Missing {
                    path: gt.join(preferred.unwrap_or("Glaucoma_label.xlsx")),
                    hint: format!(
                        "the glaucoma label sheet (.xlsx or .csv) for {}; {HINT}",
                        image.display()
                    ),
                })
            }
        };
        out.push(RefugeEntry {
            image: image.clone(),
            mask,
            glaucoma,
        });
    }
    Ok(out)
}

/// The label sheet in `dir`: `preferred` if present, else the first `.xlsx`, else the first
/// `.csv` (sorted by name).
fn find_sheet(dir: &Path, preferred: Option<&str>) -> Result<Option<PathBuf>> {
    if let Some(p) = preferred.map(|p| dir.join(p)).filter(|p| p.is_file()) {
        return Ok(Some(p));
    }
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut files = Vec::new();
    for item in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let path = item.map_err(|e| DataError::io(dir, e))?.path();
        if path.is_file() && has_ext(&path, &["xlsx", "csv"]) {
            files.push(path);
        }
    }
    files.sort();
    let xlsx = files.iter().find(|p| has_ext(p, &["xlsx"])).cloned();
    Ok(xlsx.or_else(|| files.into_iter().next()))
}

fn cell_text(cell: &calamine::Data) -> String {
    use calamine::Data;
    match cell {
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.trim().to_string(),
        Data::Bool(b) => u8::from(*b).to_string(),
        Data::DateTime(d) => d.as_f64().to_string(),
        Data::Error(e) => format!("#{e:?}"),
        Data::Empty => String::new(),
    }
}

/// Rows of a `.xlsx` (first sheet) or `.csv` file as text cells.
fn sheet_rows(path: &Path) -> Result<Vec<Vec<String>>> {
    if has_ext(path, &["csv"]) {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_path(path)
            .map_err(|e| DataError::format(path, format!("cannot read csv: {e}")))?;
        let mut rows = Vec::new();
        for record in reader.records() {
            let record =
                record.map_err(|e| DataError::format(path, format!("cannot read csv: {e}")))?;
            rows.push(record.iter().map(|c| c.trim().to_string()).collect());
        }
        return Ok(rows);
    }
    use calamine::Reader;
    let mut book = calamine::open_workbook_auto(path)
        .map_err(|e| DataError::format(path, format!("cannot open spreadsheet: {e}")))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or_else(|| DataError::format(path, "the workbook has no sheet"))?
        .map_err(|e| DataError::format(path, format!("cannot read the first sheet: {e}")))?;
    Ok(range
        .rows()
        .map(|row| row.iter().map(cell_text).collect())
        .collect())
}

/// Glaucoma labels by image stem from a label sheet: the header row names the image column
/// (`ImgName`) and the label column (header containing `Glaucoma` or `Label`); values 0 / 1.
fn read_sheet(path: &Path) -> Result<HashMap<String, bool>> {
    let rows = sheet_rows(path)?;
    let mut rows = rows
        .into_iter()
        .enumerate()
        .filter(|(_, r)| r.iter().any(|c| !c.is_empty()));
    let (_, header) = rows
        .next()
        .ok_or_else(|| DataError::format(path, "the label sheet is empty"))?;
    let lower: Vec<String> = header.iter().map(|h| h.to_lowercase()).collect();
    let name_col = lower
        .iter()
        .position(|h| h.replace([' ', '_'], "") == "imgname")
        .or_else(|| {
            lower
                .iter()
                .position(|h| h.contains("imgname") || h == "image")
        })
        .ok_or_else(|| {
            DataError::format(
                path,
                format!("no `ImgName` column in the header row {header:?}"),
            )
        })?;
    let label_col = lower
        .iter()
        .enumerate()
        .position(|(i, h)| i != name_col && (h.contains("glaucoma") || h.contains("label")))
        .ok_or_else(|| {
            DataError::format(
                path,
                format!(
                    "no glaucoma column (header containing `Glaucoma` or `Label`) in {header:?}"
                ),
            )
        })?;
    let mut labels = HashMap::new();
    for (row_index, row) in rows {
        let cell = |c: usize| row.get(c).map(String::as_str).unwrap_or("");
        let name = cell(name_col);
        if name.is_empty() {
            continue;
        }
        let value = cell(label_col);
        let label = match value.parse::<f64>() {
            Ok(0.0) => false,
            Ok(1.0) => true,
            _ => {
                return Err(DataError::format(
                    path,
                    format!(
                        "row {}: glaucoma label of {name} is `{value}`, expected 0 or 1",
                        row_index + 1
                    ),
                ))
            }
        };
        let stem = stem_of(Path::new(name));
        if let Some(previous) = labels.insert(stem.clone(), label) {
            if previous != label {
                return Err(DataError::format(
                    path,
                    format!(
                        "row {}: image {stem} is listed twice with different labels",
                        row_index + 1
                    ),
                ));
            }
        }
    }
    Ok(labels)
}

/// Reads a REFUGE disc/cup mask as a class map: 255 → 0 (background), 128 → 1 (rim),
/// 0 → 2 (cup). Any other value is an error naming the file, the value and a pixel.
pub fn read_mask(path: &Path) -> Result<Array2<u8>> {
    let raw = image_io::read_gray(path)?;
    let mut out = Array2::<u8>::zeros(raw.dim());
    for ((y, x), &v) in raw.indexed_iter() {
        out[[y, x]] = match v {
            255 => 0,
            128 => 1,
            0 => 2,
            other => {
                return Err(DataError::format(
                    path,
                    format!(
                        "mask value {other} at pixel ({x}, {y}); expected 0 (cup), 128 (rim) or 255 (background)"
                    ),
                ))
            }
        };
    }
    Ok(out)
}

/// Finds the optic disc without any annotation, as `(row, column)` in image pixels.
///
/// Heuristic: the disc is the brightest large structure of a fundus image. The image is
/// turned to grey (`(R + 2G + B) / 4`), averaged down by an integer factor so that its long
/// side is at most 256 pixels, box-blurred with a radius of 1/50 of that long side (so
/// that small bright reflections and noise do not win), and the centroid of the brightest
/// 0.5 % of the blurred pixels (at least one) is mapped back to original coordinates.
pub fn locate_disc(image: &Array3<u8>) -> (f64, f64) {
    let (c, h, w) = image.dim();
    if h == 0 || w == 0 {
        return (0.0, 0.0);
    }
    let factor = h.max(w).div_ceil(256).max(1);
    let (sh, sw) = (h.div_ceil(factor), w.div_ceil(factor));
    let mut sum = Array2::<f32>::zeros((sh, sw));
    let mut count = Array2::<f32>::zeros((sh, sw));
    for y in 0..h {
        for x in 0..w {
            let grey = if c >= 3 {
                (image[[0, y, x]] as f32 + 2.0 * image[[1, y, x]] as f32 + image[[2, y, x]] as f32)
                    / 4.0
            } else {
                image[[0, y, x]] as f32
            };
            sum[[y / factor, x / factor]] += grey;
            count[[y / factor, x / factor]] += 1.0;
        }
    }
    let small = sum / count;
    let blurred = box_blur(&small, (sh.max(sw) / 50).max(1));
    let mut values: Vec<f32> = blurred.iter().copied().collect();
    values.sort_by(|a, b| b.total_cmp(a));
    let keep = (values.len() / 200).max(1);
    let threshold = values[keep - 1];
    let (mut cy, mut cx, mut n) = (0.0, 0.0, 0.0);
    for ((y, x), &v) in blurred.indexed_iter() {
        if v >= threshold {
            cy += y as f64;
            cx += x as f64;
            n += 1.0;
        }
    }
    let half = (factor as f64 - 1.0) / 2.0;
    (cy / n * factor as f64 + half, cx / n * factor as f64 + half)
}

/// One cropped, resized sample: image `(3, S, S)` and class map `(S, S)`.
fn prepare(
    entry: &RefugeEntry,
    use_ground_truth: bool,
    options: &RefugeOptions,
) -> Result<(Array3<u8>, Array2<u8>)> {
    let image = image_io::read_rgb(&entry.image)?;
    let mask = read_mask(&entry.mask)?;
    let (_, h, w) = image.dim();
    image_io::check_same_size(&entry.mask, "mask ", mask.dim(), &entry.image, (h, w))?;
    let centre = if use_ground_truth {
        centroid(&mask, |v| v == 1 || v == 2)
    } else {
        None
    }
    .unwrap_or_else(|| locate_disc(&image));
    let crop = options.crop_size as usize;
    let top = centre.0.round() as i64 - (crop / 2) as i64;
    let left = centre.1.round() as i64 - (crop / 2) as i64;
    let out = options.output_size as usize;
    let image = resize_image(&crop_padded(&image, top, left, crop, crop, 0), out, out);
    let mask = resize_labels(&crop_padded_map(&mask, top, left, crop, crop, 0), out, out);
    Ok((image, mask))
}

/// Builds one split from `indices` into `entries`, in that order.
fn build(
    entries: &[RefugeEntry],
    indices: &[usize],
    use_ground_truth: bool,
    options: &RefugeOptions,
    what: &str,
) -> Result<DenseSet> {
    let s = options.output_size as usize;
    let n = indices.len();
    let results: Vec<(Array3<u8>, Array2<u8>)> = indices
        .par_iter()
        .map(|&i| prepare(&entries[i], use_ground_truth, options))
        .collect::<Result<_>>()?;
    let mut images = Array4::<u8>::zeros((n, 3, s, s));
    let mut maps = Array3::<u8>::zeros((n, s, s));
    for (k, (img, map)) in results.into_iter().enumerate() {
        images.index_axis_mut(Axis(0), k).assign(&img);
        maps.index_axis_mut(Axis(0), k).assign(&map);
    }
    let labels: Array1<u8> = indices
        .iter()
        .map(|&i| u8::from(entries[i].glaucoma))
        .collect();
    let set = DenseSet {
        images,
        targets: vec![
            ("seg".into(), Target::Mask { maps, classes: 3 }),
            ("cls".into(), Target::Class { labels, classes: 2 }),
        ],
        valid: None,
    };
    set.check(what)?;
    Ok(set)
}

/// Loads REFUGE following the paper protocol: all images found under `root` are pooled, and
/// `train`, `val` and `test` images are drawn with the seed, stratified so that each split's
/// glaucoma fraction equals the pool's as nearly as integers allow. Each image is cropped to
/// a `crop_size` square around the optic disc (zero / background padding outside the image)
/// and resized to `output_size` (images bilinear, masks nearest). Training crops are centred
/// on the ground-truth disc (rim and cup pixels); validation and test crops never look at
/// the mask and use [`locate_disc`]. Tasks: `seg` (3-class map: background, rim, cup) and
/// `cls` (glaucoma 0 / 1). Samples in each split are in scan order.
pub fn load(root: &Path, options: &RefugeOptions, seed: u64) -> Result<DenseSplits> {
    if options.crop_size == 0 || options.output_size == 0 {
        return Err(DataError::Split(
            "REFUGE: crop and output sizes must be positive".into(),
        ));
    }
    let entries = scan(root)?;
    let total = entries.len();
    let asked = options.train + options.val + options.test;
    if asked > total {
        return Err(DataError::Split(format!(
            "REFUGE: {} train + {} val + {} test images asked, {total} found under {}",
            options.train,
            options.val,
            options.test,
            root.display()
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pos: Vec<usize> = (0..total).filter(|&i| entries[i].glaucoma).collect();
    let mut neg: Vec<usize> = (0..total).filter(|&i| !entries[i].glaucoma).collect();
    pos.shuffle(&mut rng);
    neg.shuffle(&mut rng);
    let fraction = pos.len() as f64 / total.max(1) as f64;
    let take = |count: usize, pos: &mut Vec<usize>, neg: &mut Vec<usize>| {
        let want = (count as f64 * fraction).round() as usize;
        let low = count.saturating_sub(neg.len());
        let p = want.clamp(low, count.min(pos.len()).max(low));
        let mut picked: Vec<usize> = pos.drain(..p).collect();
        picked.extend(neg.drain(..count - p));
        picked.sort_unstable();
        picked
    };
    let train = take(options.train, &mut pos, &mut neg);
    let test = take(options.test, &mut pos, &mut neg);
    let val = take(options.val, &mut pos, &mut neg);
    Ok(DenseSplits {
        train: build(&entries, &train, true, options, "REFUGE train")?,
        val: build(&entries, &val, false, options, "REFUGE val")?,
        test: build(&entries, &test, false, options, "REFUGE test")?,
    })
}

/// Geometry of one synthetic eye.
struct SynthEye {
    cy: f64,
    cx: f64,
    disc: f64,
    cup: f64,
    fovea: (f64, f64),
    vessels: Vec<(f64, f64, f64)>,
}

fn synth_eye(size: u32, glaucoma: bool, rng: &mut ChaCha8Rng) -> SynthEye {
    let s = size as f64;
    let cy = s / 2.0 + rng.random_range(-0.12..0.12) * s;
    let cx = s / 2.0 + rng.random_range(-0.12..0.12) * s;
    let disc = rng.random_range(0.09..0.13) * s;
    let ratio = if glaucoma {
        rng.random_range(0.62..0.8)
    } else {
        rng.random_range(0.25..0.45)
    };
    let side = if rng.random::<bool>() { 1.0 } else { -1.0 };
    let fovea = (
        cy + rng.random_range(-0.03..0.03) * s,
        cx + side * 2.5 * disc,
    );
    // Vessels: (start angle, curvature, width) leaving the disc.
    let vessels = (0..rng.random_range(3..6))
        .map(|_| {
            (
                rng.random_range(0.0..std::f64::consts::TAU),
                rng.random_range(-1.5..1.5),
                rng.random_range(1.0..2.2),
            )
        })
        .collect();
    SynthEye {
        cy,
        cx,
        disc,
        cup: disc * ratio,
        fovea,
        vessels,
    }
}

/// Renders a synthetic eye: image `(3, S, S)` and raw mask (0 cup, 128 rim, 255 background).
fn render_eye(size: u32, eye: &SynthEye, rng: &mut ChaCha8Rng) -> (Array3<u8>, Array2<u8>) {
    let n = size as usize;
    let s = size as f64;
    let mut image = Array3::<u8>::zeros((3, n, n));
    let mut mask = Array2::<u8>::from_elem((n, n), 255);
    // Vessel centre lines, sampled.
    let mut vessel_points: Vec<(f64, f64, f64)> = Vec::new();
    for &(angle, bend, width) in &eye.vessels {
        let mut a = angle;
        let (mut y, mut x) = (
            eye.cy + eye.disc * a.sin() * 0.9,
            eye.cx + eye.disc * a.cos() * 0.9,
        );
        for _ in 0..(s as usize) {
            vessel_points.push((y, x, width));
            y += a.sin();
            x += a.cos();
            a += bend / s;
        }
    }
    let mut on_vessel = Array2::<bool>::from_elem((n, n), false);
    for &(vy, vx, w) in &vessel_points {
        let (y0, y1) = ((vy - w).floor().max(0.0), (vy + w).ceil().min(s - 1.0));
        let (x0, x1) = ((vx - w).floor().max(0.0), (vx + w).ceil().min(s - 1.0));
        if y1 < y0 || x1 < x0 {
            continue;
        }
        for yy in y0 as usize..=y1 as usize {
            for xx in x0 as usize..=x1 as usize {
                let (y, x) = (yy as f64 + 0.5, xx as f64 + 0.5);
                if (vy - y).powi(2) + (vx - x).powi(2) <= w * w {
                    on_vessel[[yy, xx]] = true;
                }
            }
        }
    }
    for yy in 0..n {
        for xx in 0..n {
            let (y, x) = (yy as f64 + 0.5, xx as f64 + 0.5);
            let d_centre = ((y - s / 2.0).powi(2) + (x - s / 2.0).powi(2)).sqrt() / (0.48 * s);
            let d_disc = ((y - eye.cy).powi(2) + (x - eye.cx).powi(2)).sqrt();
            let noise = rng.random_range(-5.0..5.0);
            let mut rgb = if d_centre > 1.0 {
                [0.0, 0.0, 0.0]
            } else {
                let shade = 1.0 - 0.35 * d_centre * d_centre;
                [200.0 * shade, 90.0 * shade, 40.0 * shade]
            };
            let d_fovea = ((y - eye.fovea.0).powi(2) + (x - eye.fovea.1).powi(2)).sqrt();
            if d_centre <= 1.0 && d_fovea < eye.disc * 0.8 {
                let k = 0.75 + 0.25 * d_fovea / (eye.disc * 0.8);
                rgb = rgb.map(|v| v * k);
            }
            if d_disc <= eye.cup {
                rgb = [255.0, 240.0, 200.0];
                mask[[yy, xx]] = 0;
            } else if d_disc <= eye.disc {
                rgb = [245.0, 195.0, 125.0];
                mask[[yy, xx]] = 128;
            }
            if d_centre <= 1.0 && d_disc > eye.cup && on_vessel[[yy, xx]] {
                rgb = [rgb[0] * 0.6, rgb[1] * 0.45, rgb[2] * 0.5];
            }
            for c in 0..3 {
                image[[c, yy, xx]] = if d_centre > 1.0 {
                    0
                } else {
                    (rgb[c] + noise).clamp(0.0, 255.0) as u8
                };
            }
        }
    }
    (image, mask)
}

fn xlsx_err(path: &Path) -> impl Fn(rust_xlsxwriter::XlsxError) -> DataError + '_ {
    move |e| DataError::format(path, format!("cannot write spreadsheet: {e}"))
}

/// Writes a label sheet: header row, then rows of (image name, numbers...).
fn write_sheet(path: &Path, headers: &[&str], rows: &[(String, Vec<f64>)]) -> Result<()> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in headers.iter().enumerate() {
        sheet
            .write_string(0, c as u16, *h)
            .map_err(xlsx_err(path))?;
    }
    for (r, (name, values)) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        sheet
            .write_string(r, 0, name.as_str())
            .map_err(xlsx_err(path))?;
        for (c, v) in values.iter().enumerate() {
            sheet
                .write_number(r, c as u16 + 1, *v)
                .map_err(xlsx_err(path))?;
        }
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    }
    book.save(path).map_err(xlsx_err(path))
}

/// Writes a small synthetic REFUGE look-alike under `root`: `per_release` images in each of
/// the three releases (same folders, names, formats and label sheets as the real data), all
/// `size`×`size`, about a quarter glaucomatous. Each image shows a bright optic disc with a
/// brighter cup on an orange fundus with a few dark vessels; a large cup-to-disc ratio
/// (0.62–0.8, against 0.25–0.45) marks glaucoma. Same seed, same files.
pub fn write_synthetic(root: &Path, per_release: usize, size: u32, seed: u64) -> Result<()> {
    if size < 16 {
        return Err(DataError::Split(format!(
            "synthetic REFUGE: image size {size} is too small (at least 16)"
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let glaucomatous = if per_release >= 2 {
        ((per_release as f64) / 4.0).round().max(1.0) as usize
    } else {
        0
    };
    let mut flags: Vec<bool> = (0..per_release).map(|i| i < glaucomatous).collect();

    // Training400.
    let (mut g, mut n) = (0, 0);
    for &glaucoma in &flags {
        let (folder, stem) = if glaucoma {
            g += 1;
            ("Glaucoma", format!("g{g:04}"))
        } else {
            n += 1;
            ("Non-Glaucoma", format!("n{n:04}"))
        };
        let eye = synth_eye(size, glaucoma, &mut rng);
        let (image, mask) = render_eye(size, &eye, &mut rng);
        image_io::write_rgb(
            &root
                .join(TRAIN_DIR)
                .join(folder)
                .join(format!("{stem}.jpg")),
            &image,
        )?;
        image_io::write_gray(
            &root
                .join(TRAIN_MASKS)
                .join(folder)
                .join(format!("{stem}.bmp")),
            &mask,
        )?;
    }

    // Validation400.
    flags.shuffle(&mut rng);
    let mut rows = Vec::new();
    for (i, &glaucoma) in flags.iter().enumerate() {
        let stem = format!("V{:04}", i + 1);
        let eye = synth_eye(size, glaucoma, &mut rng);
        let (image, mask) = render_eye(size, &eye, &mut rng);
        image_io::write_rgb(&root.join(VAL_DIR).join(format!("{stem}.jpg")), &image)?;
        image_io::write_gray(
            &root
                .join(VAL_GT)
                .join("Disc_Cup_Masks")
                .join(format!("{stem}.bmp")),
            &mask,
        )?;
        rows.push((format!("{stem}.jpg"), vec![f64::from(u8::from(glaucoma))]));
    }
    write_sheet(
        &root.join(VAL_GT).join("Glaucoma_label.xlsx"),
        &["ImgName", "Glaucoma Label"],
        &rows,
    )?;

    // Test400.
    flags.shuffle(&mut rng);
    let mut rows = Vec::new();
    for (i, &glaucoma) in flags.iter().enumerate() {
        let stem = format!("T{:04}", i + 1);
        let eye = synth_eye(size, glaucoma, &mut rng);
        let (image, mask) = render_eye(size, &eye, &mut rng);
        image_io::write_rgb(&root.join(TEST_DIR).join(format!("{stem}.jpg")), &image)?;
        let folder = if glaucoma { "G" } else { "N" };
        image_io::write_gray(
            &root
                .join(TEST_GT)
                .join("Disc_Cup_Masks")
                .join(folder)
                .join(format!("{stem}.bmp")),
            &mask,
        )?;
        rows.push((
            format!("{stem}.jpg"),
            vec![
                eye.fovea.1.round(),
                eye.fovea.0.round(),
                f64::from(u8::from(glaucoma)),
            ],
        ));
    }
    write_sheet(
        &root.join(TEST_GT).join(TEST_SHEET),
        &["ImgName", "Fovea_X", "Fovea_Y", "Glaucoma Label"],
        &rows,
    )
}
