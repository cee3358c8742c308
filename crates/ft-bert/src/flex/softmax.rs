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
    let scores = Scores {
        row,
        scale: 1.0,
        bias: None,
    };
    softmax_node(x, scores)
}

/// `softmax(x · scale + bias)` over the last axis of attention scores `[batch, heads, q, k]`,
/// with the padding bias `[batch, 1, 1, k]` broadcast over heads and queries, as one pass
/// instead of three (scale, broadcast add, softmax) each way. `Err(x)` when `x` is not an
/// `f32` flex tensor.
#[allow(
    clippy::result_large_err,
    reason = "the error hands the input tensor back; `Ok` holds a tensor of the same size"
)]
pub(crate) fn scaled_masked_softmax(
    x: Tensor<4>,
    scale: f64,
    bias: &Tensor<4>,
) -> Result<Tensor<4>, Tensor<4>> {
    let [batch, heads, queries, row] = x.dims();
    let bias_values = match bias.to_data().try_into_vec::<f32>() {
        Ok(values) if bias.dims() == [batch, 1, 1, row] && row > 0 => values,
        _ => return Err(x),
    };
    let scores = Scores {
        row,
        scale: scale as f32,
        bias: Some((bias_values.into(), heads * queries * row)),
    };
    softmax_node(x, scores)
}

/// How a row of scores is formed before its softmax.
#[derive(Debug, Clone)]
struct Scores {
    /// Elements per row.
    row: usize,
    /// Factor on every score.
    scale: f32,
    /// A bias row per block of this many elements (one sample's heads and queries).
    bias: Option<(std::sync::Arc<[f32]>, usize)>,
}

impl Scores {
    /// The bias row for the row starting at element `start`.
    fn bias_at(&self, start: usize) -> Option<&[f32]> {
        self.bias.as_ref().map(|(values, block)| {
            let sample = start / block;
            &values[sample * self.row..(sample + 1) * self.row]
        })
    }
}

#[allow(
    clippy::result_large_err,
    reason = "the error hands the input tensor back; `Ok` holds a tensor of the same size"
)]
fn softmax_node<const D: usize>(x: Tensor<D>, scores: Scores) -> Result<Tensor<D>, Tensor<D>> {
    // The backward pass needs only the output and the scale.
    let forward_scores = scores.clone();
    tensor::unary(
        x,
        SoftmaxBackward,
        move |x| forward(x, &forward_scores),
        |_, y| (y.clone(), scores.row, scores.scale),
    )
}

/// Rows per task, so that every task holds whole rows.
fn rows_per_task(row: usize) -> usize {
    (CHUNK / row).max(1) * row
}

fn forward(x: &FlexTensor, scores: &Scores) -> FlexTensor {
    let row = scores.row;
    tensor::map_chunks(x, rows_per_task(row), |start, input, out| {
        for (k, (out, input)) in out.chunks_mut(row).zip(input.chunks(row)).enumerate() {
            match scores.bias_at(start + k * row) {
                Some(bias) => scaled_biased_softmax_row(input, bias, scores.scale, out),
                None => softmax_row(input, out),
            }
        }
    })
}

/// `dx = scale · y · (g − Σ g·y)` per row, from the output `y`.
fn backward(y: &FlexTensor, grad: &FlexTensor, row: usize, scale: f32) -> FlexTensor {
    let y_values = tensor::values(y);
    tensor::map_chunks(grad, rows_per_task(row), |start, grad, dx| {
        softmax_grad_rows(&y_values[start..start + dx.len()], grad, dx, row, scale)
    })
}

