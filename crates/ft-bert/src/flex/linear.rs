//! Linear layers on flex: `x · W + b` and its backward pass, each GEMM in [`super::gemm`]'s
//! tiles. The bias is the output's initial value rather than a second pass, and its gradient
//! is one column sum.
//!
//! Under bf16 autocast ([`crate::autocast::autocast_bf16`]) the three products run in bf16 with f32
//! sums, as PyTorch's CPU autocast runs `linear`; the backward pass uses the arithmetic its
//! forward pass used, wherever it runs. The bias, its gradient and the output stay f32.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::tensor::{Shape, Tensor};
use rayon::prelude::*;

use super::gemm::{Arithmetic, Bf16Kernel, Dims, Operand, gemm_into, product};
use super::tensor::{self, FlexFloat, TrackedFlex, WithStrategy};

/// Rows of the output per rayon task when the bias is copied in.
const BIAS_ROWS: usize = 64;

/// Columns of the bias gradient per rayon task.
const BIAS_COLUMNS: usize = 64;

/// `x · weight + bias` over the last axis of `x`, burn's `Linear` layout (`weight` is
/// `[d_input, d_output]`); `Err(x)` unless `x`, `weight` and `bias` are all `f32` flex
/// tensors, all tracked by autodiff or none.
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
    let (Ok(weight), Ok(bias)) = (tensor::as_flex(weight), tensor::as_flex(bias)) else {
        return Err(x);
    };
    let arithmetic = arithmetic();
    let output = match (tensor::as_flex(x)?, weight, bias) {
        (FlexFloat::Plain(x), FlexFloat::Plain(weight), FlexFloat::Plain(bias)) => {
            FlexFloat::Plain(forward(&x, &weight, &bias, arithmetic))
        }
        (
            FlexFloat::Tracked(x, strategy),
            FlexFloat::Tracked(weight, weight_strategy),
            FlexFloat::Tracked(bias, bias_strategy),
        ) if weight_strategy == strategy && bias_strategy == strategy => {
            let op = Tracked {
                x,
                weight,
                bias,
                arithmetic,
            };
            FlexFloat::Tracked(tensor::with_strategy(strategy, op), strategy)
        }
        (x, _, _) => return Err(tensor::wrap(x)),
    };
    Ok(tensor::wrap(output))
}

/// The products' arithmetic on this thread: bf16 under autocast, else f32.
fn arithmetic() -> Arithmetic {
    if crate::autocast::is_autocast_bf16() {
        Arithmetic::Bf16(Bf16Kernel::current())
    } else {
        Arithmetic::F32
    }
}

/// `x · weight + bias`.
fn forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    arithmetic: Arithmetic,
) -> FlexTensor {
    let [d_input, d_output] = weight.layout().shape().dims();
    let (input, weight, bias) = (
        tensor::values(x),
        tensor::values(weight),
        tensor::values(bias),
    );
    let rows = input.len() / d_input;
    let mut out = vec![0.0f32; rows * d_output];
    out.par_chunks_mut(d_output * BIAS_ROWS).for_each(|rows| {
        rows.chunks_exact_mut(d_output)
            .for_each(|row| row.copy_from_slice(&bias))
    });
    let lhs = Operand::new(&input, d_input, false);
    let rhs = Operand::new(&weight, d_output, false);
    let dims = Dims {
        m: rows,
        n: d_output,
        k: d_input,
    };
    gemm_into(&mut out, dims, lhs, rhs, true, arithmetic);
    let mut shape = tensor::shape(x);
    let last = shape.num_dims() - 1;
    shape[last] = d_output;
    tensor::from_vec(out, shape)
}

/// What the backward pass needs: the input and the weight, as the forward pass read them,
/// and the forward pass's arithmetic.
#[derive(Clone, Debug)]
struct Saved {
    x: FlexTensor,
    weight: FlexTensor,
    arithmetic: Arithmetic,
}

/// The gradients of `x`, `weight` and `bias`, each only when `wanted`.
fn backward(saved: &Saved, grad: &FlexTensor, wanted: [bool; 3]) -> [Option<FlexTensor>; 3] {
    let grad_values = tensor::values(grad);
    let [d_input, d_output] = saved.weight.layout().shape().dims();
    let rows = grad_values.len() / d_output;
    let dy = Operand::new(&grad_values, d_output, false);
    let dx = wanted[0].then(|| {
        let weight = tensor::values(&saved.weight);
        // dX = dY · Wᵀ
        let weight_t = Operand::new(&weight, d_output, true);
        let dims = Dims {
            m: rows,
            n: d_input,
            k: d_output,
        };
        let dx = product(dims, dy, weight_t, saved.arithmetic);
        tensor::from_vec(dx, tensor::shape(&saved.x))
    });
    let d_weight = wanted[1].then(|| {
        let input = tensor::values(&saved.x);
        // dW = Xᵀ · dY
        let x_t = Operand::new(&input, d_input, true);
        let dims = Dims {
            m: d_input,
            n: d_output,
            k: rows,
        };
        let d_weight = product(dims, x_t, dy, saved.arithmetic);
        tensor::from_vec(d_weight, Shape::new([d_input, d_output]))
    });
    let d_bias = wanted[2]
        .then(|| tensor::from_vec(column_sums(&grad_values, d_output), Shape::new([d_output])));
    [dx, d_weight, d_bias]
}

/// The sum of each column of the row-major `values` with `cols` columns, row by row in order.
fn column_sums(values: &[f32], cols: usize) -> Vec<f32> {
    let mut sums = vec![0.0f32; cols];
    sums.par_chunks_mut(BIAS_COLUMNS)
        .enumerate()
        .for_each(|(chunk, sums)| {
            let start = chunk * BIAS_COLUMNS;
            for row in values.chunks_exact(cols) {
                add_into(sums, &row[start..start + sums.len()]);
            }
        });
    sums
}

