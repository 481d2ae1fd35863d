//! Drawing predictions over images: region contours, translucent tints and boxes.

use ndarray::{Array2, Array3};

/// An RGB colour.
pub type Colour = [u8; 3];

/// Green: REFUGE's disc, the predicted pet.
pub const GREEN: Colour = [0, 230, 0];
/// Blue: REFUGE's cup.
pub const BLUE: Colour = [40, 90, 255];
/// Yellow: the pets' head box.
pub const YELLOW: Colour = [255, 220, 0];

/// A line thickness that stays visible at the image's size.
pub fn thickness(h: usize, w: usize) -> usize {
    (h.min(w) / 200).clamp(1, 8)
}

/// The pixels of `region` that touch a pixel outside it (4-neighbourhood; the image border
/// counts as outside), widened to `thickness` pixels.
pub fn contour(region: &Array2<bool>, thickness: usize) -> Array2<bool> {
    let (h, w) = region.dim();
    let inside = |y: isize, x: isize| {
        y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w && region[[y as usize, x as usize]]
    };
    let mut edge = Array2::from_elem((h, w), false);
    for ((y, x), &r) in region.indexed_iter() {
        let (yi, xi) = (y as isize, x as isize);
        if r && !(inside(yi - 1, xi)
            && inside(yi + 1, xi)
            && inside(yi, xi - 1)
            && inside(yi, xi + 1))
        {
            edge[[y, x]] = true;
        }
    }
    let reach = thickness.saturating_sub(1) / 2;
    if reach == 0 {
        return edge;
    }
    let mut wide = edge.clone();
    for ((y, x), &e) in edge.indexed_iter() {
        if e {
            for yy in y.saturating_sub(reach)..(y + reach + 1).min(h) {
                for xx in x.saturating_sub(reach)..(x + reach + 1).min(w) {
                    wide[[yy, xx]] = true;
                }
            }
        }
    }
    wide
}

/// Blends `colour` into the pixels of `image` `(3, H, W)` where `mask` is set (`alpha` = 1:
/// opaque).
pub fn paint(image: &mut Array3<u8>, mask: &Array2<bool>, colour: Colour, alpha: f32) {
    for ((y, x), &m) in mask.indexed_iter() {
        if m {
            for (c, &value) in colour.iter().enumerate() {
                let old = f32::from(image[[c, y, x]]);
                image[[c, y, x]] = (old + alpha * (f32::from(value) - old)).round() as u8;
            }
        }
    }
}

/// Draws the box `[x0, y0, x1, y1]` (fractions of the image size) on `image`.
pub fn draw_box(image: &mut Array3<u8>, fractions: &[f32], colour: Colour, thickness: usize) {
    let (_, h, w) = image.dim();
    if fractions.len() < 4 || h == 0 || w == 0 {
        return;
    }
    let px = |f: f32, n: usize| ((f.clamp(0.0, 1.0) * n as f32).round() as usize).min(n - 1);
    let (x0, x1) = (
        px(fractions[0].min(fractions[2]), w),
        px(fractions[0].max(fractions[2]), w),
    );
    let (y0, y1) = (
        px(fractions[1].min(fractions[3]), h),
        px(fractions[1].max(fractions[3]), h),
    );
    let mut mask = Array2::from_elem((h, w), false);
    for t in 0..thickness {
        for x in x0..=x1 {
            mask[[(y0 + t).min(h - 1), x]] = true;
            mask[[y1.saturating_sub(t), x]] = true;
        }
        for y in y0..=y1 {
            mask[[y, (x0 + t).min(w - 1)]] = true;
            mask[[y, x1.saturating_sub(t)]] = true;
        }
    }
    paint(image, &mask, colour, 1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_square_has_its_ring_as_contour() {
        let mut region = Array2::from_elem((6, 6), false);
        for y in 1..5 {
            for x in 1..5 {
                region[[y, x]] = true;
            }
        }
        let edge = contour(&region, 1);
        assert_eq!(edge.iter().filter(|&&e| e).count(), 12);
        assert!(!edge[[2, 2]] && edge[[1, 1]] && !edge[[0, 0]]);
    }

    #[test]
    fn boxes_and_tints_change_only_their_pixels() {
        let mut image = Array3::<u8>::zeros((3, 10, 10));
        draw_box(&mut image, &[0.2, 0.2, 0.6, 0.6], YELLOW, 1);
        assert_eq!(image[[0, 2, 4]], 255);
        assert_eq!(image[[0, 4, 4]], 0);
        assert_eq!(image[[0, 9, 9]], 0);
        let mut mask = Array2::from_elem((10, 10), false);
        mask[[5, 5]] = true;
        paint(&mut image, &mask, [200, 0, 0], 0.5);
        assert_eq!(image[[0, 5, 5]], 100);
    }
}
