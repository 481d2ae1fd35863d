//! Convolution and pooling with fast CPU backward passes, behind one switch.
//!
//! Candle's own `conv2d` computes, in its backward pass, the input gradient with a direct
//! transposed convolution (even for an image batch that needs none) and the kernel gradient as a
//! convolution whose "kernel" is the whole output map; both dominate a CPU training step. The
//! [`OpsBackend::Fast`] ops here are candle custom ops with hand-written backward passes:
//!
//! - [`conv2d`]: one custom op over `(x, w, b)`. Forward: im2col + one GEMM per cache-sized tile
//!   of the batch, the bias added while the product is copied to `(N, Cout, H', W')`. Backward:
//!   the column matrix recomputed tile by tile, the kernel gradient as one GEMM over it, the bias
//!   gradient as a sum over positions, and the input gradient as GEMM + col2im — skipped when
//!   the input tracks no gradient (an image batch). 3 × 3 stride-1 layers take one of two other
//!   algorithms where it is faster ([`ConvAlgorithm`]): Winograd's F(2×2, 3×3) for wide layers
//!   (`winograd.rs`), direct kernels that read the padded input in place for narrow layers on
//!   large images (`direct.rs`);
//! - [`max_pool2d`]: non-overlapping max pooling whose backward scatters the gradient to the
//!   (first) argmax of each window;
//! - [`batch_norm_train`]: training-mode BatchNorm (optionally fused with the ReLU after it)
//!   with per-channel statistics in one pass and a hand-written backward.
//!
//! Work is spread over the batch with rayon; the GEMMs are the `gemm` crate's (candle's CPU
//! matmul engine, with its AVX-512 kernels enabled), called directly on strided views of the
//! op's buffers. Only `f32` tensors on the CPU take the fast path: other dtypes and devices
//! (CUDA) fall back to candle's ops.
//!
//! Performance notes for binaries: candle's CPU matmul looks the thread count up on every call
//! and, when `RAYON_NUM_THREADS` is unset, re-reads `/proc/cpuinfo` each time (about 20% of a
//! LeNet conv step here); and these ops, like candle's, allocate large buffers per call, so an
//! allocator that reuses them (mimalloc) avoids page faults that otherwise cost about a third,
//! provided it keeps freed memory mapped (`mtcool_train::cli::init` sets mimalloc's purge delay
//! to never).
//!
//! ```
//! # fn main() -> candle_core::Result<()> {
//! use candle_core::{DType, Device, Tensor};
//! use mtcool_models::ops::{conv2d, max_pool2d, OpsBackend};
//! let x = Tensor::ones((2, 1, 28, 28), DType::F32, &Device::Cpu)?;
//! let w = Tensor::ones((10, 1, 5, 5), DType::F32, &Device::Cpu)?;
//! let b = Tensor::zeros(10, DType::F32, &Device::Cpu)?;
//! let y = conv2d(&x, &w, &b, 1, 0, OpsBackend::Fast)?;
//! let y = max_pool2d(&y, 2, OpsBackend::Fast)?;
//! assert_eq!(y.dims(), &[2, 10, 12, 12]);
//! # Ok(()) }
//! ```

mod algorithm;
mod batch_norm;
mod conv;
mod direct;
mod linalg;
mod plane;
mod pool;
#[cfg(test)]
mod reference;
mod scratch;
mod simd;
mod upsample;
mod winograd;

pub use algorithm::ConvAlgorithm;

use candle_core::{DType, Result, Tensor};

/// Which implementation of convolution and pooling models use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpsBackend {
    /// Candle's own `conv2d` / `max_pool2d`, kept for comparison.
    Candle,
    /// The custom ops of this module (im2col + GEMM, argmax pooling) on the CPU; candle's ops
    /// elsewhere.
    #[default]
    Fast,
}

impl std::str::FromStr for OpsBackend {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "candle" => Ok(Self::Candle),
            "fast" => Ok(Self::Fast),
            other => Err(format!(
                "unknown ops backend {other:?} (expected candle or fast)"
            )),
        }
    }
}

