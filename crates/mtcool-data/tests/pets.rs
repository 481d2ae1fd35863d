//! The Oxford-IIIT Pet HDF5 reader on synthetic files and corrupt variants of them.
#![cfg(feature = "hdf5")]
#![allow(clippy::unwrap_used)]

mod common;
use common::{boxes, mask, species};

use std::path::Path;

use mtcool_data::pets::{self, PetsSplit};
use mtcool_data::{DataError, Target};
use ndarray::{Array2, Array3, Array4, ArrayD, Axis};

const SIZE: usize = 32;

fn synthetic(counts: [usize; 3], seed: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    pets::write_synthetic(dir.path(), counts, SIZE, seed).unwrap();
    dir
}

fn write_dataset<T: hdf5::H5Type>(path: &Path, key: &str, data: &ArrayD<T>) {
    let file = hdf5::File::create(path).unwrap();
    file.new_dataset_builder()
        .with_data(data)
        .create(key)
        .unwrap();
}

/// The error of opening (and, if that works, reading) `dir`, as a message.
fn failure(dir: &Path) -> String {
    let err = match PetsSplit::open(dir) {
        Err(e) => e,
        Ok(split) => split.read(0, split.len()).unwrap_err(),
    };
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "multi-line error: {msg}");
    msg
}

#[test]
fn synthetic_files_read_back_with_expected_shapes_and_values() {
    let dir = synthetic([12, 5, 7], 3);
    let split = PetsSplit::open(&dir.path().join("train")).unwrap();
    assert_eq!(split.len(), 12);
    assert!(!split.is_empty());
    assert_eq!(split.image_size(), (SIZE, SIZE));
    let set = split.read(0, 100).unwrap();
    assert_eq!(set.images.dim(), (12, 3, SIZE, SIZE));
    let names: Vec<&str> = set.targets.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["seg", "cls", "box", "rec"]);
    assert_eq!(set.targets[3].1, Target::Reconstruction);
    let maps = mask(&set);
    assert_eq!(maps.dim(), (12, SIZE, SIZE));
    assert!(maps.iter().all(|&v| v <= 1));
    for m in maps.outer_iter() {
        let pet = m.iter().filter(|&&v| v == 1).count();
        assert!(pet > 0 && pet < SIZE * SIZE, "pet covers {pet} pixels");
    }
    let b = boxes(&set);
    assert_eq!(b.dim(), (12, 4));
    for row in b.outer_iter() {
        assert!(row.iter().all(|&v| (0.0..=1.0).contains(&v)), "{row}");
        assert!(row[0] < row[2] && row[1] < row[3], "{row}");
    }
    // The head box holds pet pixels.
    for (i, row) in b.outer_iter().enumerate() {
        let (x0, y0) = (
            (row[0] * SIZE as f32) as usize,
            (row[1] * SIZE as f32) as usize,
        );
        let (x1, y1) = (
            (row[2] * SIZE as f32) as usize,
            (row[3] * SIZE as f32) as usize,
        );
        let m = maps.index_axis(Axis(0), i);
        let inside = (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (y, x)))
            .filter(|&(y, x)| m[[y, x]] == 1)
            .count();
        assert!(inside > 0);
    }
    // Images are not constant.
    let first = set.images.index_axis(Axis(0), 0);
    assert!(first.iter().any(|&v| v != first[[0, 0, 0]]));
}

#[test]
fn load_reads_all_splits_with_limit() {
    let dir = synthetic([6, 3, 4], 1);
    let all = pets::load(dir.path(), None).unwrap();
    assert_eq!((all.train.len(), all.val.len(), all.test.len()), (6, 3, 4));
    let capped = pets::load(dir.path(), Some(2)).unwrap();
    assert_eq!(
        (capped.train.len(), capped.val.len(), capped.test.len()),
        (2, 2, 2)
    );
    assert_eq!(capped.train, all.train.select(&[0, 1]));
}

#[test]
fn batch_reads_equal_slices_of_a_full_read() {
    let dir = synthetic([10, 2, 2], 5);
    let split = PetsSplit::open(&dir.path().join("train")).unwrap();
    let full = split.read(0, split.len()).unwrap();
    for (start, count) in [(0, 3), (3, 4), (7, 3), (8, 10)] {
        let batch = split.read(start, count).unwrap();
        let end = (start + count).min(10);
        let indices: Vec<usize> = (start..end).collect();
        assert_eq!(batch, full.select(&indices), "batch {start}+{count}");
    }
    let empty = split.read(10, 5).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.images.dim(), (0, 3, SIZE, SIZE));
}

