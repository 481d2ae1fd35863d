//! 3 × 3, stride-1 convolutions computed directly, for layers with few channels.
//!
//! im2col + GEMM spends much of its time on the column matrix and on products whose shapes
//! suit GEMM badly when a layer has 16–32 channels on large images (U-Net-MT's first two
//! levels), and Winograd's transforms cost more than the multiplications they save there. This
//! path reads the zero-padded input in place instead, one SIMD vector of output columns at a
//! time:
//!
//! - forward: a block of `OUT_BLOCK` output channels × R vectors of one output row stays in
//!   registers while every `(c, kh, kw)` adds `w[o][c][kh][kw] · x[c][h+kh][w+kw…]` (one
//!   broadcast weight times one shifted input vector); input channels go in chunks whose rows
//!   fit L1 (the row's sums wait in scratch between chunks), and each task pads one band of
//!   input rows at a time into per-thread scratch;
//! - input gradient: the same correlation, of the output gradient with the kernel turned by
//!   180° and its channel axes swapped, padding `2 − p`;
//! - kernel gradient: `dw[o][c][kh][kw] = Σ dy[o][h][w] · x[c][h+kh][w+kw]`, with O × 3
//!   lane-wise sums in registers over a band of positions, kept per lane in scratch between
//!   bands and summed over the lanes at the end of a task.
//!
//! Output channel blocks of the forward and input-gradient passes are independent tasks;
//! kernel gradients are summed per task (item and fixed band of rows) and the partial sums
//! added in task order, so every result is the same whatever the thread count. The vectors are
//! `pulp`'s (16 lanes on AVX-512, 8 on AVX2, fused multiply-adds): each output of the forward
//! and input gradient is the same sum in the same order on either, but the kernel gradient's
//! lane sums are grouped by the vector width, so it rounds differently on AVX2 and AVX-512.

use rayon::prelude::*;

use candle_core::Result;
use pulp::{Simd, WithSimd};

use super::plane::Plane;
use super::scratch;

/// Columns of the padded layouts are rounded up to whole vectors of this many floats (the
/// widest instruction set's; narrower vectors divide it).
const ROW_ALIGN: usize = 16;

/// Output channels per register block of the forward pass.
const OUT_BLOCK: usize = 4;
/// Bytes of input rows one pass of the forward kernel keeps in L1 (of 32–48 KiB).
const L1_BUDGET: usize = 24 << 10;
/// Floats of padded input rows per band of the forward pass (256 KiB, in L2).
const BAND_ELEMS: usize = 1 << 16;
/// Output channels per forward task.
const TASK_CHANNELS: usize = 8;
/// Output rows per kernel-gradient task (a fixed cut, for thread-count-independent sums).
const GRAD_TASK_ROWS: usize = 64;
/// Output positions per band of the kernel gradient, whose sums stay in registers.
const GRAD_BAND_POSITIONS: usize = 512;

/// Whether a 3 × 3 stride-1 layer with `wo` output columns is narrow and wide enough for the
/// direct kernels to beat im2col + GEMM: at most 32 channels on one side and 64 on the
/// other, rows of at least 96 columns (measured per layer shape on 2 threads with
/// `examples/conv_bench.rs`: with 64 channels on both sides, or on 64-column rows, im2col is
/// as fast or faster).
pub(super) fn narrow(cin: usize, cout: usize, wo: usize) -> bool {
    cin.min(cout) <= 32 && cin.max(cout) <= 64 && wo >= MIN_DIRECT_COLUMNS
}

/// Fewest output columns for the direct path in `Auto` mode.
const MIN_DIRECT_COLUMNS: usize = 96;

/// The vector of `S` at `s[at..]` (unaligned).
#[inline(always)]
fn load<S: Simd>(s: &[f32], at: usize) -> S::f32s {
    bytemuck::pod_read_unaligned(bytemuck::cast_slice(&s[at..at + S::F32_LANES]))
}

/// Stores vector `v` of `S` at `s[at..]` (unaligned).
#[inline(always)]
fn store<S: Simd>(s: &mut [f32], at: usize, v: S::f32s) {
    s[at..at + S::F32_LANES].copy_from_slice(bytemuck::cast_slice(std::slice::from_ref(&v)));
}

/// Columns of the rounded-up output row.
fn round_up(wo: usize) -> usize {
    wo.div_ceil(ROW_ALIGN) * ROW_ALIGN
}

