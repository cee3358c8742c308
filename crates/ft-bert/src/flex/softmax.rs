//! Softmax over the last axis on flex, forward and backward in one parallel pass each.
//!
//! burn's autodiff records softmax as max, subtract, exp, sum and divide, each a single-threaded
//! pass (exp a scalar libm call per element), plus their backward passes; on the attention
//! probabilities of MiniLM at batch 8 that is three million elements per layer and pass.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, unary};
use burn::backend::flex::FlexTensor;
use burn::tensor::Tensor;
use multiversion::multiversion;

use super::math;
use super::tensor;

/// Elements per rayon task, rounded down to whole rows.
const CHUNK: usize = 16 * 1024;

/// `softmax(x)` over the last axis; `Err(x)` when `x` is not an `f32` flex tensor.
#[allow(
    clippy::result_large_err,
    reason = "the error hands the input tensor back; `Ok` holds a tensor of the same size"
)]
pub(crate) fn softmax_last<const D: usize>(x: Tensor<D>) -> Result<Tensor<D>, Tensor<D>> {
    let row = x.dims()[D - 1];
    if row == 0 {
        return Err(x);
    }
    // The backward pass needs only the output.
    tensor::unary(
        x,
        SoftmaxBackward,
        |x| forward(x, row),
        |_, y| (y.clone(), row),
    )
}

/// Rows per task, so that every task holds whole rows.
fn rows_per_task(row: usize) -> usize {
    (CHUNK / row).max(1) * row
}

fn forward(x: &FlexTensor, row: usize) -> FlexTensor {
    tensor::map_chunks(x, rows_per_task(row), |_, input, out| {
        softmax_rows(input, out, row)
    })
}

/// `dx = y · (g − Σ g·y)` per row, from the output `y`.
fn backward(y: &FlexTensor, grad: &FlexTensor, row: usize) -> FlexTensor {
    let y_values = tensor::values(y);
    tensor::map_chunks(grad, rows_per_task(row), |start, grad, dx| {
        softmax_grad_rows(&y_values[start..start + dx.len()], grad, dx, row)
    })
}

/// Softmax of each `row`-long row of `input`, into `out`; compiled for each SIMD level.
#[multiversion(targets = "simd")]
fn softmax_rows(input: &[f32], out: &mut [f32], row: usize) {
    for (out, input) in out.chunks_mut(row).zip(input.chunks(row)) {
        let max = input.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        // As burn and torch: a row of -inf gives NaN (-inf − -inf), as does a NaN.
        let mut sum = 0.0f32;
        for (y, &v) in out.iter_mut().zip(input) {
            *y = math::exp_nonpositive(v - max);
            sum += *y;
        }
        let inv = 1.0 / sum;
        for y in out.iter_mut() {
            *y *= inv;
        }
    }
}

/// Softmax's backward pass over whole rows; compiled for each SIMD level.
#[multiversion(targets = "simd")]
fn softmax_grad_rows(y: &[f32], grad: &[f32], dx: &mut [f32], row: usize) {
    for (dx, (y, g)) in dx.chunks_mut(row).zip(y.chunks(row).zip(grad.chunks(row))) {
        let dot: f32 = y.iter().zip(g).map(|(y, g)| y * g).sum();
        for (dx, (&y, &g)) in dx.iter_mut().zip(y.iter().zip(g)) {
            *dx = y * (g - dot);
        }
    }
}

/// The autodiff node: keeps softmax's output for the backward pass.
#[derive(Debug)]
struct SoftmaxBackward;

impl Backward<Flex, 1> for SoftmaxBackward {
    type State = (FlexTensor, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (y, row) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            backward(&y, &grad, row)
        });
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::activation;
    use burn::tensor::{Device, Tensor, TensorData};

    use super::super::test_support::{grid, max_tensor_diff as max_diff};

    /// Attention-score-like rows: a spread of values, some rows fully masked with a large
    /// negative number, as the model's additive mask does.
    fn scores(device: &Device) -> Tensor<4> {
        let shape = [2, 3, 37, 37];
        let n: usize = shape.iter().product();
        let mut values = grid(n, 12.0, 0.0);
        for (i, v) in values.iter_mut().enumerate() {
            if (i / 37) % 5 == 0 && i % 37 > 20 {
                *v -= 3.4e38;
            }
        }
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    #[test]
    fn output_and_gradient_match_burn() {
        let device = Device::flex().autodiff();
        let upstream = scores(&device).mul_scalar(0.1);
        let run = |softmax: &dyn Fn(Tensor<4>) -> Tensor<4>| {
            let x = scores(&device).require_grad();
            let y = softmax(x.clone());
            let grads = (y.clone() * upstream.clone()).sum().backward();
            (y.detach(), x.grad(&grads).expect("x is tracked"))
        };
        let (y, dx) = run(&|x| super::softmax_last(x).expect("an f32 flex tensor"));
        let (y_ref, dx_ref) = run(&|x| activation::softmax(x, 3));
        let (fwd, bwd) = (max_diff(y, y_ref), max_diff(dx, dx_ref));
        assert!(fwd < 1e-6, "output differs from burn's softmax by {fwd}");
        assert!(bwd < 1e-6, "gradient differs from burn's softmax by {bwd}");
    }

    #[test]
    fn evaluation_matches_burn() {
        let device = Device::flex();
        let ours = super::softmax_last(scores(&device)).expect("an f32 flex tensor");
        let diff = max_diff(ours, activation::softmax(scores(&device), 3));
        assert!(diff < 1e-6, "output differs from burn's softmax by {diff}");
    }
}
