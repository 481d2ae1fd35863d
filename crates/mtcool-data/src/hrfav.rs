//! HRF with the HRF-AV artery / vein annotations: vessel segmentation and artery / vein
//! classification of whole fundus images.
//!
//! HRF (45 images, 3504×2336: 15 healthy `NN_h`, 15 diabetic retinopathy `NN_dr`, 15
//! glaucoma `NN_g`) unpacks to `images/<stem>.jpg` (`.JPG`, `.png` and `.tif` accepted),
//! vessel masks `manual1/<stem>.tif` and field-of-view masks `mask/<stem>_mask.tif`. The
//! HRF-AV annotations add one colour image per fundus image, `<av_folder>/<stem>.png`
//! (`<stem>_AV.png` also accepted): red = artery, blue = vein, green = crossing, white =
//! uncertain vessel, black = background.
//!
//! The A/V image defines both targets; `manual1` is optional and only checked to have the
//! image's size (the two annotations were drawn separately and need not agree pixel for
//! pixel).

use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{Array2, Array3, Array4, Axis};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dense::{DenseSet, DenseSplits, Target, IGNORE};
use crate::error::{DataError, Result};
use crate::image_io;

const HINT: &str = "HRF is published by the Friedrich-Alexander-Universität Erlangen-Nürnberg \
    (www5.cs.fau.de/research/data/fundus-images/) and the HRF-AV artery/vein annotations by \
    Hemelings et al. (2019); unpack both into this folder";

/// A/V code of a background pixel.
pub const AV_BACKGROUND: u8 = 0;
/// A/V code of an artery pixel (red).
pub const AV_ARTERY: u8 = 1;
/// A/V code of a vein pixel (blue).
pub const AV_VEIN: u8 = 2;
/// A/V code of an artery/vein crossing (green).
pub const AV_CROSSING: u8 = 3;
/// A/V code of a vessel of uncertain type (white).
pub const AV_UNCERTAIN: u8 = 4;

/// Reference colours of the A/V codes, indexed by code.
const AV_COLOURS: [[u8; 3]; 5] = [
    [0, 0, 0],
    [255, 0, 0],
    [0, 0, 255],
    [0, 255, 0],
    [255, 255, 255],
];

/// Largest Euclidean RGB distance from a reference colour that still decodes to it.
pub const AV_TOLERANCE: f64 = 100.0;

/// Split and file-layout options of [`load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HrfAvOptions {
    /// Training images, split equally over the groups (h / dr / g) (default 15); the rest
    /// are the test set.
    pub train: usize,
    /// Folder of the A/V colour images, relative to the dataset folder (default `av`).
    pub av_folder: String,
}

impl Default for HrfAvOptions {
    fn default() -> Self {
        HrfAvOptions {
            train: 15,
            av_folder: "av".into(),
        }
    }
}

/// The files of one HRF image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HrfEntry {
    /// File stem, e.g. `01_h`; the part after the last `_` is the group.
    pub stem: String,
    /// The fundus image.
    pub image: PathBuf,
    /// The A/V colour annotation.
    pub av: PathBuf,
    /// The field-of-view mask.
    pub fov: PathBuf,
    /// The HRF vessel mask, when present.
    pub vessel: Option<PathBuf>,
}

impl HrfEntry {
    /// The group of the image (`h`, `dr`, `g`): the part of the stem after the last `_`.
    pub fn group(&self) -> &str {
        self.stem.rsplit('_').next().unwrap_or("")
    }
}

