//! The fast ops of `mtcool_models::ops` against candle's own: values and gradients.
//!
//! Timings: `cargo run -p mtcool-models --release --example ops_bench`.
#![allow(clippy::unwrap_used)]

use candle_core::{DType, Device, Result, Tensor, Var};
use mtcool_models::ops::{conv2d, max_pool2d, OpsBackend};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const TOL: f32 = 1e-4;

fn randn(shape: &[usize], seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = shape.iter().product();
    (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
}

fn tensor(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_vec(randn(shape, seed), shape, &Device::Cpu).unwrap()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Max |a − b| ≤ TOL · max(1, max |b|): values and gradients are sums of up to thousands of
/// products, so the bound is relative to the reference's scale.
fn assert_close(what: &str, a: &Tensor, b: &Tensor) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let (a, b) = (flat(a), flat(b));
    let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
    let diff = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        diff <= TOL * scale,
        "{what}: max diff {diff} (scale {scale})"
    );
}

/// Conv shape: (N, C, H, W, Cout, k, stride, padding).
type ConvCase = (usize, usize, usize, usize, usize, usize, usize, usize);

const CONV_CASES: &[ConvCase] = &[
    (1, 1, 5, 7, 1, 3, 1, 0),
    (1, 1, 5, 7, 2, 3, 2, 1),
    (1, 3, 9, 8, 4, 3, 2, 1),
    (2, 1, 28, 28, 10, 5, 1, 0),
    (3, 10, 12, 12, 20, 5, 1, 0),
    (5, 7, 11, 13, 6, 3, 2, 0),
    (4, 16, 10, 9, 8, 3, 1, 1),
    (2, 5, 6, 6, 3, 1, 1, 0),
    (3, 4, 8, 9, 5, 4, 2, 1),
    (1, 2, 3, 3, 2, 3, 1, 1),
    (37, 3, 10, 10, 4, 3, 1, 1),
    (67, 10, 12, 12, 20, 5, 1, 0),
    (2, 1, 28, 28, 10, 5, 2, 1),
    // Large enough that one item is cut into tiles of output rows.
    (2, 32, 40, 41, 16, 3, 1, 1),
    (2, 40, 45, 33, 8, 3, 2, 1),
    (1, 30, 50, 40, 6, 4, 2, 1),
    (1, 24, 37, 30, 8, 3, 2, 1),
    // Cut into several row tiles in the backward pass too (its tiles are larger).
    (1, 16, 70, 66, 16, 3, 1, 1),
    // Padding wider than half the kernel (whole rows and columns of padding), stride 3.
    (2, 3, 6, 5, 4, 3, 1, 2),
    (2, 2, 11, 10, 3, 3, 3, 2),
    // Wide 3 × 3 stride-1 layers: the Winograd path (odd sizes, paddings 0, 1, 2).
    (2, 64, 9, 11, 128, 3, 1, 1),
    (1, 128, 7, 6, 64, 3, 1, 0),
    (3, 64, 5, 4, 130, 3, 1, 2),
    // Narrow 3 × 3 stride-1 layers on rows of 96+ columns: the direct path (a tail of output
    // columns past whole vectors, a remainder of output channels, paddings 0 and 1).
    (2, 5, 7, 101, 6, 3, 1, 1),
    (1, 16, 4, 130, 13, 3, 1, 0),
];

/// Candle's `conv2d` computed on the explicitly zero-padded input cropped to the rows and
/// columns the windows read (then `H − k` is a multiple of the stride): the same values, and a
/// backward pass candle handles for any shape (its own fails when the two axes leave different
/// remainders modulo the stride).
fn candle_reference(x: &Tensor, w: &Tensor, b: &Tensor, s: usize, p: usize) -> Result<Tensor> {
    let (_, _, h, wi) = x.dims4()?;
    let k = w.dim(2)?;
    let xp = x.pad_with_zeros(2, p, p)?.pad_with_zeros(3, p, p)?;
    let (ho, wo) = ((h + 2 * p - k) / s + 1, (wi + 2 * p - k) / s + 1);
    let xp = xp
        .narrow(2, 0, (ho - 1) * s + k)?
        .narrow(3, 0, (wo - 1) * s + k)?;
    conv2d(&xp, w, b, s, 0, OpsBackend::Candle)
}

/// Which implementation a test runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Impl {
    Fast,
    Reference,
}

