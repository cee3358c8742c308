//! The linear layers' GEMMs, split across rayon's threads in tiles of our choosing, in f32 or
//! (under autocast) bf16.
//!
//! burn-flex hands each whole GEMM to the `gemm` crate with its own threading. On the model's
//! shapes that threading leaves up to a third of the rate unused for the input gradient
//! `dY · Wᵀ` (a transposed right-hand side) and for the short GEMMs of evaluation batches:
//! measured on Intel Xeon (2 threads, 420 × 384 · 384 × 1536 and its transposes), 117–181
//! GFLOP/s against 160–215 when the output's columns are split into one single-threaded GEMM
//! per thread (docs/benchmarks-analysis.md). Here every GEMM runs as such tiles.
//!
//! The tiles depend only on the shapes and the thread count, and each kernel sums in a fixed
//! order, so a run is reproducible bit for bit on a given machine.

mod bf16;

use rayon::prelude::*;

pub use bf16::{Bf16Kernel, FORCE_VARIABLE};

/// The narrowest tile side worth a thread of its own: below it the packing overhead of one
/// more GEMM call outweighs the parallelism.
const MIN_TILE: usize = 64;

/// The arithmetic of a product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arithmetic {
    /// f32 operands, f32 sums.
    F32,
    /// Operands rounded to bf16, f32 sums (autocast), on this kernel.
    Bf16(Bf16Kernel),
}

/// A row-major matrix operand: its first element and its strides in elements.
#[derive(Clone, Copy, Debug)]
pub(super) struct Operand {
    ptr: *const f32,
    row_stride: isize,
    col_stride: isize,
}

// SAFETY: an `Operand` only ever points into a buffer that outlives the GEMM reading it, and
// is only read through.
unsafe impl Send for Operand {}
unsafe impl Sync for Operand {}

impl Operand {
    /// `values` read as a `rows × cols` row-major matrix, or as its transpose.
    pub(super) fn new(values: &[f32], cols: usize, transposed: bool) -> Self {
        let (row_stride, col_stride) = if transposed {
            (1, cols as isize)
        } else {
            (cols as isize, 1)
        };
        Self {
            ptr: values.as_ptr(),
            row_stride,
            col_stride,
        }
    }

    /// The operand starting at row `row`, column `col`.
    fn at(self, row: usize, col: usize) -> Self {
        let offset = row as isize * self.row_stride + col as isize * self.col_stride;
        Self {
            ptr: self.ptr.wrapping_offset(offset),
            ..self
        }
    }
}

/// How one GEMM splits across threads: `row_parts × col_parts` tiles of the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tiling {
    row_parts: usize,
    col_parts: usize,
}

impl Tiling {
    /// Tiles for an `m × n` output on `threads` threads, splitting the columns first (the
    /// micro-kernels run along them for a row-major output), then the rows, and no side
    /// narrower than [`MIN_TILE`].
    fn new(m: usize, n: usize, threads: usize) -> Self {
        let col_parts = (n / MIN_TILE).clamp(1, threads.max(1));
        let row_parts = (m / MIN_TILE).clamp(1, (threads / col_parts).max(1));
        Self {
            row_parts,
            col_parts,
        }
    }

    /// The `[start, end)` ranges of part `part` of `len` split in `parts`, in multiples of 16
    /// (the f32 micro-kernel's width) except for the last.
    fn range(len: usize, parts: usize, part: usize) -> (usize, usize) {
        let step = len.div_ceil(parts).next_multiple_of(16);
        ((part * step).min(len), ((part + 1) * step).min(len))
    }
}

/// The output of a GEMM, shared by the threads that write its disjoint tiles.
#[derive(Clone, Copy, Debug)]
struct Output(*mut f32);

// SAFETY: each thread writes only its own tile (see `gemm_into`).
unsafe impl Send for Output {}
unsafe impl Sync for Output {}

