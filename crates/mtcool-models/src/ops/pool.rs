//! Non-overlapping max pooling as a candle custom op whose backward pass scatters each window's
//! gradient to its argmax (recomputed from the input: first maximum in row-major order, as in
//! candle's and PyTorch's forward passes).

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::linalg::f32_slice;

/// Smallest amount of work (input elements) per rayon task.
const MIN_TASK_ELEMS: usize = 1 << 14;

/// Max pooling with kernel = stride = `k`.
#[derive(Debug, Clone, Copy)]
struct MaxPool2dOp {
    k: usize,
}

/// `(N·C, H, W, H', W')` of a pooling.
fn geometry(dims: &[usize], k: usize) -> Result<(usize, usize, usize, usize, usize)> {
    let &[n, c, h, w] = dims else {
        bail!("fast max_pool2d: expected (N, C, H, W), got {dims:?}")
    };
    if k == 0 || h < k || w < k {
        bail!("fast max_pool2d: kernel {k} does not fit {dims:?}")
    }
    Ok((n * c, h, w, h / k, w / k))
}

/// Max pooling of one `(H, W)` plane into `out` (`H' × W'`), kernel `K` (`K = 0`: `k`).
#[inline(always)]
fn pool_plane<const K: usize>(x: &[f32], out: &mut [f32], k: usize, w: usize, wo: usize) {
    let k = if K == 0 { k } else { K };
    for (oh, out) in out.chunks_exact_mut(wo).enumerate() {
        let rows = &x[oh * k * w..(oh + 1) * k * w];
        for (ow, o) in out.iter_mut().enumerate() {
            let mut m = rows[ow * k];
            for row in rows.chunks_exact(w) {
                for &v in &row[ow * k..ow * k + k] {
                    if v > m {
                        m = v;
                    }
                }
            }
            *o = m;
        }
    }
}

/// Backward pass for one plane: each window's gradient goes to its first maximum (row-major),
/// the one [`pool_plane`] returns. `dx` must be zero on entry.
#[inline(always)]
fn unpool_plane<const K: usize>(
    x: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    k: usize,
    w: usize,
    wo: usize,
) {
    let k = if K == 0 { k } else { K };
    for (oh, dy) in dy.chunks_exact(wo).enumerate() {
        let base = oh * k * w;
        let rows = &x[base..base + k * w];
        for (ow, &gv) in dy.iter().enumerate() {
            let mut best = ow * k;
            let mut m = rows[best];
            for (kh, row) in rows.chunks_exact(w).enumerate() {
                for (kw, &v) in row[ow * k..ow * k + k].iter().enumerate() {
                    if v > m {
                        m = v;
                        best = kh * w + ow * k + kw;
                    }
                }
            }
            dx[base + best] = gv;
        }
    }
}

impl CustomOp1 for MaxPool2dOp {
    fn name(&self) -> &'static str {
        "mtcool-max-pool2d"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let k = self.k;
        let (planes, h, w, ho, wo) = geometry(layout.dims(), k)?;
        let Some((start, end)) = layout.contiguous_offsets() else {
            bail!("fast max_pool2d: non-contiguous input")
        };
        let x = &f32_slice(storage)?[start..end];
        let mut out = vec![0f32; planes * ho * wo];
        out.par_chunks_mut(ho * wo)
            .zip(x.par_chunks(h * w))
            .with_min_len((MIN_TASK_ELEMS / (h * w)).max(1))
            .for_each(|(out, x)| match k {
                2 => pool_plane::<2>(x, out, k, w, wo),
                3 => pool_plane::<3>(x, out, k, w, wo),
                _ => pool_plane::<0>(x, out, k, w, wo),
            });
        let (n, c) = (layout.dims()[0], layout.dims()[1]);
        Ok((CpuStorage::F32(out), Shape::from((n, c, ho, wo))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let k = self.k;
        let (planes, h, w, ho, wo) = geometry(arg.dims(), k)?;
        let grad = grad.contiguous()?;
        let (xs, xl) = arg.storage_and_layout();
        let (gs, gl) = grad.storage_and_layout();
        let (candle_core::Storage::Cpu(xs), candle_core::Storage::Cpu(gs)) = (&*xs, &*gs) else {
            bail!("fast max_pool2d: backward on a non-CPU device")
        };
        let (Some((xa, xb)), Some((ga, gb))) = (xl.contiguous_offsets(), gl.contiguous_offsets())
        else {
            bail!("fast max_pool2d: non-contiguous operands in backward")
        };
        let x = &f32_slice(xs)?[xa..xb];
        let dy = &f32_slice(gs)?[ga..gb];
        let mut dx = vec![0f32; planes * h * w];
        dx.par_chunks_mut(h * w)
            .zip(x.par_chunks(h * w))
            .zip(dy.par_chunks(ho * wo))
            .with_min_len((MIN_TASK_ELEMS / (h * w)).max(1))
            .for_each(|((dx, x), dy)| match k {
                2 => unpool_plane::<2>(x, dy, dx, k, w, wo),
                3 => unpool_plane::<3>(x, dy, dx, k, w, wo),
                _ => unpool_plane::<0>(x, dy, dx, k, w, wo),
            });
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

/// Fast max pooling on an f32 CPU tensor (see [`super::max_pool2d`]).
pub(crate) fn max_pool2d(x: &Tensor, k: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op1(MaxPool2dOp { k })
}