/// Output, and gradients of `x`, `w`, `b` (those that are `Var`s) for loss = Σ y·r.
fn conv_run(
    which: Impl,
    case: ConvCase,
    seed: u64,
    x_var: bool,
    wb_var: bool,
) -> Result<(Tensor, Vec<Option<Tensor>>)> {
    let (n, c, h, w, cout, k, s, p) = case;
    let x = Var::from_tensor(&tensor(&[n, c, h, w], seed))?;
    let wt = Var::from_tensor(&tensor(&[cout, c, k, k], seed + 1))?;
    let b = Var::from_tensor(&tensor(&[cout], seed + 2))?;
    let xi = if x_var {
        x.as_tensor().clone()
    } else {
        x.as_tensor().detach()
    };
    let (wi, bi) = if wb_var {
        (wt.as_tensor().clone(), b.as_tensor().clone())
    } else {
        (wt.as_tensor().detach(), b.as_tensor().detach())
    };
    let y = match which {
        Impl::Fast => conv2d(&xi, &wi, &bi, s, p, OpsBackend::Fast)?,
        Impl::Reference => candle_reference(&xi, &wi, &bi, s, p)?,
    };
    let r = tensor(y.dims(), seed + 3);
    let grads = (&y * &r)?.sum_all()?.backward()?;
    let g = [x.as_tensor(), wt.as_tensor(), b.as_tensor()]
        .iter()
        .map(|t| grads.get(t).cloned())
        .collect();
    Ok((y, g))
}

#[test]
fn conv2d_fast_matches_candle() {
    for (i, &case) in CONV_CASES.iter().enumerate() {
        let seed = 100 * i as u64;
        let (yc, gc) = conv_run(Impl::Reference, case, seed, true, true).unwrap();
        let (yf, gf) = conv_run(Impl::Fast, case, seed, true, true).unwrap();
        assert_close(&format!("{case:?} y"), &yf, &yc);
        for (name, (f, c)) in ["dx", "dw", "db"].iter().zip(gf.iter().zip(&gc)) {
            let (f, c) = (f.as_ref().unwrap(), c.as_ref().unwrap());
            assert_close(&format!("{case:?} {name}"), f, c);
        }
        // Values also equal candle's conv2d on the unpadded input (the Candle backend).
        let (n, c, h, w, cout, k, s, p) = case;
        let x = tensor(&[n, c, h, w], seed);
        let wt = tensor(&[cout, c, k, k], seed + 1);
        let b = tensor(&[cout], seed + 2);
        let yb = conv2d(&x, &wt, &b, s, p, OpsBackend::Candle).unwrap();
        assert_close(&format!("{case:?} y (Candle backend)"), &yf, &yb);
    }
}

/// Where candle's own backward pass works, the Candle backend's gradients equal the fast ones.
#[test]
fn conv2d_fast_matches_candle_backend_gradients() {
    for (i, &case) in CONV_CASES.iter().enumerate() {
        let (_, _, h, w, _, k, s, p) = case;
        if (h + 2 * p - k) % s != (w + 2 * p - k) % s {
            continue;
        }
        let seed = 100 * i as u64 + 5;
        let (n, c, h, w, cout, k, s, p) = case;
        let run = |backend| {
            let x = Var::from_tensor(&tensor(&[n, c, h, w], seed)).unwrap();
            let wt = Var::from_tensor(&tensor(&[cout, c, k, k], seed + 1)).unwrap();
            let b = Var::from_tensor(&tensor(&[cout], seed + 2)).unwrap();
            let y = conv2d(&x, &wt, &b, s, p, backend).unwrap();
            let r = tensor(y.dims(), seed + 3);
            let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            [x.as_tensor(), wt.as_tensor(), b.as_tensor()].map(|t| g.get(t).unwrap().clone())
        };
        let (gc, gf) = (run(OpsBackend::Candle), run(OpsBackend::Fast));
        for (name, (f, c)) in ["dx", "dw", "db"].iter().zip(gf.iter().zip(&gc)) {
            assert_close(&format!("{case:?} {name} (Candle backend)"), f, c);
        }
    }
}

#[test]
fn conv2d_fast_gradients_only_where_tracked() {
    for &case in &[CONV_CASES[4], CONV_CASES[6], CONV_CASES[11]] {
        // Input without gradient (an image batch): kernel and bias gradients only.
        let (_, gc) = conv_run(Impl::Reference, case, 7, false, true).unwrap();
        let (_, gf) = conv_run(Impl::Fast, case, 7, false, true).unwrap();
        assert!(gf[0].is_none());
        assert_close("dw", gf[1].as_ref().unwrap(), gc[1].as_ref().unwrap());
        assert_close("db", gf[2].as_ref().unwrap(), gc[2].as_ref().unwrap());
        // Frozen kernel and bias: input gradient only.
        let (_, gc) = conv_run(Impl::Reference, case, 8, true, false).unwrap();
        let (_, gf) = conv_run(Impl::Fast, case, 8, true, false).unwrap();
        assert!(gf[1].is_none() && gf[2].is_none());
        assert_close("dx", gf[0].as_ref().unwrap(), gc[0].as_ref().unwrap());
    }
}