impl Output {
    /// The element `offset` places past the start.
    fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// A GEMM's extents: `(m × k) · (k × n)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Dims {
    pub(super) m: usize,
    pub(super) n: usize,
    pub(super) k: usize,
}

/// `out (m × n) = [out +] lhs (m × k) · rhs (k × n)`, `out` row-major; with `accumulate` the
/// product is added to what `out` holds, else `out` is overwritten.
pub(super) fn gemm_into(
    out: &mut [f32],
    dims: Dims,
    lhs: Operand,
    rhs: Operand,
    accumulate: bool,
    arithmetic: Arithmetic,
) {
    let Dims { m, n, k } = dims;
    assert_eq!(out.len(), m * n, "GEMM output of the wrong size");
    let tiling = Tiling::new(m, n, rayon::current_num_threads());
    let out = Output(out.as_mut_ptr());
    let tiles = tiling.row_parts * tiling.col_parts;
    (0..tiles).into_par_iter().for_each(|tile| {
        let (rows, cols) = (
            Tiling::range(m, tiling.row_parts, tile / tiling.col_parts),
            Tiling::range(n, tiling.col_parts, tile % tiling.col_parts),
        );
        if rows.0 == rows.1 || cols.0 == cols.1 {
            return;
        }
        let (lhs, rhs) = (lhs.at(rows.0, 0), rhs.at(0, cols.0));
        let dst = out.at(rows.0 * n + cols.0);
        let tile = Dims {
            m: rows.1 - rows.0,
            n: cols.1 - cols.0,
            k,
        };
        // SAFETY: the tiles are disjoint blocks of `out`, which is `m × n`, and every operand
        // stays inside the buffer it was made from for these offsets and extents.
        unsafe {
            match arithmetic {
                Arithmetic::F32 => gemm_f32(tile, dst, n, accumulate, lhs, rhs),
                Arithmetic::Bf16(kernel) => kernel.gemm(tile, dst, n, accumulate, lhs, rhs),
            }
        }
    });
}

/// One tile in f32, on the `gemm` crate's single-threaded kernels.
///
/// # Safety
/// `dst` holds `dims.m` rows of `dims.n` elements `row_stride` apart, and the operands cover
/// `dims`.
unsafe fn gemm_f32(
    Dims { m, n, k }: Dims,
    dst: *mut f32,
    row_stride: usize,
    accumulate: bool,
    lhs: Operand,
    rhs: Operand,
) {
    // SAFETY: as the caller promises.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            row_stride as isize,
            accumulate,
            lhs.ptr,
            lhs.col_stride,
            lhs.row_stride,
            rhs.ptr,
            rhs.col_stride,
            rhs.row_stride,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The row-major `m × n` product of `lhs (m × k)` and `rhs (k × n)`.
pub(super) fn product(dims: Dims, lhs: Operand, rhs: Operand, arithmetic: Arithmetic) -> Vec<f32> {
    let mut out = vec![0.0f32; dims.m * dims.n];
    gemm_into(&mut out, dims, lhs, rhs, false, arithmetic);
    out
}

#[cfg(test)]
mod tests {
    use super::Tiling;

    #[test]
    fn tiles_cover_every_thread_without_slivers() {
        assert_eq!(
            Tiling::new(420, 384, 2),
            Tiling {
                row_parts: 1,
                col_parts: 2
            }
        );
        assert_eq!(
            Tiling::new(420, 384, 16),
            Tiling {
                row_parts: 2,
                col_parts: 6
            }
        );
        assert_eq!(
            Tiling::new(8, 2, 16),
            Tiling {
                row_parts: 1,
                col_parts: 1
            }
        );
        // Every column in exactly one part.
        let parts: Vec<_> = (0..6).map(|p| Tiling::range(384, 6, p)).collect();
        assert_eq!(parts.first().map(|p| p.0), Some(0));
        assert_eq!(parts.last().map(|p| p.1), Some(384));
        assert!(parts.windows(2).all(|w| w[0].1 == w[1].0));
    }
}
