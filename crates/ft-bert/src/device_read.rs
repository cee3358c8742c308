//! Reads from a device to the host, counted.
//!
//! On a GPU a read waits for everything queued before it, and the device idles until the host
//! queues more: the reads a training step makes are a budget, which a test holds. burn has no
//! hook that sees them, so the model's reads and the Trainer's all go through here.
//!
//! The count is per thread: the Trainer reads on the thread that calls it, and tests that run
//! side by side do not see each other's reads.

use std::cell::Cell;

use burn::tensor::{Element, ExecutionError, Tensor, TensorData, TensorReadError};

thread_local! {
    static READS: Cell<u64> = const { Cell::new(0) };
}

/// Blocking reads from a device to the host made on this thread so far.
pub fn reads_on_this_thread() -> u64 {
    READS.with(Cell::get)
}

fn count() {
    READS.with(|reads| reads.set(reads.get() + 1));
}

/// `tensor`'s values, read to the host (one counted read).
///
/// # Errors
/// When the device cannot give the values back.
pub fn read<const D: usize, K: burn::tensor::kind::Basic>(
    tensor: Tensor<D, K>,
) -> Result<TensorData, ExecutionError> {
    count();
    tensor.try_into_data()
}

/// `tensor`'s values as `E`, read to the host (one counted read).
///
/// # Errors
/// When the device cannot give the values back, or they do not convert to `E`.
pub fn read_vec<E: Element, const D: usize>(tensor: Tensor<D>) -> Result<Vec<E>, TensorReadError> {
    count();
    tensor.try_into_vec_as::<E>()
}

/// The one value of `tensor` as `E`, read to the host (one counted read).
///
/// # Errors
/// When the device cannot give the value back, or `tensor` does not hold exactly one.
pub fn read_scalar<E: Element, const D: usize>(tensor: Tensor<D>) -> Result<E, TensorReadError> {
    count();
    tensor.try_into_scalar::<E>()
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::tensor::Device;

    use super::*;

    #[test]
    fn each_read_counts_once_on_its_own_thread() {
        let device = Device::flex();
        let before = reads_on_this_thread();
        let tensor = Tensor::<1>::from_floats([1.5, 2.5], &device);
        assert_eq!(read_vec::<f32, 1>(tensor.clone()).unwrap(), vec![1.5, 2.5]);
        assert_eq!(read_scalar::<f64, 1>(tensor.clone().sum()).unwrap(), 4.0);
        assert_eq!(read(tensor.clone()).unwrap().num_elements(), 2);
        assert_eq!(reads_on_this_thread() - before, 3);
        let other = std::thread::spawn(move || {
            let _ = read_vec::<f32, 1>(tensor);
            reads_on_this_thread()
        });
        assert_eq!(other.join().unwrap(), 1);
        assert_eq!(reads_on_this_thread() - before, 3, "another thread's read");
    }
}
