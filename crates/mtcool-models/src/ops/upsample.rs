//! Nearest-neighbour up-sampling by an integer factor as a candle custom op: the forward copies
//! each input row, widened, into `s` output rows; the backward sums each `s × s` block of the
//! output gradient (what candle's broadcast-based version does with a slow generic reduction).

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::linalg::f32_slice;

/// Smallest amount of work (output elements) per rayon task.
const MIN_TASK_ELEMS: usize = 1 << 14;

#[derive(Debug, Clone, Copy)]
struct UpsampleOp {
    scale: usize,
}

/// `(N·C, H, W)` of an `(N, C, H, W)` layout.
fn geometry(dims: &[usize]) -> Result<(usize, usize, usize)> {
    let &[n, c, h, w] = dims else {
        bail!("fast upsample: expected (N, C, H, W), got {dims:?}")
    };
    Ok((n * c, h, w))
}

impl CustomOp1 for UpsampleOp {
    fn name(&self) -> &'static str {
        "mtcool-upsample-nearest"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let s = self.scale;
        let (_, h, w) = geometry(layout.dims())?;
        let Some((a, b)) = layout.contiguous_offsets() else {
            bail!("fast upsample: non-contiguous input")
        };
        let x = &f32_slice(storage)?[a..b];
        let (ho, wo) = (h * s, w * s);
        let mut out = vec![0f32; x.len() * s * s];
        out.par_chunks_mut(ho * wo)
            .zip(x.par_chunks(h * w))
            .with_min_len((MIN_TASK_ELEMS / (ho * wo).max(1)).max(1))
            .for_each(|(out, x)| {
                for (rows, xr) in out.chunks_exact_mut(s * wo).zip(x.chunks_exact(w)) {
                    let (first, rest) = rows.split_at_mut(wo);
                    for (o, &v) in first.chunks_exact_mut(s).zip(xr) {
                        o.fill(v);
                    }
                    for r in rest.chunks_exact_mut(wo) {
                        r.copy_from_slice(first);
                    }
                }
            });
        let d = layout.dims();
        Ok((CpuStorage::F32(out), Shape::from((d[0], d[1], ho, wo))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let s = self.scale;
        let (_, h, w) = geometry(arg.dims())?;
        let wo = w * s;
        let grad = grad.contiguous()?;
        let (gs, gl) = grad.storage_and_layout();
        let candle_core::Storage::Cpu(gs) = &*gs else {
            bail!("fast upsample: backward on a non-CPU device")
        };
        let Some((a, b)) = gl.contiguous_offsets() else {
            bail!("fast upsample: non-contiguous gradient")
        };
        let g = &f32_slice(gs)?[a..b];
        let mut dx = vec![0f32; arg.elem_count()];
        dx.par_chunks_mut(h * w)
            .zip(g.par_chunks(h * w * s * s))
            .with_min_len((MIN_TASK_ELEMS / (h * w * s * s).max(1)).max(1))
            .for_each(|(dx, g)| {
                for (d, rows) in dx.chunks_exact_mut(w).zip(g.chunks_exact(s * wo)) {
                    for r in rows.chunks_exact(wo) {
                        for (dv, block) in d.iter_mut().zip(r.chunks_exact(s)) {
                            *dv += block.iter().sum::<f32>();
                        }
                    }
                }
            });
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

/// Fast nearest up-sampling of an f32 CPU tensor (see [`super::upsample_nearest`]).
pub(crate) fn upsample_nearest(x: &Tensor, scale: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op1(UpsampleOp { scale })
}
