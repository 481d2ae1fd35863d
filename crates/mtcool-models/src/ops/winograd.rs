//! 3×3, stride-1 convolutions by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, 2016).
//!
//! The output is cut into 2 × 2 tiles; tile `t` reads a 4 × 4 window `d` of the zero-padded
//! input. With the transforms `Bᵀ` (4 × 4), `G` (4 × 3) and `Aᵀ` (2 × 4),
//!
//! ```text
//! y_t = Aᵀ [ Σ_c (G g_{o,c} Gᵀ) ⊙ (Bᵀ d_{c,t} B) ] A,
//! ```
//!
//! so each of the 16 positions `ξ` of the transformed tile is one matrix product over the
//! channels, `M[ξ] = U[ξ] × V[ξ]` (`Cout × Cin` by `Cin × tiles`): 16 multiplications per 2 × 2
//! outputs instead of 36, the transforms being additions only (and halves, in `G`).
//!
//! The backward pass uses the same pieces:
//! - input gradient: a convolution of the output gradient with the kernel turned by 180° and
//!   its channel axes swapped, padding `2 − p`: the forward path again ([`correlate`]);
//! - kernel gradient: `dU[ξ] = Σ_t (A dy_t Aᵀ)[ξ] ⊗ V_t[ξ]`, one product per `ξ` over the tiles
//!   (`Cout × tiles` by `tiles × Cin`), then `dg = Gᵀ dU G` ([`kernel_grad`]).
//!
//! Tiles are processed in chunks of whole tile rows (spanning items when images are small), so
//! that a chunk's transformed input and products stay in cache. Within a chunk the transforms
//! run in parallel over channels and the 16 products in parallel over `ξ`; chunks follow one
//! another in order, so every sum is formed in the same order whatever the thread count.

use rayon::prelude::*;

use candle_core::Result;

use super::linalg::{gemm_into, Dst, Mat};
use super::plane::Plane;
// Each transform runs through `vectorized` (compiled for AVX-512 / AVX2 where the CPU has them),
// so they are `#[inline(always)]`.
use super::simd::vectorized;

/// Positions of a transformed tile.
const XI: usize = 16;
/// Target size (f32 elements) of one chunk's transformed input and products: 2 MiB.
const CHUNK_ELEMS: usize = 1 << 19;
/// Fewest tiles per chunk, so that each product's kernel matrix is packed for enough columns.
const MIN_CHUNK_TILES: usize = 256;

/// Winograd's tiling of a [`Plane`].
impl Plane {
    /// Tile rows per item.
    fn tile_rows(&self) -> usize {
        self.ho().div_ceil(2)
    }

    /// Tiles per tile row.
    fn tile_cols(&self) -> usize {
        self.wo().div_ceil(2)
    }

    /// Tile rows per chunk (of the global tile-row index `item · tile_rows + r`).
    fn chunk_rows(&self) -> usize {
        let per_tile = XI * (self.cin + self.cout);
        let tiles = (CHUNK_ELEMS / per_tile).max(MIN_CHUNK_TILES);
        (tiles / self.tile_cols()).clamp(1, self.n * self.tile_rows())
    }

    /// The chunks, as ranges of global tile rows.
    fn chunks(&self) -> impl Iterator<Item = std::ops::Range<usize>> {
        let (total, step) = (self.n * self.tile_rows(), self.chunk_rows());
        (0..total.div_ceil(step)).map(move |i| i * step..((i + 1) * step).min(total))
    }
}

/// Whether a 3 × 3 stride-1 layer has enough channels for Winograd to win (the 16 products,
/// not the transforms, dominate): at least 64 on each side and 64 · 128 channel pairs, as
/// measured per layer shape on 2 threads with `examples/conv_bench.rs` (64 → 64 is as fast
/// either way).
pub(super) fn wide(cin: usize, cout: usize) -> bool {
    cin.min(cout) >= MIN_CHANNELS && cin * cout >= MIN_CHANNEL_PRODUCT
}