impl std::fmt::Display for OpsBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Candle => "candle",
            Self::Fast => "fast",
        })
    }
}

/// Whether the fast CPU kernels handle these tensors (f32, all on the CPU).
fn fast_path(backend: OpsBackend, tensors: &[&Tensor]) -> bool {
    backend == OpsBackend::Fast
        && tensors
            .iter()
            .all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

/// `y = conv2d(x, w) + b`, with `x: (N, C, H, W)`, `w: (Cout, C, k, k)`, `b: (Cout,)`: a square
/// kernel, the given `stride` and `padding` on both axes, dilation 1, one group. Returns
/// `(N, Cout, H', W')` with `H' = (H + 2·padding − k) / stride + 1` (and likewise `W'`).
///
/// Gradients flow to `x`, `w` and `b` through [`Tensor::backward`] with either backend; the fast
/// one computes no input gradient when `x` tracks none. (Candle's own backward pass, 0.11.1,
/// fails with a shape error when `stride > 1` and `H + 2·padding − k`, `W + 2·padding − k` leave
/// different remainders modulo `stride`; the fast one has no such restriction.)
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    stride: usize,
    padding: usize,
    backend: OpsBackend,
) -> Result<Tensor> {
    if fast_path(backend, &[x, w, b]) {
        conv::conv2d(x, w, b, stride, padding)
    } else {
        let cout = w.dim(0)?;
        x.conv2d(w, padding, stride, 1, 1)?
            .broadcast_add(&b.reshape((1, cout, 1, 1))?)
    }
}

/// Which algorithm the fast `conv2d` uses, for the whole process (default
/// [`ConvAlgorithm::Auto`]; the environment variable `MTCOOL_CONV=auto|im2col|winograd|direct`
/// sets the starting choice). The algorithms round differently, so the choice changes results
/// in the last digits; it is for comparing them (`examples/conv_bench.rs`), not for everyday
/// use.
pub fn set_conv_algorithm(choice: ConvAlgorithm) {
    algorithm::set(choice);
}

/// Non-overlapping max pooling, kernel = stride = `k`: `x: (N, C, H, W)` →
/// `(N, C, ⌊H/k⌋, ⌊W/k⌋)`. With [`OpsBackend::Fast`] the gradient of each window goes to its
/// first maximum, as in PyTorch.
///
/// [`OpsBackend::Candle`] is candle's own `max_pool2d`, unchanged. Its backward pass (candle
/// 0.11.1) differs: it scales each window's gradient by (number of maxima) / k², i.e. by 1/k² for
/// a unique maximum, and when `H` or `W` is not a multiple of `k` it also misplaces the gradient
/// (it upsamples the pooled map to the full input size).
pub fn max_pool2d(x: &Tensor, k: usize, backend: OpsBackend) -> Result<Tensor> {
    match backend {
        OpsBackend::Candle => x.max_pool2d(k),
        OpsBackend::Fast if fast_path(backend, &[x]) => pool::max_pool2d(x, k),
        OpsBackend::Fast => max_pool2d_by_reshape(x, k),
    }
}

/// Non-overlapping max pooling from candle's reshape and max-reduction ops, on any device.
///
/// `(N, C, H, W)` is cropped to multiples of `k`, viewed as `(N, C, H/k, k, W/k, k)` and reduced
/// over the two window axes. Its gradient is that of candle's max reduction: the full
/// gradient to each window's maximum (to every tied maximum), unlike candle's `max_pool2d`
/// backward. The fast path on GPUs until a dedicated kernel exists.
pub fn max_pool2d_by_reshape(x: &Tensor, k: usize) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (ho, wo) = (h / k, w / k);
    if k == 0 || ho == 0 || wo == 0 {
        candle_core::bail!("max_pool2d: kernel {k} does not fit a {h}×{w} input");
    }
    let cropped = x.narrow(2, 0, ho * k)?.narrow(3, 0, wo * k)?.contiguous()?;
    cropped.reshape((n, c, ho, k, wo, k))?.max(5)?.max(3)
}

