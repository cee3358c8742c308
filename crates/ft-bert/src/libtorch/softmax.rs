//! Softmax over the last axis under autodiff on libtorch: `softmax` forward,
//! `_softmax_backward_data` backward.

use burn::backend::LibTorch;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::libtorch::TchTensor;
use burn::tensor::Tensor;

use super::tensor::{self, TrackedTch};
use crate::autodiff_node::{self, WithStrategy};

/// `softmax(x)` over the last axis, recorded as one node; `Err(x)` unless `x` is a tracked
/// `f32` libtorch tensor.
#[allow(
    clippy::result_large_err,
    reason = "the error hands the input tensor back; `Ok` holds a tensor of the same size"
)]
pub(crate) fn softmax_last<const D: usize>(x: Tensor<D>) -> Result<Tensor<D>, Tensor<D>> {
    let (x, strategy) = tensor::as_tracked(x)?;
    let op = Tracked { x, dim: D - 1 };
    Ok(tensor::wrap(
        autodiff_node::with_strategy(strategy, op),
        strategy,
    ))
}

/// The autodiff node; its state is the output and the axis.
#[derive(Debug)]
struct SoftmaxBackward;

impl Backward<LibTorch, 1> for SoftmaxBackward {
    type State = (TchTensor, i64);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<LibTorch>(&ops.node);
        let (output, dim) = &ops.state;
        let dx = tch::Tensor::internal_softmax_backward_data(
            &grad.tensor,
            &output.tensor,
            *dim,
            output.tensor.kind(),
        );
        autodiff_node::register_gradients::<LibTorch, _, 1>(grads, ops, [Some(TchTensor::new(dx))]);
    }
}

/// Softmax recorded on the autodiff graph.
struct Tracked {
    x: TrackedTch,
    dim: usize,
}

impl WithStrategy for Tracked {
    type Output = TrackedTch;

    fn run<C: CheckpointStrategy>(self) -> TrackedTch {
        let (x, node) = self.x.into_parts();
        let dim = self.dim as i64;
        let output = TchTensor::new(x.tensor.softmax(dim, None));
        let state = (output.clone(), dim);
        autodiff_node::record::<LibTorch, _, C, 1>(SoftmaxBackward, [node], output, state)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor, TensorData};

    use crate::kernel_tests::{grid, max_diff, to_vec};

    /// Output and input gradient through `softmax` for attention-shaped scores, a row masked
    /// as padding is (a large negative bias) among them.
    fn run(device: &Device, softmax: &dyn Fn(Tensor<4>) -> Tensor<4>) -> [Vec<f32>; 2] {
        let shape = [2, 3, 17, 19];
        let n = shape.iter().product();
        let mut scores = grid(n, 12.0, 0.5);
        scores[..19]
            .iter_mut()
            .step_by(2)
            .for_each(|s| *s -= 10_000.0);
        let x = Tensor::<4>::from_data(TensorData::new(scores, shape), device).require_grad();
        let upstream = Tensor::<4>::from_data(TensorData::new(grid(n, 2.0, 0.1), shape), device);
        let y = softmax(x.clone());
        let grads = (y.clone() * upstream).sum().backward();
        [to_vec(y), to_vec(x.grad(&grads).expect("x is tracked"))]
    }

    #[test]
    fn output_and_gradient_match_burn_under_autodiff() {
        let device = Device::libtorch().autodiff();
        let [y, dx] = run(&device, &|x| super::softmax_last(x).expect("tracked"));
        let [y_ref, dx_ref] = run(&device, &|x| burn::tensor::activation::softmax(x, 3));
        assert!(
            max_diff(&y, &y_ref) < 1e-6,
            "output: {}",
            max_diff(&y, &y_ref)
        );
        assert!(
            max_diff(&dx, &dx_ref) < 1e-6,
            "gradient: {}",
            max_diff(&dx, &dx_ref)
        );
        let checkpointed = Device::libtorch().autodiff().gradient_checkpointing();
        let again = run(&checkpointed, &|x| super::softmax_last(x).expect("tracked"));
        assert_eq!(again, [y, dx]);
    }

    #[test]
    fn untracked_tensors_are_handed_back() {
        let x = Tensor::<4>::ones([1, 2, 3, 4], &Device::libtorch());
        let back = super::softmax_last(x).expect_err("evaluation takes burn-tch's softmax");
        assert_eq!(back.dims(), [1, 2, 3, 4]);
    }
}