crate::simd_kernel! {
    /// Softmax of one row of `input`, into `out`.
    fn softmax_row(input: &[f32], out: &mut [f32]) {
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

crate::simd_kernel! {
    /// Softmax of `input · scale + bias`, one row, into `out`.
    fn scaled_biased_softmax_row(input: &[f32], bias: &[f32], scale: f32, out: &mut [f32]) {
        for ((y, &x), &b) in out.iter_mut().zip(input).zip(bias) {
            *y = x * scale + b;
        }
        let max = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for y in out.iter_mut() {
            *y = math::exp_nonpositive(*y - max);
            sum += *y;
        }
        let inv = 1.0 / sum;
        for y in out.iter_mut() {
            *y *= inv;
        }
    }
}

crate::simd_kernel! {
    /// Softmax's backward pass over whole rows, times the scores' scale.
    fn softmax_grad_rows(y: &[f32], grad: &[f32], dx: &mut [f32], row: usize, scale: f32) {
        for (dx, (y, g)) in dx.chunks_mut(row).zip(y.chunks(row).zip(grad.chunks(row))) {
            let dot: f32 = y.iter().zip(g).map(|(y, g)| y * g).sum();
            for (dx, (&y, &g)) in dx.iter_mut().zip(y.iter().zip(g)) {
                *dx = scale * (y * (g - dot));
            }
        }
    }
}

/// The autodiff node: keeps softmax's output for the backward pass.
#[derive(Debug)]
struct SoftmaxBackward;

impl Backward<Flex, 1> for SoftmaxBackward {
    type State = (FlexTensor, usize, f32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (y, row, scale) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            backward(&y, &grad, row, scale)
        });
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::activation;
    use burn::tensor::{Device, Tensor, TensorData};

    use crate::kernel_tests::{grid, max_tensor_diff as max_diff};

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
    fn scaled_masked_softmax_matches_burns_composition() {
        let device = Device::flex().autodiff();
        let [batch, heads, queries, keys] = [2, 3, 5, 7];
        let n = batch * heads * queries * keys;
        let scores = || {
            Tensor::<4>::from_data(
                TensorData::new(grid(n, 9.0, 0.3), [batch, heads, queries, keys]),
                &device,
            )
        };
        // Padding on the last keys of the second sample, as `AttentionMask::bias` holds it.
        let bias_values: Vec<f32> = (0..batch * keys)
            .map(|i| if i >= keys + 4 { f32::MIN } else { 0.0 })
            .collect();
        let bias =
            Tensor::<4>::from_data(TensorData::new(bias_values, [batch, 1, 1, keys]), &device);
        let upstream = scores().mul_scalar(0.2).detach();
        let scale = 0.125;
        let run = |softmax: &dyn Fn(Tensor<4>) -> Tensor<4>| {
            let x = scores().require_grad();
            let y = softmax(x.clone());
            let grads = (y.clone() * upstream.clone()).sum().backward();
            (y.detach(), x.grad(&grads).expect("x is tracked"))
        };
        let (y, dx) =
            run(&|x| super::scaled_masked_softmax(x, scale, &bias).expect("an f32 flex tensor"));
        let (y_ref, dx_ref) = run(&|x| activation::softmax(x.mul_scalar(scale) + bias.clone(), 3));
        let (fwd, bwd) = (max_diff(y, y_ref), max_diff(dx, dx_ref));
        assert!(
            fwd < 1e-6,
            "output differs from burn's composition by {fwd}"
        );
        assert!(
            bwd < 1e-6,
            "gradient differs from burn's composition by {bwd}"
        );
        // The masked keys get no probability.
        let probs =
            super::scaled_masked_softmax(scores(), scale, &bias).expect("an f32 flex tensor");
        let masked: f32 = probs
            .slice([1..2, 0..heads, 0..queries, 4..keys])
            .abs()
            .sum()
            .into_scalar();
        assert_eq!(masked, 0.0);
    }

    #[test]
    fn evaluation_matches_burn() {
        let device = Device::flex();
        let ours = super::softmax_last(scores(&device)).expect("an f32 flex tensor");
        let diff = max_diff(ours, activation::softmax(scores(&device), 3));
        assert!(diff < 1e-6, "output differs from burn's softmax by {diff}");
    }
}
