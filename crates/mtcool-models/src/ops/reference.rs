//! Test support for the 3 × 3 convolution paths: a direct f64 correlation and checks of a
//! path's forward pass and gradients against it, on shapes with odd and even sizes, every
//! padding, one-row images, several vectors, blocks and bands.

use candle_core::Result;

use super::plane::Plane;

/// A forward pass `(plane, x, w, bias) → y`.
pub(super) type Forward = fn(&Plane, &[f32], &[f32], &[f32]) -> Result<Vec<f32>>;
/// An input gradient `(plane, w, dy) → dx`.
pub(super) type InputGrad = fn(&Plane, &[f32], &[f32]) -> Result<Vec<f32>>;
/// A kernel gradient `(plane, x, dy) → dw`.
pub(super) type KernelGrad = fn(&Plane, &[f32], &[f32]) -> Result<Vec<f32>>;

/// Direct stride-1 3 × 3 correlation with zero padding, in f64.
pub(super) fn naive(p: &Plane, x: &[f32], w: &[f32]) -> Vec<f64> {
    let (ho, wo) = (p.ho(), p.wo());
    let mut out = vec![0f64; p.n * p.cout * ho * wo];
    for n in 0..p.n {
        for o in 0..p.cout {
            for i in 0..ho {
                for j in 0..wo {
                    let mut s = 0f64;
                    for c in 0..p.cin {
                        for a in 0..3 {
                            for b in 0..3 {
                                let (ih, iw) = (i + a, j + b);
                                if ih < p.pad || iw < p.pad {
                                    continue;
                                }
                                let (ih, iw) = (ih - p.pad, iw - p.pad);
                                if ih >= p.h || iw >= p.w {
                                    continue;
                                }
                                let xv = x[((n * p.cin + c) * p.h + ih) * p.w + iw];
                                let wv = w[((o * p.cin + c) * 3 + a) * 3 + b];
                                s += f64::from(xv) * f64::from(wv);
                            }
                        }
                    }
                    out[((n * p.cout + o) * ho + i) * wo + j] = s;
                }
            }
        }
    }
    out
}

pub(super) fn values(len: usize, seed: f32) -> Vec<f32> {
    (0..len)
        .map(|i| ((i as f32 * 0.7311 + seed).sin() * 43.17).fract())
        .collect()
}

pub(super) fn assert_close(what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(*g) - w).abs() <= 1e-5 * scale,
            "{what}[{i}]: {g} vs {w} (scale {scale})"
        );
    }
}

/// `(n, cin, h, w, cout, pad)` of the checked convolutions.
const SHAPES: &[(usize, usize, usize, usize, usize, usize)] = &[
    // (n, cin, h, w, cout, pad): odd and even sizes, every padding, one-row images.
    (1, 1, 3, 3, 1, 0),
    (2, 3, 5, 7, 4, 1),
    (3, 2, 6, 6, 5, 1),
    (1, 4, 7, 4, 3, 2),
    (2, 5, 1, 9, 2, 1),
    (2, 3, 9, 5, 2, 0),
    // Wide enough to be cut into several chunks of tile rows, one spanning two items.
    (2, 4, 70, 67, 3, 1),
    (2, 64, 40, 37, 48, 1),
    (1, 130, 9, 11, 70, 1),
    // Blocks of output channels with a remainder, vectors of 16 columns with a tail.
    (1, 16, 34, 80, 13, 1),
];

/// Shape `s` of [`SHAPES`] with its input and kernel values.
fn case(s: usize) -> (Plane, Vec<f32>, Vec<f32>) {
    let (n, cin, h, w, cout, pad) = SHAPES[s];
    let p = Plane {
        n,
        cin,
        h,
        w,
        cout,
        pad,
    };
    let x = values(n * cin * h * w, s as f32);
    let k = values(cout * cin * 9, 10.0 + s as f32);
    (p, x, k)
}

/// Checks a forward pass against [`naive`] plus the bias on every shape of [`SHAPES`].
pub(super) fn check_forward(forward: Forward) {
    for (s, shape) in SHAPES.iter().enumerate() {
        let (p, x, k) = case(s);
        let cout = p.cout;
        let bias = values(cout, 20.0);
        let mut want = naive(&p, &x, &k);
        let plane = p.ho() * p.wo();
        for (i, v) in want.iter_mut().enumerate() {
            *v += f64::from(bias[i / plane % cout]);
        }
        let got = forward(&p, &x, &k, &bias).unwrap();
        assert_close(&format!("{shape:?} y"), &got, &want);
    }
}

/// Checks input and kernel gradients against the adjoints of [`naive`] on every shape of
/// [`SHAPES`].
pub(super) fn check_gradients(input_grad: InputGrad, kernel_grad: KernelGrad) {
    for (s, shape) in SHAPES.iter().enumerate() {
        let (p, x, k) = case(s);
        let Plane {
            n,
            cin,
            h,
            w,
            cout,
            pad,
        } = p;
        let dy = values(n * cout * p.ho() * p.wo(), 30.0 + s as f32);
        // dx = the direct correlation of dy with the turned, transposed kernel.
        let mut kt = vec![0f32; k.len()];
        for o in 0..cout {
            for c in 0..cin {
                for e in 0..9 {
                    kt[(c * cout + o) * 9 + 8 - e] = k[(o * cin + c) * 9 + e];
                }
            }
        }
        let want_dx = naive(&p.transposed(), &dy, &kt);
        let got_dx = input_grad(&p, &k, &dy).unwrap();
        assert_close(&format!("{shape:?} dx"), &got_dx, &want_dx);
        // dw[o][c][a][b] = Σ dy[o][i][j] · x_padded[c][i + a][j + b]
        let (ho, wo) = (p.ho(), p.wo());
        let mut want_dw = vec![0f64; k.len()];
        for (e, dwv) in want_dw.iter_mut().enumerate() {
            let (o, c, a, b) = (e / (9 * cin), e / 9 % cin, e / 3 % 3, e % 3);
            for item in 0..n {
                for i in 0..ho {
                    for j in 0..wo {
                        let (ih, iw) = (i + a, j + b);
                        if ih < pad || iw < pad || ih - pad >= h || iw - pad >= w {
                            continue;
                        }
                        let xv = x[((item * cin + c) * h + ih - pad) * w + iw - pad];
                        let g = dy[((item * cout + o) * ho + i) * wo + j];
                        *dwv += f64::from(xv) * f64::from(g);
                    }
                }
            }
        }
        let got_dw = kernel_grad(&p, &x, &dy).unwrap();
        assert_close(&format!("{shape:?} dw"), &got_dw, &want_dw);
    }
}

/// Forward, input gradient and kernel gradient of `p` on 1 and on 3 threads: the results must
/// be bit-identical.
pub(super) fn check_thread_independence(
    p: &Plane,
    forward: Forward,
    input_grad: InputGrad,
    kernel_grad: KernelGrad,
) {
    let x = values(p.n * p.cin * p.h * p.w, 1.0);
    let k = values(p.cout * p.cin * 9, 2.0);
    let dy = values(p.n * p.cout * p.ho() * p.wo(), 3.0);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let y = forward(p, &x, &k, &k[..p.cout]).unwrap();
            let dx = input_grad(p, &k, &dy).unwrap();
            let dw = kernel_grad(p, &x, &dy).unwrap();
            (y, dx, dw)
        })
    };
    assert_eq!(run(1), run(3));
}
