//! Predictions of the image-to-image experiments: REFUGE, HRF-AV and pets.

use std::path::Path;

use mtcool_data::image_io::{read_rgb, write_gray, write_rgb};
use mtcool_data::refuge::locate_disc;
use mtcool_data::transforms::{crop_padded, resize_image, resize_labels};
use ndarray::{Array2, Array3};

use super::draw::{self, contour, paint, thickness};
use super::{class_rows, input_error, ClassRow, LoadedModel, Target};
use crate::config::DataConfig;
use crate::data::TaskKind;
use crate::error::Result;

/// The smallest image side the dense models accept.
const MIN_SIDE: usize = 32;

fn read_image(path: &Path, min_side: usize) -> Result<Array3<u8>> {
    let image = read_rgb(path)?;
    let (_, h, w) = image.dim();
    if h < min_side || w < min_side {
        return Err(input_error(
            path,
            format!(
                "is {w}×{h} pixels, too small for this network (at least {min_side}×{min_side})"
            ),
        ));
    }
    Ok(image)
}

/// Writes `map` over `full` with its top-left corner at (`top`, `left`), clipped to `full`.
fn paste(full: &mut Array2<u8>, map: &Array2<u8>, top: i64, left: i64) {
    let (h, w) = full.dim();
    for ((y, x), &v) in map.indexed_iter() {
        let (fy, fx) = (top + y as i64, left + x as i64);
        if fy >= 0 && fx >= 0 && (fy as usize) < h && (fx as usize) < w {
            full[[fy as usize, fx as usize]] = v;
        }
    }
}

/// REFUGE's mask encoding of a class map (0 background, 1 rim, 2 cup): 255 / 128 / 0.
pub(crate) fn refuge_encoding(map: &Array2<u8>) -> Array2<u8> {
    map.mapv(|c| match c {
        2 => 0,
        1 => 128,
        _ => 255,
    })
}

/// `image` with the disc (rim ∪ cup) contour in green and the cup's in blue.
pub(crate) fn disc_cup_overlay(image: &Array3<u8>, map: &Array2<u8>) -> Array3<u8> {
    let (_, h, w) = image.dim();
    let t = thickness(h, w);
    let mut overlay = image.clone();
    paint(
        &mut overlay,
        &contour(&map.mapv(|c| c >= 1), t),
        draw::GREEN,
        1.0,
    );
    paint(
        &mut overlay,
        &contour(&map.mapv(|c| c == 2), t),
        draw::BLUE,
        1.0,
    );
    overlay
}

/// `image` with a class map tinted over it: class 1 green, class 2 blue, class 3 red.
pub(crate) fn mask_overlay(image: &Array3<u8>, map: &Array2<u8>) -> Array3<u8> {
    let mut overlay = image.clone();
    for (class, colour) in [(1, draw::GREEN), (2, draw::BLUE), (3, [255, 0, 0])] {
        paint(&mut overlay, &map.mapv(|c| c == class), colour, 0.6);
    }
    overlay
}

/// The REFUGE class map of a whole fundus photograph: the disc located as in evaluation, a
/// square crop around it predicted and pasted back (background elsewhere).
pub(crate) fn refuge_map(
    loaded: &LoadedModel,
    image: &Array3<u8>,
    file: &str,
) -> Result<(Array2<u8>, Vec<ClassRow>)> {
    let (crop, size) = match &loaded.meta.config.data {
        DataConfig::Refuge {
            crop_size,
            output_size,
            ..
        } => (*crop_size as usize, *output_size as usize),
        _ => (
            image.dim().1,
            loaded.input_shape.get(1).copied().unwrap_or(256),
        ),
    };
    let (_, h, w) = image.dim();
    let centre = locate_disc(image);
    let top = centre.0.round() as i64 - (crop / 2) as i64;
    let left = centre.1.round() as i64 - (crop / 2) as i64;
    let x = loaded.input(&resize_image(
        &crop_padded(image, top, left, crop, crop, 0),
        size,
        size,
    ))?;
    let mut full = Array2::<u8>::zeros((h, w));
    let mut rows = Vec::new();
    for (t, kind) in loaded.kinds.iter().enumerate() {
        let output = loaded.output(&x, t)?;
        match kind {
            TaskKind::Mask { .. } => {
                let map = LoadedModel::class_map(&output)?;
                paste(&mut full, &resize_labels(&map, crop, crop), top, left);
            }
            TaskKind::Class { .. } => rows.extend(class_rows(loaded, file, t, &output)?),
            _ => {}
        }
    }
    Ok((full, rows))
}

/// REFUGE: `<name>_mask.png` (0 / 128 / 255 at the input's size) and `<name>_overlay.png`.
pub(crate) fn refuge(
    loaded: &LoadedModel,
    path: &Path,
    target: &Target<'_>,
) -> Result<Vec<ClassRow>> {
    let image = read_image(path, MIN_SIDE)?;
    let (map, rows) = refuge_map(loaded, &image, target.file)?;
    write_gray(&target.path("mask"), &refuge_encoding(&map))?;
    write_rgb(&target.path("overlay"), &disc_cup_overlay(&image, &map))?;
    Ok(rows)
}

