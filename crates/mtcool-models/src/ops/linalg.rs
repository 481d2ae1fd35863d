//! Strided f32 matrix products on CPU buffers, through candle's own CPU matmul (`gemm` crate).
//!
//! Candle's storage-level matmul takes any row and column strides, so the custom ops can
//! multiply transposed views of their buffers without copying them first. Its kernel trusts the
//! layouts it is given: [`Mat::check`] verifies that every element a view addresses lies inside
//! its buffer before any product runs.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, Layout, Result};

/// A strided `rows × cols` view of an f32 CPU storage.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub storage: &'a CpuStorage,
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
    pub fn row_major(storage: &'a CpuStorage, offset: usize, rows: usize, cols: usize) -> Self {
        Self {
            storage,
            offset,
            rows,
            cols,
            row_stride: cols,
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

    fn layout(&self) -> Layout {
        Layout::new(
            (self.rows, self.cols).into(),
            vec![self.row_stride, self.col_stride],
            self.offset,
        )
    }

    /// Fails unless the view is non-empty, f32 and inside its buffer.
    fn check(&self) -> Result<()> {
        let len = match self.storage {
            CpuStorage::F32(v) => v.len(),
            other => bail!("fast ops: expected f32 storage, got {:?}", other.dtype()),
        };
        if self.rows == 0 || self.cols == 0 {
            bail!("fast ops: empty matrix {}x{}", self.rows, self.cols)
        }
        let last =
            self.offset + (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
        if last >= len {
            bail!(
                "fast ops: a {}x{} view (offset {}, strides {}/{}) overruns a buffer of {len}",
                self.rows,
                self.cols,
                self.offset,
                self.row_stride,
                self.col_stride
            )
        }
        Ok(())
    }
}

/// `lhs × rhs` as a fresh row-major vector. The product uses several threads only when large
/// (the `gemm` crate's own threshold), so it can run inside rayon tasks.
pub(crate) fn matmul(lhs: Mat<'_>, rhs: Mat<'_>) -> Result<Vec<f32>> {
    if lhs.cols != rhs.rows {
        bail!(
            "fast ops: matmul of {}x{} by {}x{}",
            lhs.rows,
            lhs.cols,
            rhs.rows,
            rhs.cols
        )
    }
    lhs.check()?;
    rhs.check()?;
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    match lhs
        .storage
        .matmul(rhs.storage, (1, m, n, k), &lhs.layout(), &rhs.layout())?
    {
        CpuStorage::F32(v) => Ok(v),
        other => bail!("fast ops: matmul returned {:?}", other.dtype()),
    }
}

/// The f32 data of a CPU storage.
pub(crate) fn f32_slice(storage: &CpuStorage) -> Result<&[f32]> {
    match storage {
        CpuStorage::F32(v) => Ok(v),
        other => bail!("fast ops: expected f32 storage, got {:?}", other.dtype()),
    }
}

/// Moves `buf` into a CPU storage for [`matmul`], runs `f` on it and gives the buffer back.
pub(crate) fn with_storage<R>(
    buf: Vec<f32>,
    f: impl FnOnce(&CpuStorage) -> Result<R>,
) -> (Vec<f32>, Result<R>) {
    let storage = CpuStorage::F32(buf);
    let r = f(&storage);
    match storage {
        CpuStorage::F32(v) => (v, r),
        _ => (Vec::new(), r),
    }
}
