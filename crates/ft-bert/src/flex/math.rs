//! Branch-free `f32` approximations of `exp` and the normal CDF that the compiler vectorises.
//!
//! libm's `erff` and `expf` are scalar calls; over the 885 k elements of one MiniLM GELU at
//! batch 8 they cost more than the GEMM feeding them. These forms are plain arithmetic on one
//! value, so a loop over a slice compiles to AVX-512/AVX2 code.

/// `exp(x)` for `x ≤ 0`: within 2 ulp of libm down to `-87`, zero below (where libm's results
/// are subnormal, under 1.7e-38), NaN for NaN.
///
/// Cody–Waite range reduction `x = n·ln2 + r`, `|r| ≤ ln2/2`, then Cephes' degree-6 polynomial
/// for `e^r`, scaled by `2^n` through the exponent bits.
#[inline(always)]
pub(super) fn exp_nonpositive(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that `n · LN2_HI` is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding then subtracting 1.5 · 2^23 rounds to the nearest integer without a call.
    const ROUND: f32 = 12_582_912.0;
    // Below -87 the result leaves the normal range: it is flushed to zero, and `x` clamped so
    // that the exponent bits stay valid. Comparisons, not `max`, so that NaN stays NaN (the
    // float-to-int cast below maps it to 0, and `e_r` carries it).
    let underflow = x < -87.0;
    let x = if underflow { -87.0 } else { x };
    let n = (x * LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let e_r = p * r * r + r + 1.0;
    // `n` is an integer in [-126, 0], so the biased exponent stays in the normal range.
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if underflow { 0.0 } else { e_r * scale }
}

/// The standard normal density and CDF at `x`: `(φ(x), Φ(x))`.
///
/// `Φ(x) = ½(1 + erf(x/√2))` with Abramowitz & Stegun 7.1.26 for `erf` (absolute error below
/// 1.5e-7, the approximation PyTorch's vectorised CPU `erf` uses); its `e^{-x²/2}` is the
/// density's, so both come from one `exp`.
#[inline(always)]
pub(super) fn normal_pdf_cdf(x: f32) -> (f32, f32) {
    const INV_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
    // 1/√(2π)
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_7;
    const A4: f32 = -1.453_152;
    const A5: f32 = 1.061_405_4;

    let z = x * INV_SQRT_2;
    let gauss = exp_nonpositive(-0.5 * x * x);
    let t = 1.0 / (1.0 + P * z.abs());
    let poly = ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t;
    let erf_abs = 1.0 - poly * gauss;
    let erf = erf_abs.copysign(z);
    (INV_SQRT_2PI * gauss, 0.5 * (1.0 + erf))
}

/// Exact (erf) GELU: `x · Φ(x)`.
#[inline(always)]
pub(super) fn gelu(x: f32) -> f32 {
    x * normal_pdf_cdf(x).1
}

/// GELU's derivative times the incoming gradient: `g · (Φ(x) + x · φ(x))`.
#[inline(always)]
pub(super) fn gelu_grad(x: f32, g: f32) -> f32 {
    let (pdf, cdf) = normal_pdf_cdf(x);
    g * (cdf + x * pdf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `erf` in f64 from `erf(x) = 2/√π · e^{-x²} · Σ 2ⁿ x^{2n+1} / (2n+1)!!`, whose terms are
    /// all positive (no cancellation); `erf(6)` is 1 to within 3e-17.
    fn erf64(x: f64) -> f64 {
        if x.abs() > 6.0 {
            return x.signum();
        }
        let (mut term, mut sum, mut n) = (x, x, 0.0);
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= 2.0 * x * x / (2.0 * n + 1.0);
            sum += term;
        }
        2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
    }

    fn grid() -> impl Iterator<Item = f32> {
        (-12_000..=12_000).map(|i| i as f32 * 1e-3)
    }

    #[test]
    fn exp_matches_std_to_two_ulp() {
        for x in (0..=86_900).map(|i| -(i as f32) * 1e-3) {
            let want = x.exp();
            let got = exp_nonpositive(x);
            let ulp = (want.to_bits() as i64 - got.to_bits() as i64).abs();
            assert!(ulp <= 2, "exp({x}) = {got}, want {want} ({ulp} ulp)");
        }
        assert_eq!(exp_nonpositive(-1000.0), 0.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert!(exp_nonpositive(f32::NAN).is_nan());
        assert_eq!(exp_nonpositive(0.0), 1.0);
    }

    #[test]
    fn gelu_and_its_gradient_match_the_exact_formula() {
        let (mut worst_fwd, mut worst_grad) = (0.0f64, 0.0f64);
        for x in grid() {
            let xd = x as f64;
            let cdf = 0.5 * (1.0 + erf64(xd / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * xd * xd).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let fwd_err = (gelu(x) as f64 - xd * cdf).abs() / xd.abs().max(1.0);
            let grad_err = (gelu_grad(x, 1.0) as f64 - (cdf + xd * pdf)).abs();
            worst_fwd = worst_fwd.max(fwd_err);
            worst_grad = worst_grad.max(grad_err);
        }
        assert!(worst_fwd < 3e-7, "forward relative error {worst_fwd}");
        assert!(worst_grad < 5e-7, "gradient error {worst_grad}");
    }

    #[test]
    fn special_values_behave_like_torch() {
        assert!(gelu(f32::NAN).is_nan());
        assert!(gelu_grad(f32::NAN, 1.0).is_nan());
        assert_eq!(gelu(f32::INFINITY), f32::INFINITY);
        assert_eq!(gelu(0.0), 0.0);
        assert!((gelu_grad(0.0, 2.0) - 1.0).abs() < 1e-6);
        assert_eq!(gelu(-30.0), 0.0);
        assert_eq!(gelu_grad(-30.0, 1.0), 0.0);
        assert!((gelu_grad(30.0, 1.0) - 1.0).abs() < 1e-6);
    }
}
