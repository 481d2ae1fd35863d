//! The IDX reader on valid and corrupt files written by the test.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;

use mtcool_data::idx::{encode_images, encode_labels, read_images, read_labelled, read_labels};
use mtcool_data::{mnist, DataError};
use ndarray::Array3;

fn images(n: usize) -> Array3<u8> {
    Array3::from_shape_fn((n, 28, 28), |(i, r, c)| (i * 7 + r * 3 + c) as u8)
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn reads_plain_and_gzipped_files_identically() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(5);
    let plain = dir.path().join("a-idx3-ubyte");
    let gz = dir.path().join("a-idx3-ubyte.gz");
    write(&plain, &encode_images(&imgs));
    write(&gz, &gzip(&encode_images(&imgs)));
    assert_eq!(read_images(&plain).unwrap(), imgs);
    assert_eq!(read_images(&gz).unwrap(), imgs);
    let labels = dir.path().join("l.gz");
    write(&labels, &gzip(&encode_labels(&[3, 1, 4, 1, 5])));
    assert_eq!(read_labels(&labels).unwrap().to_vec(), vec![3, 1, 4, 1, 5]);
}

fn expect_format_error(err: DataError, path: &Path, needle: &str) {
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "message does not name the file: {message}"
    );
    assert!(
        message.contains(needle),
        "expected `{needle}` in: {message}"
    );
    assert!(
        !message.contains('\n'),
        "message is not one line: {message}"
    );
}

#[test]
fn truncated_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-idx3-ubyte");
    let bytes = encode_images(&images(4));
    write(&path, &bytes[..bytes.len() - 10]);
    expect_format_error(read_images(&path).unwrap_err(), &path, "truncated");
}

#[test]
fn trailing_bytes_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-idx1-ubyte");
    let mut bytes = encode_labels(&[1, 2, 3]);
    bytes.push(0);
    write(&path, &bytes);
    expect_format_error(read_labels(&path).unwrap_err(), &path, "trailing");
}

#[test]
fn empty_and_foreign_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    write(&empty, b"");
    expect_format_error(read_images(&empty).unwrap_err(), &empty, "too short");
    let foreign = dir.path().join("foreign.png");
    write(&foreign, b"\x89PNG\r\n\x1a\n0000000000000000");
    expect_format_error(read_images(&foreign).unwrap_err(), &foreign, "magic number");
    // a label file where an image file is expected
    let labels = dir.path().join("labels");
    write(&labels, &encode_labels(&[1]));
    expect_format_error(read_images(&labels).unwrap_err(), &labels, "expected 2051");
    let bad_gz = dir.path().join("bad.gz");
    write(&bad_gz, &[0x1f, 0x8b, 8, 0, 1, 2, 3]);
    expect_format_error(read_labels(&bad_gz).unwrap_err(), &bad_gz, "gzip");
}

#[test]
fn count_mismatch_and_bad_labels_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img");
    let lab = dir.path().join("lab");
    write(&img, &encode_images(&images(3)));
    write(&lab, &encode_labels(&[1, 2]));
    let err = read_labelled(&img, &lab, 10).unwrap_err().to_string();
    assert!(
        err.contains("2 labels") && err.contains("3 images"),
        "{err}"
    );
    write(&lab, &encode_labels(&[1, 2, 12]));
    let err = read_labelled(&img, &lab, 10).unwrap_err().to_string();
    assert!(err.contains("label 12"), "{err}");
}

#[test]
fn missing_folder_names_the_file_and_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = mnist::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("train-images-idx3-ubyte"), "{err}");
    assert!(err.contains("cargo xtask data mnist"), "{err}");
}

#[test]
fn a_whole_folder_loads_and_splits() {
    let dir = tempfile::tempdir().unwrap();
    let labels: Vec<u8> = (0..20).map(|i| (i % 10) as u8).collect();
    write(
        &dir.path().join(mnist::FILE_NAMES[0]),
        &encode_images(&images(20)),
    );
    write(
        &dir.path().join(mnist::FILE_NAMES[1]),
        &encode_labels(&labels),
    );
    write(
        &dir.path().join(format!("{}.gz", mnist::FILE_NAMES[2])),
        &gzip(&encode_images(&images(10))),
    );
    write(
        &dir.path().join(mnist::FILE_NAMES[3]),
        &encode_labels(&labels[..10]),
    );
    let tasks = mnist::load_tasks(dir.path(), 15, &mtcool_data::tasks::even_odd()).unwrap();
    assert_eq!(tasks[0].train.len() + tasks[1].train.len(), 15);
    assert_eq!(tasks[0].val.len() + tasks[1].val.len(), 5);
    assert_eq!(tasks[0].test.len(), 5);
    assert!(tasks[1].train.labels.iter().all(|&l| l < 5));
}
