//! MultiMNIST-style data (Sener & Koltun, NeurIPS 2018; Lin et al., NeurIPS 2019): each image
//! holds two overlapping items and the tasks are "left item" and "right item".
//!
//! For every source image `i` (the left item) a partner `j` is drawn uniformly from the same
//! source split (it may be `i` itself, as `np.random.permutation(n)[:1]` allows). On a 36 × 36
//! canvas the left item occupies rows and columns 0..28 and the right one 6..34; where they
//! overlap (6..28) the canvas takes the element-wise maximum. As `scipy.misc.imresize(…,
//! interp='nearest')` did in the authors' loader, the canvas is byte-scaled (its maximum
//! becomes 255) and resized to 28 × 28 by nearest neighbour, pixel `k` taking source pixel
//! ⌊(k + ½) · 36 / 28⌋ (PIL's rule). Labels are (left, right). Training images
//! come from the source's training split, test images from its test split; both splits get as
//! many images as their source. Draws come from ChaCha8 seeded with the seed (one stream per
//! split), so the same seed and sources give the same bytes.

use ndarray::{Array1, Array2, Array3, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::idx;
use crate::tasks::ImageSet;

/// The files of one folder: per split (`train`, `t10k`) the images and both label sets.
pub const FILES: [&str; 6] = [
    "train-images-idx3-ubyte",
    "train-labels-left-idx1-ubyte",
    "train-labels-right-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-left-idx1-ubyte",
    "t10k-labels-right-idx1-ubyte",
];

/// Side of the canvas the two items are placed on.
pub const CANVAS: usize = 36;
/// Offset of the right item on the canvas.
pub const OFFSET: usize = 6;
/// Side of the stored images.
pub const SIDE: usize = 28;

/// One generated split: images and the two label sets.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiSplit {
    /// `(N, 28, 28)` composites.
    pub images: Array3<u8>,
    /// The left item's label.
    pub left: Array1<u8>,
    /// The right item's label.
    pub right: Array1<u8>,
}

/// The 28 × 28 composite of `left` (top-left) and `right` (offset by 6, 6).
pub fn compose(left: ArrayView2<u8>, right: ArrayView2<u8>) -> Array2<u8> {
    let mut canvas = Array2::<u8>::zeros((CANVAS, CANVAS));
    for ((y, x), &v) in left.indexed_iter() {
        canvas[[y, x]] = v;
    }
    for ((y, x), &v) in right.indexed_iter() {
        let cell = &mut canvas[[y + OFFSET, x + OFFSET]];
        *cell = (*cell).max(v);
    }
    byte_scale(&mut canvas);
    let source = |k: usize| ((2 * k + 1) * CANVAS) / (2 * SIDE);
    Array2::from_shape_fn((SIDE, SIDE), |(y, x)| canvas[[source(y), source(x)]])
}

/// `scipy.misc.imresize`'s `bytescale` of a float canvas: values scaled so that the canvas
/// maximum becomes 255 (its minimum is 0: the last two rows and columns are always empty),
/// rounded half up. A no-op when an item reaches 255, as most MNIST digits do.
fn byte_scale(canvas: &mut Array2<u8>) {
    let max = canvas.iter().copied().max().unwrap_or(0);
    if max == 0 || max == 255 {
        return;
    }
    let scale = 255.0 / f64::from(max);
    canvas.mapv_inplace(|v| (f64::from(v) * scale + 0.5).clamp(0.0, 255.0) as u8);
}

/// Composites of every image of `left` with a partner drawn from `right` (of the same length:
/// the same split for MultiMNIST and MultiFashion, the other dataset's for
/// Multi-(Fashion+MNIST)), with partners drawn from `rng`.
pub fn generate(left: &ImageSet, right: &ImageSet, rng: &mut ChaCha8Rng) -> MultiSplit {
    let n = left.images.dim().0;
    let m = right.images.dim().0;
    let mut images = Array3::<u8>::zeros((n, SIDE, SIDE));
    let mut right_labels = Array1::<u8>::zeros(n);
    for i in 0..n {
        let j = rng.random_range(0..m.max(1));
        let composite = compose(
            left.images.index_axis(ndarray::Axis(0), i),
            right.images.index_axis(ndarray::Axis(0), j),
        );
        images
            .index_axis_mut(ndarray::Axis(0), i)
            .assign(&composite);
        right_labels[i] = right.labels[j];
    }
    MultiSplit {
        images,
        left: left.labels.clone(),
        right: right_labels,
    }
}

/// The train and test splits from the sources' train and test splits, seeded with `seed`.
pub fn generate_splits(
    left: (&ImageSet, &ImageSet),
    right: (&ImageSet, &ImageSet),
    seed: u64,
) -> (MultiSplit, MultiSplit) {
    let stream = |s: u64| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(s);
        rng
    };
    (
        generate(left.0, right.0, &mut stream(0)),
        generate(left.1, right.1, &mut stream(1)),
    )
}

