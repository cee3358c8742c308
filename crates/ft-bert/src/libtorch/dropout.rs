//! Inverted dropout under autodiff on libtorch: `native_dropout` forward, which draws the mask
//! and scales the kept elements in one kernel on a GPU, and `native_dropout_backward` backward.
//! burn's `Dropout` records a Bernoulli draw into a float tensor, a product and a scaling
//! forward, and two products backward.

use burn::backend::LibTorch;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::libtorch::TchTensor;
use burn::tensor::Tensor;

use super::tensor::{self, TrackedTch};
use crate::autodiff_node::{self, WithStrategy};

/// `x` with each element zeroed with probability `prob` and the rest scaled by
/// `1 / (1 - prob)`, the mask drawn from libtorch's generator (which `Device::seed` seeds),
/// recorded as one node; `Err(x)` unless `x` is an `f32` libtorch tensor on an autodiff device
/// and `0 < prob < 1`.
#[allow(
    clippy::result_large_err,
    reason = "the error hands the input tensor back; `Ok` holds a tensor of the same size"
)]
pub(crate) fn dropout<const D: usize>(x: Tensor<D>, prob: f64) -> Result<Tensor<D>, Tensor<D>> {
    if !(prob > 0.0 && prob < 1.0) {
        return Err(x);
    }
    let (x, strategy) = tensor::as_tracked(x)?;
    let op = Tracked { x, prob };
    Ok(tensor::wrap(
        autodiff_node::with_strategy(strategy, op),
        strategy,
    ))
}

/// The autodiff node; its state is the boolean mask of kept elements and their scale.
#[derive(Debug)]
struct DropoutBackward;

impl Backward<LibTorch, 1> for DropoutBackward {
    type State = (TchTensor, f64);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<LibTorch>(&ops.node);
        let (mask, scale) = &ops.state;
        let dx = tch::Tensor::native_dropout_backward(&grad.tensor, &mask.tensor, *scale);
        autodiff_node::register_gradients::<LibTorch, _, 1>(grads, ops, [Some(TchTensor::new(dx))]);
    }
}

/// Dropout recorded on the autodiff graph.
struct Tracked {
    x: TrackedTch,
    prob: f64,
}

impl WithStrategy for Tracked {
    type Output = TrackedTch;

    fn run<C: CheckpointStrategy>(self) -> TrackedTch {
        let (x, node) = self.x.into_parts();
        let (output, mask) = x.tensor.native_dropout(self.prob, true);
        let state = (TchTensor::new(mask), 1.0 / (1.0 - self.prob));
        // Recorded as compute-bound, so balanced checkpointing keeps the mask rather than
        // replaying the draw, which would draw a different one.
        autodiff_node::record::<LibTorch, _, C, 1>(
            DropoutBackward,
            [node],
            TchTensor::new(output),
            state,
        )
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor, TensorData};
    use rusty_fork::rusty_fork_test;

    use crate::kernel_tests::{grid, to_vec};

    const SHAPE: [usize; 3] = [4, 33, 64];

    /// Output, input gradient and upstream gradient through dropout with probability `prob`,
    /// the device seeded with `seed`.
    fn run(device: &Device, prob: f64, seed: u64) -> [Vec<f32>; 3] {
        device.seed(seed);
        let n = SHAPE.iter().product();
        let values = grid(n, 2.0, 1.5);
        let x =
            Tensor::<3>::from_data(TensorData::new(values.clone(), SHAPE), device).require_grad();
        let upstream = Tensor::<3>::from_data(TensorData::new(grid(n, 1.0, 0.2), SHAPE), device);
        let y = super::dropout(x.clone(), prob).expect("tracked libtorch tensor");
        let grads = (y.clone() * upstream.clone()).sum().backward();
        [
            to_vec(y),
            to_vec(x.grad(&grads).expect("x is tracked")),
            to_vec(upstream),
        ]
    }

    #[test]
    fn it_keeps_about_one_minus_prob_scaled_and_back_propagates_through_the_same_mask() {
        let device = Device::libtorch().autodiff();
        let prob = 0.25;
        let scale = (1.0 / (1.0 - prob)) as f32;
        let [y, dx, upstream] = run(&device, prob, 7);
        let x = grid(y.len(), 2.0, 1.5);
        let mut kept = 0;
        for (i, (((&y, &dx), &x), &g)) in y.iter().zip(&dx).zip(&x).zip(&upstream).enumerate() {
            // Every input is at least 0.5, so a zero output means a dropped element.
            if y == 0.0 {
                assert_eq!(dx, 0.0, "element {i} was dropped but passed a gradient");
            } else {
                kept += 1;
                assert!((y - x * scale).abs() <= 1e-6 * y.abs(), "element {i}: {y}");
                assert!(
                    (dx - g * scale).abs() <= 1e-6,
                    "element {i}'s gradient: {dx}"
                );
            }
        }
        let kept = kept as f64 / y.len() as f64;
        // 8,448 Bernoulli draws: four standard deviations is about 0.019.
        assert!((kept - (1.0 - prob)).abs() < 0.02, "kept {kept}");
    }

    // In a process of its own: it compares draws from libtorch's process-wide generator.
    rusty_fork_test! {
        #[test]
        fn the_seed_fixes_the_mask_with_or_without_checkpointing() {
            let device = Device::libtorch().autodiff();
            let first = run(&device, 0.1, 7);
            assert_eq!(run(&device, 0.1, 7), first);
            let checkpointed = Device::libtorch().autodiff().gradient_checkpointing();
            assert_eq!(run(&checkpointed, 0.1, 7), first);
            assert_ne!(
                run(&device, 0.1, 8)[0],
                first[0],
                "another seed, another mask"
            );
        }
    }

    #[test]
    fn untracked_tensors_and_degenerate_probabilities_are_handed_back() {
        let x = Tensor::<2>::ones([2, 3], &Device::libtorch());
        let back = super::dropout(x, 0.1).expect_err("outside autodiff dropout is burn's");
        assert_eq!(back.dims(), [2, 3]);
        let x = Tensor::<2>::ones([2, 3], &Device::libtorch().autodiff());
        let x = super::dropout(x, 0.0).expect_err("nothing to drop");
        let x = super::dropout(x, 1.0).expect_err("everything dropped");
        assert_eq!(x.dims(), [2, 3]);
    }
}