/// The field-of-view mask of the HRF image `stem` in `dir` (`<stem>_mask.*`, any non-black
/// pixel inside).
fn read_fov(dir: &Path, stem: &str, h: usize, w: usize) -> Result<Array2<bool>> {
    let path = ["tif", "png", "jpg", "gif", "bmp"]
        .iter()
        .map(|ext| dir.join(format!("{stem}_mask.{ext}")))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            input_error(
                &dir.join(format!("{stem}_mask.tif")),
                "field-of-view mask not found (also tried .png, .jpg, .gif, .bmp)",
            )
        })?;
    let fov = read_rgb(&path)?;
    let (_, fh, fw) = fov.dim();
    if (fh, fw) != (h, w) {
        return Err(input_error(
            &path,
            format!("is {fw}×{fh} but its image is {w}×{h}"),
        ));
    }
    Ok(Array2::from_shape_fn((h, w), |(y, x)| {
        fov[[0, y, x]] > 0 || fov[[1, y, x]] > 0 || fov[[2, y, x]] > 0
    }))
}

/// HRF-AV colours of an A/V class map (0 background, 1 artery, 2 vein).
fn av_colours(map: &Array2<u8>) -> Array3<u8> {
    let (h, w) = map.dim();
    Array3::from_shape_fn((3, h, w), |(c, y, x)| match (map[[y, x]], c) {
        (1, 0) | (2, 2) => 255,
        _ => 0,
    })
}

/// HRF-AV: `<name>_vessel.png`, `<name>_av.png` and `<name>_overlay.png`, by sliding windows
/// (inside the field of view when `fov` gives its folder).
pub(crate) fn hrfav(
    loaded: &LoadedModel,
    path: &Path,
    fov: Option<&Path>,
    target: &Target<'_>,
) -> Result<Vec<ClassRow>> {
    let (size, overlap) = match &loaded.meta.config.data {
        DataConfig::Hrfav {
            patch_size,
            overlap,
            ..
        } => (*patch_size, *overlap),
        _ => (loaded.input_shape.get(1).copied().unwrap_or(256), 0),
    };
    let image = read_image(path, size.max(MIN_SIDE))?;
    let (_, h, w) = image.dim();
    let inside = match fov {
        Some(dir) => Some(read_fov(dir, target.stem, h, w)?),
        None => None,
    };
    let x = loaded.input(&image)?;
    let mut overlay = image.clone();
    let mut rows = Vec::new();
    for (t, kind) in loaded.kinds.iter().enumerate() {
        let output = loaded.windowed_output(&x, t, size, overlap)?;
        let classes = match kind {
            TaskKind::Mask { classes, .. } => *classes,
            TaskKind::Class { .. } => {
                rows.extend(class_rows(loaded, target.file, t, &output)?);
                continue;
            }
            _ => continue,
        };
        let mut map = LoadedModel::class_map(&output)?;
        if let Some(inside) = &inside {
            map.zip_mut_with(inside, |m, &i| *m = if i { *m } else { 0 });
        }
        if classes == 2 {
            write_gray(
                &target.path("vessel"),
                &map.mapv(|c| if c == 1 { 255 } else { 0 }),
            )?;
            paint(&mut overlay, &map.mapv(|c| c == 1), draw::GREEN, 0.6);
        } else {
            write_rgb(&target.path("av"), &av_colours(&map))?;
            paint(&mut overlay, &map.mapv(|c| c == 1), [255, 0, 0], 0.8);
            paint(&mut overlay, &map.mapv(|c| c == 2), [0, 0, 255], 0.8);
        }
    }
    write_rgb(&target.path("overlay"), &overlay)?;
    Ok(rows)
}

/// Pets: `<name>_mask.png` (trimap codes 1 pet, 2 background, at the input's size), species
/// probabilities, and `<name>_overlay.png` with the pet tinted and the head box drawn.
pub(crate) fn pets(
    loaded: &LoadedModel,
    path: &Path,
    target: &Target<'_>,
) -> Result<Vec<ClassRow>> {
    let size = match &loaded.meta.config.data {
        DataConfig::Pets { release, .. } => release.size,
        _ => loaded.input_shape.get(1).copied().unwrap_or(256),
    };
    let image = read_image(path, MIN_SIDE)?;
    let (_, h, w) = image.dim();
    let x = loaded.input(&resize_image(&image, size, size))?;
    let mut overlay = image.clone();
    let mut boxes = Vec::new();
    let mut rows = Vec::new();
    for (t, kind) in loaded.kinds.iter().enumerate() {
        let output = loaded.output(&x, t)?;
        match kind {
            TaskKind::Mask { .. } => {
                let map = resize_labels(&LoadedModel::class_map(&output)?, h, w);
                write_gray(
                    &target.path("mask"),
                    &map.mapv(|c| if c == 1 { 1 } else { 2 }),
                )?;
                paint(&mut overlay, &map.mapv(|c| c == 1), draw::GREEN, 0.4);
            }
            TaskKind::Class { .. } => rows.extend(class_rows(loaded, target.file, t, &output)?),
            TaskKind::BoundingBox => boxes.push(output.flatten_all()?.to_vec1::<f32>()?),
            TaskKind::Reconstruction { .. } => {}
        }
    }
    for b in &boxes {
        draw::draw_box(&mut overlay, b, draw::YELLOW, thickness(h, w));
    }
    write_rgb(&target.path("overlay"), &overlay)?;
    Ok(rows)
}
