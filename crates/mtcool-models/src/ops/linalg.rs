//! Strided f32 matrix products on slices, through the `gemm` crate (candle's CPU matmul engine).
//!
//! The custom ops multiply strided views of their own buffers (transposed views, a tile's rows
//! inside an output map) and write or accumulate the product straight into its destination:
//! no temporary result, no copy afterwards. `gemm` trusts the pointers and strides it is given,
//! so [`gemm_into`] first checks that every element each view addresses lies inside its slice.
//!
//! `gemm` picks its kernels at run time: AVX-512 where the CPU has it (the workspace enables
//! the crate's `x86-v4` feature), AVX2/FMA otherwise. It splits a product between threads only
//! over the destination's blocks, never over the inner dimension, so a product's value does not
//! depend on the thread count.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, Result};

/// A strided `rows × cols` view of an f32 slice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    /// Distance between consecutive rows.
    pub row_stride: usize,
    /// Distance between consecutive columns.
    pub col_stride: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows × cols` matrix starting at `offset`.
    pub fn row_major(data: &'a [f32], offset: usize, rows: usize, cols: usize) -> Self {
        Self::strided(data, offset, rows, cols, cols)
    }

    /// `rows × cols` with rows `row_stride` apart and contiguous columns, from `offset`.
    pub fn strided(
        data: &'a [f32],
        offset: usize,
        rows: usize,
        cols: usize,
        row_stride: usize,
    ) -> Self {
        Self {
            data,
            offset,
            rows,
            cols,
            row_stride,
            col_stride: 1,
        }
    }

    /// The transposed view (no copy).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    fn check(&self, what: &str) -> Result<()> {
        check_view(
            what,
            self.data.len(),
            self.offset,
            (self.rows, self.cols),
            (self.row_stride, self.col_stride),
        )
    }
}

/// Where a product goes: `rows × cols` of `data` from `offset`, rows `row_stride` apart,
/// contiguous columns.
#[derive(Debug)]
pub(crate) struct Dst<'a> {
    pub data: &'a mut [f32],
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
}

impl<'a> Dst<'a> {
    /// A row-major `rows × cols` destination filling the start of `data`.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            offset: 0,
            rows,
            cols,
            row_stride: cols,
        }
    }
}

/// Fails unless a non-empty view stays inside a buffer of `len` elements.
fn check_view(
    what: &str,
    len: usize,
    offset: usize,
    (rows, cols): (usize, usize),
    (rs, cs): (usize, usize),
) -> Result<()> {
    if rows == 0 || cols == 0 {
        bail!("fast ops: empty {what} matrix {rows}x{cols}")
    }
    let last = offset + (rows - 1) * rs + (cols - 1) * cs;
    if last >= len {
        bail!(
            "fast ops: a {rows}x{cols} {what} view (offset {offset}, strides {rs}/{cs}) overruns \
             a buffer of {len}"
        )
    }
    Ok(())
}

/// `dst = lhs × rhs`, or `dst += lhs × rhs` when `accumulate`. Large products use the rayon
/// pool's threads (`gemm`'s own size threshold), so this may run inside rayon tasks.
///
/// The workspace's only `unsafe` code: `gemm` takes raw pointers and strides.
#[allow(unsafe_code)]
pub(crate) fn gemm_into(dst: Dst<'_>, lhs: Mat<'_>, rhs: Mat<'_>, accumulate: bool) -> Result<()> {
    if lhs.cols != rhs.rows || dst.rows != lhs.rows || dst.cols != rhs.cols {
        bail!(
            "fast ops: product of {}x{} by {}x{} into {}x{}",
            lhs.rows,
            lhs.cols,
            rhs.rows,
            rhs.cols,
            dst.rows,
            dst.cols
        )
    }
    lhs.check("left")?;
    rhs.check("right")?;
    check_view(
        "destination",
        dst.data.len(),
        dst.offset,
        (dst.rows, dst.cols),
        (dst.row_stride, 1),
    )?;
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the three views were checked to lie inside their slices; `dst` is borrowed
    // mutably, so it overlaps neither operand.
    unsafe {
        gemm::gemm(
            dst.rows,
            dst.cols,
            lhs.cols,
            dst.data.as_mut_ptr().add(dst.offset),
            1,
            dst.row_stride as isize,
            accumulate,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

/// The f32 data of a CPU storage.
pub(crate) fn f32_slice(storage: &CpuStorage) -> Result<&[f32]> {
    match storage {
        CpuStorage::F32(v) => Ok(v),
        other => bail!("fast ops: expected f32 storage, got {:?}", other.dtype()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        (0..m * n)
            .map(|i| (0..k).map(|j| a[i / n * k + j] * b[j * n + i % n]).sum())
            .collect()
    }

    #[test]
    fn products_of_strided_views_match_the_naive_product() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        // dst rows 4 apart inside a larger buffer, accumulated twice
        let mut buf = vec![0f32; 2 + m * 4];
        for accumulate in [false, true] {
            let dst = Dst {
                data: &mut buf,
                offset: 2,
                rows: m,
                cols: n,
                row_stride: 4,
            };
            let rhs_t: Vec<f32> = (0..n * k).map(|i| b[i % k * n + i / k]).collect();
            let rhs = Mat::row_major(&rhs_t, 0, n, k).t();
            gemm_into(dst, Mat::row_major(&a, 0, m, k), rhs, accumulate).unwrap();
        }
        for i in 0..m {
            for j in 0..n {
                let got = buf[2 + i * 4 + j];
                assert!((got - 2.0 * want[i * n + j]).abs() < 1e-5, "{got}");
            }
        }
    }

    #[test]
    fn views_outside_their_buffers_are_refused() {
        let a = vec![0f32; 6];
        let mut d = vec![0f32; 4];
        let lhs = Mat::row_major(&a, 1, 2, 3); // overruns by one
        let rhs = Mat::row_major(&a, 0, 3, 2);
        let err = gemm_into(Dst::row_major(&mut d, 2, 2), lhs, rhs, false).unwrap_err();
        assert!(err.to_string().contains("overruns"), "{err}");
        let lhs = Mat::row_major(&a, 0, 2, 3);
        let err = gemm_into(Dst::row_major(&mut d, 2, 3), lhs, rhs, false).unwrap_err();
        assert!(err.to_string().contains("into 2x3"), "{err}");
    }
}
