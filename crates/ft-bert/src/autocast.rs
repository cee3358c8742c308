//! bf16 autocast, as `torch.autocast("cpu", dtype=torch.bfloat16)`: inside
//! [`autocast_bf16`], flex's linear layers run their matrix products with bf16 operands and
//! f32 sums, on the CPU's bf16 unit ([`Bf16Kernel`]); everything else (LayerNorm, softmax,
//! GELU, dropout, the loss) and every tensor the model holds stay f32.
//!
//! The scope belongs to the calling thread, as torch's does. A layer's backward pass uses the
//! arithmetic its forward pass used, so `backward()` may run inside the scope or after it.
//! Other backends ignore it: on them the Trainer's `--bf16` casts the model instead.

use std::cell::Cell;

use burn::tensor::Device;

#[cfg(feature = "flex")]
pub use crate::flex::{Bf16Kernel, FORCE_VARIABLE};

thread_local! {
    static BF16: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` under bf16 autocast on this thread, and restores what was there before, even if
/// `f` panics.
pub fn autocast_bf16<R>(f: impl FnOnce() -> R) -> R {
    /// Puts the previous setting back.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            BF16.set(self.0);
        }
    }
    let _restore = Restore(BF16.replace(true));
    f()
}

/// Whether this thread is inside [`autocast_bf16`].
pub fn is_autocast_bf16() -> bool {
    BF16.get()
}

/// Whether [`autocast_bf16`] changes what runs on `device`: true on flex, whose linear layers
/// are this crate's own.
pub fn autocast_applies(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    if matches!(
        device.clone().inner().as_dispatch(),
        burn::backend::DispatchDevice::Flex(_)
    ) {
        return true;
    }
    let _ = device;
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_nests_and_ends_with_its_closure() {
        assert!(!is_autocast_bf16());
        autocast_bf16(|| {
            assert!(is_autocast_bf16());
            autocast_bf16(|| assert!(is_autocast_bf16()));
            assert!(is_autocast_bf16(), "the inner scope restored the outer one");
        });
        assert!(!is_autocast_bf16());
        let panicked = std::panic::catch_unwind(|| autocast_bf16(|| panic!("inside")));
        assert!(panicked.is_err());
        assert!(!is_autocast_bf16(), "restored after a panic");
    }

    #[test]
    fn it_applies_to_flex_alone() {
        #[cfg(feature = "flex")]
        {
            assert!(autocast_applies(&Device::flex()));
            assert!(autocast_applies(&Device::flex().autodiff()));
        }
        #[cfg(feature = "ndarray")]
        {
            #[allow(deprecated)]
            let ndarray = Device::ndarray();
            assert!(!autocast_applies(&ndarray));
        }
    }
}