/// Fewest input or output channels for the Winograd path.
const MIN_CHANNELS: usize = 64;
/// Smallest `Cin · Cout` for the Winograd path.
const MIN_CHANNEL_PRODUCT: usize = 64 * 128;

/// `G g Gᵀ` of one 3 × 3 kernel (row-major), as 16 values.
fn kernel_tile(g: [f32; 9]) -> [f32; XI] {
    // G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]
    let col = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    let mut rows = [[0f32; 3]; 4]; // G g: 4 × 3
    for j in 0..3 {
        let t = col(g[j], g[3 + j], g[6 + j]);
        for (row, v) in rows.iter_mut().zip(t) {
            row[j] = v;
        }
    }
    let mut out = [0f32; XI];
    for (a, row) in rows.iter().enumerate() {
        out[4 * a..4 * a + 4].copy_from_slice(&col(row[0], row[1], row[2]));
    }
    out
}

/// The transformed kernels `U[ξ][o][c]` of `w: (Cout, Cin, 3, 3)`; with `flipped`, those of
/// the input gradient's correlation: `U[ξ][c][o]` of the kernel turned by 180°.
fn transform_kernels(w: &[f32], cout: usize, cin: usize, flipped: bool) -> Vec<f32> {
    let tiles: Vec<[f32; XI]> = w
        .par_chunks_exact(9)
        .with_min_len(1024)
        .map(|g| {
            let mut k = [0f32; 9];
            k.copy_from_slice(g);
            if flipped {
                k.reverse();
            }
            kernel_tile(k)
        })
        .collect();
    let plane = cout * cin;
    let mut u = vec![0f32; XI * plane];
    u.par_chunks_mut(plane).enumerate().for_each(|(xi, up)| {
        if flipped {
            // row c of U[ξ] holds (o, c) for every o
            for (c, row) in up.chunks_exact_mut(cout).enumerate() {
                for (o, dst) in row.iter_mut().enumerate() {
                    *dst = tiles[o * cin + c][xi];
                }
            }
        } else {
            for (dst, tile) in up.iter_mut().zip(&tiles) {
                *dst = tile[xi];
            }
        }
    });
    u
}

/// `Gᵀ dU G` for every `(o, c)`: the kernel gradient `(Cout, Cin, 3, 3)` from `dU[ξ][o][c]`.
fn untransform_kernel_grads(du: &[f32], cout: usize, cin: usize) -> Vec<f32> {
    let plane = cout * cin;
    // Gᵀ v for a 4-vector: [v0 + ½(v1 + v2), ½(v1 − v2), v3 + ½(v1 + v2)]
    let gt = |v: [f32; 4]| {
        let s = 0.5 * (v[1] + v[2]);
        [v[0] + s, 0.5 * (v[1] - v[2]), v[3] + s]
    };
    let mut dw = vec![0f32; plane * 9];
    dw.par_chunks_exact_mut(9)
        .with_min_len(1024)
        .enumerate()
        .for_each(|(oc, out)| {
            let m: [f32; XI] = std::array::from_fn(|xi| du[xi * plane + oc]);
            let rows: [[f32; 3]; 4] =
                std::array::from_fn(|a| gt([m[4 * a], m[4 * a + 1], m[4 * a + 2], m[4 * a + 3]]));
            for j in 0..3 {
                let col = gt([rows[0][j], rows[1][j], rows[2][j], rows[3][j]]);
                for (i, v) in col.into_iter().enumerate() {
                    out[3 * i + j] = v;
                }
            }
        });
    dw
}

