//! The confusion-matrix pass over one HRF-size image (3504 × 2336 pixels), binary and
//! three-class, with and without a field-of-view mask. Throughput is in pixels.
//!
//! `cargo bench -p mtcool-metrics --bench confusion -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mtcool_metrics::{BinaryCounts, ConfusionMatrix};

const W: usize = 3504;
const H: usize = 2336;

/// Label maps shaped like a fundus segmentation: an elliptical field of view, a disc and a
/// cup (classes 1 and 2), the prediction offset a little and sprinkled with errors, so that
/// long runs of equal labels (the hard case for histograms) alternate with noise.
struct Image {
    pred: Vec<u8>,
    target: Vec<u8>,
    fov: Vec<bool>,
}

fn image() -> Image {
    let mut pred = Vec::with_capacity(W * H);
    let mut target = Vec::with_capacity(W * H);
    let mut fov = Vec::with_capacity(W * H);
    let mut noise: u32 = 12345;
    let class = |x: f64, y: f64, cx: f64, cy: f64| {
        let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
        if d < 200.0 {
            2
        } else if d < 400.0 {
            1
        } else {
            0
        }
    };
    for y in 0..H {
        for x in 0..W {
            let (xf, yf) = (x as f64, y as f64);
            let t = class(xf, yf, 2000.0, 1100.0);
            let mut p = class(xf, yf, 2030.0, 1080.0);
            noise = noise.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            if noise >> 26 == 0 {
                p = ((noise >> 8) % 3) as u8;
            }
            let e = ((xf - 1752.0) / 1700.0).powi(2) + ((yf - 1168.0) / 1150.0).powi(2);
            pred.push(p);
            target.push(t);
            fov.push(e <= 1.0);
        }
    }
    Image { pred, target, fov }
}

fn confusion(c: &mut Criterion) {
    let img = image();
    let bin = |v: &[u8]| v.iter().map(|&l| u8::from(l > 0)).collect::<Vec<u8>>();
    let (pred_bin, target_bin) = (bin(&img.pred), bin(&img.target));
    let pred_bool: Vec<bool> = pred_bin.iter().map(|&l| l == 1).collect();
    let target_bool: Vec<bool> = target_bin.iter().map(|&l| l == 1).collect();

    let mut g = c.benchmark_group("confusion_3504x2336");
    g.throughput(Throughput::Elements((W * H) as u64));
    g.bench_function("binary_bool", |b| {
        b.iter(|| {
            let mut counts = BinaryCounts::default();
            counts
                .try_add(black_box(&pred_bool), black_box(&target_bool))
                .expect("same length");
            counts
        })
    });
    g.bench_function("binary_bool_fov", |b| {
        b.iter(|| {
            let mut counts = BinaryCounts::default();
            counts
                .try_add_masked(
                    black_box(&pred_bool),
                    black_box(&target_bool),
                    black_box(&img.fov),
                )
                .expect("same length");
            counts
        })
    });
    g.bench_function("binary_u8", |b| {
        b.iter(|| {
            let mut cm = ConfusionMatrix::binary();
            cm.try_add(black_box(&pred_bin), black_box(&target_bin))
                .expect("valid labels");
            cm
        })
    });
    g.bench_function("three_class_u8", |b| {
        b.iter(|| {
            let mut cm = ConfusionMatrix::new(3).expect("valid k");
            cm.try_add(black_box(&img.pred), black_box(&img.target))
                .expect("valid labels");
            cm
        })
    });
    g.bench_function("three_class_u8_fov", |b| {
        b.iter(|| {
            let mut cm = ConfusionMatrix::new(3).expect("valid k");
            cm.try_add_masked(
                black_box(&img.pred),
                black_box(&img.target),
                black_box(&img.fov),
            )
            .expect("valid labels");
            cm
        })
    });
    g.finish();
}

criterion_group!(benches, confusion);
criterion_main!(benches);
