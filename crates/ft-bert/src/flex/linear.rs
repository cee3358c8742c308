//! Linear layers on flex: `x · W + b` and its backward pass, each GEMM split across rayon's
//! threads in tiles of our choosing.
//!
//! burn-flex hands each whole GEMM to the `gemm` crate with its own threading. On the model's
//! shapes that threading leaves up to a third of the rate unused for the input gradient
//! `dY · Wᵀ` (a transposed right-hand side) and for the short GEMMs of evaluation batches:
//! measured on Intel Xeon (2 threads, 420 × 384 · 384 × 1536 and its transposes), 117–181
//! GFLOP/s against 160–215 when the output's columns are split into one single-threaded GEMM
//! per thread (docs/benchmarks-analysis.md). Here every GEMM runs as such tiles, the bias is
//! the output's initial value rather than a second pass, and its gradient is one column sum.
//!
//! The tiles depend only on the shapes and the thread count, so a run is reproducible bit for
//! bit on a given machine.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::tensor::{Shape, Tensor};
use rayon::prelude::*;

use super::tensor::{self, FlexFloat, TrackedFlex, WithStrategy};

/// The narrowest tile side worth a thread of its own: below it the packing overhead of one
/// more GEMM call outweighs the parallelism.
const MIN_TILE: usize = 64;

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
    let output = match (tensor::as_flex(x)?, weight, bias) {
        (FlexFloat::Plain(x), FlexFloat::Plain(weight), FlexFloat::Plain(bias)) => {
            FlexFloat::Plain(forward(&x, &weight, &bias))
        }
        (
            FlexFloat::Tracked(x, strategy),
            FlexFloat::Tracked(weight, weight_strategy),
            FlexFloat::Tracked(bias, bias_strategy),
        ) if weight_strategy == strategy && bias_strategy == strategy => {
            let op = Tracked { x, weight, bias };
            FlexFloat::Tracked(tensor::with_strategy(strategy, op), strategy)
        }
        (x, _, _) => return Err(tensor::wrap(x)),
    };
    Ok(tensor::wrap(output))
}

/// A row-major matrix operand: its first element and its strides in elements.
#[derive(Clone, Copy, Debug)]
struct Operand {
    ptr: *const f32,
    row_stride: isize,
    col_stride: isize,
}

// SAFETY: an `Operand` only ever points into a buffer that outlives the GEMM reading it, and
// is only read through.
unsafe impl Send for Operand {}
unsafe impl Sync for Operand {}

impl Operand {
    /// `values` read as a `rows × cols` row-major matrix, or as its transpose.
    fn new(values: &[f32], cols: usize, transposed: bool) -> Self {
        let (row_stride, col_stride) = if transposed {
            (1, cols as isize)
        } else {
            (cols as isize, 1)
        };
        Self {
            ptr: values.as_ptr(),
            row_stride,
            col_stride,
        }
    }

    /// The operand starting at row `row`, column `col`.
    fn at(self, row: usize, col: usize) -> Self {
        let offset = row as isize * self.row_stride + col as isize * self.col_stride;
        Self {
            ptr: self.ptr.wrapping_offset(offset),
            ..self
        }
    }
}

/// How one GEMM splits across threads: `row_parts × col_parts` tiles of the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tiling {
    row_parts: usize,
    col_parts: usize,
}

impl Tiling {
    /// Tiles for an `m × n` output on `threads` threads, splitting the columns first (the
    /// `gemm` crate's micro-kernel runs along them for a row-major output), then the rows,
    /// and no side narrower than [`MIN_TILE`].
    fn new(m: usize, n: usize, threads: usize) -> Self {
        let col_parts = (n / MIN_TILE).clamp(1, threads.max(1));
        let row_parts = (m / MIN_TILE).clamp(1, (threads / col_parts).max(1));
        Self {
            row_parts,
            col_parts,
        }
    }

    /// The `[start, end)` ranges of part `part` of `len` split in `parts`, in multiples of 16
    /// (the micro-kernel's width) except for the last.
    fn range(len: usize, parts: usize, part: usize) -> (usize, usize) {
        let step = len.div_ceil(parts).next_multiple_of(16);
        ((part * step).min(len), ((part + 1) * step).min(len))
    }
}

/// The output of a GEMM, shared by the threads that write its disjoint tiles.
#[derive(Clone, Copy, Debug)]
struct Output(*mut f32);

// SAFETY: each thread writes only its own tile (see `gemm_into`).
unsafe impl Send for Output {}
unsafe impl Sync for Output {}