/// `Bᵀ d B` of channel `c`'s tiles in global tile rows `rows`: `v[ξ][t]` (`t` local to the
/// chunk, `tiles` apart).
#[inline(always)]
fn input_transform(p: &Plane, x: &[f32], c: usize, rows: std::ops::Range<usize>, v: &mut [f32]) {
    let (tr, tc) = (p.tile_rows(), p.tile_cols());
    let tiles = rows.len() * tc;
    let half = tc + 1;
    // The four padded input rows of a tile row, split into even and odd columns (`half` each),
    // then the vertical transform of each half.
    let mut d = vec![0f32; 8 * half];
    let mut t = vec![0f32; 2 * half];
    let mut previous: Option<usize> = None;
    for (local, global) in rows.enumerate() {
        let (item, r) = (global / tr, global % tr);
        let plane = &x[(item * p.cin + c) * p.h * p.w..][..p.h * p.w];
        // Rows 2 and 3 of a tile row are rows 0 and 1 of the next one in the same item.
        let first_new = if previous.is_some_and(|g| g + 1 == global && r > 0) {
            d.copy_within(4 * half.., 0);
            2
        } else {
            0
        };
        previous = Some(global);
        for (i, halves) in d.chunks_exact_mut(2 * half).enumerate().skip(first_new) {
            let ih = (2 * r + i) as isize - p.pad as isize;
            split_padded_row(plane, p, ih, halves, &mut t);
        }
        let row = |i: usize| &d[2 * half * i..2 * half * (i + 1)];
        let (d0, d1, d2, d3) = (row(0), row(1), row(2), row(3));
        // Bᵀ on the rows: [d0 − d2, d1 + d2, d2 − d1, d1 − d3] (as u + s·v, s = ±1: exact)
        let combos = [
            (d0, d2, -1f32),
            (d1, d2, 1.0),
            (d2, d1, -1.0),
            (d1, d3, -1.0),
        ];
        for (a, (u, w, sign)) in combos.into_iter().enumerate() {
            for ((tq, &uq), &wq) in t.iter_mut().zip(u).zip(w) {
                *tq = uq + sign * wq;
            }
            let (even, odd) = t.split_at(half);
            let (e0, e1, o0, o1) = (&even[..tc], &even[1..], &odd[..tc], &odd[1..]);
            // and on the columns of each tile: [e_j − e_j+1, o_j + e_j+1, e_j+1 − o_j, o_j − o_j+1]
            let base = 4 * a * tiles + local * tc;
            let mut out = v[base..].chunks_mut(tiles);
            let mut next = || out.next().map(|row| &mut row[..tc]).unwrap_or_default();
            for ((dst, &x0), &x1) in next().iter_mut().zip(e0).zip(e1) {
                *dst = x0 - x1;
            }
            for ((dst, &x0), &x1) in next().iter_mut().zip(o0).zip(e1) {
                *dst = x0 + x1;
            }
            for ((dst, &x0), &x1) in next().iter_mut().zip(e1).zip(o0) {
                *dst = x0 - x1;
            }
            for ((dst, &x0), &x1) in next().iter_mut().zip(o0).zip(o1) {
                *dst = x0 - x1;
            }
        }
    }
}

/// Input row `ih` of a plane, shifted right by the padding (zero outside the image), split
/// into its even and odd padded columns: `halves = [even | odd]`, `tc + 1` each; `padded` is
/// scratch of the same length.
#[inline(always)]
fn split_padded_row(plane: &[f32], p: &Plane, ih: isize, halves: &mut [f32], padded: &mut [f32]) {
    if ih < 0 || ih as usize >= p.h {
        halves.fill(0.0);
        return;
    }
    let src = &plane[ih as usize * p.w..][..p.w];
    // Padded column q = input column q − pad; the row is at least `pad + w` long.
    padded[..p.pad].fill(0.0);
    padded[p.pad..p.pad + p.w].copy_from_slice(src);
    padded[p.pad + p.w..].fill(0.0);
    let (even, odd) = halves.split_at_mut(halves.len() / 2);
    deinterleave(padded, even, odd);
}

/// `even[j] = pairs[2j]`, `odd[j] = pairs[2j + 1]` (as far as the shortest goes).
#[inline(always)]
fn deinterleave(pairs: &[f32], even: &mut [f32], odd: &mut [f32]) {
    for ((e, o), pair) in even
        .iter_mut()
        .zip(odd.iter_mut())
        .zip(pairs.chunks_exact(2))
    {
        *e = pair[0];
        *o = pair[1];
    }
}