crate::simd_kernel! {
    /// `sums += values`, compiled for each SIMD level and picked at run time.
    fn add_into(sums: &mut [f32], values: &[f32]) {
        for (s, &v) in sums.iter_mut().zip(values) {
            *s += v;
        }
    }
}

/// The autodiff node: input, weight, bias.
#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 3> for LinearBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let wanted = ops.parents.each_ref().map(Option::is_some);
        let gradients = backward(&ops.state, &grad, wanted);
        tensor::register_gradients(grads, ops, gradients);
    }
}

/// A linear layer recorded on the autodiff graph.
struct Tracked {
    x: TrackedFlex,
    weight: TrackedFlex,
    bias: TrackedFlex,
    arithmetic: Arithmetic,
}

impl WithStrategy for Tracked {
    type Output = TrackedFlex;

    fn run<C: CheckpointStrategy>(self) -> TrackedFlex {
        let (x, x_node) = self.x.into_parts();
        let (weight, weight_node) = self.weight.into_parts();
        let (bias, bias_node) = self.bias.into_parts();
        let output = forward(&x, &weight, &bias, self.arithmetic);
        let nodes = [x_node, weight_node, bias_node];
        let saved = Saved {
            x,
            weight,
            arithmetic: self.arithmetic,
        };
        tensor::record::<_, C, 3>(LinearBackward, nodes, output, saved)
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

    /// Output and every gradient through `forward`, for a `[3, 131, d_input]` input (rows and
    /// columns that no tile size divides).
    fn run(
        device: &Device,
        (d_input, d_output): (usize, usize),
        forward: &dyn Fn(&Linear, Tensor<3>) -> Tensor<3>,
    ) -> [Vec<f32>; 4] {
        let linear = layer(d_input, d_output, device);
        let shape = [3, 131, d_input];
        let x = Tensor::<3>::from_data(
            TensorData::new(grid(3 * 131 * d_input, 2.0, 0.3), shape),
            device,
        )
        .require_grad();
        let upstream = Tensor::<3>::from_data(
            TensorData::new(grid(3 * 131 * d_output, 1.0, -0.1), [3, 131, d_output]),
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

    fn ours<const D: usize>(linear: &Linear, x: Tensor<D>) -> Tensor<D> {
        let bias = linear.bias.as_ref().expect("the layer has a bias").val();
        super::linear(x, linear.weight.val(), bias).expect("flex tensors")
    }

    #[test]
    fn output_and_gradients_match_burn_under_autodiff() {
        let device = Device::flex().autodiff();
        for dims in [(384, 1536), (1536, 384), (100, 7), (384, 2)] {
            let got = run(&device, dims, &ours::<3>);
            let want = run(&device, dims, &|linear, x| linear.forward(x));
            for ((got, want), what) in got.iter().zip(&want).zip(["output", "dx", "dW", "db"]) {
                let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                let worst = max_diff(got, want);
                assert!(
                    worst <= 1e-5 * scale,
                    "{what} of {dims:?} differs from burn's by {worst}"
                );
            }
        }
    }

    #[test]
    fn gradients_are_the_same_bits_on_every_run() {
        let device = Device::flex().autodiff();
        let first = run(&device, (384, 1536), &ours::<3>);
        for _ in 0..3 {
            assert_eq!(run(&device, (384, 1536), &ours::<3>), first);
        }
    }

    #[test]
    fn evaluation_matches_burn() {
        let device = Device::flex();
        let linear = layer(384, 1536, &device);
        let x = Tensor::<2>::from_data(
            TensorData::new(grid(97 * 384, 2.0, 0.3), [97, 384]),
            &device,
        );
        let got = to_vec(ours(&linear, x.clone()));
        let want = to_vec(linear.forward(x));
        assert!(max_diff(&got, &want) < 1e-4);
    }

    #[test]
    fn under_autocast_the_products_run_in_bf16_within_its_rounding_of_f32() {
        if super::Bf16Kernel::current() == super::Bf16Kernel::F32 {
            eprintln!("skipped: this CPU has no bf16 kernel, so autocast runs f32 here");
            return;
        }
        let device = Device::flex().autodiff();
        for dims in [(384, 1536), (1536, 384), (100, 7)] {
            let full = run(&device, dims, &ours::<3>);
            let half = crate::autocast::autocast_bf16(|| run(&device, dims, &ours::<3>));
            for ((half, full), what) in half.iter().zip(&full).zip(["output", "dx", "dW", "db"]) {
                let scale = full.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                let worst = max_diff(half, full);
                // Operands within 2⁻⁹ of their f32 values: products within about 2⁻⁸.
                assert!(worst <= 2e-2 * scale, "{what} of {dims:?}: {worst}");
                // The bias gradient is a sum of the upstream gradient alone, in f32.
                assert_eq!(worst == 0.0, what == "db", "{what} of {dims:?}: {worst}");
            }
        }
    }

    #[test]
    fn a_tracked_input_with_untracked_parameters_is_handed_back() {
        let linear = layer(8, 4, &Device::flex());
        let bias = linear.bias.as_ref().expect("the layer has a bias").val();
        let x = Tensor::<2>::ones([3, 8], &Device::flex().autodiff()).require_grad();
        let back = super::linear(x, linear.weight.val(), bias)
            .expect_err("burn's linear decides what mixed tracking means");
        assert_eq!(back.dims(), [3, 8]);
    }
}
