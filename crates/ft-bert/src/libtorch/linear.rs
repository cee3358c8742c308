//! Linear layers under autodiff on libtorch: one `addmm` forward (the bias as the product's
//! initial value, the input's leading axes folded into rows), and backward two `mm`s and one
//! column sum. burn's autodiff records a matmul and a broadcast add, whose backward passes
//! compute the weight's gradient per batch element (`[batch, d_input, d_output]`) and then sum
//! it, and reduce the bias's gradient from the broadcast.

use burn::backend::LibTorch;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::libtorch::TchTensor;
use burn::tensor::Tensor;

use super::tensor::{self, TrackedTch};
use crate::autodiff_node::{self, WithStrategy};

/// `x · weight + bias` over the last axis of `x`, burn's `Linear` layout (`weight` is
/// `[d_input, d_output]`), recorded as one node; `Err(x)` unless `x`, `weight` and `bias` are
/// tracked `f32` libtorch tensors.
#[allow(
    clippy::result_large_err,
    reason = "the error hands the input tensor back; `Ok` holds a tensor of the same size"
)]
pub(crate) fn linear<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Tensor<1>,
) -> Result<Tensor<D>, Tensor<D>> {
    let [d_input, d_output] = weight.dims();
    // Empty layers are burn's to handle.
    if x.dims()[D - 1] != d_input || bias.dims() != [d_output] || d_input * d_output == 0 {
        return Err(x);
    }
    let (Ok((weight, strategy)), Ok((bias, bias_strategy))) =
        (tensor::as_tracked(weight), tensor::as_tracked(bias))
    else {
        return Err(x);
    };
    let (x, x_strategy) = tensor::as_tracked(x)?;
    if bias_strategy != strategy || x_strategy != strategy {
        return Err(tensor::wrap(x, x_strategy));
    }
    let op = Tracked { x, weight, bias };
    Ok(tensor::wrap(
        autodiff_node::with_strategy(strategy, op),
        strategy,
    ))
}

/// What the backward pass needs: the input and the weight.
#[derive(Clone, Debug)]
struct Saved {
    x: TchTensor,
    weight: TchTensor,
}

/// The gradients of the input, the weight and the bias that autodiff asks for (`wanted`), for
/// the output's gradient `grad`: `dx = g · Wᵀ`, `dW = xᵀ · g`, `db = Σ g` (over rows).
fn backward(saved: &Saved, grad: &tch::Tensor, wanted: [bool; 3]) -> [Option<tch::Tensor>; 3] {
    let weight = &saved.weight.tensor;
    let [d_input, d_output] = [weight.size()[0], weight.size()[1]];
    let rows = grad.reshape([-1, d_output]);
    let dx = wanted[0].then(|| rows.mm(&weight.tr()).reshape(saved.x.tensor.size()));
    let d_weight = wanted[1].then(|| saved.x.tensor.reshape([-1, d_input]).tr().mm(&rows));
    let d_bias = wanted[2].then(|| rows.sum_dim_intlist([0i64].as_slice(), false, None));
    [dx, d_weight, d_bias]
}

/// The autodiff node: input, weight, bias.
#[derive(Debug)]
struct LinearBackward;

impl Backward<LibTorch, 3> for LinearBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<LibTorch>(&ops.node);
        let wanted = ops.parents.each_ref().map(Option::is_some);
        let gradients = backward(&ops.state, &grad.tensor, wanted).map(|t| t.map(TchTensor::new));
        autodiff_node::register_gradients::<LibTorch, _, 3>(grads, ops, gradients);
    }
}

/// A linear layer recorded on the autodiff graph.
struct Tracked {
    x: TrackedTch,
    weight: TrackedTch,
    bias: TrackedTch,
}

impl WithStrategy for Tracked {
    type Output = TrackedTch;

