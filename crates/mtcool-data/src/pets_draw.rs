//! Synthetic pet drawing shared by the pets writers (the coursework HDF5 files and the
//! original release layout).

use ndarray::{Array2, Array3};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// One synthetic sample: image `(H, W, 3)`, mask `(H, W)` (1 = pet), species (0 = cat,
/// 1 = dog) and head box `[x0, y0, x1, y1]` in pixels (end exclusive).
pub(crate) struct Sample {
    pub(crate) image: Array3<u8>,
    pub(crate) mask: Array2<u8>,
    pub(crate) species: i64,
    pub(crate) head_box: [f64; 4],
}

/// Is `(x, y)` inside the triangle `a, b, c`?
fn in_triangle(x: f32, y: f32, a: (f32, f32), b: (f32, f32), c: (f32, f32)) -> bool {
    let side = |p: (f32, f32), q: (f32, f32)| (q.0 - p.0) * (y - p.1) - (q.1 - p.1) * (x - p.0);
    let (d1, d2, d3) = (side(a, b), side(b, c), side(c, a));
    let neg = d1 < 0.0 || d2 < 0.0 || d3 < 0.0;
    let pos = d1 > 0.0 || d2 > 0.0 || d3 > 0.0;
    !(neg && pos)
}

/// Is `(x, y)` inside the axis-aligned ellipse centred at `(cx, cy)` with radii `(rx, ry)`?
fn in_ellipse(x: f32, y: f32, cx: f32, cy: f32, rx: f32, ry: f32) -> bool {
    let (dx, dy) = ((x - cx) / rx, (y - cy) / ry);
    dx * dx + dy * dy <= 1.0
}

fn byte(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// Draws one synthetic pet of `width × height` pixels: cats (0) are an ellipse head with two
/// pointed ears and striped, grey-blue fur; dogs (1) a rounder, wider head with floppy ears
/// and spotted, brown fur. Sizes scale with the shorter side, positions with each side, so a
/// square image is drawn exactly as before the two sides were separated.
pub(crate) fn synthetic_sample(rng: &mut ChaCha8Rng, width: usize, height: usize) -> Sample {
    let s = width.min(height) as f32;
    let (sw, sh) = (width as f32, height as f32);
    let species: i64 = rng.random_range(0..2);
    let cat = species == 0;
    // Background: a base colour with a random stripe texture.
    let bg: [f32; 3] = [
        rng.random_range(40.0..200.0),
        rng.random_range(60.0..200.0),
        rng.random_range(40.0..180.0),
    ];
    let freq = rng.random_range(0.1..0.6) * 32.0 / s;
    let angle: f32 = rng.random_range(0.0..std::f32::consts::PI);
    let (fx, fy) = (freq * angle.cos(), freq * angle.sin());
    let phase: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    // Pet geometry, in pixels.
    let r = rng.random_range(0.10..0.15) * s;
    let hx = rng.random_range(0.3..0.7) * sw;
    let hy = rng.random_range(0.3..0.45) * sh;
    let (hrx, hry) = if cat { (r, 0.9 * r) } else { (1.15 * r, r) };
    let brx = rng.random_range(0.15..0.25) * s;
    let bry = rng.random_range(0.10..0.16) * s;
    let bx = hx + rng.random_range(-0.1..0.1) * sw;
    let by = hy + hry + 0.7 * bry;
    let fur: [f32; 3] = if cat {
        [
            rng.random_range(90.0..150.0),
            rng.random_range(100.0..160.0),
            rng.random_range(150.0..230.0),
        ]
    } else {
        [
            rng.random_range(150.0..230.0),
            rng.random_range(90.0..150.0),
            rng.random_range(30.0..90.0),
        ]
    };
    let ear = |sign: f32| {
        (
            (hx + sign * 0.85 * r, hy - 0.3 * r),
            (hx + sign * 0.2 * r, hy - 0.75 * r),
            (hx + sign * 0.75 * r, hy - 1.6 * r),
        )
    };
    let (left, right) = (ear(-1.0), ear(1.0));
    let mut image = Array3::<u8>::zeros((height, width, 3));
    let mut mask = Array2::<u8>::zeros((height, width));
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0usize, 0usize);
    for py in 0..height {
        for px in 0..width {
            let (x, y) = (px as f32 + 0.5, py as f32 + 0.5);
            let head = in_ellipse(x, y, hx, hy, hrx, hry)
                || if cat {
                    in_triangle(x, y, left.0, left.1, left.2)
                        || in_triangle(x, y, right.0, right.1, right.2)
                } else {
                    in_ellipse(x, y, hx - 1.05 * r, hy + 0.3 * r, 0.35 * r, 0.7 * r)
                        || in_ellipse(x, y, hx + 1.05 * r, hy + 0.3 * r, 0.35 * r, 0.7 * r)
                };
            let pet = head || in_ellipse(x, y, bx, by, brx, bry);
            let noise = rng.random_range(-12.0..12.0);
            let colour: [f32; 3] = if pet {
                let texture = if cat {
                    // stripes across the fur
                    if ((x * 6.0 / r).sin()) > 0.3 {
                        -35.0
                    } else {
                        0.0
                    }
                } else if rng.random::<f32>() < 0.04 {
                    // sparse dark spots
                    -60.0
                } else {
                    0.0
                };
                [fur[0] + texture, fur[1] + texture, fur[2] + texture]
            } else {
                let t = 25.0 * (fx * x + fy * y + phase).sin();
                [bg[0] + t, bg[1] + t, bg[2] + t]
            };
            for c in 0..3 {
                image[[py, px, c]] = byte(colour[c] + noise);
            }
            if pet {
                mask[[py, px]] = 1;
            }
            if head {
                x0 = x0.min(px);
                y0 = y0.min(py);
                x1 = x1.max(px + 1);
                y1 = y1.max(py + 1);
            }
        }
    }
    let head_box = if x0 == usize::MAX {
        [0.0, 0.0, sw as f64, sh as f64]
    } else {
        [x0 as f64, y0 as f64, x1 as f64, y1 as f64]
    };
    Sample {
        image,
        mask,
        species,
        head_box,
    }
}
