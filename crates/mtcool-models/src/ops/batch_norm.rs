//! Training-mode batch normalisation (optionally fused with ReLU) as one candle custom op.
//!
//! Composed from candle's ops, a BatchNorm forward and backward is a dozen passes over the
//! activation, most of them reductions over the non-contiguous axes `(N, H, W)` that candle's
//! CPU backend walks element by element; on a U-Net step they cost more than the convolutions.
//! Here the per-channel statistics are one parallel pass per channel (f64 accumulators), the
//! forward one pass writing `relu(γ·x̂ + β)`, and the backward two passes: per-channel sums
//! `Σ g` and `Σ g·x̂` (`g` the output gradient, masked by the ReLU), then
//! `dx = γ·inv/m · (m·g − Σ g − x̂·Σ g·x̂)` with `inv = 1/√(σ² + ε)`, `m = N·H·W`.

use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::linalg::f32_slice;
use super::simd::{lane_sum, vectorized};

/// Smallest amount of work (elements) per rayon task.
const MIN_TASK_ELEMS: usize = 1 << 14;

/// Per-channel mean and biased variance of a contiguous `(N, C, P)` buffer: two passes (the
/// mean, then the squared deviations from it), each summed by [`run_sum`].
fn channel_stats(x: &[f32], n: usize, c: usize, p: usize) -> (Vec<f32>, Vec<f32>) {
    let m = (n * p) as f64;
    let stats: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .with_min_len((MIN_TASK_ELEMS / (n * p).max(1)).max(1))
        .map(|ch| {
            let planes = || (0..n).map(move |i| &x[(i * c + ch) * p..(i * c + ch + 1) * p]);
            let sum: f64 = planes().map(|pl| run_sum(pl, |v| v)).sum();
            let mean = sum / m;
            let centre = mean as f32;
            let sq: f64 = planes()
                .map(|pl| {
                    run_sum(pl, |v| {
                        let d = v - centre;
                        d * d
                    })
                })
                .sum();
            // Σ (v − c)² with c = mean rounded to f32, corrected to the deviations from the
            // mean itself: Σ (v − mean)² = Σ (v − c)² − m·(mean − c)².
            let shift = mean - f64::from(centre);
            (centre, ((sq / m) - shift * shift).max(0.0) as f32)
        })
        .collect();
    stats.into_iter().unzip()
}

/// `Σ f(v)` over a plane: eight f32 partial sums over runs of 256 values (which the compiler
/// vectorises; a plain f64 sum is one serial chain of additions), the runs gathered in f64.
fn run_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    const RUN: usize = 256;
    vectorized(
        #[inline(always)]
        || xs.chunks(RUN).map(|run| f64::from(lane_sum(run, &f))).sum(),
    )
}

/// `y = γ·(x − μ)·inv + β` (then ReLU) with the batch's statistics fixed in the op.
#[derive(Debug, Clone)]
struct BatchNormOp {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    relu: bool,
}

/// `(Σ g, Σ g·(x − μ))` over one plane, `g = dy` (masked where `y ≤ 0` when `RELU`), with
/// f32 partial sums over short runs gathered in f64.
fn plane_sums<const RELU: bool>(x: &[f32], dy: &[f32], y: &[f32], mean: f32) -> (f64, f64) {
    vectorized(
        #[inline(always)]
        || plane_sums_body::<RELU>(x, dy, y, mean),
    )
}

#[inline(always)]
fn plane_sums_body<const RELU: bool>(x: &[f32], dy: &[f32], y: &[f32], mean: f32) -> (f64, f64) {
    const RUN: usize = 256;
    let (mut sg, mut sgx) = (0f64, 0f64);
    for (k, (xr, gr)) in x.chunks(RUN).zip(dy.chunks(RUN)).enumerate() {
        let (mut a, mut b) = ([0f32; 8], [0f32; 8]);
        let yr = if RELU {
            &y[k * RUN..k * RUN + xr.len()]
        } else {
            xr
        };
        for (i, ((&xv, &gv), &yv)) in xr.iter().zip(gr).zip(yr).enumerate() {
            let gv = if RELU && yv <= 0.0 { 0.0 } else { gv };
            a[i % 8] += gv;
            b[i % 8] += gv * (xv - mean);
        }
        sg += f64::from(a.iter().sum::<f32>());
        sgx += f64::from(b.iter().sum::<f32>());
    }
    (sg, sgx)
}

/// `(N, C, P)` of an `(N, C, H, W)` layout.
fn geometry(dims: &[usize]) -> Result<(usize, usize, usize)> {
    let &[n, c, h, w] = dims else {
        bail!("fast batch norm: expected (N, C, H, W), got {dims:?}")
    };
    Ok((n, c, h * w))
}

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&f32_slice(s)?[a..b]),
        None => bail!("fast batch norm: non-contiguous operand"),
    }
}