/// Training-mode batch normalisation over the channels of `x: (N, C, H, W)`:
/// `y = γ·(x − μ)/√(σ² + ε) + β` with μ, σ² the batch's per-channel mean and biased variance
/// (over `N, H, W`), followed by a ReLU when `relu`. `gamma`, `beta`: `(C,)`. Returns `y` and
/// the statistics `(μ, σ²)`, `(C,)` each, without gradient (for the running averages).
///
/// Gradients flow to `x`, `gamma` and `beta` with either backend; [`OpsBackend::Fast`] on the CPU
/// is one custom op (see the module notes), elsewhere the same formula from candle's ops.
pub fn batch_norm_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    relu: bool,
    backend: OpsBackend,
) -> Result<(Tensor, Tensor, Tensor)> {
    if fast_path(backend, &[x, gamma, beta]) {
        return batch_norm::batch_norm_train(x, gamma, beta, eps, relu);
    }
    let c = x.dim(1)?;
    let mean = x.mean_keepdim((0, 2, 3))?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim((0, 2, 3))?;
    let scale = gamma
        .reshape((1, c, 1, 1))?
        .broadcast_div(&(&var + eps)?.sqrt()?)?;
    let y = centred
        .broadcast_mul(&scale)?
        .broadcast_add(&beta.reshape((1, c, 1, 1))?)?;
    let y = if relu { y.relu()? } else { y };
    Ok((y, mean.flatten_all()?.detach(), var.flatten_all()?.detach()))
}

/// Nearest-neighbour up-sampling by an integer factor: `x: (N, C, H, W)` →
/// `(N, C, s·H, s·W)`, each value repeated in an `s × s` block; the gradient of a block is the
/// sum of its gradients.
///
/// [`OpsBackend::Fast`] on the CPU is a custom op; elsewhere it is built from reshape and
/// broadcast, which candle differentiates on every device. Candle's own `upsample_nearest2d`
/// (0.11.1) is not used: its backward pass *overwrites* the input's accumulated gradient instead
/// of adding to it, which loses gradient whenever the input has another consumer (the bottom
/// features of a U-Net feed both the decoder and a classifier).
pub fn upsample_nearest(x: &Tensor, scale: usize, backend: OpsBackend) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    if scale == 0 {
        crate::fail!("upsample_nearest: scale must be at least 1");
    }
    if scale == 1 {
        return Ok(x.clone());
    }
    if fast_path(backend, &[x]) {
        return upsample::upsample_nearest(x, scale);
    }
    x.reshape((n, c, h, 1, w, 1))?
        .broadcast_as((n, c, h, scale, w, scale))?
        .contiguous()?
        .reshape((n, c, h * scale, w * scale))
}

/// Average pooling with kernel = stride = `k` on any device (reshape + mean):
/// `(N, C, H, W)` → `(N, C, H/k, W/k)`; `H` and `W` must be multiples of `k`.
pub fn avg_pool(x: &Tensor, k: usize) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    if k == 0 || h % k != 0 || w % k != 0 {
        crate::fail!("avg_pool: kernel {k} does not divide a {h}×{w} input");
    }
    if k == 1 {
        return Ok(x.clone());
    }
    x.contiguous()?
        .reshape((n, c, h / k, k, w / k, k))?
        .mean(5)?
        .mean(3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn reshape_pooling_matches_the_fast_kernel_in_values_and_gradients() {
        // distinct values (no ties), odd sizes so that cropping matters
        let values: Vec<f32> = (0..2 * 3 * 7 * 9)
            .map(|i| ((i * 37) % 101) as f32 * 0.01)
            .collect();
        let x = Var::from_vec(values, (2, 3, 7, 9), &Device::Cpu).unwrap();
        let weights = Tensor::arange(0f32, 2.0 * 3.0 * 3.0 * 4.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 3, 3, 4))
            .unwrap();
        let run = |y: Tensor| {
            let grads = (y.clone() * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g = grads
                .get(&x)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            (y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), g)
        };
        let fast = run(pool::max_pool2d(x.as_tensor(), 2).unwrap());
        let reshaped = run(max_pool2d_by_reshape(x.as_tensor(), 2).unwrap());
        assert_eq!(fast, reshaped);
    }
}