/// The planes a correlation reads: one item's `ch` planes of `h × w`, zero-padded by `pad`.
#[derive(Clone, Copy)]
struct Source<'a> {
    item: &'a [f32],
    ch: usize,
    h: usize,
    w: usize,
    pad: usize,
}

impl<'a> Source<'a> {
    /// Item `item` (its `cin` planes) of the input `x` of `p`.
    fn input(p: &Plane, x: &'a [f32], item: usize) -> Self {
        let len = p.cin * p.h * p.w;
        Self {
            item: &x[item * len..][..len],
            ch: p.cin,
            h: p.h,
            w: p.w,
            pad: p.pad,
        }
    }
}

/// Zero-padded rows of a [`Source`]: `x[c][i][j]` at `[c][i + pad − r0][j + pad]` for the
/// padded rows `r0 .. r0 + rows`, `width` columns.
struct Padded {
    data: Vec<f32>,
    rows: usize,
    width: usize,
}

impl Padded {
    /// Padded rows `r0 .. r0 + rows` of `src`, `width` columns (at least `w + pad`), written
    /// into `buf` (a reused scratch buffer).
    fn fill(mut buf: Vec<f32>, src: Source<'_>, (r0, rows): (usize, usize), width: usize) -> Self {
        let Source {
            item,
            ch,
            h,
            w,
            pad,
        } = src;
        buf.clear();
        buf.resize(ch * rows * width, 0.0);
        for (c, plane) in buf.chunks_exact_mut(rows * width).enumerate() {
            for (i, row) in plane.chunks_exact_mut(width).enumerate() {
                let ih = (r0 + i) as isize - pad as isize;
                if ih >= 0 && (ih as usize) < h {
                    let from = &item[(c * h + ih as usize) * w..][..w];
                    row[pad..pad + w].copy_from_slice(from);
                }
            }
        }
        Self {
            data: buf,
            rows,
            width,
        }
    }

    fn planes(&self) -> usize {
        self.data.len() / (self.rows * self.width)
    }

    fn row(&self, c: usize, i: usize) -> &[f32] {
        &self.data[(c * self.rows + i) * self.width..][..self.width]
    }
}

/// `packed[(c·3 + kh)·3 + kw][o]` = `w[o][c][kh][kw]`, or, `flipped`, the input gradient's
/// kernel `packed[(o·3 + a)·3 + b][c]` = `w[o][c][2 − a][2 − b]`.
fn pack_kernel(w: &[f32], cout: usize, cin: usize, flipped: bool) -> Vec<f32> {
    let mut packed = vec![0f32; w.len()];
    for o in 0..cout {
        for c in 0..cin {
            for t in 0..9 {
                let v = w[(o * cin + c) * 9 + t];
                if flipped {
                    packed[(o * 9 + 8 - t) * cin + c] = v;
                } else {
                    packed[(c * 9 + t) * cout + o] = v;
                }
            }
        }
    }
    packed
}

/// A band of one item's correlation: its padded rows (from output row `r0` on) and the
/// packed kernel, with the output's shape.
#[derive(Clone, Copy)]
struct Correlation<'a> {
    src: &'a Padded,
    r0: usize,
    kernel: &'a [f32],
    cout: usize,
    ho: usize,
    wo: usize,
}

/// One forward task: output channels `o0 ..` of one item (`out` holds them, `ho × wo` each).
struct ChannelTask<'a> {
    src: Source<'a>,
    kernel: &'a [f32],
    cout: usize,
    o0: usize,
    bias: Option<&'a [f32]>,
    out: &'a mut [f32],
    ho: usize,
    wo: usize,
}

impl WithSimd for ChannelTask<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        // Register blocks: OUT_BLOCK channels × R vectors (16 sums on AVX-512 and AVX2).
        if S::F32_LANES >= 16 {
            self.run::<S, 4>(simd);
        } else {
            self.run::<S, 2>(simd);
        }
    }
}

