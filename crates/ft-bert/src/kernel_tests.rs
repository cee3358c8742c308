//! Inputs and comparisons shared by the hand-written kernels' tests (flex's and libtorch's nodes).

use burn::tensor::Tensor;

/// `len` values spread over `[shift − scale/2, shift + scale/2)` in a scrambled order, so that
/// neighbouring elements (and rows) differ.
pub(crate) fn grid(len: usize, scale: f32, shift: f32) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919 % 2003) as f32 / 2003.0 - 0.5) * scale + shift)
        .collect()
}

/// The elements of `tensor`, which must hold `f32`.
pub(crate) fn to_vec<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_to_vec::<f32>().expect("f32 data")
}

/// The largest element-wise difference between two equally long sets of values.
pub(crate) fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "compared tensors differ in size");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The largest element-wise difference between two tensors of the same shape.
pub(crate) fn max_tensor_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    assert_eq!(a.dims(), b.dims(), "compared tensors differ in shape");
    max_diff(&to_vec(a), &to_vec(b))
}