/// Where output channel `o` of a chunk goes: its bias, and its planes `(item, o)` of the
/// chunk's items, from item `first_item`.
struct OutChannel<'a, 'b> {
    o: usize,
    bias: f32,
    planes: &'a mut [&'b mut [f32]],
    first_item: usize,
}

/// `Aᵀ m A` (+ bias) of output channel `o`'s tiles in global tile rows `rows`, written into its
/// output planes; `m` is the chunk's `M[ξ][o][t]` (`t` local to the chunk).
#[inline(always)]
fn output_transform(p: &Plane, m: &[f32], rows: std::ops::Range<usize>, out: OutChannel) {
    let (tr, tc, ho, wo) = (p.tile_rows(), p.tile_cols(), p.ho(), p.wo());
    let tiles = rows.len() * tc;
    let (o, bias) = (out.o, out.bias);
    let mut s = vec![0f32; 8 * tc];
    let mut y = vec![0f32; 2 * tc];
    for (local, global) in rows.enumerate() {
        let (item, r) = (global / tr, global % tr);
        let row = |xi: usize| &m[(xi * p.cout + o) * tiles + local * tc..][..tc];
        // Aᵀ on the rows: s0 = m0 + m1 + m2, s1 = m1 − m2 − m3 (for each column b)
        for b in 0..4 {
            let (m0, m1, m2, m3) = (row(b), row(4 + b), row(8 + b), row(12 + b));
            let (s0, s1) = s[2 * b * tc..(2 * b + 2) * tc].split_at_mut(tc);
            for (((s0, s1), (&a0, &a1)), (&a2, &a3)) in s0
                .iter_mut()
                .zip(s1.iter_mut())
                .zip(m0.iter().zip(m1))
                .zip(m2.iter().zip(m3))
            {
                *s0 = a0 + a1 + a2;
                *s1 = a1 - a2 - a3;
            }
        }
        let plane = &mut out.planes[item - out.first_item];
        for i in 0..2 {
            let oh = 2 * r + i;
            if oh >= ho {
                break;
            }
            let col = |b: usize| &s[(2 * b + i) * tc..][..tc];
            let (c0, c1, c2, c3) = (col(0), col(1), col(2), col(3));
            // and on the columns: y0 = s0 + s1 + s2, y1 = s1 − s2 − s3, interleaved
            for ((pair, (&a0, &a1)), (&a2, &a3)) in y
                .chunks_exact_mut(2)
                .zip(c0.iter().zip(c1))
                .zip(c2.iter().zip(c3))
            {
                pair[0] = a0 + a1 + a2 + bias;
                pair[1] = a1 - a2 - a3 + bias;
            }
            plane[oh * wo..(oh + 1) * wo].copy_from_slice(&y[..wo]);
        }
    }
}

