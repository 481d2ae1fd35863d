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
//!   the input tracks no gradient (an image batch);
//! - [`max_pool2d`]: non-overlapping max pooling whose backward scatters the gradient to the
//!   (first) argmax of each window.
//!
//! Work is spread over the batch with rayon; the GEMMs are candle's (the `gemm` crate), called
//! on strided views of the op's buffers. Only `f32` tensors on the CPU take the fast path: other
//! dtypes and devices (CUDA) fall back to candle's ops.
//!
//! Performance notes for binaries: candle's CPU matmul looks the thread count up on every call
//! and, when `RAYON_NUM_THREADS` is unset, re-reads `/proc/cpuinfo` each time (about 20% of a
//! LeNet conv step here); and these ops, like candle's, allocate large buffers per call, so an
//! allocator that reuses them (mimalloc) avoids page faults that otherwise cost about a third.
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

mod conv;
mod linalg;
mod pool;

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
