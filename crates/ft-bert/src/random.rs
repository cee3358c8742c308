//! The randomness of this crate's own: SplitMix64's mixing function, which keys flex's
//! dropout decisions and the Trainer's per-step seeds, and fresh keys drawn from a device's
//! random stream, so that seeding the device fixes everything drawn from it.

use burn::tensor::{Device, Distribution, ExecutionError, Int, Tensor};

/// SplitMix64's increment, `2^64 / φ`: consecutive counters times this are far apart.
pub const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function: 64 well-mixed bits of `z`. The generator's `n`-th output
/// for seed `s` is `mix64(s + (n + 1) · GOLDEN_GAMMA)`.
#[inline(always)]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fresh 64-bit key from the device's random stream, as four 16-bit draws (the bound of an
/// integer draw must fit the integer type, which may be 32-bit).
///
/// # Errors
/// When the device cannot give the draws back.
pub(crate) fn random_key(device: &Device) -> Result<u64, ExecutionError> {
    let draws = Tensor::<1, Int>::random([4], Distribution::Uniform(0.0, 65_536.0), device);
    let draws = crate::device_read::read(draws)?;
    Ok(draws
        .iter::<i64>()
        .fold(0u64, |key, draw| (key << 16) | (draw as u64 & 0xffff)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix64_is_splitmix64() {
        // SplitMix64 seeded with 0: the reference implementation's first two outputs.
        assert_eq!(mix64(GOLDEN_GAMMA), 0xe220_a839_7b1d_cdaf);
        assert_eq!(mix64(GOLDEN_GAMMA.wrapping_mul(2)), 0x6e78_9e6a_a1b9_65f4);
    }
}