/// `A dy Aᵀ` of output channel `o`'s gradient tiles in global tile rows `rows`: `dm[ξ][t]`.
#[inline(always)]
fn grad_transform(p: &Plane, dy: &[f32], o: usize, rows: std::ops::Range<usize>, dm: &mut [f32]) {
    let (tr, tc, ho, wo) = (p.tile_rows(), p.tile_cols(), p.ho(), p.wo());
    let tiles = rows.len() * tc;
    let mut r2 = vec![0f32; 4 * tc];
    let mut t = vec![0f32; 2 * tc];
    let (mut even, mut odd) = (vec![0f32; tc], vec![0f32; tc]);
    for (local, global) in rows.enumerate() {
        let (item, r) = (global / tr, global % tr);
        let plane = &dy[(item * p.cout + o) * ho * wo..][..ho * wo];
        // The tile's two output rows, zero past the last row and column.
        r2.fill(0.0);
        for i in 0..2 {
            if 2 * r + i < ho {
                r2[i * 2 * tc..i * 2 * tc + wo].copy_from_slice(&plane[(2 * r + i) * wo..][..wo]);
            }
        }
        let (y0, y1) = r2[..4 * tc].split_at(2 * tc);
        // A on the rows: [y0, y0 + y1, y0 − y1, −y1] (as s·y0 + r·y1, s, r ∈ {0, ±1})
        let combos = [(1f32, 0f32), (1.0, 1.0), (1.0, -1.0), (0.0, -1.0)];
        for (a, (s0, s1)) in combos.into_iter().enumerate() {
            for ((tq, &u), &v) in t.iter_mut().zip(y0).zip(y1) {
                *tq = s0 * u + s1 * v;
            }
            deinterleave(&t, &mut even, &mut odd);
            let base = 4 * a * tiles + local * tc;
            let mut out = dm[base..].chunks_mut(tiles);
            let mut next = || out.next().map(|row| &mut row[..tc]).unwrap_or_default();
            next().copy_from_slice(&even);
            for ((dst, &e), &od) in next().iter_mut().zip(&even).zip(&odd) {
                *dst = e + od;
            }
            for ((dst, &e), &od) in next().iter_mut().zip(&even).zip(&odd) {
                *dst = e - od;
            }
            for (dst, &od) in next().iter_mut().zip(&odd) {
                *dst = -od;
            }
        }
    }
}

/// The chunk's transformed input `V[c][ξ][t]` (rows of all channels), computed in parallel
/// over channels into `v` (at least `Cin · 16 · tiles` long).
fn transform_chunk_input(p: &Plane, x: &[f32], rows: &std::ops::Range<usize>, v: &mut [f32]) {
    let tiles = rows.len() * p.tile_cols();
    v[..p.cin * XI * tiles]
        .par_chunks_mut(XI * tiles)
        .enumerate()
        .for_each(|(c, vc)| {
            vectorized(
                #[inline(always)]
                || input_transform(p, x, c, rows.clone(), vc),
            )
        });
}

/// `V[ξ]` of a chunk: `Cin × tiles`, rows `16 · tiles` apart.
fn v_mat(v: &[f32], xi: usize, rows: usize, tiles: usize) -> Mat<'_> {
    Mat::strided(v, xi * tiles, rows, tiles, XI * tiles)
}

/// The stride-1 3 × 3 correlation of `x` with transformed kernels `u` (`U[ξ][o][c]`), plus
/// `bias` when given: `(N, Cout, Ho, Wo)`.
pub(super) fn correlate(p: &Plane, x: &[f32], u: &[f32], bias: Option<&[f32]>) -> Result<Vec<f32>> {
    let (ho, wo, tc) = (p.ho(), p.wo(), p.tile_cols());
    let mut out = vec![0f32; p.n * p.cout * ho * wo];
    let max_tiles = p.chunk_rows() * tc;
    let mut v = vec![0f32; p.cin * XI * max_tiles];
    let mut m = vec![0f32; XI * p.cout * max_tiles];
    for rows in p.chunks() {
        let tiles = rows.len() * tc;
        transform_chunk_input(p, x, &rows, &mut v);
        // M[ξ] = U[ξ] × V[ξ], in parallel over ξ.
        m[..XI * p.cout * tiles]
            .par_chunks_mut(p.cout * tiles)
            .enumerate()
            .try_for_each(|(xi, mx)| {
                let uk = Mat::row_major(u, xi * p.cout * p.cin, p.cout, p.cin);
                let dst = Dst::row_major(mx, p.cout, tiles);
                gemm_into(dst, uk, v_mat(&v, xi, p.cin, tiles), false)
            })?;
        // The output planes (item, o) of the chunk's items, in parallel over o.
        let tr = p.tile_rows();
        let (first, last) = (rows.start / tr, (rows.end - 1) / tr);
        let items = &mut out[first * p.cout * ho * wo..(last + 1) * p.cout * ho * wo];
        let mut by_channel: Vec<Vec<&mut [f32]>> = (0..p.cout).map(|_| Vec::new()).collect();
        for (i, plane) in items.chunks_exact_mut(ho * wo).enumerate() {
            by_channel[i % p.cout].push(plane);
        }
        by_channel
            .par_iter_mut()
            .enumerate()
            .for_each(|(o, planes)| {
                let out = OutChannel {
                    o,
                    bias: bias.map_or(0.0, |b| b[o]),
                    planes,
                    first_item: first,
                };
                vectorized(
                    #[inline(always)]
                    || output_transform(p, &m, rows.clone(), out),
                );
            });
    }
    Ok(out)
}