#[test]
fn same_seed_same_files_and_both_species() {
    let a = synthetic([20, 2, 2], 9);
    let b = synthetic([20, 2, 2], 9);
    let c = synthetic([20, 2, 2], 10);
    let read = |d: &tempfile::TempDir| pets::load(d.path(), None).unwrap();
    let (ra, rb, rc) = (read(&a), read(&b), read(&c));
    assert_eq!(ra, rb);
    assert_ne!(ra.train, rc.train);
    let s = species(&ra.train);
    assert!(s.contains(&0) && s.contains(&1), "{s:?}");
}

#[test]
fn synthetic_files_use_the_coursework_types() {
    let dir = synthetic([3, 1, 1], 0);
    let train = dir.path().join("train");
    let open = |name: &str| {
        hdf5::File::open(train.join(format!("{name}.h5")))
            .unwrap()
            .dataset(name)
            .unwrap()
    };
    assert!(open("images").dtype().unwrap().is::<u8>());
    assert_eq!(open("images").shape(), [3, SIZE, SIZE, 3]);
    assert!(open("masks").dtype().unwrap().is::<u8>());
    assert_eq!(open("masks").shape(), [3, SIZE, SIZE, 1]);
    assert!(open("binary").dtype().unwrap().is::<i64>());
    assert_eq!(open("binary").shape(), [3, 1]);
    assert_eq!(open("bboxes").shape(), [3, 4]);
    // pixels, not fractions
    let raw: Array2<f64> = open("bboxes").read_2d().unwrap();
    assert!(raw.iter().any(|&v| v > 1.5));
}

#[test]
fn fractional_boxes_are_accepted_as_they_are() {
    let dir = synthetic([4, 1, 1], 2);
    let train = dir.path().join("train");
    let pixel = PetsSplit::open(&train).unwrap().read(0, 4).unwrap();
    let frac = boxes(&pixel).mapv(f64::from).into_dyn();
    write_dataset(&train.join("bboxes.h5"), "bboxes", &frac);
    let again = PetsSplit::open(&train).unwrap().read(0, 4).unwrap();
    assert_eq!(boxes(&again), boxes(&pixel));
}

#[test]
fn missing_file_is_reported_with_a_hint() {
    let dir = synthetic([2, 1, 1], 0);
    let train = dir.path().join("train");
    std::fs::remove_file(train.join("masks.h5")).unwrap();
    let err = PetsSplit::open(&train).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err:?}");
    let msg = failure(&train);
    assert!(
        msg.contains("masks.h5") && msg.contains("robots.ox.ac.uk"),
        "{msg}"
    );
    assert!(pets::load(dir.path(), None).is_err());
}

#[test]
fn wrong_dataset_key_names_the_expected_and_found_keys() {
    let dir = synthetic([2, 1, 1], 0);
    let train = dir.path().join("train");
    let images = Array4::<u8>::zeros((2, SIZE, SIZE, 3)).into_dyn();
    write_dataset(&train.join("images.h5"), "image", &images);
    let msg = failure(&train);
    assert!(msg.contains("images.h5"), "{msg}");
    assert!(
        msg.contains("`/images`") && msg.contains("`/image`"),
        "{msg}"
    );
}

#[test]
fn images_without_channel_axis_are_rejected() {
    let dir = synthetic([2, 1, 1], 0);
    let train = dir.path().join("train");
    let images = Array3::<u8>::zeros((2, SIZE, SIZE)).into_dyn();
    write_dataset(&train.join("images.h5"), "images", &images);
    let msg = failure(&train);
    assert!(msg.contains("images.h5") && msg.contains("shape"), "{msg}");
}

#[test]
fn wrong_image_dtype_is_rejected() {
    let dir = synthetic([2, 1, 1], 0);
    let train = dir.path().join("train");
    let images = Array4::<f32>::zeros((2, SIZE, SIZE, 3)).into_dyn();
    write_dataset(&train.join("images.h5"), "images", &images);
    let msg = failure(&train);
    assert!(msg.contains("images.h5") && msg.contains("uint8"), "{msg}");
}

#[test]
fn count_mismatch_names_the_disagreeing_file() {
    let dir = synthetic([3, 1, 1], 0);
    let train = dir.path().join("train");
    let masks = Array4::<u8>::zeros((2, SIZE, SIZE, 1)).into_dyn();
    write_dataset(&train.join("masks.h5"), "masks", &masks);
    let err = PetsSplit::open(&train).unwrap_err();
    assert!(matches!(err, DataError::Mismatch { .. }), "{err:?}");
    let msg = failure(&train);
    assert!(
        msg.contains("masks.h5") && msg.contains('2') && msg.contains('3'),
        "{msg}"
    );
}

