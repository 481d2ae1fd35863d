//! MNIST and Fashion-MNIST: the four official IDX files of a dataset folder.
//!
//! The folder holds `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
//! `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each plain or with a `.gz` suffix
//! (Fashion-MNIST ships them gzipped).

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::idx;
use crate::tasks::{split_by_class, ClassTask, ImageSet, TaskData};

/// Base names of the four files, in the order train images, train labels, test images, test
/// labels.
pub const FILE_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The paper's training split: the first 50,000 of the 60,000 training images.
pub const PAPER_TRAIN_SIZE: usize = 50_000;

/// Finds `name` or `name.gz` in `dir`.
pub fn locate(dir: &Path, name: &str) -> Result<PathBuf> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DataError::Missing {
        path: plain,
        hint: "see datasets/README.md; MNIST is fetched by `cargo xtask data mnist`".into(),
    })
}

/// The training and test files of an MNIST-format folder.
#[derive(Debug, Clone)]
pub struct MnistFiles {
    /// The 60,000 training samples (10 classes).
    pub train: ImageSet,
    /// The 10,000 test samples.
    pub test: ImageSet,
}

/// Reads and validates the four IDX files of an MNIST-format folder.
pub fn load(dir: &Path) -> Result<MnistFiles> {
    let paths: Vec<PathBuf> = FILE_NAMES
        .iter()
        .map(|name| locate(dir, name))
        .collect::<Result<_>>()?;
    let (images, labels) = idx::read_labelled(&paths[0], &paths[1], 10)?;
    let train = ImageSet { images, labels };
    let (images, labels) = idx::read_labelled(&paths[2], &paths[3], 10)?;
    let test = ImageSet { images, labels };
    if train.images.shape()[1..] != test.images.shape()[1..] {
        return Err(DataError::Mismatch {
            path: paths[2].clone(),
            problem: format!(
                "images are {:?}, the training images {:?}",
                &test.images.shape()[1..],
                &train.images.shape()[1..]
            ),
        });
    }
    Ok(MnistFiles { train, test })
}

/// Reads an MNIST-format folder and splits it by task (see [`split_by_class`]).
pub fn load_tasks(dir: &Path, train_size: usize, tasks: &[ClassTask]) -> Result<Vec<TaskData>> {
    let files = load(dir)?;
    split_by_class(&files.train, &files.test, train_size, tasks)
}

/// Writes a small synthetic MNIST look-alike into `dir` (the four IDX files): digit `d` is a
/// bright 7×7 square at one of ten positions, on noise, so a LeNet learns it in a few epochs.
/// For tests and examples of the grid that need real files but not real digits.
pub fn write_synthetic(dir: &Path, train: usize, test: usize, seed: u64) -> Result<()> {
    use rand::{Rng, SeedableRng};
    let draw = |n: usize, seed: u64| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let mut images = ndarray::Array3::from_shape_fn((n, 28, 28), |_| rng.random_range(0..60u8));
        for (i, &d) in labels.iter().enumerate() {
            let (r0, c0) = (2 + 12 * (d as usize / 5), 1 + 5 * (d as usize % 5));
            for r in r0..r0 + 7 {
                for c in c0..c0 + 7 {
                    images[[i, r, c.min(27)]] = 255;
                }
            }
        }
        (images, labels)
    };
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let (train_images, train_labels) = draw(train, seed.wrapping_mul(2).wrapping_add(1));
    let (test_images, test_labels) = draw(test, seed.wrapping_mul(2).wrapping_add(2));
    let files = [
        (FILE_NAMES[0], idx::encode_images(&train_images)),
        (FILE_NAMES[1], idx::encode_labels(&train_labels)),
        (FILE_NAMES[2], idx::encode_images(&test_images)),
        (FILE_NAMES[3], idx::encode_labels(&test_labels)),
    ];
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| DataError::io(&path, e))?;
    }
    Ok(())
}