/// The forward convolution `(N, Cin, H, W)` → `(N, Cout, Ho, Wo)` with kernel `w`
/// `(Cout, Cin, 3, 3)` and `bias`.
pub(super) fn forward(p: &Plane, x: &[f32], w: &[f32], bias: &[f32]) -> Result<Vec<f32>> {
    let u = transform_kernels(w, p.cout, p.cin, false);
    correlate(p, x, &u, Some(bias))
}

/// The input gradient `(N, Cin, H, W)` of the output gradient `dy` `(N, Cout, Ho, Wo)`.
pub(super) fn input_grad(p: &Plane, w: &[f32], dy: &[f32]) -> Result<Vec<f32>> {
    let u = transform_kernels(w, p.cout, p.cin, true);
    correlate(&p.transposed(), dy, &u, None)
}

/// The kernel gradient `(Cout, Cin, 3, 3)` of the output gradient `dy` `(N, Cout, Ho, Wo)`.
pub(super) fn kernel_grad(p: &Plane, x: &[f32], dy: &[f32]) -> Result<Vec<f32>> {
    let tc = p.tile_cols();
    let max_tiles = p.chunk_rows() * tc;
    let mut v = vec![0f32; p.cin * XI * max_tiles];
    let mut dm = vec![0f32; p.cout * XI * max_tiles];
    let mut du = vec![0f32; XI * p.cout * p.cin];
    for rows in p.chunks() {
        let tiles = rows.len() * tc;
        transform_chunk_input(p, x, &rows, &mut v);
        dm[..p.cout * XI * tiles]
            .par_chunks_mut(XI * tiles)
            .enumerate()
            .for_each(|(o, dmo)| {
                vectorized(
                    #[inline(always)]
                    || grad_transform(p, dy, o, rows.clone(), dmo),
                );
            });
        // dU[ξ] += dM[ξ] × V[ξ]ᵀ, in parallel over ξ.
        du.par_chunks_mut(p.cout * p.cin)
            .enumerate()
            .try_for_each(|(xi, dux)| {
                let dst = Dst::row_major(dux, p.cout, p.cin);
                let lhs = v_mat(&dm, xi, p.cout, tiles);
                gemm_into(dst, lhs, v_mat(&v, xi, p.cin, tiles).t(), true)
            })?;
    }
    Ok(untransform_kernel_grads(&du, p.cout, p.cin))
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
    fn wide_layers_only() {
        assert!(wide(128, 128));
        assert!(wide(64, 128));
        assert!(!wide(64, 64));
        assert!(!wide(32, 1024));
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let p = Plane {
            n: 2,
            cin: 64,
            h: 40,
            w: 37,
            cout: 48,
            pad: 1,
        };
        assert!(p.chunks().count() > 1);
        reference::check_thread_independence(&p, forward, input_grad, kernel_grad);
    }

    #[test]
    fn chunks_cover_every_tile_row_once() {
        let p = Plane {
            n: 3,
            cin: 64,
            h: 70,
            w: 67,
            cout: 64,
            pad: 1,
        };
        let rows: Vec<usize> = p.chunks().flatten().collect();
        assert_eq!(rows, (0..3 * p.tile_rows()).collect::<Vec<_>>());
        assert!(p.chunks().count() > 1);
    }
}