fn has_ext(path: &Path, exts: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// The first existing `dir/<name>.<ext>`.
fn first_file(dir: &Path, names: &[String], exts: &[&str]) -> Option<PathBuf> {
    names
        .iter()
        .flat_map(|n| exts.iter().map(move |e| dir.join(format!("{n}.{e}"))))
        .find(|p| p.is_file())
}

/// Every HRF image under `root` that has an A/V annotation and a field-of-view mask, sorted
/// by stem. A missing A/V image or FOV mask is an error naming the expected file.
pub fn scan(root: &Path, options: &HrfAvOptions) -> Result<Vec<HrfEntry>> {
    let images_dir = root.join("images");
    if !images_dir.is_dir() {
        return Err(DataError::Missing {
            path: images_dir,
            hint: HINT.into(),
        });
    }
    let mut images = Vec::new();
    for item in std::fs::read_dir(&images_dir).map_err(|e| DataError::io(&images_dir, e))? {
        let path = item.map_err(|e| DataError::io(&images_dir, e))?.path();
        if path.is_file() && has_ext(&path, &["jpg", "jpeg", "png", "tif", "tiff"]) {
            images.push(path);
        }
    }
    images.sort();
    if images.is_empty() {
        return Err(DataError::Missing {
            path: images_dir.join("01_h.jpg"),
            hint: format!("no fundus image in images/; {HINT}"),
        });
    }
    let av_dir = root.join(&options.av_folder);
    let fov_dir = root.join("mask");
    let vessel_dir = root.join("manual1");
    let mut out = Vec::with_capacity(images.len());
    for image in images {
        let stem = image
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let av = first_file(
            &av_dir,
            &[stem.clone(), format!("{stem}_AV"), format!("{stem}_av")],
            &["png", "PNG", "tif", "bmp"],
        )
        .ok_or_else(|| DataError::Missing {
            path: av_dir.join(format!("{stem}.png")),
            hint: format!("the A/V annotation of {}; {HINT}", image.display()),
        })?;
        let fov = first_file(
            &fov_dir,
            &[format!("{stem}_mask")],
            &["tif", "TIF", "tiff", "png"],
        )
        .ok_or_else(|| DataError::Missing {
            path: fov_dir.join(format!("{stem}_mask.tif")),
            hint: format!("the field-of-view mask of {}; {HINT}", image.display()),
        })?;
        let vessel = first_file(
            &vessel_dir,
            std::slice::from_ref(&stem),
            &["tif", "TIF", "tiff", "png"],
        );
        out.push(HrfEntry {
            stem,
            image,
            av,
            fov,
            vessel,
        });
    }
    out.sort_by(|a, b| a.stem.cmp(&b.stem));
    Ok(out)
}

/// Decodes an A/V colour image to codes ([`AV_BACKGROUND`] … [`AV_UNCERTAIN`]): each pixel
/// takes the nearest reference colour within [`AV_TOLERANCE`]; a pixel farther from all of
/// them is an error naming the file, the pixel and its colour.
pub fn read_av(path: &Path) -> Result<Array2<u8>> {
    let rgb = image_io::read_rgb(path)?;
    let (_, h, w) = rgb.dim();
    let mut out = Array2::<u8>::zeros((h, w));
    let limit = AV_TOLERANCE * AV_TOLERANCE;
    for y in 0..h {
        for x in 0..w {
            let p = [rgb[[0, y, x]], rgb[[1, y, x]], rgb[[2, y, x]]];
            let (code, dist) = AV_COLOURS
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    let d: f64 = (0..3)
                        .map(|i| (f64::from(p[i]) - f64::from(c[i])).powi(2))
                        .sum();
                    (k, d)
                })
                .fold(
                    (0, f64::INFINITY),
                    |best, cur| if cur.1 < best.1 { cur } else { best },
                );
            if dist > limit {
                return Err(DataError::format(
                    path,
                    format!(
                        "pixel ({x}, {y}) has colour ({}, {}, {}), not an A/V code (black, red, blue, green, white)",
                        p[0], p[1], p[2]
                    ),
                ));
            }
            out[[y, x]] = code as u8;
        }
    }
    Ok(out)
}

/// One loaded sample: image, vessel map, A/V map, valid mask.
type Sample = (Array3<u8>, Array2<u8>, Array2<u8>, Array2<u8>);