/// Writes both splits into `dir` as the six IDX files of [`FILES`], each atomically (a
/// temporary file renamed into place); returns their paths.
pub fn write(dir: &Path, train: &MultiSplit, test: &MultiSplit) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let contents = [
        idx::encode_images(&train.images),
        idx::encode_labels(&train.left.to_vec()),
        idx::encode_labels(&train.right.to_vec()),
        idx::encode_images(&test.images),
        idx::encode_labels(&test.left.to_vec()),
        idx::encode_labels(&test.right.to_vec()),
    ];
    let mut written = Vec::with_capacity(FILES.len());
    for (name, bytes) in FILES.iter().zip(contents) {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| DataError::io(&path, e))?;
        written.push(path);
    }
    Ok(written)
}

/// Reads the two splits [`write`] wrote into `dir`, checking that each split's three files
/// agree in length and that every label is a class of 0..10.
pub fn read(dir: &Path) -> Result<(MultiSplit, MultiSplit)> {
    let split = |names: &[&str]| -> Result<MultiSplit> {
        let (images, left) = idx::read_labelled(&dir.join(names[0]), &dir.join(names[1]), 10)?;
        let (_, right) = idx::read_labelled(&dir.join(names[0]), &dir.join(names[2]), 10)?;
        Ok(MultiSplit {
            images,
            left,
            right,
        })
    };
    Ok((split(&FILES[..3])?, split(&FILES[3..])?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn square(value: u8) -> Array2<u8> {
        Array2::from_elem((28, 28), value)
    }

    #[test]
    fn the_right_item_sits_lower_right_and_overlaps_by_maximum() {
        let mut left = square(100);
        left[[1, 1]] = 255; // the canvas reaches 255: no byte scaling
        let right = square(200);
        let c = compose(left.view(), Array2::zeros((28, 28)).view());
        // Left only: rows/cols 0..28 of 36 map to output 0..⌈28·28/36⌉.
        assert_eq!(c[[0, 0]], 100);
        assert_eq!(c[[27, 27]], 0);
        let both = compose(left.view(), right.view());
        assert_eq!(both[[0, 0]], 100, "left only");
        assert_eq!(both[[25, 25]], 200, "right only (canvas pixel 32)");
        assert_eq!(both[[27, 27]], 0, "canvas pixel 35: beyond both items");
        assert_eq!(both[[12, 12]], 200, "overlap: maximum");
        let dim = compose(square(250).view(), right.view());
        assert_eq!(dim[[12, 12]], 255, "byte-scaled: 250 is the maximum");
    }

    #[test]
    fn nearest_resize_follows_pils_centre_rule() {
        // Output pixel k samples canvas pixel ⌊(k + ½)·36/28⌋: 0, 1, 3, 4, 5, ...
        let mut left = Array2::<u8>::zeros((28, 28));
        for x in 0..28 {
            left[[0, x]] = x as u8;
        }
        left[[1, 0]] = 255; // no byte scaling
        let c = compose(left.view(), Array2::zeros((28, 28)).view());
        let row: Vec<u8> = (0..28).map(|k| c[[0, k]]).collect();
        // PIL's map for 36 → 28 (canvas pixels 28 and above are empty here).
        let pil = [
            0, 1, 3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 16, 17, 18, 19, 21, 22, 23, 25, 26, 27, 28, 30,
            31, 32, 34, 35,
        ];
        let expected: Vec<u8> = pil
            .iter()
            .map(|&p| if p < 28 { p as u8 } else { 0 })
            .collect();
        assert_eq!(row, expected);
    }

    #[test]
    fn a_dim_canvas_is_byte_scaled_to_255() {
        let c = compose(square(100).view(), square(50).view());
        assert_eq!(c[[0, 0]], 255);
        // 50 · (255 / 100) = 127.4999… in floating point, as in scipy: 127.
        assert_eq!(c[[25, 25]], 127);
    }

    #[test]
    fn same_seed_same_data_and_labels_follow_the_partners() {
        let set = |n: usize, base: u8| ImageSet {
            images: Array3::from_shape_fn((n, 28, 28), |(i, y, x)| {
                ((i * 31 + y * 7 + x) % 200) as u8 + base
            }),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
        };
        let (train, test) = (set(50, 0), set(20, 10));
        let a = generate_splits((&train, &test), (&train, &test), 3);
        let b = generate_splits((&train, &test), (&train, &test), 3);
        assert_eq!(a, b);
        let c = generate_splits((&train, &test), (&train, &test), 4);
        assert_ne!(a.0.right, c.0.right);
        assert_eq!(a.0.left, train.labels);
        assert_eq!(a.1.images.dim(), (20, 28, 28));
    }

    #[test]
    fn written_files_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let set = ImageSet {
            images: Array3::from_shape_fn((12, 28, 28), |(i, y, x)| (i + y + x) as u8),
            labels: (0..12).map(|i| (i % 10) as u8).collect(),
        };
        let (train, test) = generate_splits((&set, &set), (&set, &set), 0);
        write(dir.path(), &train, &test).unwrap();
        assert_eq!(read(dir.path()).unwrap(), (train, test));
        // Generated again with the same seed: the same bytes.
        let again = tempfile::tempdir().unwrap();
        let (train, test) = generate_splits((&set, &set), (&set, &set), 0);
        write(again.path(), &train, &test).unwrap();
        for name in FILES {
            let a = std::fs::read(dir.path().join(name)).unwrap();
            assert_eq!(a, std::fs::read(again.path().join(name)).unwrap(), "{name}");
        }
    }
}