impl ChannelTask<'_> {
    /// The task's output, one band of rows at a time: the band's padded input rows are
    /// copied into scratch once and serve every block of output channels.
    #[inline(always)]
    fn run<S: Simd, const R: usize>(self, simd: S) {
        let (ho, wo) = (self.ho, self.wo);
        let plane = ho * wo;
        let channels = self.out.len() / plane;
        let width = round_up(wo) + 2;
        let band = (BAND_ELEMS / (self.src.ch * width))
            .saturating_sub(2)
            .max(1);
        let mut buf = scratch::take(0, 0);
        let mut sums = scratch::take(1, OUT_BLOCK * round_up(wo));
        for r0 in (0..ho).step_by(band) {
            let rows = r0..(r0 + band).min(ho);
            let padded = Padded::fill(buf, self.src, (r0, rows.len() + 2), width);
            let corr = Correlation {
                src: &padded,
                r0,
                kernel: self.kernel,
                cout: self.cout,
                ho,
                wo,
            };
            let mut o = 0;
            while o < channels {
                let n = if channels - o >= OUT_BLOCK {
                    OUT_BLOCK
                } else {
                    1
                };
                let mut init = [0f32; OUT_BLOCK];
                if let Some(b) = self.bias {
                    init[..n].copy_from_slice(&b[self.o0 + o..self.o0 + o + n]);
                }
                let dst = &mut self.out[o * plane..(o + n) * plane];
                let at = (self.o0 + o, init, rows.clone());
                if n == OUT_BLOCK {
                    corr.rows::<S, OUT_BLOCK, R>(simd, at, dst, &mut sums);
                } else {
                    corr.rows::<S, 1, R>(simd, at, dst, &mut sums);
                }
                o += n;
            }
            buf = padded.data;
        }
        scratch::put(0, buf);
        scratch::put(1, sums);
    }
}

impl Correlation<'_> {
    /// Input channels per pass over an output row: their three input rows stay in L1 while
    /// the row's vectors are swept (several dozen rows would each be a stream of L2 misses).
    fn channel_chunk(&self) -> usize {
        let row_bytes = 3 * self.src.width * std::mem::size_of::<f32>();
        (L1_BUDGET / row_bytes).clamp(1, self.src.planes())
    }

    /// Output rows `rows` of channels `o0 .. o0 + O`, starting from `init`, into `out`. A
    /// row's sums are built in `sums` (whole vectors), one chunk of input channels at a time.
    #[inline(always)]
    fn rows<S: Simd, const O: usize, const R: usize>(
        &self,
        simd: S,
        (o0, init, rows): (usize, [f32; OUT_BLOCK], std::ops::Range<usize>),
        out: &mut [f32],
        sums: &mut [f32],
    ) {
        let (ho, wo, lanes) = (self.ho, self.wo, S::F32_LANES);
        let wr = round_up(wo);
        let vectors = wr / lanes;
        let (cin, chunk) = (self.src.planes(), self.channel_chunk());
        let sums = &mut sums[..O * wr];
        for h in rows {
            for (o, row) in sums.chunks_exact_mut(wr).enumerate() {
                row.fill(init[o]);
            }
            for c0 in (0..cin).step_by(chunk) {
                let channels = c0..(c0 + chunk).min(cin);
                let mut v0 = 0;
                while v0 + R <= vectors {
                    self.block::<S, O, R>(simd, (o0, h, v0), channels.clone(), sums);
                    v0 += R;
                }
                for v in v0..vectors {
                    self.block::<S, O, 1>(simd, (o0, h, v), channels.clone(), sums);
                }
            }
            for (o, row) in sums.chunks_exact(wr).enumerate() {
                out[(o * ho + h) * wo..][..wo].copy_from_slice(&row[..wo]);
            }
        }
    }

    /// One register block: channels `o0 .. o0 + O`, vectors `v0 .. v0 + R` of output row `h`,
    /// adding every `(c, kh, kw)` of `channels` to the row sums `sums` (`O × round_up(wo)`).
    #[inline(always)]
    fn block<S: Simd, const O: usize, const R: usize>(
        &self,
        simd: S,
        (o0, h, v0): (usize, usize, usize),
        channels: std::ops::Range<usize>,
        sums: &mut [f32],
    ) {
        let lanes = S::F32_LANES;
        let wr = sums.len() / O;
        let at = |o: usize, r: usize| o * wr + (v0 + r) * lanes;
        let mut acc: [[S::f32s; R]; O] =
            std::array::from_fn(|o| std::array::from_fn(|r| load::<S>(sums, at(o, r))));
        for c in channels {
            for kh in 0..3 {
                let row = self.src.row(c, h - self.r0 + kh);
                let win = &row[v0 * lanes..v0 * lanes + R * lanes + 2];
                let taps = &self.kernel[(c * 3 + kh) * 3 * self.cout..][..3 * self.cout];
                for kw in 0..3 {
                    let wv = &taps[kw * self.cout + o0..][..O];
                    let ws: [S::f32s; O] = std::array::from_fn(|o| simd.splat_f32s(wv[o]));
                    for r in 0..R {
                        let x = load::<S>(win, r * lanes + kw);
                        for (a, w) in acc.iter_mut().zip(&ws) {
                            a[r] = simd.mul_add_e_f32s(*w, x, a[r]);
                        }
                    }
                }
            }
        }
        for (o, a) in acc.iter().enumerate() {
            for (r, v) in a.iter().enumerate() {
                store::<S>(sums, at(o, r), *v);
            }
        }
    }
}