fn prepare(entry: &HrfEntry) -> Result<Sample> {
    let image = image_io::read_rgb(&entry.image)?;
    let (_, h, w) = image.dim();
    let same_size = |path: &Path, dims: (usize, usize)| {
        image_io::check_same_size(path, "", dims, &entry.image, (h, w))
    };
    let codes = read_av(&entry.av)?;
    same_size(&entry.av, codes.dim())?;
    let fov = image_io::read_rgb(&entry.fov)?;
    let (_, fh, fw) = fov.dim();
    same_size(&entry.fov, (fh, fw))?;
    if let Some(vessel) = &entry.vessel {
        let (vw, vh) = image_io::dimensions(vessel)?;
        same_size(vessel, (vh as usize, vw as usize))?;
    }
    let valid = Array2::from_shape_fn((h, w), |(y, x)| {
        u8::from(fov[[0, y, x]] > 0 || fov[[1, y, x]] > 0 || fov[[2, y, x]] > 0)
    });
    let vessel = codes.mapv(|c| u8::from(c != AV_BACKGROUND));
    let av = codes.mapv(|c| match c {
        AV_BACKGROUND => 0,
        AV_ARTERY => 1,
        AV_VEIN => 2,
        _ => IGNORE,
    });
    Ok((image, vessel, av, valid))
}

fn build(entries: &[HrfEntry], indices: &[usize], what: &str) -> Result<DenseSet> {
    let samples: Vec<Sample> = indices
        .par_iter()
        .map(|&i| prepare(&entries[i]))
        .collect::<Result<_>>()?;
    let (h, w) = samples.first().map(|s| s.1.dim()).unwrap_or((0, 0));
    let n = samples.len();
    let mut images = Array4::<u8>::zeros((n, 3, h, w));
    let mut vessel = Array3::<u8>::zeros((n, h, w));
    let mut av = Array3::<u8>::zeros((n, h, w));
    let mut valid = Array3::<u8>::zeros((n, h, w));
    for (k, (s, &i)) in samples.iter().zip(indices).enumerate() {
        if s.1.dim() != (h, w) {
            let (sh, sw) = s.1.dim();
            return Err(DataError::Mismatch {
                path: entries[i].image.clone(),
                problem: format!(
                    "is {sw}×{sh}, but {} is {w}×{h}; all images of a set must share one size",
                    entries[indices[0]].image.display()
                ),
            });
        }
        images.index_axis_mut(Axis(0), k).assign(&s.0);
        vessel.index_axis_mut(Axis(0), k).assign(&s.1);
        av.index_axis_mut(Axis(0), k).assign(&s.2);
        valid.index_axis_mut(Axis(0), k).assign(&s.3);
    }
    let set = DenseSet {
        images,
        targets: vec![
            (
                "vessel".into(),
                Target::Mask {
                    maps: vessel,
                    classes: 2,
                },
            ),
            (
                "av".into(),
                Target::Mask {
                    maps: av,
                    classes: 3,
                },
            ),
        ],
        valid: Some(valid),
    };
    set.check(what)?;
    Ok(set)
}

/// Loads HRF-AV as whole images: `train` images drawn with the seed, the same number from
/// each group (h / dr / g; a remainder goes to groups chosen at random), the rest as the
/// test set; the validation set is empty. Tasks: `vessel` (2 classes: 1 wherever the A/V
/// image marks any vessel) and `av` (0 background, 1 artery, 2 vein, [`IGNORE`] for
/// crossings and uncertain vessels). `valid` is the field-of-view mask (1 inside). Samples
/// in each split are in stem order.
pub fn load(root: &Path, options: &HrfAvOptions, seed: u64) -> Result<DenseSplits> {
    let entries = scan(root, options)?;
    if options.train > entries.len() {
        return Err(DataError::Split(format!(
            "HRF-AV: {} training images asked, {} found under {}",
            options.train,
            entries.len(),
            root.display()
        )));
    }
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        groups.entry(e.group()).or_default().push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut names: Vec<&str> = groups.keys().copied().collect();
    names.shuffle(&mut rng);
    let base = options.train / names.len();
    let extra = options.train % names.len();
    let mut train = Vec::with_capacity(options.train);
    for (k, name) in names.iter().enumerate() {
        let want = base + usize::from(k < extra);
        let members = groups.get_mut(name).map(std::mem::take).unwrap_or_default();
        if want > members.len() {
            return Err(DataError::Split(format!(
                "HRF-AV: {want} training images asked from group `{name}`, which has {}",
                members.len()
            )));
        }
        let mut members = members;
        members.shuffle(&mut rng);
        train.extend_from_slice(&members[..want]);
    }
    train.sort_unstable();
    let test: Vec<usize> = (0..entries.len()).filter(|i| !train.contains(i)).collect();
    let train_set = build(&entries, &train, "HRF-AV train")?;
    let test_set = build(&entries, &test, "HRF-AV test")?;
    let val = test_set.select(&[]);
    Ok(DenseSplits {
        train: train_set,
        val,
        test: test_set,
    })
}

