//! `conv2d` as one candle custom op: im2col + GEMM forward, hand-written backward.
//!
//! The batch is cut into tasks of `g` whole items (rayon runs the tasks in parallel, each
//! writing its own slice of the output and of the input gradient) and each task into tiles:
//! all its items, or, when one item's column matrix is too large, ranges of its output rows.
//! A tile's column matrix `colT` (`C·k·k` × `m`, `m` = the tile's output positions, row-major)
//! stays in cache; its rows are shifted copies of input rows, so im2col and col2im move whole
//! row segments. Products go through `gemm` on strided views (`super::linalg`), written or
//! accumulated straight into their destinations. Per tile:
//!
//! - forward: `out = W × colT` (`Cout` × `m`): for a tile of one item accumulated onto the bias
//!   in the output map itself (the tile's rows of every channel are a strided matrix of it);
//!   for a tile of several small items into scratch, then copied with the bias added;
//! - backward: the tile's output gradient `dY` (`Cout` × `m`; its row sums are the bias
//!   gradient) read in place for one item, gathered for several; `colT` recomputed; the kernel
//!   gradient over all the tile's positions, as `dW += dY × colTᵀ` for several items and as
//!   `dWᵀ += colT × dYᵀ` for one (the layout whose operands `gemm` packs cheaply; tiles of one
//!   item are 4× larger in the backward pass); and, only when the input tracks a gradient,
//!   `dcolT = Wᵀ × dY` scattered back by col2im.
//!
//! Per-task partial kernel and bias gradients are summed at the end.

use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::algorithm::{self, ConvShape, Kernel};
use super::linalg::{f32_slice, gemm_into, Dst, Mat};
use super::plane::Plane;
use super::scratch;
use super::simd::{lane_sum, vectorized};
use super::{direct, winograd};

/// Target size (in f32 elements) of one tile's column matrix: 256 KiB, to stay in L2 with the
/// product and the kernel.
const TILE_ELEMS: usize = 1 << 16;
/// Tile size of the backward pass when an item is cut into rows: larger than the forward's,
/// since the kernel-gradient product reduces over the tile's positions (its inner dimension)
/// and reads and writes the whole `Cout × C·k·k` gradient once per tile; 1 MiB still fits a
/// modern L2 with the gathered output gradient.
const BACKWARD_TILE_ELEMS: usize = 1 << 18;
/// Fewest columns (output positions) per tile when an item's column matrix exceeds
/// [`TILE_ELEMS`], so that packing the kernel matrix stays cheap against the product itself.
const MIN_TILE_COLS: usize = 256;
/// Tasks to cut a large batch into, at least. A constant, not a multiple of the thread count:
/// the grouping of items into tasks fixes the order in which kernel gradients are summed, so
/// it must not depend on the machine for the same seed to give bit-identical training on 1, 2
/// or 16 threads. 8 keeps the grouping this op had on 2 threads (the numbers of earlier
/// results); tiles usually cut a batch finer anyway (`TILE_ELEMS`).
const MIN_TASKS: usize = 8;

/// Shapes of one convolution.
#[derive(Debug, Clone, Copy)]
struct Geom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    ho: usize,
    wo: usize,
}

impl Geom {
    fn new(x: &[usize], w: &[usize], b: &[usize], stride: usize, pad: usize) -> Result<Self> {
        let (&[n, c, h, wi], &[cout, cw, kh, kw], &[cb]) = (x, w, b) else {
            bail!("fast conv2d: expected x (N,C,H,W), w (Cout,C,k,k), b (Cout,), got {x:?} {w:?} {b:?}")
        };
        if cw != c || kh != kw || cb != cout || stride == 0 || kh == 0 {
            bail!("fast conv2d: incompatible x {x:?}, w {w:?}, b {b:?}, stride {stride}")
        }
        if h + 2 * pad < kh || wi + 2 * pad < kh {
            bail!("fast conv2d: kernel {kh} larger than the padded input {x:?} (padding {pad})")
        }
        Ok(Self {
            n,
            c,
            h,
            w: wi,
            cout,
            k: kh,
            stride,
            pad,
            ho: (h + 2 * pad - kh) / stride + 1,
            wo: (wi + 2 * pad - kh) / stride + 1,
        })
    }