impl CustomOp3 for BatchNormOp {
    fn name(&self) -> &'static str {
        "mtcool-batch-norm"
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
        let (_, c, p) = geometry(l1.dims())?;
        let (x, gamma, beta) = (
            contiguous(s1, l1)?,
            contiguous(s2, l2)?,
            contiguous(s3, l3)?,
        );
        if gamma.len() != c || beta.len() != c || self.mean.len() != c {
            bail!(
                "fast batch norm: {c} channels but {} γ, {} β",
                gamma.len(),
                beta.len()
            )
        }
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(p)
            .zip(x.par_chunks(p))
            .enumerate()
            .with_min_len((MIN_TASK_ELEMS / p.max(1)).max(1))
            .for_each(|(plane, (out, x))| {
                let ch = plane % c;
                let scale = gamma[ch] * self.inv_std[ch];
                let shift = beta[ch] - self.mean[ch] * scale;
                vectorized(
                    #[inline(always)]
                    || {
                        if self.relu {
                            for (o, &v) in out.iter_mut().zip(x) {
                                *o = (v * scale + shift).max(0.0);
                            }
                        } else {
                            for (o, &v) in out.iter_mut().zip(x) {
                                *o = v * scale + shift;
                            }
                        }
                    },
                );
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, c, p) = geometry(x.dims())?;
        let m = (n * p) as f32;
        let (xc, gc, rc, gammac) = (
            x.contiguous()?,
            grad.contiguous()?,
            res.contiguous()?,
            gamma.contiguous()?,
        );
        let (xs, xl) = xc.storage_and_layout();
        let (gs, gl) = gc.storage_and_layout();
        let (rs, rl) = rc.storage_and_layout();
        let (ws, wl) = gammac.storage_and_layout();
        let (
            candle_core::Storage::Cpu(xs),
            candle_core::Storage::Cpu(gs),
            candle_core::Storage::Cpu(rs),
            candle_core::Storage::Cpu(ws),
        ) = (&*xs, &*gs, &*rs, &*ws)
        else {
            bail!("fast batch norm: backward on a non-CPU device")
        };
        let xd = contiguous(xs, xl)?;
        let dy = contiguous(gs, gl)?;
        let y = if self.relu {
            Some(contiguous(rs, rl)?)
        } else {
            None
        };
        let g = contiguous(ws, wl)?;
        let (mean, inv) = (&self.mean, &self.inv_std);
        // Per channel: Σ g and Σ g·x̂ (g: the gradient through the ReLU).
        let sums: Vec<(f32, f32)> = (0..c)
            .into_par_iter()
            .with_min_len((MIN_TASK_ELEMS / (n * p).max(1)).max(1))
            .map(|ch| {
                let (mut sg, mut sgx) = (0f64, 0f64);
                for i in 0..n {
                    let r = (i * c + ch) * p..(i * c + ch + 1) * p;
                    let (a, b) = match y {
                        Some(y) => {
                            plane_sums::<true>(&xd[r.clone()], &dy[r.clone()], &y[r], mean[ch])
                        }
                        None => plane_sums::<false>(&xd[r.clone()], &dy[r.clone()], &[], mean[ch]),
                    };
                    sg += a;
                    sgx += b;
                }
                (sg as f32, (sgx * f64::from(inv[ch])) as f32)
            })
            .collect();
        let dx = if x.track_op() {
            let mut dx = vec![0f32; xd.len()];
            dx.par_chunks_mut(p)
                .enumerate()
                .with_min_len((MIN_TASK_ELEMS / p.max(1)).max(1))
                .for_each(|(plane, dx)| {
                    let ch = plane % c;
                    let (sg, sgx) = sums[ch];
                    let k = g[ch] * inv[ch] / m;
                    // dx = k·(m·g − Σg − x̂·Σgx̂), x̂ = (x − μ)·inv
                    let (a, b) = (k * m, -k * (sg - mean[ch] * inv[ch] * sgx));
                    let cx = -k * inv[ch] * sgx;
                    let r = plane * p..(plane + 1) * p;
                    vectorized(
                        #[inline(always)]
                        || match y {
                            Some(y) => {
                                for ((d, (&xv, &gv)), &yv) in dx
                                    .iter_mut()
                                    .zip(xd[r.clone()].iter().zip(&dy[r.clone()]))
                                    .zip(&y[r])
                                {
                                    let gv = if yv > 0.0 { gv } else { 0.0 };
                                    *d = a * gv + b + cx * xv;
                                }
                            }
                            None => {
                                for (d, (&xv, &gv)) in
                                    dx.iter_mut().zip(xd[r.clone()].iter().zip(&dy[r]))
                                {
                                    *d = a * gv + b + cx * xv;
                                }
                            }
                        },
                    );
                });
            Some(Tensor::from_vec(dx, x.shape(), x.device())?)
        } else {
            None
        };
        let dev = x.device();
        let dgamma = if gamma.track_op() {
            let v: Vec<f32> = sums.iter().map(|s| s.1).collect();
            Some(Tensor::from_vec(v, c, dev)?)
        } else {
            None
        };
        let dbeta = if beta.track_op() {
            let v: Vec<f32> = sums.iter().map(|s| s.0).collect();
            Some(Tensor::from_vec(v, c, dev)?)
        } else {
            None
        };
        Ok((dx, dgamma, dbeta))
    }
}

/// Fast training-mode batch norm on f32 CPU tensors (see [`super::batch_norm_train`]).
pub(crate) fn batch_norm_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (x, gamma, beta) = (x.contiguous()?, gamma.contiguous()?, beta.contiguous()?);
    let (n, c, p) = geometry(x.dims())?;
    let (mean, var) = {
        let (s, l) = x.storage_and_layout();
        let candle_core::Storage::Cpu(s) = &*s else {
            bail!("fast batch norm: tensor not on the CPU")
        };
        channel_stats(contiguous(s, l)?, n, c, p)
    };
    let inv_std = var
        .iter()
        .map(|&v| (1.0 / (f64::from(v) + eps).sqrt()) as f32)
        .collect();
    let dev = x.device().clone();
    let mean_t = Tensor::from_vec(mean.clone(), c, &dev)?;
    let var_t = Tensor::from_vec(var, c, &dev)?;
    let y = x.apply_op3(
        &gamma,
        &beta,
        BatchNormOp {
            mean,
            inv_std,
            relu,
        },
    )?;
    Ok((y, mean_t, var_t))
}