#[test]
fn conv2d_fast_accepts_strided_operands() {
    // A transposed input and a narrowed kernel (as partitioned layers produce).
    let x = tensor(&[2, 3, 9, 7], 1).transpose(2, 3).unwrap();
    let w = tensor(&[6, 3, 3, 3], 2).narrow(0, 1, 4).unwrap();
    let b = tensor(&[4], 3);
    let yc = conv2d(&x, &w, &b, 1, 1, OpsBackend::Candle).unwrap();
    let yf = conv2d(&x, &w, &b, 1, 1, OpsBackend::Fast).unwrap();
    assert_close("strided", &yf, &yc);
}

#[test]
fn conv2d_fast_finite_differences() {
    // loss = Σ y²·r is quadratic in each parameter, so central differences are exact up to
    // rounding; the loss itself is summed in f64.
    let (n, c, h, w, cout, k, s, p) = (2, 2, 6, 5, 3, 3, 2, 1);
    let xv = randn(&[n, c, h, w], 11);
    let wv = randn(&[cout, c, k, k], 12);
    let bv = randn(&[cout], 13);
    let dev = Device::Cpu;
    let loss = |xv: &[f32], wv: &[f32], bv: &[f32]| -> f64 {
        let x = Tensor::from_slice(xv, (n, c, h, w), &dev).unwrap();
        let wt = Tensor::from_slice(wv, (cout, c, k, k), &dev).unwrap();
        let b = Tensor::from_slice(bv, cout, &dev).unwrap();
        let y = flat(&conv2d(&x, &wt, &b, s, p, OpsBackend::Fast).unwrap());
        let r = randn(&[y.len()], 14);
        y.iter()
            .zip(&r)
            .map(|(&y, &r)| f64::from(y) * f64::from(y) * f64::from(r))
            .sum()
    };
    let x = Var::from_slice(&xv, (n, c, h, w), &dev).unwrap();
    let wt = Var::from_slice(&wv, (cout, c, k, k), &dev).unwrap();
    let b = Var::from_slice(&bv, cout, &dev).unwrap();
    let y = conv2d(&x, &wt, &b, s, p, OpsBackend::Fast).unwrap();
    let r = Tensor::from_vec(randn(&[y.elem_count()], 14), y.shape(), &dev).unwrap();
    let grads = (y.sqr().unwrap() * r)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let eps = 0.25f32;
    let mut worst = 0f64;
    for which in 0..3 {
        let (var, base): (&Var, &[f32]) = match which {
            0 => (&x, &xv),
            1 => (&wt, &wv),
            _ => (&b, &bv),
        };
        let analytic = flat(grads.get(var.as_tensor()).unwrap());
        for i in 0..base.len() {
            let mut plus = base.to_vec();
            let mut minus = base.to_vec();
            plus[i] += eps;
            minus[i] -= eps;
            let (lp, lm) = match which {
                0 => (loss(&plus, &wv, &bv), loss(&minus, &wv, &bv)),
                1 => (loss(&xv, &plus, &bv), loss(&xv, &minus, &bv)),
                _ => (loss(&xv, &wv, &plus), loss(&xv, &wv, &minus)),
            };
            // The step actually taken in f32.
            let step = f64::from(plus[i]) - f64::from(minus[i]);
            let numeric = (lp - lm) / step;
            let err = (numeric - f64::from(analytic[i])).abs() / numeric.abs().max(1.0);
            worst = worst.max(err);
        }
    }
    assert!(
        worst < 1e-3,
        "finite differences: worst relative error {worst}"
    );
}

/// Pool shape: (N, C, H, W, k).
const POOL_CASES: &[(usize, usize, usize, usize, usize)] = &[
    (1, 1, 4, 4, 2),
    (1, 1, 5, 7, 2),
    (2, 3, 9, 9, 3),
    (3, 10, 24, 24, 2),
    (2, 20, 8, 8, 2),
    (2, 2, 7, 6, 4),
    (64, 10, 24, 24, 2),
    (1, 5, 11, 10, 3),
];

