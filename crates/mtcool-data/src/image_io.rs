//! Shared image decoding and encoding for the image readers and synthetic writers.
//!
//! Images travel as ndarray arrays: colour images `(3, H, W)`, single-channel maps `(H, W)`.
//! The file format follows the extension (JPEG, PNG, BMP, TIFF); every failure is a
//! [`DataError`] naming the file.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};
use ndarray::{Array2, Array3};

use crate::error::{DataError, Result};

/// Decodes any supported image file. A JPEG must end with its end-of-image marker (within
/// the last KiB): the decoder would otherwise fill a truncated file with grey silently.
fn open(path: &Path) -> Result<DynamicImage> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?;
    if reader.format() == Some(ImageFormat::Jpeg) {
        let tail = &bytes[bytes.len().saturating_sub(1024)..];
        if !tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
            return Err(DataError::format(
                path,
                "truncated JPEG: no end-of-image marker",
            ));
        }
    }
    reader
        .decode()
        .map_err(|e| DataError::format(path, format!("cannot decode image: {e}")))
}

/// Reads a colour image as `(3, H, W)` RGB (greyscale files are replicated to three channels).
pub fn read_rgb(path: &Path) -> Result<Array3<u8>> {
    let img = open(path)?.to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = img.into_raw();
    Ok(Array3::from_shape_fn((3, h, w), |(c, y, x)| {
        raw[(y * w + x) * 3 + c]
    }))
}

/// Reads a single-channel map `(H, W)`. A colour file is accepted only when its three
/// channels are equal (palette BMPs with a grey palette decode that way); otherwise it is an
/// error naming the file and the first coloured pixel.
pub fn read_gray(path: &Path) -> Result<Array2<u8>> {
    let img = open(path)?;
    let has_colour = img.color().has_color();
    let (w, h) = (img.width() as usize, img.height() as usize);
    if has_colour {
        let rgb = img.to_rgb8();
        if let Some((x, y, p)) = rgb
            .enumerate_pixels()
            .find(|(_, _, p)| p[0] != p[1] || p[1] != p[2])
        {
            return Err(DataError::format(
                path,
                format!(
                    "expected a single-channel image, pixel ({x}, {y}) has colour ({}, {}, {})",
                    p[0], p[1], p[2]
                ),
            ));
        }
        let raw = rgb.into_raw();
        return Ok(Array2::from_shape_fn((h, w), |(y, x)| raw[(y * w + x) * 3]));
    }
    let raw = img.to_luma8().into_raw();
    Array2::from_shape_vec((h, w), raw)
        .map_err(|e| DataError::format(path, format!("bad image shape: {e}")))
}

/// Width and height of an image file, read from its header.
pub fn dimensions(path: &Path) -> Result<(u32, u32)> {
    image::image_dimensions(path)
        .map_err(|e| DataError::format(path, format!("cannot read image size: {e}")))
}

fn format_of(path: &Path) -> Result<ImageFormat> {
    ImageFormat::from_path(path)
        .map_err(|e| DataError::format(path, format!("unknown image format: {e}")))
}

fn save(path: &Path, img: DynamicImage) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    }
    let format = format_of(path)?;
    let encode_err = |e: image::ImageError| DataError::format(path, format!("cannot encode: {e}"));
    if format == ImageFormat::Jpeg {
        let file = File::create(path).map_err(|e| DataError::io(path, e))?;
        let mut out = BufWriter::new(file);
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95);
        img.write_with_encoder(encoder).map_err(encode_err)?;
        return Ok(());
    }
    img.save_with_format(path, format).map_err(encode_err)
}

/// Checks that the label map at `path` (`(height, width)` = `dims`) has the size of its image
/// at `image` (`image_dims`); the error names both, e.g. `mask is 30×20 but its image … is
/// 32×32`, with `what` (`"mask "`, `"trimap "` or empty) leading the message.
pub fn check_same_size(
    path: &Path,
    what: &str,
    dims: (usize, usize),
    image: &Path,
    image_dims: (usize, usize),
) -> Result<()> {
    let ((mh, mw), (h, w)) = (dims, image_dims);
    if dims == image_dims {
        return Ok(());
    }
    Err(DataError::Mismatch {
        path: path.to_path_buf(),
        problem: format!(
            "{what}is {mw}×{mh} but its image {} is {w}×{h}",
            image.display()
        ),
    })
}

/// Writes a `(3, H, W)` RGB image; the format follows the extension (JPEG at quality 95).
pub fn write_rgb(path: &Path, image: &Array3<u8>) -> Result<()> {
    let (c, h, w) = image.dim();
    if c != 3 {
        return Err(DataError::format(
            path,
            format!("expected 3 channels, got {c}"),
        ));
    }
    let buf = RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let (x, y) = (x as usize, y as usize);
        image::Rgb([image[[0, y, x]], image[[1, y, x]], image[[2, y, x]]])
    });
    save(path, DynamicImage::ImageRgb8(buf))
}

/// Writes an 8-bit single-channel `(H, W)` map; the format follows the extension.
pub fn write_gray(path: &Path, map: &Array2<u8>) -> Result<()> {
    let (h, w) = map.dim();
    let buf = GrayImage::from_fn(w as u32, h as u32, |x, y| {
        image::Luma([map[[y as usize, x as usize]]])
    });
    save(path, DynamicImage::ImageLuma8(buf))
}
