//! Exact GELU on flex: forward and backward in one parallel, vectorised pass each.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, unary};
use burn::backend::flex::FlexTensor;
use burn::tensor::Tensor;

use super::math;
use super::tensor;

/// Elements per rayon task: large enough that scheduling is noise, small enough that an
/// 885 k-element activation still splits across every core.
const CHUNK: usize = 16 * 1024;

/// `x · Φ(x)`, element-wise; `Err(x)` when `x` is not an `f32` flex tensor.
#[allow(
    clippy::result_large_err,
    reason = "the error hands the input tensor back; `Ok` holds a tensor of the same size"
)]
pub(crate) fn gelu<const D: usize>(x: Tensor<D>) -> Result<Tensor<D>, Tensor<D>> {
    // The backward pass needs only the input.
    tensor::unary(x, GeluBackward, forward, |x, _| x)
}

fn forward(x: &FlexTensor) -> FlexTensor {
    tensor::map_chunks(x, CHUNK, |_, input, out| gelu_into(input, out))
}

/// `grad · GELU'(x)`, written into `grad`'s buffer when nothing else holds it.
fn backward(x: &FlexTensor, grad: FlexTensor) -> FlexTensor {
    let input = tensor::values(x);
    tensor::update_chunks(grad, CHUNK, |start, grad| {
        gelu_grad_in_place(&input[start..start + grad.len()], grad)
    })
}

crate::simd_kernel! {
    /// `out = GELU(input)`, compiled for each SIMD level and picked at run time.
    fn gelu_into(input: &[f32], out: &mut [f32]) {
        for (y, &x) in out.iter_mut().zip(input) {
            *y = math::gelu(x);
        }
    }
}

crate::simd_kernel! {
    /// `grad *= GELU'(input)`, compiled for each SIMD level and picked at run time.
    fn gelu_grad_in_place(input: &[f32], grad: &mut [f32]) {
        for (g, &x) in grad.iter_mut().zip(input) {
            *g = math::gelu_grad(x, *g);
        }
    }
}

/// The autodiff node: keeps GELU's input for the backward pass.
#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| backward(&x, grad));
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::activation;
    use burn::tensor::{DType, Device, Tensor, TensorData};

    use crate::kernel_tests::{grid, max_tensor_diff as max_diff};

    /// Values across GELU's whole interesting range, more than one rayon chunk long.
    fn tensor(device: &Device, scale: f32) -> Tensor<3> {
        Tensor::from_data(
            TensorData::new(grid(3 * 5 * 4001, scale, 0.0), [3, 5, 4001]),
            device,
        )
    }

    #[test]
    fn forward_matches_burn_outside_autodiff() {
        let x = tensor(&Device::flex(), 16.0);
        let ours = super::gelu(x.clone()).expect("an f32 flex tensor takes the kernel");
        let diff = max_diff(ours, activation::gelu(x));
        assert!(diff < 2e-6, "forward differs from burn's GELU by {diff}");
    }

    #[test]
    fn gradient_matches_burn_under_autodiff() {
        gradient_matches_burn_on(Device::flex().autodiff());
    }

    #[test]
    fn gradient_matches_burn_with_gradient_checkpointing() {
        gradient_matches_burn_on(Device::flex().autodiff().gradient_checkpointing());
    }

    fn gradient_matches_burn_on(device: Device) {
        let upstream = tensor(&device, 3.0);
        let grad_of = |gelu: &dyn Fn(Tensor<3>) -> Tensor<3>| {
            let x = tensor(&device, 16.0).require_grad();
            let y = gelu(x.clone());
            let grads = (y.clone() * upstream.clone()).sum().backward();
            (y.detach(), x.grad(&grads).expect("x is tracked"))
        };
        let (y_ours, g_ours) =
            grad_of(&|x| super::gelu(x).expect("an f32 flex tensor takes the kernel"));
        let (y_burn, g_burn) = grad_of(&activation::gelu);
        let fwd = max_diff(y_ours, y_burn);
        let bwd = max_diff(g_ours, g_burn);
        assert!(fwd < 2e-6, "forward differs from burn's GELU by {fwd}");
        assert!(bwd < 2e-6, "gradient differs from burn's GELU by {bwd}");
    }

    #[test]
    fn views_are_read_in_logical_order() {
        let x = tensor(&Device::flex(), 16.0).swap_dims(0, 2);
        let ours = super::gelu(x.clone()).expect("an f32 flex tensor takes the kernel");
        assert_eq!(ours.dims(), [4001, 5, 3]);
        let diff = max_diff(ours, activation::gelu(x));
        assert!(
            diff < 2e-6,
            "forward on a transposed view differs by {diff}"
        );
    }

    #[test]
    fn other_dtypes_are_handed_back() {
        let x = tensor(&Device::flex(), 4.0).cast(DType::BF16);
        let back = super::gelu(x).expect_err("bf16 is left to burn");
        assert_eq!(back.dtype(), DType::BF16);
    }
}
