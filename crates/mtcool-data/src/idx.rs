//! Reader for the IDX format of MNIST and Fashion-MNIST, plain or gzipped.
//!
//! An IDX file is a big-endian header — a magic number whose third byte is the element type
//! (0x08 = u8) and whose fourth is the number of dimensions, then one u32 per dimension —
//! followed by the elements in row-major order. Image files have magic 2051 (`0x00000803`,
//! three dimensions: count × rows × columns), label files 2049 (`0x00000801`, one dimension).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("labels-idx1-ubyte");
//! // magic 2049, 3 labels, then the labels
//! std::fs::write(&path, [0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])?;
//! let labels = mtcool_data::idx::read_labels(&path)?;
//! assert_eq!(labels.to_vec(), vec![7, 2, 1]);
//! # Ok(()) }
//! ```

use std::io::Read;
use std::path::Path;

use ndarray::{Array1, Array3};

use crate::error::{DataError, Result};

/// Magic number of an IDX file of u8 images (three dimensions).
pub const IMAGES_MAGIC: u32 = 2051;
/// Magic number of an IDX file of u8 labels (one dimension).
pub const LABELS_MAGIC: u32 = 2049;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads a file whole, transparently gunzipping it when it starts with the gzip magic bytes.
fn read_maybe_gzipped(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if raw.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| DataError::format(path, format!("corrupt gzip stream: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses and checks the header; returns the dimensions and the offset of the data.
fn parse_header(path: &Path, bytes: &[u8], magic: u32, what: &str) -> Result<(Vec<usize>, usize)> {
    let word = |i: usize| -> Option<u32> {
        bytes
            .get(4 * i..4 * i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let found = word(0).ok_or_else(|| {
        DataError::format(
            path,
            format!("file is {} bytes, too short for an IDX header", bytes.len()),
        )
    })?;
    if found != magic {
        return Err(DataError::format(
            path,
            format!("not an IDX {what} file: magic number {found}, expected {magic}"),
        ));
    }
    let ndim = (magic & 0xff) as usize;
    let dims: Vec<usize> = (1..=ndim)
        .map(|i| word(i).map(|d| d as usize))
        .collect::<Option<_>>()
        .ok_or_else(|| DataError::format(path, "truncated IDX header"))?;
    Ok((dims, 4 * (ndim + 1)))
}

/// Checks that the data after the header holds exactly `expected` bytes.
fn check_length(path: &Path, bytes: &[u8], offset: usize, dims: &[usize]) -> Result<()> {
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|n| n.checked_add(offset))
        .ok_or_else(|| DataError::format(path, format!("implausible dimensions {dims:?}")))?;
    if bytes.len() != expected {
        let state = if bytes.len() < expected {
            "truncated"
        } else {
            "has trailing bytes"
        };
        return Err(DataError::format(
            path,
            format!(
                "file {state}: {} bytes, the header's dimensions {dims:?} need {expected}",
                bytes.len()
            ),
        ));
    }
    Ok(())
}

/// Reads an IDX image file (magic 2051) into an array of shape (count, rows, columns).
pub fn read_images(path: &Path) -> Result<Array3<u8>> {
    let bytes = read_maybe_gzipped(path)?;
    let (dims, offset) = parse_header(path, &bytes, IMAGES_MAGIC, "image")?;
    if dims[1] == 0 || dims[2] == 0 {
        return Err(DataError::format(
            path,
            format!("empty image size {}x{}", dims[1], dims[2]),
        ));
    }
    check_length(path, &bytes, offset, &dims)?;
    let data = bytes[offset..].to_vec();
    Array3::from_shape_vec((dims[0], dims[1], dims[2]), data)
        .map_err(|e| DataError::format(path, e.to_string()))
}

/// Reads an IDX label file (magic 2049) into a vector of labels.
pub fn read_labels(path: &Path) -> Result<Array1<u8>> {
    let bytes = read_maybe_gzipped(path)?;
    let (dims, offset) = parse_header(path, &bytes, LABELS_MAGIC, "label")?;
    check_length(path, &bytes, offset, &dims)?;
    Ok(Array1::from(bytes[offset..].to_vec()))
}

/// Reads an image file and its label file and checks that they describe the same number of
/// samples, and that every label is below `num_classes`.
pub fn read_labelled(
    images_path: &Path,
    labels_path: &Path,
    num_classes: u8,
) -> Result<(Array3<u8>, Array1<u8>)> {
    let images = read_images(images_path)?;
    let labels = read_labels(labels_path)?;
    if images.shape()[0] != labels.len() {
        return Err(DataError::Mismatch {
            path: labels_path.to_path_buf(),
            problem: format!(
                "{} labels, but {} holds {} images",
                labels.len(),
                images_path.display(),
                images.shape()[0]
            ),
        });
    }
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l >= num_classes) {
        return Err(DataError::format(
            labels_path,
            format!("label {l} at index {i} is outside 0..{num_classes}"),
        ));
    }
    Ok((images, labels))
}

/// Encodes images as an IDX file (used by tests and synthetic data writers).
pub fn encode_images(images: &Array3<u8>) -> Vec<u8> {
    let (n, r, c) = images.dim();
    let mut out = Vec::with_capacity(16 + n * r * c);
    for word in [IMAGES_MAGIC, n as u32, r as u32, c as u32] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.extend(images.iter().copied());
    out
}

/// Encodes labels as an IDX file (used by tests and synthetic data writers).
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    for word in [LABELS_MAGIC, labels.len() as u32] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.extend_from_slice(labels);
    out
}
