//! Times forward and backward of one 3 × 3 padding-1 convolution per shape, with im2col + GEMM,
//! with Winograd F(2×2, 3×3) and with the direct kernels (`ConvAlgorithm::{Im2col, Winograd,
//! Direct}`; by default the fast ops pick per shape), alternating step by step:
//! `MIMALLOC_PURGE_DELAY=-1 cargo run -p mtcool-models --release --example conv_bench -- N C H Cout [...]`
//! (groups of four numbers; default: U-Net-MT's layers at batch 4). Medians of
//! `CONV_BENCH_STEPS` (default 7) steps after one warm-up.

use std::time::Instant;

use candle_core::{Device, Result, Tensor, Var};
use mtcool_models::ops::{conv2d, set_conv_algorithm, ConvAlgorithm, OpsBackend};

// As the binaries: run with MIMALLOC_PURGE_DELAY=-1 to keep freed pages mapped.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn tensor(shape: &[usize], seed: f32) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37 + seed).sin()).collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
}

fn step(x: &Tensor, w: &Var, b: &Var, r: &Tensor) -> Result<(f64, f64)> {
    let t = Instant::now();
    let y = conv2d(x, w.as_tensor(), b.as_tensor(), 1, 1, OpsBackend::Fast)?;
    let f = t.elapsed().as_secs_f64();
    let loss = (y * r)?.sum_all()?;
    let t = Instant::now();
    loss.backward()?;
    Ok((f, t.elapsed().as_secs_f64()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The algorithms compared, in the order of the printed columns.
const ALGORITHMS: [ConvAlgorithm; 3] = [
    ConvAlgorithm::Im2col,
    ConvAlgorithm::Winograd,
    ConvAlgorithm::Direct,
];

/// Forward and backward medians (ms) of each of [`ALGORITHMS`], alternating step by step.
fn time(shape: [usize; 4]) -> Result<Vec<(f64, f64)>> {
    let [n, c, h, cout] = shape;
    // `CONV_BENCH_NO_DX=1`: an input without gradient, so that the backward pass is the
    // kernel (and bias) gradient alone.
    let x = tensor(&[n, c, h, h], 1.0)?;
    let x = if std::env::var_os("CONV_BENCH_NO_DX").is_some() {
        x
    } else {
        Var::from_tensor(&x)?.as_tensor().clone()
    };
    let w = Var::from_tensor(&tensor(&[cout, c, 3, 3], 2.0)?)?;
    let b = Var::from_tensor(&tensor(&[cout], 3.0)?)?;
    let r = tensor(&[n, cout, h, h], 4.0)?;
    let mut times = vec![(Vec::new(), Vec::new()); ALGORITHMS.len()];
    let steps: usize = std::env::var("CONV_BENCH_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    // `CONV_BENCH_ONLY=direct,im2col`: time only these algorithms (the others print NaN).
    let only: Vec<ConvAlgorithm> = std::env::var("CONV_BENCH_ONLY")
        .unwrap_or_default()
        .split(',')
        .filter_map(ConvAlgorithm::parse)
        .collect();
    for i in 0..=steps {
        for (algorithm, t) in ALGORITHMS.into_iter().zip(times.iter_mut()) {
            if !only.is_empty() && !only.contains(&algorithm) {
                continue;
            }
            set_conv_algorithm(algorithm);
            let (f, bk) = step(&x, &w, &b, &r)?;
            if i > 0 {
                t.0.push(f * 1e3);
                t.1.push(bk * 1e3);
            }
        }
    }
    Ok(times
        .into_iter()
        .map(|(f, b)| (median(f), median(b)))
        .collect())
}

fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let shapes: Vec<[usize; 4]> = if args.is_empty() {
        vec![
            [4, 16, 256, 16],
            [4, 32, 256, 16],
            [4, 16, 128, 32],
            [4, 32, 128, 32],
            [4, 64, 128, 32],
            [4, 32, 64, 64],
            [4, 64, 64, 64],
            [4, 128, 64, 64],
            [4, 64, 32, 128],
            [4, 128, 32, 128],
            [4, 256, 32, 128],
            [4, 128, 16, 256],
            [4, 256, 16, 256],
        ]
    } else {
        args.chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect()
    };
    for s in shapes {
        let t = time(s)?;
        let (a, w, d) = (t[0], t[1], t[2]);
        println!(
            "{s:?}: im2col {:.2} + {:.2} ms, winograd {:.2} + {:.2} ms, direct {:.2} + {:.2} ms; \
             vs im2col: winograd {:.2}x / {:.2}x, direct {:.2}x / {:.2}x",
            a.0,
            a.1,
            w.0,
            w.1,
            d.0,
            d.1,
            a.0 / w.0,
            a.1 / w.1,
            a.0 / d.0,
            a.1 / d.1
        );
    }
    Ok(())
}
