//! bf16 GEMM tiles for autocast: both operands rounded to bfloat16 (to nearest, ties to even)
//! as they are packed, products summed in f32, an f32 output, as PyTorch's CPU autocast runs
//! `linear` on oneDNN.
//!
//! The kernel is picked once per process: AVX512-BF16's `vdpbf16ps` where the CPU has it, else
//! the f32 tile of [`super::gemm_f32`]. `FT_BF16_GEMM` forces one (`avx512bf16` or `f32`), so
//! that each path is tested on a machine that has the faster one. Intel AMX's tile unit is not
//! used yet: no machine here has it to test a kernel on.

use std::sync::OnceLock;

use super::{Dims, Operand};

/// The environment variable that forces a kernel: `avx512bf16`, `f32`, or `auto`.
pub const FORCE_VARIABLE: &str = "FT_BF16_GEMM";

/// The kernel that runs the products of autocast's bf16 linear layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Kernel {
    /// AVX512-BF16: 32 bf16 products summed into 16 f32 lanes per instruction.
    Avx512Bf16,
    /// No bf16 unit: the f32 product, operands unrounded.
    F32,
}

impl Bf16Kernel {
    /// The kernel of this process: `FT_BF16_GEMM`'s where it names one this CPU runs, else the
    /// fastest this CPU has. Decided on the first call.
    pub fn current() -> Self {
        static KERNEL: OnceLock<Bf16Kernel> = OnceLock::new();
        *KERNEL.get_or_init(|| {
            let forced = std::env::var(FORCE_VARIABLE).ok();
            let (kernel, refused) = Self::choose(forced.as_deref(), Self::detected());
            if let Some(reason) = refused {
                tracing::warn!("{FORCE_VARIABLE}: {reason}; using {}", kernel.name());
            }
            kernel
        })
    }

