//! Times forward and backward of one 3 × 3 padding-1 convolution per shape, with im2col + GEMM
//! and with Winograd F(2×2, 3×3) (`Winograd::Always`; by default the fast ops pick it only
//! where it is faster), alternating step by step:
//! `MIMALLOC_PURGE_DELAY=-1 cargo run -p mtcool-models --release --example conv_bench -- N C H Cout [...]`
//! (groups of four numbers; default: U-Net-MT's layers at batch 4). Medians of
//! `CONV_BENCH_STEPS` (default 7) steps after one warm-up.

use std::time::Instant;

use candle_core::{Device, Result, Tensor, Var};
use mtcool_models::ops::{conv2d, set_winograd, OpsBackend, Winograd};

// As the binaries: run with MIMALLOC_PURGE_DELAY=-1 to keep freed pages mapped.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn tensor(shape: &[usize], seed: f32) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37 + seed).sin()).collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
}

fn step(x: &Var, w: &Var, b: &Var, r: &Tensor) -> Result<(f64, f64)> {
    let t = Instant::now();
    let y = conv2d(
        x.as_tensor(),
        w.as_tensor(),
        b.as_tensor(),
        1,
        1,
        OpsBackend::Fast,
    )?;
    let f = t.elapsed().as_secs_f64();
    let loss = (y * r)?.sum_all()?;
    let t = Instant::now();
    loss.backward()?;
    Ok((f, t.elapsed().as_secs_f64()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Forward and backward medians (ms) with im2col and with Winograd,
/// alternating step by step.
fn time(shape: [usize; 4]) -> Result<Vec<(f64, f64)>> {
    let [n, c, h, cout] = shape;
    let x = Var::from_tensor(&tensor(&[n, c, h, h], 1.0)?)?;
    let w = Var::from_tensor(&tensor(&[cout, c, 3, 3], 2.0)?)?;
    let b = Var::from_tensor(&tensor(&[cout], 3.0)?)?;
    let r = tensor(&[n, cout, h, h], 4.0)?;
    let mut times = vec![(Vec::new(), Vec::new()); 2];
    let steps: usize = std::env::var("CONV_BENCH_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    for i in 0..=steps {
        for (mode, t) in [Winograd::Off, Winograd::Always]
            .into_iter()
            .zip(times.iter_mut())
        {
            set_winograd(mode);
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
        let (a, b) = (t[0], t[1]);
        println!(
            "{s:?}: im2col {:.2} + {:.2} ms, winograd {:.2} + {:.2} ms: forward {:.2}x, backward {:.2}x",
            a.0, a.1, b.0, b.1, a.0 / b.0, a.1 / b.1
        );
    }
    Ok(())
}