    fn run<C: CheckpointStrategy>(self) -> TrackedTch {
        let (x, x_node) = self.x.into_parts();
        let (weight, weight_node) = self.weight.into_parts();
        let (bias, bias_node) = self.bias.into_parts();
        let d_input = weight.tensor.size()[0];
        let mut shape = x.tensor.size();
        let rows = x.tensor.reshape([-1, d_input]);
        let product = bias.tensor.addmm(&rows, &weight.tensor);
        if let Some(last) = shape.last_mut() {
            *last = weight.tensor.size()[1];
        }
        let output = TchTensor::new(product.reshape(shape));
        let nodes = [x_node, weight_node, bias_node];
        let saved = Saved { x, weight };
        autodiff_node::record::<LibTorch, _, C, 3>(LinearBackward, nodes, output, saved)
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Device, Tensor, TensorData};

    use crate::kernel_tests::{grid, max_diff, to_vec};

    fn layer(d_input: usize, d_output: usize, device: &Device) -> Linear {
        let mut linear = LinearConfig::new(d_input, d_output).init(device);
        linear.weight = Param::from_data(
            TensorData::new(grid(d_input * d_output, 0.2, 0.0), [d_input, d_output]),
            device,
        );
        linear.bias = Some(Param::from_data(
            TensorData::new(grid(d_output, 1.0, 0.1), [d_output]),
            device,
        ));
        linear
    }

    /// Output and every gradient through `forward`, for a `[3, 37, 48]` input into 80 outputs.
    fn run(device: &Device, forward: &dyn Fn(&Linear, Tensor<3>) -> Tensor<3>) -> [Vec<f32>; 4] {
        let linear = layer(48, 80, device);
        let x = Tensor::<3>::from_data(
            TensorData::new(grid(3 * 37 * 48, 2.0, 0.3), [3, 37, 48]),
            device,
        )
        .require_grad();
        let upstream = Tensor::<3>::from_data(
            TensorData::new(grid(3 * 37 * 80, 1.0, 0.0), [3, 37, 80]),
            device,
        );
        let y = forward(&linear, x.clone());
        let grads = (y.clone() * upstream).sum().backward();
        let bias = linear.bias.as_ref().expect("the layer has a bias");
        [
            to_vec(y),
            to_vec(x.grad(&grads).expect("x is tracked")),
            to_vec(
                linear
                    .weight
                    .val()
                    .grad(&grads)
                    .expect("the weight is tracked"),
            ),
            to_vec(bias.val().grad(&grads).expect("the bias is tracked")),
        ]
    }

    fn ours(linear: &Linear, x: Tensor<3>) -> Tensor<3> {
        let bias = linear.bias.as_ref().expect("the layer has a bias").val();
        super::linear(x, linear.weight.val(), bias).expect("tracked libtorch tensors")
    }

    #[test]
    fn output_and_gradients_match_burn_under_autodiff() {
        let device = Device::libtorch().autodiff();
        let ours = run(&device, &ours);
        let burns = run(&device, &|linear, x| linear.forward(x));
        for (what, (ours, burns)) in [
            "output",
            "input gradient",
            "weight gradient",
            "bias gradient",
        ]
        .into_iter()
        .zip(ours.iter().zip(&burns))
        {
            let worst = max_diff(ours, burns);
            assert!(worst < 1e-4, "{what} differs from burn's by {worst}");
        }
        let checkpointed = run(
            &Device::libtorch().autodiff().gradient_checkpointing(),
            &super::tests::ours,
        );
        assert_eq!(checkpointed, ours);
    }

    #[test]
    fn untracked_tensors_are_handed_back() {
        let device = Device::libtorch();
        let linear = layer(4, 5, &device);
        let bias = linear.bias.as_ref().expect("the layer has a bias").val();
        let x = Tensor::<3>::ones([2, 3, 4], &device);
        let back = super::linear(x, linear.weight.val(), bias).expect_err("evaluation is burn's");
        assert_eq!(back.dims(), [2, 3, 4]);
    }
}