/// Max pooling and its gradient (to the first maximum of each window) by plain loops.
fn naive_pool(
    x: &[f32],
    dy: &[f32],
    dims: (usize, usize, usize, usize),
    k: usize,
) -> (Vec<f32>, Vec<f32>) {
    let (n, c, h, w) = dims;
    let (ho, wo) = (h / k, w / k);
    let mut y = vec![0f32; n * c * ho * wo];
    let mut dx = vec![0f32; n * c * h * w];
    for plane in 0..n * c {
        for oh in 0..ho {
            for ow in 0..wo {
                let mut best = plane * h * w + oh * k * w + ow * k;
                for kh in 0..k {
                    for kw in 0..k {
                        let i = plane * h * w + (oh * k + kh) * w + ow * k + kw;
                        if x[i] > x[best] {
                            best = i;
                        }
                    }
                }
                let o = plane * ho * wo + oh * wo + ow;
                y[o] = x[best];
                dx[best] += dy[o];
            }
        }
    }
    (y, dx)
}

#[test]
fn max_pool2d_fast_matches_reference() {
    for (i, &(n, c, h, w, k)) in POOL_CASES.iter().enumerate() {
        let seed = 1000 + i as u64;
        let case = (n, c, h, w, k);
        let run = |backend| {
            let x = Var::from_tensor(&tensor(&[n, c, h, w], seed)).unwrap();
            let y = max_pool2d(x.as_tensor(), k, backend).unwrap();
            assert_eq!(y.dims(), &[n, c, h / k, w / k]);
            let r = tensor(y.dims(), seed + 1);
            let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            (y, grads.get(x.as_tensor()).unwrap().clone())
        };
        let (yf, gf) = run(OpsBackend::Fast);
        let (want_y, want_dx) = naive_pool(
            &randn(&[n, c, h, w], seed),
            &randn(&[n, c, h / k, w / k], seed + 1),
            (n, c, h, w),
            k,
        );
        assert_eq!(flat(&yf), want_y, "pool {case:?} y");
        assert_eq!(flat(&gf), want_dx, "pool {case:?} dx");
        // Candle's max_pool2d: the same values; with sizes that are multiples of k, the same
        // gradient divided by k² (candle 0.11.1 scales a unique maximum's gradient by 1/k²).
        let (yc, gc) = run(OpsBackend::Candle);
        assert_close(&format!("pool {case:?} y (Candle backend)"), &yf, &yc);
        if h % k == 0 && w % k == 0 {
            let gc = (gc * (k * k) as f64).unwrap();
            assert_close(&format!("pool {case:?} dx (Candle backend · k²)"), &gf, &gc);
        }
    }
}

#[test]
fn max_pool2d_fast_gradient_goes_to_first_maximum() {
    let x = Var::from_vec(
        vec![
            1f32, 3., 3., 0., 2., 2., 2., 2., -1., -1., -1., -1., 5., 0., 0., 0.,
        ],
        (1, 1, 4, 4),
        &Device::Cpu,
    )
    .unwrap();
    let y = max_pool2d(x.as_tensor(), 2, OpsBackend::Fast).unwrap();
    assert_eq!(flat(&y), [3., 3., 5., 0.]);
    let g = y.sum_all().unwrap().backward().unwrap();
    let dx = flat(g.get(x.as_tensor()).unwrap());
    let mut want = vec![0f32; 16];
    for i in [1, 2, 12, 14] {
        want[i] = 1.0;
    }
    assert_eq!(dx, want);
}

#[test]
fn ops_backend_parses_and_prints() {
    for b in [OpsBackend::Candle, OpsBackend::Fast] {
        assert_eq!(b.to_string().parse::<OpsBackend>().unwrap(), b);
    }
    assert_eq!("FAST".parse::<OpsBackend>().unwrap(), OpsBackend::Fast);
    assert!("cudnn".parse::<OpsBackend>().is_err());
    assert_eq!(OpsBackend::default(), OpsBackend::Fast);
}

#[test]
fn non_f32_falls_back_to_candle() {
    let x = tensor(&[2, 3, 7, 7], 5).to_dtype(DType::F64).unwrap();
    let w = tensor(&[4, 3, 3, 3], 6).to_dtype(DType::F64).unwrap();
    let b = tensor(&[4], 7).to_dtype(DType::F64).unwrap();
    let yf = conv2d(&x, &w, &b, 1, 1, OpsBackend::Fast).unwrap();
    let yc = conv2d(&x, &w, &b, 1, 1, OpsBackend::Candle).unwrap();
    assert_eq!(yf.dtype(), DType::F64);
    let d = (yf - yc).unwrap().abs().unwrap().max_all().unwrap();
    assert_eq!(d.to_scalar::<f64>().unwrap(), 0.0);
    let p = max_pool2d(&x, 2, OpsBackend::Fast).unwrap();
    assert_eq!(p.dims(), &[2, 3, 3, 3]);
}
