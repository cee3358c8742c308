//! Element-wise kernels compiled once per SIMD level and picked at run time.
//!
//! multiversion's `targets = "simd"` preset stops at AVX2: its AVX-512 line is commented out,
//! so on Intel Xeon and AMD Zen 4 every kernel ran 256 bits wide while PyTorch's ran 512.
//! [`simd_kernel!`](crate::simd_kernel) lists the levels once, AVX-512 first, for every kernel
//! of the workspace, and [`simd_level`] names the one this CPU gets.

#[doc(hidden)]
pub use multiversion::multiversion;

/// Compiles a function for x86-64-v4 (AVX-512), AVX2+FMA, SSE4.2 and NEON, and calls the
/// best version the CPU runs, detected once. multiversion's expansion names its own crate, so
/// the calling crate depends on `multiversion` too.
///
/// ```
/// ft_bert::simd_kernel! {
///     /// `y += a·x`.
///     fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
///         for (y, x) in y.iter_mut().zip(x) {
///             *y += a * x;
///         }
///     }
/// }
/// let mut y = [1.0, 2.0];
/// axpy(2.0, &[1.0, 1.0], &mut y);
/// assert_eq!(y, [3.0, 4.0]);
/// ```
#[macro_export]
macro_rules! simd_kernel {
    ($(#[$attr:meta])* $vis:vis fn $($rest:tt)*) => {
        $(#[$attr])*
        #[$crate::simd::multiversion(targets(
            "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma",
            "x86_64+avx2+fma",
            "x86_64+sse4.2",
            "aarch64+neon",
        ))]
        $vis fn $($rest)*
    };
}

/// The level [`simd_kernel!`](crate::simd_kernel) picks on this CPU, as `bert-ft bench` reports it.
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f")
            && has!("avx512bw")
            && has!("avx512cd")
            && has!("avx512dq")
            && has!("avx512vl")
            && has!("avx2")
            && has!("fma")
        {
            return "x86-64-v4 (AVX-512)";
        }
        if has!("avx2") && has!("fma") {
            return "AVX2+FMA";
        }
        if has!("sse4.2") {
            return "SSE4.2";
        }
    }
    #[cfg(target_arch = "aarch64")]
    if std::arch::is_aarch64_feature_detected!("neon") {
        return "NEON";
    }
    "baseline"
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::simd_kernel! {
        fn dot(a: &[f32], b: &[f32]) -> f32 {
            a.iter().zip(b).map(|(a, b)| a * b).sum()
        }
    }

    #[test]
    fn the_dispatched_kernel_computes_and_a_level_is_named() {
        let a: Vec<f32> = (0..100).map(|i| i as f32).collect();
        assert_eq!(dot(&a, &a), (0..100).map(|i| (i * i) as f32).sum::<f32>());
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            assert_eq!(simd_level(), "x86-64-v4 (AVX-512)");
        }
        assert!(!simd_level().is_empty());
    }
}