    /// The algorithm of this convolution, with its shapes for the 3 × 3 paths.
    fn algorithm(&self) -> (Kernel, Plane) {
        let kernel = algorithm::pick(ConvShape {
            k: self.k,
            stride: self.stride,
            pad: self.pad,
            cin: self.c,
            cout: self.cout,
            wo: self.wo,
        });
        let plane = Plane {
            n: self.n,
            cin: self.c,
            h: self.h,
            w: self.w,
            cout: self.cout,
            pad: self.pad,
        };
        (kernel, plane)
    }

    /// Rows of the column matrix.
    fn ckk(&self) -> usize {
        self.c * self.k * self.k
    }

    fn in_item(&self) -> usize {
        self.c * self.h * self.w
    }

    fn out_item(&self) -> usize {
        self.cout * self.ho * self.wo
    }

    /// Items per task, and output rows per tile (`H'` when tiles are whole items); a large
    /// item is cut into tiles of about `row_budget` column-matrix elements.
    fn plan(&self, row_budget: usize) -> (usize, usize) {
        let per_item = self.ho * self.wo * self.ckk();
        let max_g = (self.n / MIN_TASKS).max(1);
        let g = (TILE_ELEMS / per_item.max(1)).clamp(1, max_g);
        if g > 1 || per_item <= TILE_ELEMS {
            return (g, self.ho);
        }
        let by_size = row_budget / (self.wo * self.ckk()).max(1);
        let by_gemm = MIN_TILE_COLS.div_ceil(self.wo);
        (1, by_size.max(by_gemm).clamp(1, self.ho))
    }

    /// The tiles of a task holding `items` items.
    fn tiles(&self, items: usize, tile_rows: usize) -> impl Iterator<Item = Tile> {
        let ho = self.ho;
        let (whole, step) = if tile_rows >= ho {
            (true, ho)
        } else {
            (false, tile_rows.max(1))
        };
        let count = if whole { 1 } else { ho.div_ceil(step) };
        (0..count).map(move |t| {
            if whole {
                Tile {
                    items: 0..items,
                    rows: 0..ho,
                }
            } else {
                Tile {
                    items: 0..1,
                    rows: t * step..((t + 1) * step).min(ho),
                }
            }
        })
    }
}

/// Output positions a tile covers: rows `rows` of the task's items `items` (task-local).
#[derive(Debug, Clone)]
struct Tile {
    items: std::ops::Range<usize>,
    rows: std::ops::Range<usize>,
}

impl Tile {
    /// Output positions per item.
    fn per_item(&self, g: &Geom) -> usize {
        self.rows.len() * g.wo
    }

    /// Columns of the tile's column matrix.
    fn m(&self, g: &Geom) -> usize {
        self.items.len() * self.per_item(g)
    }
}

/// Output columns `ow` whose input column `ow·s + kw − p` lies inside `0..w`.
fn valid_cols(g: &Geom, kw: usize) -> std::ops::Range<usize> {
    let (s, pad) = (g.stride, g.pad);
    let lo = if pad > kw { (pad - kw).div_ceil(s) } else { 0 };
    let hi = if g.w + pad > kw {
        ((g.w + pad - kw - 1) / s + 1).min(g.wo)
    } else {
        0
    };
    lo.min(hi)..hi
}