/// A thick polyline drawn into a boolean map (only inside `fov`).
fn draw_curve(
    target: &mut Array2<bool>,
    fov: &Array2<bool>,
    start: (f64, f64),
    angle: f64,
    bend: f64,
    length: usize,
    radius: f64,
) -> Vec<(f64, f64)> {
    let (h, w) = target.dim();
    let (mut y, mut x) = start;
    let mut a = angle;
    let mut points = Vec::with_capacity(length);
    for _ in 0..length {
        points.push((y, x));
        let (y0, y1) = ((y - radius).floor().max(0.0), (y + radius).ceil());
        let (x0, x1) = ((x - radius).floor().max(0.0), (x + radius).ceil());
        let mut yy = y0;
        while yy <= y1 && (yy as usize) < h {
            let mut xx = x0;
            while xx <= x1 && (xx as usize) < w {
                let (py, px) = (yy as usize, xx as usize);
                if (yy + 0.5 - y).powi(2) + (xx + 0.5 - x).powi(2) <= radius * radius
                    && fov[[py, px]]
                {
                    target[[py, px]] = true;
                }
                xx += 1.0;
            }
            yy += 1.0;
        }
        y += a.sin();
        x += a.cos();
        a += bend;
    }
    points
}

/// Writes a small synthetic HRF-AV look-alike under `root`: `per_group` images for each of
/// the groups h, dr and g (stems `NN_h`, `NN_dr`, `NN_g`), `width`×`height`, in the real
/// layout and formats: `images/*.jpg`, 8-bit 0/255 `manual1/*.tif` and `mask/*_mask.tif`,
/// and `av/*.png` with the exact A/V colour codes. Each image is an orange fundus inside a
/// circular field of view with a bright optic disc and smooth curved vessels leaving it,
/// arteries brighter red and veins darker; every image has at least one artery/vein
/// crossing (green) and a short uncertain (white) vessel. Same seed, same files.
pub fn write_synthetic(
    root: &Path,
    per_group: usize,
    width: u32,
    height: u32,
    seed: u64,
) -> Result<()> {
    if width < 32 || height < 32 {
        return Err(DataError::Split(format!(
            "synthetic HRF-AV: image size {width}×{height} is too small (at least 32×32)"
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (w, h) = (width as usize, height as usize);
    let (wf, hf) = (width as f64, height as f64);
    for group in ["h", "dr", "g"] {
        for k in 1..=per_group {
            let stem = format!("{k:02}_{group}");
            let radius = 0.46 * wf;
            let fov = Array2::from_shape_fn((h, w), |(y, x)| {
                (y as f64 + 0.5 - hf / 2.0).powi(2) + (x as f64 + 0.5 - wf / 2.0).powi(2)
                    <= radius * radius
            });
            let left = rng.random::<bool>();
            let disc = (
                hf / 2.0 + rng.random_range(-0.08..0.08) * hf,
                if left { 0.3 * wf } else { 0.7 * wf },
            );
            let disc_r = if group == "g" { 0.1 } else { 0.08 } * hf;
            let outward = if left { 0.0 } else { std::f64::consts::PI };
            let length = (0.7 * wf) as usize;
            let mut artery = Array2::from_elem((h, w), false);
            let mut vein = Array2::from_elem((h, w), false);
            let mut uncertain = Array2::from_elem((h, w), false);
            let mut artery_paths = Vec::new();
            for sign in [-1.0, 1.0] {
                let a = outward + sign * rng.random_range(0.5..1.1);
                let start = (disc.0 + disc_r * a.sin(), disc.1 + disc_r * a.cos());
                let bend = -sign * rng.random_range(0.004..0.012) * (if left { 1.0 } else { -1.0 });
                artery_paths.push(draw_curve(&mut artery, &fov, start, a, bend, length, 1.3));
                let a = outward + sign * rng.random_range(1.3..1.9);
                let start = (disc.0 + disc_r * a.sin(), disc.1 + disc_r * a.cos());
                let bend = -sign * rng.random_range(0.004..0.012) * (if left { 1.0 } else { -1.0 });
                draw_curve(&mut vein, &fov, start, a, bend, length, 1.8);
            }
            // A vein branch crossing the first artery, and a short uncertain vessel.
            if let Some(&(cy, cx)) = artery_paths.first().and_then(|p| p.get(p.len() / 3)) {
                let a = rng.random_range(0.3..1.2) + std::f64::consts::FRAC_PI_2;
                let start = (cy - 10.0 * a.sin(), cx - 10.0 * a.cos());
                draw_curve(&mut vein, &fov, start, a, 0.0, 20, 1.5);
            }
            let uy = hf / 2.0 + rng.random_range(-0.25..0.25) * hf;
            let ux = wf / 2.0 + rng.random_range(-0.1..0.1) * wf;
            draw_curve(
                &mut uncertain,
                &fov,
                (uy, ux),
                rng.random_range(0.0..std::f64::consts::TAU),
                0.0,
                8,
                0.8,
            );
            let spots: Vec<(f64, f64, bool)> = if group == "dr" {
                (0..6)
                    .map(|_| {
                        (
                            rng.random_range(0.2..0.8) * hf,
                            rng.random_range(0.2..0.8) * wf,
                            rng.random::<bool>(),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            };

            let mut image = Array3::<u8>::zeros((3, h, w));
            let mut av = Array3::<u8>::zeros((3, h, w));
            let mut manual = Array2::<u8>::zeros((h, w));
            let mut mask = Array2::<u8>::zeros((h, w));
            for y in 0..h {
                for x in 0..w {
                    if !fov[[y, x]] {
                        continue;
                    }
                    mask[[y, x]] = 255;
                    let (py, px) = (y as f64 + 0.5, x as f64 + 0.5);
                    let d_centre =
                        ((py - hf / 2.0).powi(2) + (px - wf / 2.0).powi(2)).sqrt() / radius;
                    let shade = 1.0 - 0.35 * d_centre * d_centre;
                    let mut rgb = [210.0 * shade, 100.0 * shade, 45.0 * shade];
                    if ((py - disc.0).powi(2) + (px - disc.1).powi(2)).sqrt() <= disc_r {
                        rgb = [240.0, 200.0, 140.0];
                    }
                    for &(sy, sx, dark) in &spots {
                        if (py - sy).powi(2) + (px - sx).powi(2) <= 4.0 {
                            rgb = if dark {
                                [120.0, 30.0, 20.0]
                            } else {
                                [235.0, 220.0, 120.0]
                            };
                        }
                    }
                    let (a, v, u) = (artery[[y, x]], vein[[y, x]], uncertain[[y, x]]);
                    let code = match (a, v, u) {
                        (true, true, _) => AV_CROSSING,
                        (true, false, _) => AV_ARTERY,
                        (false, true, _) => AV_VEIN,
                        (false, false, true) => AV_UNCERTAIN,
                        _ => AV_BACKGROUND,
                    };
                    rgb = match code {
                        AV_ARTERY => [185.0, 45.0, 30.0],
                        AV_VEIN | AV_CROSSING => [110.0, 25.0, 25.0],
                        AV_UNCERTAIN => [150.0, 40.0, 30.0],
                        _ => rgb,
                    };
                    let noise = rng.random_range(-4.0..4.0);
                    for c in 0..3 {
                        image[[c, y, x]] = (rgb[c] + noise).clamp(0.0, 255.0) as u8;
                        av[[c, y, x]] = AV_COLOURS[code as usize][c];
                    }
                    if code != AV_BACKGROUND {
                        manual[[y, x]] = 255;
                    }
                }
            }
            image_io::write_rgb(&root.join("images").join(format!("{stem}.jpg")), &image)?;
            image_io::write_rgb(&root.join("av").join(format!("{stem}.png")), &av)?;
            image_io::write_gray(&root.join("manual1").join(format!("{stem}.tif")), &manual)?;
            image_io::write_gray(&root.join("mask").join(format!("{stem}_mask.tif")), &mask)?;
        }
    }
    Ok(())
}
