//! Image transforms shared by the dense readers: crops, resizes, flips and patches.
//!
//! The set-level transforms ([`random_patches`], [`horizontal_flip`]) work on a whole
//! [`DenseSet`] so that targets and the `valid` mask always follow their images. All
//! randomness comes from the caller's seeded [`ChaCha8Rng`].

use image::imageops::FilterType;
use image::GrayImage;
use ndarray::{
    Array1, Array2, Array3, Array4, ArrayBase, ArrayViewMut, Axis, Dimension, RawData, Slice,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::dense::{DenseSet, Target};
use crate::error::{DataError, Result};

/// Sliding-window origins along an axis of length `len` for tiles of `tile` pixels that
/// overlap by `overlap`: they cover `0..len` exactly and the last tile ends flush with `len`.
/// `len <= tile` gives `[0]`; an overlap of `tile` or more is treated as a stride of 1.
pub fn tile_origins(len: usize, tile: usize, overlap: usize) -> Vec<usize> {
    if len <= tile {
        return vec![0];
    }
    let stride = tile.saturating_sub(overlap).max(1);
    let last = len - tile;
    let mut origins: Vec<usize> = (0..last).step_by(stride).collect();
    origins.push(last);
    origins
}

/// Resizes a `(C, H, W)` image to `h × w` with a triangle (bilinear, antialiased) filter.
pub fn resize_image(img: &Array3<u8>, h: usize, w: usize) -> Array3<u8> {
    let (c, ih, iw) = img.dim();
    if (ih, iw) == (h, w) {
        return img.clone();
    }
    let mut out = Array3::<u8>::zeros((c, h, w));
    if ih == 0 || iw == 0 || h == 0 || w == 0 {
        return out;
    }
    for ch in 0..c {
        let plane = img.index_axis(Axis(0), ch);
        let gray = GrayImage::from_fn(iw as u32, ih as u32, |x, y| {
            image::Luma([plane[[y as usize, x as usize]]])
        });
        let small = image::imageops::resize(&gray, w as u32, h as u32, FilterType::Triangle);
        for (x, y, p) in small.enumerate_pixels() {
            out[[ch, y as usize, x as usize]] = p[0];
        }
    }
    out
}

/// Resizes a label map to `h × w` by nearest neighbour (only existing labels appear).
pub fn resize_labels(map: &Array2<u8>, h: usize, w: usize) -> Array2<u8> {
    let (ih, iw) = map.dim();
    if (ih, iw) == (h, w) {
        return map.clone();
    }
    if ih == 0 || iw == 0 {
        return Array2::zeros((h, w));
    }
    let src =
        |i: usize, n_out: usize, n_in: usize| ((2 * i + 1) * n_in / (2 * n_out)).min(n_in - 1);
    let ys: Vec<usize> = (0..h).map(|y| src(y, h, ih)).collect();
    let xs: Vec<usize> = (0..w).map(|x| src(x, w, iw)).collect();
    Array2::from_shape_fn((h, w), |(y, x)| map[[ys[y], xs[x]]])
}

/// Crops `height × width` pixels of a `(C, H, W)` image starting at (`top`, `left`), which may
/// lie outside the image; pixels outside are `fill`.
pub fn crop_padded(
    img: &Array3<u8>,
    top: i64,
    left: i64,
    height: usize,
    width: usize,
    fill: u8,
) -> Array3<u8> {
    let (c, h, w) = img.dim();
    let mut out = Array3::from_elem((c, height, width), fill);
    if let Some((sy, dy, ny)) = overlap(top, height, h) {
        if let Some((sx, dx, nx)) = overlap(left, width, w) {
            window(out.view_mut(), 1, dy, ny, dx, nx).assign(&window(
                img.view(),
                1,
                sy,
                ny,
                sx,
                nx,
            ));
        }
    }
    out
}

/// [`crop_padded`] for a single-channel `(H, W)` map.
pub fn crop_padded_map(
    map: &Array2<u8>,
    top: i64,
    left: i64,
    height: usize,
    width: usize,
    fill: u8,
) -> Array2<u8> {
    let (h, w) = map.dim();
    let mut out = Array2::from_elem((height, width), fill);
    if let Some((sy, dy, ny)) = overlap(top, height, h) {
        if let Some((sx, dx, nx)) = overlap(left, width, w) {
            window(out.view_mut(), 0, dy, ny, dx, nx).assign(&window(
                map.view(),
                0,
                sy,
                ny,
                sx,
                nx,
            ));
        }
    }
    out
}

/// The `ny × nx` window at (`y`, `x`) of the axes `row_axis` and `row_axis + 1` of a view
/// (shared or mutable).
fn window<S: RawData<Elem = u8>, D: Dimension>(
    mut view: ArrayBase<S, D>,
    row_axis: usize,
    y: usize,
    ny: usize,
    x: usize,
    nx: usize,
) -> ArrayBase<S, D> {
    view.slice_axis_inplace(Axis(row_axis), Slice::from(y..y + ny));
    view.slice_axis_inplace(Axis(row_axis + 1), Slice::from(x..x + nx));
    view
}

/// Overlap of the window `start..start+len` with `0..size`: (source start, destination
/// start, length), `None` when empty.
fn overlap(start: i64, len: usize, size: usize) -> Option<(usize, usize, usize)> {
    let lo = start.max(0);
    let hi = (start + len as i64).min(size as i64);
    if hi <= lo {
        return None;
    }
    Some((lo as usize, (lo - start) as usize, (hi - lo) as usize))
}

/// `count` random square patches of `size` pixels: each takes a random image and a random
/// top-left corner; masks and `valid` are cut at the same place and class labels follow
/// their image. When `valid` is present a patch whose centre lies outside it is redrawn (up
/// to 10 tries, then the last draw is kept). `Values` targets (coordinates) are an error,
/// as are a patch larger than the images and an empty set.
pub fn random_patches(
    set: &DenseSet,
    count: usize,
    size: usize,
    rng: &mut ChaCha8Rng,
) -> Result<DenseSet> {
    let (n, c, h, w) = set.images.dim();
    if let Some((name, _)) = set
        .targets
        .iter()
        .find(|(_, t)| matches!(t, Target::Values(_)))
    {
        return Err(DataError::Split(format!(
            "random patches: task `{name}` has coordinate targets, which patches cannot keep"
        )));
    }
    if size == 0 || size > h || size > w {
        return Err(DataError::Split(format!(
            "random patches: patch size {size} does not fit images of {h}×{w}"
        )));
    }
    if n == 0 && count > 0 {
        return Err(DataError::Split("random patches: the set is empty".into()));
    }
    let mut picks = Vec::with_capacity(count);
    for _ in 0..count {
        let mut pick = (0, 0, 0);
        for _ in 0..10 {
            let i = rng.random_range(0..n);
            let y = rng.random_range(0..=h - size);
            let x = rng.random_range(0..=w - size);
            pick = (i, y, x);
            match &set.valid {
                Some(v) if v[[i, y + size / 2, x + size / 2]] == 0 => continue,
                _ => break,
            }
        }
        picks.push(pick);
    }
    let mut images = Array4::<u8>::zeros((count, c, size, size));
    for (k, &(i, y, x)) in picks.iter().enumerate() {
        images.index_axis_mut(Axis(0), k).assign(&window(
            set.images.index_axis(Axis(0), i),
            1,
            y,
            size,
            x,
            size,
        ));
    }
    let cut = |maps: &Array3<u8>| {
        let mut out = Array3::<u8>::zeros((count, size, size));
        for (k, &(i, y, x)) in picks.iter().enumerate() {
            out.index_axis_mut(Axis(0), k).assign(&window(
                maps.index_axis(Axis(0), i),
                0,
                y,
                size,
                x,
                size,
            ));
        }
        out
    };
    let targets = set
        .targets
        .iter()
        .map(|(name, t)| {
            let t = match t {
                Target::Class { labels, classes } => Target::Class {
                    labels: picks.iter().map(|p| labels[p.0]).collect::<Array1<u8>>(),
                    classes: *classes,
                },
                Target::Mask { maps, classes } => Target::Mask {
                    maps: cut(maps),
                    classes: *classes,
                },
                other => other.clone(),
            };
            (name.clone(), t)
        })
        .collect();
    let out = DenseSet {
        images,
        targets,
        valid: set.valid.as_ref().map(cut),
    };
    out.check("random patches")?;
    Ok(out)
}

/// Flips each sample left-right with the given probability (one draw per sample, in
/// order): images, masks and `valid` are mirrored; class labels are unchanged. `Values`
/// targets are read as boxes in groups of four columns `[x0, y0, x1, y1]` given as
/// fractions of the image size, flipped to `[1 - x1, y0, 1 - x0, y1]`; columns beyond the
/// last whole group of four are left unchanged.
pub fn horizontal_flip(set: &mut DenseSet, probability: f64, rng: &mut ChaCha8Rng) {
    let n = set.len();
    let flips: Vec<bool> = (0..n).map(|_| rng.random::<f64>() < probability).collect();
    for (i, _) in flips.iter().enumerate().filter(|(_, f)| **f) {
        set.images
            .index_axis_mut(Axis(0), i)
            .lanes_mut(Axis(2))
            .into_iter()
            .for_each(|mut lane| reverse(&mut lane));
        for (_, t) in set.targets.iter_mut() {
            match t {
                Target::Mask { maps, .. } => flip_map(maps, i),
                Target::Values(v) => {
                    let groups = v.ncols() / 4;
                    for g in 0..groups {
                        let (x0, x1) = (v[[i, 4 * g]], v[[i, 4 * g + 2]]);
                        v[[i, 4 * g]] = 1.0 - x1;
                        v[[i, 4 * g + 2]] = 1.0 - x0;
                    }
                }
                Target::Class { .. } | Target::Reconstruction => {}
            }
        }
        if let Some(v) = set.valid.as_mut() {
            flip_map(v, i);
        }
    }
}

fn flip_map(maps: &mut Array3<u8>, i: usize) {
    maps.index_axis_mut(Axis(0), i)
        .lanes_mut(Axis(1))
        .into_iter()
        .for_each(|mut lane| reverse(&mut lane));
}

fn reverse(lane: &mut ArrayViewMut<'_, u8, ndarray::Ix1>) {
    let n = lane.len();
    for k in 0..n / 2 {
        lane.swap(k, n - 1 - k);
    }
}

/// Centroid `(y, x)` of the pixels where `pred` holds, `None` when there are none.
pub fn centroid(map: &Array2<u8>, pred: impl Fn(u8) -> bool) -> Option<(f64, f64)> {
    let (mut sy, mut sx, mut n) = (0.0, 0.0, 0usize);
    for ((y, x), &v) in map.indexed_iter() {
        if pred(v) {
            sy += y as f64;
            sx += x as f64;
            n += 1;
        }
    }
    (n > 0).then(|| (sy / n as f64, sx / n as f64))
}

/// Box blur of a float image with a `(2r+1)²` window (clipped at the borders), via an
/// integral image.
pub fn box_blur(img: &Array2<f32>, r: usize) -> Array2<f32> {
    let (h, w) = img.dim();
    let mut integral = Array2::<f64>::zeros((h + 1, w + 1));
    for y in 0..h {
        let mut row = 0.0;
        for x in 0..w {
            row += img[[y, x]] as f64;
            integral[[y + 1, x + 1]] = integral[[y, x + 1]] + row;
        }
    }
    Array2::from_shape_fn((h, w), |(y, x)| {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
        let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(w));
        let sum = integral[[y1, x1]] - integral[[y0, x1]] - integral[[y1, x0]] + integral[[y0, x0]];
        (sum / ((y1 - y0) * (x1 - x0)) as f64) as f32
    })
}