#[test]
fn mask_size_mismatch_is_rejected() {
    let dir = synthetic([2, 1, 1], 0);
    let train = dir.path().join("train");
    let masks = Array4::<u8>::zeros((2, SIZE, SIZE / 2, 1)).into_dyn();
    write_dataset(&train.join("masks.h5"), "masks", &masks);
    let msg = failure(&train);
    assert!(msg.contains("masks.h5"), "{msg}");
}

#[test]
fn mask_value_two_is_rejected_with_its_sample() {
    let dir = synthetic([3, 1, 1], 0);
    let train = dir.path().join("train");
    let mut masks = Array4::<u8>::zeros((3, SIZE, SIZE, 1));
    masks[[2, 5, 5, 0]] = 2;
    write_dataset(&train.join("masks.h5"), "masks", &masks.into_dyn());
    let split = PetsSplit::open(&train).unwrap();
    assert!(split.read(0, 2).is_ok(), "values are checked per batch");
    let msg = failure(&train);
    assert!(msg.contains("masks.h5") && msg.contains("sample 2") && msg.contains("value 2"));
}

#[test]
fn integer_masks_of_other_types_are_accepted_and_checked() {
    let dir = synthetic([2, 1, 1], 0);
    let train = dir.path().join("train");
    let good = PetsSplit::open(&train).unwrap().read(0, 2).unwrap();
    let wide = mask(&good).mapv(i64::from).insert_axis(Axis(3)).into_dyn();
    write_dataset(&train.join("masks.h5"), "masks", &wide);
    let again = PetsSplit::open(&train).unwrap().read(0, 2).unwrap();
    assert_eq!(mask(&again), mask(&good));
    let mut bad = wide.clone();
    bad[[1, 0, 0, 0]] = -1;
    write_dataset(&train.join("masks.h5"), "masks", &bad);
    let msg = failure(&train);
    assert!(msg.contains("masks.h5") && msg.contains("-1"), "{msg}");
}

#[test]
fn species_value_outside_zero_one_is_rejected() {
    let dir = synthetic([2, 1, 1], 0);
    let train = dir.path().join("train");
    let binary = ndarray::arr2(&[[0i64], [2]]).into_dyn();
    write_dataset(&train.join("binary.h5"), "binary", &binary);
    let msg = failure(&train);
    assert!(msg.contains("binary.h5") && msg.contains("row 1"), "{msg}");
}

#[test]
fn inverted_box_is_rejected_with_its_row() {
    let dir = synthetic([2, 1, 1], 0);
    let train = dir.path().join("train");
    let bboxes = ndarray::arr2(&[[2.0f32, 2.0, 10.0, 10.0], [12.0, 2.0, 4.0, 10.0]]).into_dyn();
    write_dataset(&train.join("bboxes.h5"), "bboxes", &bboxes);
    let msg = failure(&train);
    assert!(msg.contains("bboxes.h5") && msg.contains("row 1"), "{msg}");
}

#[test]
fn garbage_file_is_rejected() {
    let dir = synthetic([2, 1, 1], 0);
    let train = dir.path().join("train");
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(train.join("binary.h5"), bytes).unwrap();
    let msg = failure(&train);
    assert!(msg.contains("binary.h5") && msg.contains("HDF5"), "{msg}");
    // a truncated real file too
    let images = std::fs::read(train.join("images.h5")).unwrap();
    std::fs::write(train.join("images.h5"), &images[..images.len() / 3]).unwrap();
    let msg = failure(&train);
    assert!(msg.contains("images.h5"), "{msg}");
}

#[test]
fn non_square_images_are_accepted() {
    let dir = synthetic([2, 1, 1], 0);
    let train = dir.path().join("train");
    write_dataset(
        &train.join("images.h5"),
        "images",
        &Array4::<u8>::zeros((2, 20, 30, 3)).into_dyn(),
    );
    write_dataset(
        &train.join("masks.h5"),
        "masks",
        &Array4::<u8>::ones((2, 20, 30, 1)).into_dyn(),
    );
    let bboxes = ndarray::arr2(&[[1.0f64, 1.0, 10.0, 10.0], [2.0, 3.0, 30.0, 20.0]]).into_dyn();
    write_dataset(&train.join("bboxes.h5"), "bboxes", &bboxes);
    let split = PetsSplit::open(&train).unwrap();
    assert_eq!(split.image_size(), (20, 30));
    let set = split.read(0, 2).unwrap();
    assert_eq!(set.images.dim(), (2, 3, 20, 30));
    let b = boxes(&set);
    assert_eq!(b.row(1).to_vec(), [2.0 / 30.0, 3.0 / 20.0, 1.0, 1.0]);
}