/// Calls `f(j, offset, input row, kw, valid)` for every segment of a tile's column matrix: row
/// `j = (ci·k + kh)·k + kw` of `colT`, the segment's first column `offset` (one item and one
/// output row: `W'` columns), the `(start, end)` of the input row it reads (None in the
/// padding) and its [`valid_cols`]. The traversal shared by im2col and col2im.
#[inline(always)]
fn for_each_segment(
    g: &Geom,
    tile: &Tile,
    mut f: impl FnMut(usize, usize, Option<(usize, usize)>, usize, &std::ops::Range<usize>),
) {
    let (k, s, pad) = (g.k, g.stride, g.pad);
    let per_item = tile.per_item(g);
    for ci in 0..g.c {
        for kh in 0..k {
            for kw in 0..k {
                let j = (ci * k + kh) * k + kw;
                let valid = valid_cols(g, kw);
                for (ii, item) in tile.items.clone().enumerate() {
                    let plane = item * g.in_item() + ci * g.h * g.w;
                    for (ri, oh) in tile.rows.clone().enumerate() {
                        let ih = (oh * s + kh) as isize - pad as isize;
                        let src = (ih >= 0 && (ih as usize) < g.h).then(|| {
                            let row = plane + ih as usize * g.w;
                            (row, row + g.w)
                        });
                        f(j, ii * per_item + ri * g.wo, src, kw, &valid);
                    }
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` without a `memcpy` call for the short segments of small images.
#[inline(always)]
fn copy_segment(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    if n >= 64 {
        dst.copy_from_slice(src);
        return;
    }
    let src = &src[..n];
    let mut i = 0;
    while i + 8 <= n {
        dst[i..i + 8].copy_from_slice(&src[i..i + 8]);
        i += 8;
    }
    if i + 4 <= n {
        dst[i..i + 4].copy_from_slice(&src[i..i + 4]);
        i += 4;
    }
    if i + 2 <= n {
        dst[i..i + 2].copy_from_slice(&src[i..i + 2]);
        i += 2;
    }
    if i < n {
        dst[i] = src[i];
    }
}

/// im2col of a tile: `colT[(ci·k + kh)·k + kw][q] = x[item][ci][oh·s + kh − p][ow·s + kw − p]`
/// for the tile's output positions `q = (item, oh, ow)` (0 in the padding). `x` holds the task's
/// items.
fn im2col(g: &Geom, x: &[f32], tile: &Tile, col: &mut [f32]) {
    vectorized(
        #[inline(always)]
        || im2col_body(g, x, tile, col),
    );
}

#[inline(always)]
fn im2col_body(g: &Geom, x: &[f32], tile: &Tile, col: &mut [f32]) {
    let m = tile.m(g);
    if g.stride == 1 && g.pad == 0 {
        // Every segment is a full input-row slice: copy the tile's rows block by block.
        let (k, wo, per_item) = (g.k, g.wo, tile.per_item(g));
        for (j, block) in col.chunks_exact_mut(m).enumerate() {
            let (ci, kh, kw) = (j / (k * k), j / k % k, j % k);
            for (ii, item) in tile.items.clone().enumerate() {
                let src = item * g.in_item() + ci * g.h * g.w + (tile.rows.start + kh) * g.w + kw;
                let dst = &mut block[ii * per_item..(ii + 1) * per_item];
                for (d, sr) in dst.chunks_exact_mut(wo).zip(x[src..].chunks(g.w)) {
                    copy_segment(d, &sr[..wo]);
                }
            }
        }
        return;
    }
    let (s, pad, wo) = (g.stride, g.pad, g.wo);
    for_each_segment(g, tile, |j, off, src, kw, valid| {
        let seg = &mut col[j * m + off..j * m + off + wo];
        let Some((a, b)) = src else {
            seg.fill(0.0);
            return;
        };
        let xrow = &x[a..b];
        if valid.start > 0 {
            seg[..valid.start].fill(0.0);
        }
        if valid.end < wo {
            seg[valid.end..].fill(0.0);
        }
        if valid.is_empty() {
            return;
        }
        let first = valid.start * s + kw - pad;
        if s == 1 {
            copy_segment(&mut seg[valid.clone()], &xrow[first..first + valid.len()]);
        } else {
            for (d, v) in seg[valid.clone()]
                .iter_mut()
                .zip(xrow[first..].iter().step_by(s))
            {
                *d = *v;
            }
        }
    });
}

/// col2im, the adjoint of [`im2col`]: adds `col` into the task's input gradient `dx`.
fn col2im(g: &Geom, col: &[f32], tile: &Tile, dx: &mut [f32]) {
    vectorized(
        #[inline(always)]
        || col2im_body(g, col, tile, dx),
    );
}

#[inline(always)]
fn col2im_body(g: &Geom, col: &[f32], tile: &Tile, dx: &mut [f32]) {
    let m = tile.m(g);
    if g.stride == 1 && g.pad == 0 {
        let (k, wo, per_item) = (g.k, g.wo, tile.per_item(g));
        for (j, block) in col.chunks_exact(m).enumerate() {
            let (ci, kh, kw) = (j / (k * k), j / k % k, j % k);
            for (ii, item) in tile.items.clone().enumerate() {
                let dst = item * g.in_item() + ci * g.h * g.w + (tile.rows.start + kh) * g.w + kw;
                let src = &block[ii * per_item..(ii + 1) * per_item];
                for (s, d) in src.chunks_exact(wo).zip(dx[dst..].chunks_mut(g.w)) {
                    for (d, v) in d[..wo].iter_mut().zip(s) {
                        *d += v;
                    }
                }
            }
        }
        return;
    }
    let (s, pad) = (g.stride, g.pad);
    for_each_segment(g, tile, |j, off, src, kw, valid| {
        let Some((a, b)) = src else {
            return;
        };
        if valid.is_empty() {
            return;
        }
        let seg = &col[j * m + off + valid.start..j * m + off + valid.end];
        let xrow = &mut dx[a..b];
        let first = valid.start * s + kw - pad;
        if s == 1 {
            for (d, v) in xrow[first..first + seg.len()].iter_mut().zip(seg) {
                *d += v;
            }
        } else {
            for (d, v) in xrow[first..].iter_mut().step_by(s).zip(seg) {
                *d += v;
            }
        }
    });
}

/// Sum of a slice, with eight partial sums (vectorised, and more accurate on long rows).
fn sum(xs: &[f32]) -> f32 {
    vectorized(
        #[inline(always)]
        || lane_sum(xs, |v| v),
    )
}

/// Forward pass of one task: `x` and `out` hold its items; `w` is the `(Cout, C·k·k)` kernel.
fn forward_task(
    g: &Geom,
    tile_rows: usize,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    out: &mut [f32],
) -> Result<()> {
    let (ckk, cout, wo, p) = (g.ckk(), g.cout, g.wo, g.ho * g.wo);
    let wm = Mat::row_major(w, 0, cout, ckk);
    let items = x.len() / g.in_item();
    for tile in g.tiles(items, tile_rows) {
        let (m, per_item) = (tile.m(g), tile.per_item(g));
        let mut col = scratch::take(0, ckk * m);
        im2col(g, x, &tile, &mut col);
        let colm = Mat::row_major(&col, 0, ckk, m);
        let res = if tile.items.len() == 1 {
            // One item: the tile's rows of every output channel are a strided matrix of the
            // output itself; write the bias there and accumulate the product onto it.
            let base = tile.items.start * cout * p + tile.rows.start * wo;
            for (o, &bo) in bias.iter().enumerate() {
                out[base + o * p..base + o * p + per_item].fill(bo);
            }
            let dst = Dst {
                data: out,
                offset: base,
                rows: cout,
                cols: m,
                row_stride: p,
            };
            gemm_into(dst, wm, colm, true)
        } else {
            forward_items(g, &tile, wm, colm, bias, out)
        };
        scratch::put(0, col);
        res?;
    }
    Ok(())
}

/// A tile of several (small) items: the product into scratch, then copied to each item's
/// output map with the bias added.
fn forward_items(
    g: &Geom,
    tile: &Tile,
    wm: Mat<'_>,
    colm: Mat<'_>,
    bias: &[f32],
    out: &mut [f32],
) -> Result<()> {
    let (cout, wo, p) = (g.cout, g.wo, g.ho * g.wo);
    let (m, per_item) = (tile.m(g), tile.per_item(g));
    let mut res = scratch::take(1, cout * m);
    let done = gemm_into(Dst::row_major(&mut res, cout, m), wm, colm, false);
    if done.is_ok() {
        for (ii, item) in tile.items.clone().enumerate() {
            for (o, &bo) in bias.iter().enumerate() {
                let dst = item * cout * p + o * p + tile.rows.start * wo;
                let src = o * m + ii * per_item;
                for (d, s) in out[dst..dst + per_item]
                    .iter_mut()
                    .zip(&res[src..src + per_item])
                {
                    *d = s + bo;
                }
            }
        }
    }
    scratch::put(1, res);
    done
}

/// Which parameter gradients a backward pass computes.
#[derive(Debug, Clone, Copy)]
struct Needs {
    dw: bool,
    db: bool,
}

/// Backward pass of one task: `x`, `dy` (and `dx` when wanted) hold its items; the partial
/// kernel and bias gradients are added into `dw` / `db`.
#[allow(clippy::too_many_arguments)]
fn backward_task(
    g: &Geom,
    tile_rows: usize,
    needs: Needs,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    mut dx: Option<&mut [f32]>,
    dw: &mut [f32],
    db: &mut [f32],
) -> Result<()> {
    let (cout, wo, p) = (g.cout, g.wo, g.ho * g.wo);
    let items = dy.len() / g.out_item();
    // The kernel gradient of single-item tiles, transposed (`C·k·k × Cout`; see
    // `kernel_grad_t`), added into `dw` at the end.
    let mut dwt: Option<Vec<f32>> = None;
    for tile in g.tiles(items, tile_rows) {
        let (m, per_item) = (tile.m(g), tile.per_item(g));
        if needs.db {
            for item in tile.items.clone() {
                for (o, dbo) in db.iter_mut().enumerate() {
                    let src = item * cout * p + o * p + tile.rows.start * wo;
                    *dbo += sum(&dy[src..src + per_item]);
                }
            }
        }
        // The tile's output gradient as a Cout × m matrix: a strided view of `dy` for one
        // item, gathered into scratch for several.
        let gathered = (tile.items.len() > 1).then(|| gather_dy(g, &tile, dy));
        let dy_mat = match &gathered {
            Some(buf) => Mat::row_major(buf, 0, cout, m),
            None => {
                let base = tile.items.start * cout * p + tile.rows.start * wo;
                Mat::strided(dy, base, cout, m, p)
            }
        };
        let mut res = Ok(());
        if needs.dw && gathered.is_some() {
            res = kernel_grad(g, &tile, x, dy_mat, dw);
        } else if needs.dw {
            let dwt = dwt.get_or_insert_with(|| vec![0f32; dw.len()]);
            res = kernel_grad_t(g, &tile, x, dy_mat, dwt);
        }
        if let (Ok(()), Some(dx)) = (&res, dx.as_deref_mut()) {
            res = input_grad(g, &tile, w, dy_mat, dx);
        }
        if let Some(buf) = gathered {
            scratch::put(1, buf);
        }
        res?;
    }
    if let Some(dwt) = dwt {
        let ckk = g.ckk();
        for (o, row) in dw.chunks_exact_mut(ckk).enumerate() {
            for (j, d) in row.iter_mut().enumerate() {
                *d += dwt[j * cout + o];
            }
        }
    }
    Ok(())
}

/// The tile's output gradient gathered as a row-major `Cout × m` matrix (scratch slot 1).
fn gather_dy(g: &Geom, tile: &Tile, dy: &[f32]) -> Vec<f32> {
    let (cout, wo, p) = (g.cout, g.wo, g.ho * g.wo);
    let (m, per_item) = (tile.m(g), tile.per_item(g));
    let mut buf = scratch::take(1, cout * m);
    for (ii, item) in tile.items.clone().enumerate() {
        for o in 0..cout {
            let src = item * cout * p + o * p + tile.rows.start * wo;
            let dst = o * m + ii * per_item;
            buf[dst..dst + per_item].copy_from_slice(&dy[src..src + per_item]);
        }
    }
    buf
}

/// `dw += dY × colTᵀ` over one tile (`colT` recomputed by im2col).
#[inline(never)]
fn kernel_grad(g: &Geom, tile: &Tile, x: &[f32], dy: Mat<'_>, dw: &mut [f32]) -> Result<()> {
    let (ckk, m) = (g.ckk(), tile.m(g));
    let mut col = scratch::take(0, ckk * m);
    im2col(g, x, tile, &mut col);
    let colm = Mat::row_major(&col, 0, ckk, m);
    let res = gemm_into(Dst::row_major(dw, g.cout, ckk), dy, colm.t(), true);
    scratch::put(0, col);
    res
}

/// `dwᵀ += colT × dYᵀ`: the same product as [`kernel_grad`], arranged for `gemm`'s packing
/// (its destination `dwᵀ` is `C·k·k × Cout`, so the `Cout`-contiguous `dYᵀ` is packed as is
/// and the column matrix is read `nr` rows at a time).
#[inline(never)]
fn kernel_grad_t(g: &Geom, tile: &Tile, x: &[f32], dy: Mat<'_>, dwt: &mut [f32]) -> Result<()> {
    let (ckk, m, cout) = (g.ckk(), tile.m(g), g.cout);
    let mut dyt = scratch::take(2, m * cout);
    for o in 0..cout {
        let row = &dy.data[dy.offset + o * dy.row_stride..][..m];
        for (q, v) in row.iter().enumerate() {
            dyt[q * cout + o] = *v;
        }
    }
    let mut col = scratch::take(0, ckk * m);
    im2col(g, x, tile, &mut col);
    let colm = Mat::row_major(&col, 0, ckk, m);
    let dytm = Mat::row_major(&dyt, 0, m, cout);
    let res = gemm_into(Dst::row_major(dwt, ckk, cout), colm, dytm, true);
    scratch::put(0, col);
    scratch::put(2, dyt);
    res
}

/// `dcolT = Wᵀ × dY` over one tile, scattered into the input gradient by col2im.
#[inline(never)]
fn input_grad(g: &Geom, tile: &Tile, w: &[f32], dy: Mat<'_>, dx: &mut [f32]) -> Result<()> {
    let (ckk, m) = (g.ckk(), tile.m(g));
    let wm = Mat::row_major(w, 0, g.cout, ckk);
    let mut dcol = scratch::take(0, ckk * m);
    let res = gemm_into(Dst::row_major(&mut dcol, ckk, m), wm.t(), dy, false);
    if res.is_ok() {
        col2im(g, &dcol, tile, dx);
    }
    scratch::put(0, dcol);
    res
}

/// The convolution as a custom op over `(x, w, b)`.
#[derive(Debug, Clone, Copy)]
struct Conv2dOp {
    stride: usize,
    padding: usize,
}

/// The contiguous f32 data of a layout's elements.
fn contiguous<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&f32_slice(s)?[a..b]),
        None => bail!("fast conv2d: non-contiguous operand {:?}", l.stride()),
    }
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        "mtcool-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geom::new(l1.dims(), l2.dims(), l3.dims(), self.stride, self.padding)?;
        let x = contiguous(s1, l1)?;
        let w = contiguous(s2, l2)?;
        let bias = contiguous(s3, l3)?;
        let out = match g.algorithm() {
            (Kernel::Winograd, p) => winograd::forward(&p, x, w, bias)?,
            (Kernel::Direct, p) => direct::forward(&p, x, w, bias)?,
            (Kernel::Im2col, _) => convolve(&g, x, w, bias)?,
        };
        Ok((CpuStorage::F32(out), Shape::from((g.n, g.cout, g.ho, g.wo))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let needs = Needs {
            dw: w.track_op(),
            db: b.track_op(),
        };
        let need_dx = x.track_op();
        let g = Geom::new(x.dims(), w.dims(), b.dims(), self.stride, self.padding)?;
        let grad = grad.contiguous()?;
        let (xs, xl) = x.storage_and_layout();
        let (ws, wl) = w.storage_and_layout();
        let (gs, gl) = grad.storage_and_layout();
        let (
            candle_core::Storage::Cpu(xs),
            candle_core::Storage::Cpu(ws),
            candle_core::Storage::Cpu(gs),
        ) = (&*xs, &*ws, &*gs)
        else {
            bail!("fast conv2d: backward on a non-CPU device")
        };
        let xd = contiguous(xs, xl)?;
        let dy = contiguous(gs, gl)?;
        let wd = contiguous(ws, wl)?;
        let (dx, dw, db) = match g.algorithm() {
            (Kernel::Im2col, _) => {
                let mut dx = if need_dx {
                    vec![0f32; g.n * g.in_item()]
                } else {
                    Vec::new()
                };
                let dx_slice = need_dx.then_some(dx.as_mut_slice());
                let (dw, db) = parameter_grads(&g, needs, xd, wd, dy, dx_slice)?;
                (dx, dw, db)
            }
            (kernel, p) => grads_3x3(kernel, &p, needs, need_dx, xd, wd, dy)?,
        };
        let dev = x.device();
        let dx = if need_dx {
            Some(Tensor::from_vec(dx, x.shape(), dev)?)
        } else {
            None
        };
        let dw = if needs.dw {
            Some(Tensor::from_vec(dw, w.shape(), dev)?)
        } else {
            None
        };
        let db = if needs.db {
            Some(Tensor::from_vec(db, b.shape(), dev)?)
        } else {
            None
        };
        Ok((dx, dw, db))
    }
}

/// The convolution of contiguous operands: `(N, Cout, H', W')`, items spread over rayon tasks.
fn convolve(g: &Geom, x: &[f32], w: &[f32], bias: &[f32]) -> Result<Vec<f32>> {
    let mut out = vec![0f32; g.n * g.out_item()];
    let (items, tile_rows) = g.plan(TILE_ELEMS);
    out.par_chunks_mut(items * g.out_item())
        .zip(x.par_chunks(items * g.in_item()))
        .try_for_each(|(out, x)| forward_task(g, tile_rows, x, w, bias, out))?;
    Ok(out)
}

/// The kernel and bias gradients (each zero when not needed), and the input gradient into
/// `dx` when given, over rayon tasks of whole items.
fn parameter_grads(
    g: &Geom,
    needs: Needs,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let (items, tile_rows) = g.plan(BACKWARD_TILE_ELEMS);
    let (in_chunk, out_chunk) = (items * g.in_item(), items * g.out_item());
    let zero = || (vec![0f32; g.cout * g.ckk()], vec![0f32; g.cout]);
    let task = |x: &[f32], dy: &[f32], dx: Option<&mut [f32]>| {
        let (mut dw, mut db) = zero();
        backward_task(g, tile_rows, needs, x, w, dy, dx, &mut dw, &mut db)?;
        Ok::<_, candle_core::Error>((dw, db))
    };
    // Per-chunk partial gradients are summed in chunk order (`sum_in_order`), not in rayon's
    // work-stealing order, so that the same seed gives bit-identical training.
    let partials = match dx {
        Some(dx) => dx
            .par_chunks_mut(in_chunk)
            .zip(x.par_chunks(in_chunk))
            .zip(dy.par_chunks(out_chunk))
            .map(|((dx, x), dy)| task(x, dy, Some(dx)))
            .collect::<Result<Vec<_>>>()?,
        None => x
            .par_chunks(in_chunk)
            .zip(dy.par_chunks(out_chunk))
            .map(|(x, dy)| task(x, dy, None))
            .collect::<Result<Vec<_>>>()?,
    };
    Ok(sum_in_order(partials, zero))
}

/// The input, kernel and bias gradients of a Winograd or direct 3 × 3 convolution (each empty
/// when not needed).
fn grads_3x3(
    kernel: Kernel,
    p: &Plane,
    needs: Needs,
    need_dx: bool,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    let winograd = kernel == Kernel::Winograd;
    let dx = match (need_dx, winograd) {
        (false, _) => Vec::new(),
        (true, true) => winograd::input_grad(p, w, dy)?,
        (true, false) => direct::input_grad(p, w, dy)?,
    };
    let dw = if needs.dw && winograd {
        winograd::kernel_grad(p, x, dy)?
    } else if needs.dw {
        direct::kernel_grad(p, x, dy)?
    } else {
        Vec::new()
    };
    let plane = p.ho() * p.wo();
    let db = if needs.db {
        (0..p.cout)
            .map(|o| {
                (0..p.n)
                    .map(|item| sum(&dy[(item * p.cout + o) * plane..][..plane]))
                    .sum()
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok((dx, dw, db))
}

/// Fast `conv2d(x, w) + b` on f32 CPU tensors (see [`super::conv2d`]).
pub(crate) fn conv2d(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    let (x, w, b) = (x.contiguous()?, w.contiguous()?, b.contiguous()?);
    x.apply_op3(&w, &b, Conv2dOp { stride, padding })
}

/// Sums per-chunk `(dw, db)` partial gradients in chunk order (deterministic, unlike a
/// parallel reduce whose grouping follows work stealing).
fn sum_in_order(
    partials: Vec<(Vec<f32>, Vec<f32>)>,
    zero: impl Fn() -> (Vec<f32>, Vec<f32>),
) -> (Vec<f32>, Vec<f32>) {
    let mut parts = partials.into_iter();
    let Some((mut dw, mut db)) = parts.next() else {
        return zero();
    };
    for (dw2, db2) in parts {
        dw.iter_mut().zip(dw2).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(db2).for_each(|(a, b)| *a += b);
    }
    (dw, db)
}
