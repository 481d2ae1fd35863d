//! The OrganCMNIST `.npz` reader on synthetic files and corrupt variants of them.
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::path::{Path, PathBuf};

use mtcool_data::organcmnist::{self, CLASSES, FILE_NAME};
use mtcool_data::DataError;
use ndarray::{Array2, Array3, ArrayD, Axis};
use ndarray_npy::NpzWriter;

fn synthetic(counts: [usize; 3], seed: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    organcmnist::write_synthetic(&path, counts, seed).unwrap();
    (dir, path)
}

/// Writes an npz with the given images and labels (as `i64` when `wide`) per split, skipping
/// keys in `skip`.
fn write_npz(path: &Path, splits: &[(&str, Array3<u8>, ArrayD<i64>)], wide: bool, skip: &str) {
    let mut npz = NpzWriter::new(File::create(path).unwrap());
    for (name, images, labels) in splits {
        let ik = format!("{name}_images");
        let lk = format!("{name}_labels");
        if ik != skip {
            npz.add_array(ik, images).unwrap();
        }
        if lk != skip {
            if wide {
                npz.add_array(lk, labels).unwrap();
            } else {
                npz.add_array(lk, &labels.mapv(|v| v as u8)).unwrap();
            }
        }
    }
    npz.finish().unwrap();
}

fn toy(n: usize, label: i64) -> (Array3<u8>, ArrayD<i64>) {
    (
        Array3::from_shape_fn((n, 28, 28), |(i, r, c)| (i + r + c) as u8),
        Array2::from_elem((n, 1), label).into_dyn(),
    )
}

fn failure(path: &Path) -> String {
    let msg = organcmnist::load(path).unwrap_err().to_string();
    assert!(!msg.contains('\n'), "multi-line error: {msg}");
    assert!(
        msg.contains(FILE_NAME),
        "error does not name the file: {msg}"
    );
    msg
}

#[test]
fn synthetic_file_reads_back() {
    let (_dir, path) = synthetic([40, 12, 15], 4);
    let data = organcmnist::load(&path).unwrap();
    assert_eq!(data.train.len(), 40);
    assert_eq!(data.val.len(), 12);
    assert_eq!(data.test.len(), 15);
    assert_eq!(data.train.images.dim(), (40, 28, 28));
    assert!(data.train.labels.iter().all(|&l| (l as usize) < CLASSES));
    let distinct: std::collections::BTreeSet<u8> = data.train.labels.iter().copied().collect();
    assert!(distinct.len() >= 5, "{distinct:?}");
    let first = data.train.images.index_axis(Axis(0), 0);
    assert!(first.iter().any(|&v| v != first[[0, 0]]));
}

#[test]
fn classes_differ_in_their_mean_images() {
    let (_dir, path) = synthetic([400, 0, 0], 8);
    let data = organcmnist::load(&path).unwrap();
    let mean = |class: u8| {
        let idx: Vec<usize> = (0..data.train.len())
            .filter(|&i| data.train.labels[i] == class)
            .collect();
        assert!(!idx.is_empty());
        data.train
            .select(&idx)
            .images
            .mapv(f32::from)
            .mean_axis(Axis(0))
            .unwrap()
    };
    let (a, b) = (mean(0), mean(5));
    let diff = (&a - &b).mapv(f32::abs).mean().unwrap();
    assert!(
        diff > 5.0,
        "mean images of classes 0 and 5 differ by {diff}"
    );
}

#[test]
fn same_seed_same_file() {
    let (_a, pa) = synthetic([10, 3, 3], 1);
    let (_b, pb) = synthetic([10, 3, 3], 1);
    let (_c, pc) = synthetic([10, 3, 3], 2);
    assert_eq!(std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap());
    let (a, c) = (
        organcmnist::load(&pa).unwrap(),
        organcmnist::load(&pc).unwrap(),
    );
    assert_ne!(a.train.images, c.train.images);
}

#[test]
fn int64_labels_and_flat_labels_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let (i, l) = toy(4, 10);
    let flat = l.clone().into_shape_with_order(vec![4]).unwrap();
    write_npz(
        &path,
        &[
            ("train", i.clone(), l.clone()),
            ("val", i.clone(), flat),
            ("test", i, l),
        ],
        true,
        "",
    );
    let data = organcmnist::load(&path).unwrap();
    assert_eq!(data.val.labels.to_vec(), [10, 10, 10, 10]);
}

#[test]
fn missing_file_has_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let err = organcmnist::load(&dir.path().join(FILE_NAME)).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err:?}");
    assert!(err.to_string().contains("zenodo"), "{err}");
}

#[test]
fn missing_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let (i, l) = toy(3, 1);
    let splits = [
        ("train", i.clone(), l.clone()),
        ("val", i.clone(), l.clone()),
        ("test", i, l),
    ];
    write_npz(&path, &splits, false, "val_labels");
    let msg = failure(&path);
    assert!(msg.contains("`val_labels`"), "{msg}");
}

#[test]
fn label_eleven_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let (i, l) = toy(3, 1);
    let (_, bad) = toy(3, 11);
    write_npz(
        &path,
        &[
            ("train", i.clone(), l.clone()),
            ("val", i.clone(), l),
            ("test", i, bad),
        ],
        false,
        "",
    );
    let msg = failure(&path);
    assert!(msg.contains("test_labels") && msg.contains("11"), "{msg}");
}

#[test]
fn count_mismatch_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let (i, l) = toy(3, 1);
    let (_, short) = toy(2, 1);
    write_npz(
        &path,
        &[
            ("train", i.clone(), short),
            ("val", i.clone(), l.clone()),
            ("test", i, l),
        ],
        false,
        "",
    );
    let err = organcmnist::load(&path).unwrap_err();
    assert!(matches!(err, DataError::Mismatch { .. }), "{err:?}");
    let msg = failure(&path);
    assert!(msg.contains("train_labels"), "{msg}");
}

#[test]
fn images_of_wrong_rank_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let (i, l) = toy(3, 1);
    let mut npz = NpzWriter::new(File::create(&path).unwrap());
    for split in ["train", "val", "test"] {
        let flat = i.clone().into_shape_with_order((3, 28 * 28)).unwrap();
        if split == "val" {
            npz.add_array(format!("{split}_images"), &flat).unwrap();
        } else {
            npz.add_array(format!("{split}_images"), &i).unwrap();
        }
        npz.add_array(format!("{split}_labels"), &l.mapv(|v| v as u8))
            .unwrap();
    }
    npz.finish().unwrap();
    let msg = failure(&path);
    assert!(msg.contains("val_images") && msg.contains("N×H×W"), "{msg}");
}

#[test]
fn garbage_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let bytes: Vec<u8> = (0..2048u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(&path, bytes).unwrap();
    let msg = failure(&path);
    assert!(msg.contains("zip"), "{msg}");
}