    /// The fastest kernel this CPU runs.
    pub fn detected() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512bf16")
            && std::arch::is_x86_feature_detected!("avx512bw")
        {
            return Bf16Kernel::Avx512Bf16;
        }
        Bf16Kernel::F32
    }

    /// The kernel `forced` names (`None` or `auto`: `detected`), with why it was not taken
    /// when it names an unknown kernel or one above `detected`.
    fn choose(forced: Option<&str>, detected: Self) -> (Self, Option<String>) {
        let wanted = match forced.map(str::trim) {
            None | Some("" | "auto") => return (detected, None),
            Some("avx512bf16") => Bf16Kernel::Avx512Bf16,
            Some("f32") => Bf16Kernel::F32,
            Some(other) => {
                let reason = format!("unknown kernel `{other}` (avx512bf16, f32 or auto)");
                return (detected, Some(reason));
            }
        };
        if wanted == Bf16Kernel::Avx512Bf16 && detected == Bf16Kernel::F32 {
            return (detected, Some("this CPU has no AVX512-BF16".to_string()));
        }
        (wanted, None)
    }

    /// The name `FT_BF16_GEMM` and the bench give it.
    pub fn name(self) -> &'static str {
        match self {
            Bf16Kernel::Avx512Bf16 => "avx512bf16",
            Bf16Kernel::F32 => "f32",
        }
    }

    /// One tile: `dst (m × n) = [dst +] lhs · rhs`, `dst`'s rows `row_stride` apart.
    ///
    /// # Safety
    /// As [`super::gemm_f32`]; and `self` is a kernel this CPU runs ([`Self::current`] or
    /// [`Self::detected`] gives one).
    pub(super) unsafe fn gemm(
        self,
        dims: Dims,
        dst: *mut f32,
        row_stride: usize,
        accumulate: bool,
        lhs: Operand,
        rhs: Operand,
    ) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as the caller promises; the CPU has AVX512-BF16.
            Bf16Kernel::Avx512Bf16 => unsafe {
                avx512::gemm(dims, dst, row_stride, accumulate, lhs, rhs)
            },
            // SAFETY: as the caller promises.
            _ => unsafe { super::gemm_f32(dims, dst, row_stride, accumulate, lhs, rhs) },
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m512, __m512bh, __m512i, __mmask16, _mm512_add_ps, _mm512_cvtne2ps_pbh, _mm512_dpbf16_ps,
        _mm512_loadu_si512, _mm512_mask_storeu_epi32, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps,
        _mm512_permutexvar_epi16, _mm512_set1_epi32, _mm512_setzero_ps, _mm512_storeu_si512,
    };
    use std::ops::Range;

    use super::super::{Dims, Operand};

    /// Rows of the output per micro-kernel: 12 × 2 accumulators of 32 registers.
    const MR: usize = 12;
    /// Columns per micro-kernel: two registers of 16 f32.
    const NR: usize = 32;
    /// Depth per packed block: a block of `rhs` (`KC × n` bf16) stays in L2, one panel of
    /// each operand in L1.
    const KC: usize = 256;

    /// One tile; see [`super::Bf16Kernel::gemm`].
    ///
    /// # Safety
    /// As [`super::super::gemm_f32`], on a CPU with AVX512-BF16 and AVX512-BW.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub(super) unsafe fn gemm(
        Dims { m, n, k }: Dims,
        dst: *mut f32,
        row_stride: usize,
        accumulate: bool,
        lhs: Operand,
        rhs: Operand,
    ) {
        let (m_panels, n_panels) = (m.div_ceil(MR), n.div_ceil(NR));
        let max_pairs = KC.min(k).div_ceil(2);
        let mut packed_lhs = vec![0u32; m_panels * MR * max_pairs];
        let mut packed_rhs = vec![0u32; n_panels * NR * max_pairs];
        if k == 0 && !accumulate {
            for row in 0..m {
                // SAFETY: `dst` holds `m` rows of `n` elements.
                unsafe { std::ptr::write_bytes(dst.add(row * row_stride), 0, n) };
            }
        }
        for k0 in (0..k).step_by(KC) {
            let depth = KC.min(k - k0);
            let pairs = depth.div_ceil(2);
            // SAFETY: the operands cover `m × k` and `k × n`.
            unsafe {
                pack_lhs(&mut packed_lhs, lhs, m, k0..k0 + depth);
                pack_rhs(&mut packed_rhs, rhs, n, k0..k0 + depth);
            }
            let add_to_dst = accumulate || k0 > 0;
            for panel in 0..n_panels {
                let b = packed_rhs[panel * NR * pairs..].as_ptr();
                for block in 0..m_panels {
                    let a = packed_lhs[block * MR * pairs..].as_ptr();
                    let c = dst.wrapping_add(block * MR * row_stride + panel * NR);
                    let extent = (MR.min(m - block * MR), NR.min(n - panel * NR));
                    // SAFETY: the panels hold `pairs` steps; `c` starts a block inside `dst`
                    // and the kernel touches only `extent` of it.
                    unsafe { kernel(pairs, a, b, c, row_stride, extent, add_to_dst) };
                }
            }
        }
    }

    /// Packs `lhs`'s columns `depth` as `MR`-row panels of pairs along k: panel `i`, step `p`,
    /// row `r` at `(i · pairs + p) · MR + r`; rows past `m` and a last odd column are zeros.
    ///
    /// # Safety
    /// `lhs` covers `m` rows and the columns of `depth`.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    unsafe fn pack_lhs(packed: &mut [u32], lhs: Operand, m: usize, depth: Range<usize>) {
        let pairs = depth.len().div_ceil(2);
        let panels = packed.chunks_exact_mut(MR * pairs).take(m.div_ceil(MR));
        for (block, panel) in panels.enumerate() {
            let rows = (block * MR).min(m)..((block + 1) * MR).min(m);
            // SAFETY: the rows and columns read are inside `m × depth`.
            unsafe {
                if lhs.row_stride == 1 {
                    // A transposed operand: a column's rows lie side by side.
                    for p in 0..pairs {
                        let (lo, hi) = (depth.start + 2 * p, depth.start + 2 * p + 1);
                        let mask = lanes(rows.len());
                        let lo = _mm512_maskz_loadu_ps(mask, lhs.at(rows.start, lo).ptr);
                        let hi = if hi < depth.end {
                            _mm512_maskz_loadu_ps(mask, lhs.at(rows.start, hi).ptr)
                        } else {
                            _mm512_setzero_ps()
                        };
                        let out = panel[p * MR..].as_mut_ptr().cast();
                        _mm512_mask_storeu_epi32(out, lanes(MR), interleave(lo, hi));
                    }
                } else {
                    // Row-major: a row's pairs lie side by side, 16 pairs per 32 elements.
                    debug_assert_eq!(lhs.col_stride, 1, "operands are row-major or transposed");
                    panel.fill(0);
                    for (r, row) in rows.enumerate() {
                        for p0 in (0..pairs).step_by(16) {
                            let start = depth.start + 2 * p0;
                            let pairs_here = run(start, depth.end, lhs.at(row, start).ptr);
                            for (i, pair) in pairs_here.iter().enumerate().take(pairs - p0) {
                                panel[(p0 + i) * MR + r] = *pair;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Packs `rhs`'s rows `depth` as `NR`-column panels of pairs along k: panel `j`, step `p`,
    /// column `c` at `(j · pairs + p) · NR + c`; columns past `n` and a last odd row are zeros.
    ///
    /// # Safety
    /// `rhs` covers the rows of `depth` and `n` columns.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    unsafe fn pack_rhs(packed: &mut [u32], rhs: Operand, n: usize, depth: Range<usize>) {
        let pairs = depth.len().div_ceil(2);
        let panels = packed.chunks_exact_mut(NR * pairs).take(n.div_ceil(NR));
        for (panel, block) in panels.enumerate() {
            let cols = (panel * NR).min(n)..((panel + 1) * NR).min(n);
            // SAFETY: the rows and columns read are inside `depth × n`.
            unsafe {
                if rhs.col_stride == 1 {
                    // Row-major: each of the pair's rows gives 16 columns at a time.
                    for p in 0..pairs {
                        let (lo, hi) = (depth.start + 2 * p, depth.start + 2 * p + 1);
                        for half in 0..2 {
                            let first = cols.start + 16 * half;
                            let mask = lanes(cols.end.saturating_sub(first));
                            let lo = _mm512_maskz_loadu_ps(mask, rhs.at(lo, first).ptr);
                            let hi = if hi < depth.end {
                                _mm512_maskz_loadu_ps(mask, rhs.at(hi, first).ptr)
                            } else {
                                _mm512_setzero_ps()
                            };
                            let out = block[p * NR + 16 * half..].as_mut_ptr().cast();
                            _mm512_storeu_si512(out, interleave(lo, hi));
                        }
                    }
                } else {
                    // Transposed: a column's pairs lie side by side, 16 per 32 elements.
                    debug_assert_eq!(rhs.row_stride, 1, "operands are row-major or transposed");
                    block.fill(0);
                    for (c, col) in cols.enumerate() {
                        for p0 in (0..pairs).step_by(16) {
                            let start = depth.start + 2 * p0;
                            let pairs_here = run(start, depth.end, rhs.at(start, col).ptr);
                            for (i, pair) in pairs_here.iter().enumerate().take(pairs - p0) {
                                block[(p0 + i) * NR + c] = *pair;
                            }
                        }
                    }
                }
            }
        }
    }

    /// The pairs of up to 32 contiguous elements from `ptr`, which is element `start` of a run
    /// ending at `end`: pair `i` holds elements `2i` and `2i + 1`, zeros past `end`.
    ///
    /// # Safety
    /// `ptr` points at `end - start` readable elements.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    unsafe fn run(start: usize, end: usize, ptr: *const f32) -> [u32; 16] {
        let len = end - start;
        // SAFETY: the masks keep the loads inside the run.
        unsafe {
            let lo = _mm512_maskz_loadu_ps(lanes(len), ptr);
            let hi = _mm512_maskz_loadu_ps(lanes(len.saturating_sub(16)), ptr.wrapping_add(16));
            // In order: element 2i in the low half of lane i, as `vdpbf16ps` pairs them.
            let both: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            std::mem::transmute(both)
        }
    }

    /// Lane `i` holds `lo[i]` in its low half and `hi[i]` in its high half, each rounded to
    /// bf16.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    fn interleave(lo: __m512, hi: __m512) -> __m512i {
        // `cvtne2ps` gives lo's 16 bf16 then hi's; the permutation pairs lane i of each.
        const ORDER: [i16; 32] = {
            let mut order = [0i16; 32];
            let mut i = 0;
            while i < 16 {
                order[2 * i] = i as i16;
                order[2 * i + 1] = i as i16 + 16;
                i += 1;
            }
            order
        };
        // SAFETY: `ORDER` is 64 bytes, a `__m512i`; the bf16 vector is one too.
        unsafe {
            let both: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            let order: __m512i = std::mem::transmute(ORDER);
            _mm512_permutexvar_epi16(order, both)
        }
    }

    /// The first `n` of 16 lanes.
    fn lanes(n: usize) -> __mmask16 {
        if n >= 16 { u16::MAX } else { (1u16 << n) - 1 }
    }

    /// `c[..rows][..cols] = [c +] a · b` for one `MR`-row panel `a` and `NR`-column panel `b`
    /// of `pairs` steps.
    ///
    /// # Safety
    /// The panels hold `pairs` steps, and `c` has `rows × cols` elements with rows
    /// `row_stride` apart.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    unsafe fn kernel(
        pairs: usize,
        a: *const u32,
        b: *const u32,
        c: *mut f32,
        row_stride: usize,
        (rows, cols): (usize, usize),
        add_to_c: bool,
    ) {
        let mut acc: [[__m512; 2]; MR] = [[_mm512_setzero_ps(); 2]; MR];
        for p in 0..pairs {
            // SAFETY: step `p` of each panel is inside it; bf16 pairs are 32-bit lanes.
            unsafe {
                let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(p * NR).cast()));
                let b1: __m512bh =
                    std::mem::transmute(_mm512_loadu_si512(b.add(p * NR + 16).cast()));
                let a = a.add(p * MR);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let a: __m512bh = std::mem::transmute(_mm512_set1_epi32(*a.add(r) as i32));
                    acc[0] = _mm512_dpbf16_ps(acc[0], a, b0);
                    acc[1] = _mm512_dpbf16_ps(acc[1], a, b1);
                }
            }
        }
        let masks = [lanes(cols), lanes(cols.saturating_sub(16))];
        for (r, acc) in acc.iter().enumerate().take(rows) {
            for half in 0..2 {
                let at = c.wrapping_add(r * row_stride + half * 16);
                // SAFETY: the masks keep every access inside the row's `cols` elements; masked
                // lanes are not touched, wherever `at` points.
                unsafe {
                    let sum = if add_to_c {
                        _mm512_add_ps(acc[half], _mm512_maskz_loadu_ps(masks[half], at))
                    } else {
                        acc[half]
                    };
                    _mm512_mask_storeu_ps(at, masks[half], sum);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Arithmetic, Dims, Operand, product};
    use super::Bf16Kernel;

    /// `x` rounded to the nearest bfloat16, ties to even, as its 16 bits; NaN stays a
    /// (quiet) NaN: the rounding the kernel's packing gets from `vcvtne2ps2bf16`.
    fn to_bf16(x: f32) -> u32 {
        let bits = x.to_bits();
        if x.is_nan() {
            return (bits >> 16) | 0x40;
        }
        bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16
    }

    fn from_bf16(bits: u32) -> f32 {
        f32::from_bits(bits << 16)
    }

    /// `x · 1` through the kernel: `x` as the packing rounds it.
    fn through_kernel(kernel: Bf16Kernel, x: f32) -> f32 {
        let (lhs, rhs) = ([x], [1.0f32]);
        let dims = Dims { m: 1, n: 1, k: 1 };
        let (lhs, rhs) = (Operand::new(&lhs, 1, false), Operand::new(&rhs, 1, false));
        product(dims, lhs, rhs, Arithmetic::Bf16(kernel))[0]
    }

    #[test]
    fn packing_rounds_to_nearest_even_and_keeps_specials() {
        let kernel = Bf16Kernel::detected();
        if kernel == Bf16Kernel::F32 {
            eprintln!("skipped: this CPU has no AVX512-BF16, so no bf16 kernel runs here");
            return;
        }
        let one = 1.0f32.to_bits();
        let cases = [
            (1.0, 0x3f80),
            // Halfway between 1 and the next bf16 (1 + 2⁻⁷): ties to the even one, 1.
            (f32::from_bits(one + 0x8000), 0x3f80),
            // Halfway between 1 + 2⁻⁷ and 1 + 2⁻⁶: ties to the even one, up.
            (f32::from_bits(one + 0x18000), 0x3f82),
            (f32::from_bits(one + 0x8001), 0x3f81),
            (-2.5, 0xc020),
            (f32::INFINITY, 0x7f80),
            // Past the largest bf16: infinity.
            (f32::MAX, 0x7f80),
        ];
        for (x, bits) in cases {
            assert_eq!(to_bf16(x), bits, "{x}");
            assert_eq!(through_kernel(kernel, x), from_bf16(bits), "{x}");
        }
        assert!(through_kernel(kernel, f32::NAN).is_nan());
    }

    #[test]
    fn forcing_a_kernel_takes_it_only_where_the_cpu_runs_it() {
        use Bf16Kernel::{Avx512Bf16, F32};
        assert_eq!(Bf16Kernel::choose(None, Avx512Bf16), (Avx512Bf16, None));
        assert_eq!(Bf16Kernel::choose(Some("auto"), F32), (F32, None));
        assert_eq!(Bf16Kernel::choose(Some("f32"), Avx512Bf16), (F32, None));
        assert_eq!(
            Bf16Kernel::choose(Some("avx512bf16"), Avx512Bf16),
            (Avx512Bf16, None)
        );
        let (kernel, why) = Bf16Kernel::choose(Some("avx512bf16"), F32);
        assert_eq!(kernel, F32);
        assert!(why.is_some_and(|why| why.contains("no AVX512-BF16")));
        let (kernel, why) = Bf16Kernel::choose(Some("amx"), Avx512Bf16);
        assert_eq!(kernel, Avx512Bf16);
        assert!(why.is_some_and(|why| why.contains("unknown kernel `amx`")));
    }

    /// Deterministic values in about [-2, 2), no two neighbours alike.
    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i + seed) * 7919 % 4001) as f32 / 1000.0) - 2.0)
            .collect()
    }

    /// `lhs · rhs` in f64 of the bf16-rounded operands (`round`) or the f32 ones, with the sum
    /// of the products' magnitudes, for each output element.
    fn reference(
        Dims { m, n, k }: Dims,
        lhs: (&[f32], bool),
        rhs: (&[f32], bool),
        round: bool,
    ) -> Vec<(f64, f64)> {
        let at = |(values, transposed): (&[f32], bool), row: usize, col: usize, cols: usize| {
            let rows = values.len() / cols;
            let x = if transposed {
                values[col * rows + row]
            } else {
                values[row * cols + col]
            };
            f64::from(if round { from_bf16(to_bf16(x)) } else { x })
        };
        let mut out = Vec::with_capacity(m * n);
        for i in 0..m {
            for j in 0..n {
                let terms = (0..k).map(|p| at(lhs, i, p, k) * at(rhs, p, j, n));
                out.push(terms.fold((0.0, 0.0), |(s, a), t| (s + t, a + t.abs())));
            }
        }
        out
    }

    /// Shapes that no panel divides (`MR` 12, `NR` 32, `KC` 256), odd depths, and both
    /// layouts of each operand, as the linear layers' three products use them.
    #[test]
    fn the_kernel_sums_bf16_products_in_f32() {
        let kernel = Bf16Kernel::detected();
        if kernel == Bf16Kernel::F32 {
            eprintln!("skipped: this CPU has no AVX512-BF16, so no bf16 kernel runs here");
            return;
        }
        let shapes = [
            (1, 1, 1),
            (13, 33, 7),
            (131, 37, 77),
            (24, 64, 512),
            (50, 70, 601),
        ];
        for (m, n, k) in shapes {
            for (lhs_t, rhs_t) in [(false, false), (false, true), (true, false)] {
                let dims = Dims { m, n, k };
                let (a, b) = (values(m * k, 1), values(k * n, 7));
                let lhs = Operand::new(&a, if lhs_t { m } else { k }, lhs_t);
                let rhs = Operand::new(&b, if rhs_t { k } else { n }, rhs_t);
                let got = product(dims, lhs, rhs, Arithmetic::Bf16(kernel));
                let rounded = reference(dims, (&a, lhs_t), (&b, rhs_t), true);
                let exact = reference(dims, (&a, lhs_t), (&b, rhs_t), false);
                for ((got, (want, size)), (full, _)) in got.iter().zip(&rounded).zip(&exact) {
                    let got = f64::from(*got);
                    // bf16 products are exact in f32; each of the k additions rounds the
                    // running sum by at most 2⁻²⁴ of the sum of magnitudes.
                    let bound = k as f64 * 2.0f64.powi(-24) * size;
                    assert!(
                        (got - want).abs() <= bound + 1e-30,
                        "{dims:?} {lhs_t} {rhs_t}: {got} against {want}"
                    );
                    // Each operand within 2⁻⁹ of its f32 value.
                    assert!((got - full).abs() <= 2.0f64.powi(-8) * size + 1e-30);
                }
            }
        }
    }

    #[test]
    fn accumulating_adds_to_the_output_and_runs_are_the_same_bits() {
        let kernel = Bf16Kernel::detected();
        let dims = Dims {
            m: 37,
            n: 45,
            k: 300,
        };
        let (a, b) = (values(37 * 300, 3), values(300 * 45, 5));
        let (lhs, rhs) = (Operand::new(&a, 300, false), Operand::new(&b, 45, false));
        let product_only = product(dims, lhs, rhs, Arithmetic::Bf16(kernel));
        let mut out = vec![0.5f32; 37 * 45];
        super::super::gemm_into(&mut out, dims, lhs, rhs, true, Arithmetic::Bf16(kernel));
        for (with, alone) in out.iter().zip(&product_only) {
            assert!((with - (alone + 0.5)).abs() <= 1e-4 * alone.abs().max(1.0));
        }
        for _ in 0..3 {
            assert_eq!(
                product(dims, lhs, rhs, Arithmetic::Bf16(kernel)),
                product_only
            );
        }
    }
}