/// The stride-1 3 × 3 correlation of `x` `(N, Cin, H, W)` with a packed kernel, plus `bias`
/// when given: `(N, Cout, Ho, Wo)`.
fn correlate(p: &Plane, x: &[f32], kernel: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (ho, wo) = (p.ho(), p.wo());
    let plane = ho * wo;
    let mut out = vec![0f32; p.n * p.cout * plane];
    out.par_chunks_mut(p.cout * plane)
        .enumerate()
        .flat_map(|(item, channels)| {
            channels
                .par_chunks_mut(TASK_CHANNELS * plane)
                .enumerate()
                .map(move |(t, dst)| (item, t * TASK_CHANNELS, dst))
        })
        .for_each(|(item, o0, out)| {
            pulp::Arch::new().dispatch(ChannelTask {
                src: Source::input(p, x, item),
                kernel,
                cout: p.cout,
                o0,
                bias,
                out,
                ho,
                wo,
            });
        });
    out
}

/// The forward convolution `(N, Cin, H, W)` → `(N, Cout, Ho, Wo)` with kernel `w`
/// `(Cout, Cin, 3, 3)` and `bias`.
pub(super) fn forward(p: &Plane, x: &[f32], w: &[f32], bias: &[f32]) -> Result<Vec<f32>> {
    let kernel = pack_kernel(w, p.cout, p.cin, false);
    Ok(correlate(p, x, &kernel, Some(bias)))
}

/// The input gradient `(N, Cin, H, W)` of the output gradient `dy` `(N, Cout, Ho, Wo)`.
pub(super) fn input_grad(p: &Plane, w: &[f32], dy: &[f32]) -> Result<Vec<f32>> {
    let kernel = pack_kernel(w, p.cout, p.cin, true);
    Ok(correlate(&p.transposed(), dy, &kernel, None))
}

/// One kernel-gradient task: the sums of one band of rows of one item, from its padded input
/// `src` and its output gradient `dy` (rows padded with zeros to whole vectors).
struct GradTask<'a> {
    src: &'a Padded,
    dy: &'a Padded,
    cin: usize,
    cout: usize,
}

impl WithSimd for GradTask<'_> {
    type Output = Vec<f32>;

    /// `dw[o][c][kh][kw]` summed over the band (lane-wise, then over the lanes).
    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> Vec<f32> {
        let mut buf = scratch::take(2, self.cout * self.cin * 9 * S::F32_LANES);
        buf.fill(0.0);
        let sums: &mut [S::f32s] = bytemuck::cast_slice_mut(&mut buf);
        // Register blocks: 8 channels × 3 kernel columns (24 sums) on AVX-512, 4 × 3 on AVX2.
        if S::F32_LANES >= 16 {
            self.run::<S, 8>(simd, sums);
        } else {
            self.run::<S, 4>(simd, sums);
        }
        let dw = sums.iter().map(|v| simd.reduce_sum_f32s(*v)).collect();
        scratch::put(2, buf);
        dw
    }
}