impl Output {
    /// The element `offset` places past the start.
    fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// A GEMM's extents: `(m × k) · (k × n)`.
#[derive(Clone, Copy, Debug)]
struct Dims {
    m: usize,
    n: usize,
    k: usize,
}

/// `out (m × n) = [out +] lhs (m × k) · rhs (k × n)`, `out` row-major; with `accumulate` the
/// product is added to what `out` holds, else `out` is overwritten.
fn gemm_into(
    out: &mut [f32],
    Dims { m, n, k }: Dims,
    lhs: Operand,
    rhs: Operand,
    accumulate: bool,
) {
    assert_eq!(out.len(), m * n, "GEMM output of the wrong size");
    let tiling = Tiling::new(m, n, rayon::current_num_threads());
    let out = Output(out.as_mut_ptr());
    let tiles = tiling.row_parts * tiling.col_parts;
    (0..tiles).into_par_iter().for_each(|tile| {
        let (rows, cols) = (
            Tiling::range(m, tiling.row_parts, tile / tiling.col_parts),
            Tiling::range(n, tiling.col_parts, tile % tiling.col_parts),
        );
        if rows.0 == rows.1 || cols.0 == cols.1 {
            return;
        }
        let (lhs, rhs) = (lhs.at(rows.0, 0), rhs.at(0, cols.0));
        let dst = out.at(rows.0 * n + cols.0);
        // SAFETY: the tiles are disjoint blocks of `out`, which is `m × n`, and every operand
        // stays inside the buffer it was made from for these offsets and extents.
        unsafe {
            gemm::gemm(
                rows.1 - rows.0,
                cols.1 - cols.0,
                k,
                dst,
                1,
                n as isize,
                accumulate,
                lhs.ptr,
                lhs.col_stride,
                lhs.row_stride,
                rhs.ptr,
                rhs.col_stride,
                rhs.row_stride,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    });
}

/// The row-major `m × n` product of `lhs (m × k)` and `rhs (k × n)`.
fn product(m: usize, n: usize, k: usize, lhs: Operand, rhs: Operand) -> Vec<f32> {
    let mut out = vec![0.0f32; m * n];
    gemm_into(&mut out, Dims { m, n, k }, lhs, rhs, false);
    out
}

/// `x · weight + bias`.
fn forward(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> FlexTensor {
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
    gemm_into(&mut out, dims, lhs, rhs, true);
    let mut shape = tensor::shape(x);
    let last = shape.num_dims() - 1;
    shape[last] = d_output;
    tensor::from_vec(out, shape)
}

/// What the backward pass needs: the input and the weight, as the forward pass read them.
#[derive(Clone, Debug)]
struct Saved {
    x: FlexTensor,
    weight: FlexTensor,
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
        let dx = product(rows, d_input, d_output, dy, weight_t);
        tensor::from_vec(dx, tensor::shape(&saved.x))
    });
    let d_weight = wanted[1].then(|| {
        let input = tensor::values(&saved.x);
        // dW = Xᵀ · dY
        let x_t = Operand::new(&input, d_input, true);
        let d_weight = product(d_input, d_output, rows, x_t, dy);
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
}

impl WithStrategy for Tracked {
    type Output = TrackedFlex;

    fn run<C: CheckpointStrategy>(self) -> TrackedFlex {
        let (x, x_node) = self.x.into_parts();
        let (weight, weight_node) = self.weight.into_parts();
        let (bias, bias_node) = self.bias.into_parts();
        let output = forward(&x, &weight, &bias);
        let nodes = [x_node, weight_node, bias_node];
        tensor::record::<_, C, 3>(LinearBackward, nodes, output, Saved { x, weight })
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Device, Tensor, TensorData};

    use super::super::test_support::{grid, max_diff, to_vec};
    use super::Tiling;

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
    fn a_tracked_input_with_untracked_parameters_is_handed_back() {
        let linear = layer(8, 4, &Device::flex());
        let bias = linear.bias.as_ref().expect("the layer has a bias").val();
        let x = Tensor::<2>::ones([3, 8], &Device::flex().autodiff()).require_grad();
        let back = super::linear(x, linear.weight.val(), bias)
            .expect_err("burn's linear decides what mixed tracking means");
        assert_eq!(back.dims(), [3, 8]);
    }

    #[test]
    fn tiles_cover_every_thread_without_slivers() {
        assert_eq!(
            Tiling::new(420, 384, 2),
            Tiling {
                row_parts: 1,
                col_parts: 2
            }
        );
        assert_eq!(
            Tiling::new(420, 384, 16),
            Tiling {
                row_parts: 2,
                col_parts: 6
            }
        );
        assert_eq!(
            Tiling::new(8, 2, 16),
            Tiling {
                row_parts: 1,
                col_parts: 1
            }
        );
        // Every column in exactly one part.
        let parts: Vec<_> = (0..6).map(|p| Tiling::range(384, 6, p)).collect();
        assert_eq!(parts.first().map(|p| p.0), Some(0));
        assert_eq!(parts.last().map(|p| p.1), Some(384));
        assert!(parts.windows(2).all(|w| w[0].1 == w[1].0));
    }
}