impl GradTask<'_> {
    #[inline(always)]
    fn run<S: Simd, const O: usize>(&self, simd: S, sums: &mut [S::f32s]) {
        let rows_per = (GRAD_BAND_POSITIONS / self.dy.width).max(1);
        let mut r = 0;
        while r < self.dy.rows {
            let rows = r..(r + rows_per).min(self.dy.rows);
            // Channel blocks outside, input channels inside: the block's output-gradient
            // rows stay in L1 while every input channel passes.
            let mut o = 0;
            while o < self.cout {
                let n = if self.cout - o >= O { O } else { 1 };
                for c in 0..self.cin {
                    if n == O {
                        self.block::<S, O>(simd, (o, c), rows.clone(), sums);
                    } else {
                        self.block::<S, 1>(simd, (o, c), rows.clone(), sums);
                    }
                }
                o += n;
            }
            r = rows.end;
        }
    }

    /// Adds the sums of channels `o0 .. o0 + O` and input channel `c` over `rows` into
    /// `sums[o][c][kh][kw]`.
    #[inline(always)]
    fn block<S: Simd, const O: usize>(
        &self,
        simd: S,
        (o0, c): (usize, usize),
        rows: std::ops::Range<usize>,
        sums: &mut [S::f32s],
    ) {
        let lanes = S::F32_LANES;
        let vectors = self.dy.width / lanes;
        for kh in 0..3 {
            let at = |o: usize| ((o0 + o) * self.cin + c) * 9 + kh * 3;
            let mut acc: [[S::f32s; 3]; O] =
                std::array::from_fn(|o| [sums[at(o)], sums[at(o) + 1], sums[at(o) + 2]]);
            for i in rows.clone() {
                let xrow = &self.src.row(c, i + kh)[..vectors * lanes + 2];
                let drows: [&[f32]; O] =
                    std::array::from_fn(|o| &self.dy.row(o0 + o, i)[..vectors * lanes]);
                for v in 0..vectors {
                    let win = &xrow[v * lanes..v * lanes + lanes + 2];
                    let xs = [load::<S>(win, 0), load::<S>(win, 1), load::<S>(win, 2)];
                    for (a, d) in acc.iter_mut().zip(&drows) {
                        let d = load::<S>(d, v * lanes);
                        for (s, x) in a.iter_mut().zip(xs) {
                            *s = simd.mul_add_e_f32s(d, x, *s);
                        }
                    }
                }
            }
            for (o, a) in acc.iter().enumerate() {
                sums[at(o)..at(o) + 3].copy_from_slice(a);
            }
        }
    }
}

/// The kernel gradient `(Cout, Cin, 3, 3)` of the output gradient `dy` `(N, Cout, Ho, Wo)`.
pub(super) fn kernel_grad(p: &Plane, x: &[f32], dy: &[f32]) -> Result<Vec<f32>> {
    let (ho, wo) = (p.ho(), p.wo());
    let bands = ho.div_ceil(GRAD_TASK_ROWS);
    let partials: Vec<Vec<f32>> = (0..p.n * bands)
        .into_par_iter()
        .map(|t| {
            let (item, band) = (t / bands, t % bands);
            let r0 = band * GRAD_TASK_ROWS;
            let rows = GRAD_TASK_ROWS.min(ho - r0);
            let input = Source::input(p, x, item);
            let src = Padded::fill(scratch::take(0, 0), input, (r0, rows + 2), round_up(wo) + 2);
            // The output gradient's rows, zero beyond `wo`.
            let output = Source {
                item: &dy[item * p.cout * ho * wo..][..p.cout * ho * wo],
                ch: p.cout,
                h: ho,
                w: wo,
                pad: 0,
            };
            let grad = Padded::fill(scratch::take(1, 0), output, (r0, rows), round_up(wo));
            let sums = pulp::Arch::new().dispatch(GradTask {
                src: &src,
                dy: &grad,
                cin: p.cin,
                cout: p.cout,
            });
            scratch::put(0, src.data);
            scratch::put(1, grad.data);
            sums
        })
        .collect();
    let mut dw = vec![0f32; p.cout * p.cin * 9];
    for part in partials {
        for (d, s) in dw.iter_mut().zip(part) {
            *d += s;
        }
    }
    Ok(dw)
}

#[cfg(test)]
mod tests {
    use super::super::reference;
    use super::*;

    #[test]
    fn forward_matches_the_direct_correlation() {
        reference::check_forward(forward);
    }

    #[test]
    fn gradients_match_the_adjoints_of_the_direct_correlation() {
        reference::check_gradients(input_grad, kernel_grad);
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let p = Plane {
            n: 2,
            cin: 24,
            h: 70,
            w: 37,
            cout: 20,
            pad: 1,
        };
        assert!(
            p.ho() > GRAD_TASK_ROWS,
            "several kernel-gradient tasks per item"
        );
        reference::check_thread_independence(&p, forward, input_grad, kernel_grad);
    }

    #[test]
    fn narrow_layers_only() {
        assert!(narrow(16, 16, 256));
        assert!(narrow(64, 32, 128));
        assert!(!narrow(32, 32, 64));
        assert!(!narrow(64, 64, 256));
        assert!(!narrow(128, 32, 256));
    }
}
