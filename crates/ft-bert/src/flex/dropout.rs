//! Inverted dropout on flex with a counter-based mask: one parallel pass forward, one backward,
//! and no mask kept in memory.
//!
//! burn's `Dropout` draws a Bernoulli tensor from one ChaCha stream on one thread, multiplies
//! the input by it and then by `1/(1 − p)`, and autodiff keeps the mask for the backward pass:
//! on MiniLM at batch 8 that is about six million draws and four passes per direction each
//! step, most of the forward pass's time after the GEMMs. Here each element's keep decision is
//! a hash of its position and a per-call key (SplitMix64, the generator whose stream this is
//! when the key is its seed), so any thread can compute any element's decision, and the
//! backward pass recomputes them instead of reading a stored mask.
//!
//! The key is drawn from the device's own random stream, so seeding the device (as the
//! Trainer does before every step) fixes every mask, as it does for burn's dropout. The
//! position hashed is not the element's place in the tensor but its counter from
//! [`ElementKeys`] (`positions.rs`), so that padding and the split of a step across processes
//! leave the decisions alone.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, unary};
use burn::tensor::{DType, Device, Tensor};

use super::tensor;
use crate::positions::ElementKeys;
use crate::random::{GOLDEN_GAMMA, mix64, random_key};

/// Elements per rayon task; even, so that every task starts on a whole pair of decisions.
const CHUNK: usize = 16 * 1024;

/// `x` with each element zeroed with probability `prob` and the rest scaled by `1/(1 − prob)`,
/// each decision keyed by the element's counter in `keys`; `Err(x)` when `x` is not an `f32`
/// flex tensor or `prob` is outside `(0, 1)`.
#[allow(
    clippy::result_large_err,
    reason = "the error hands the input tensor back; `Ok` holds a tensor of the same size"
)]
pub(crate) fn dropout<const D: usize>(
    x: Tensor<D>,
    prob: f64,
    keys: ElementKeys,
) -> Result<Tensor<D>, Tensor<D>> {
    // Checked before the key is drawn: on any other backend burn's dropout draws from the
    // device's stream, and this must not draw first.
    let device = x.device();
    if !(prob > 0.0 && prob < 1.0) || x.dtype() != DType::F32 || device != Device::flex() {
        return Err(x);
    }
    let len = x.shape().num_elements();
    debug_assert_eq!(keys.len(), len, "dropout keys for another shape");
    let keys = if keys.len() == len {
        keys
    } else {
        ElementKeys::flat(len)
    };
    // Flex's tensors are host memory: this read waits for nothing.
    let Ok(key) = random_key(&device) else {
        return Err(x);
    };
    let mask = Mask::new(key, prob, keys);
    let backward = mask.clone();
    tensor::unary(
        x,
        DropoutBackward,
        move |x| {
            tensor::map_chunks(x, CHUNK, |start, input, out| {
                apply(&mask, start, input, out)
            })
        },
        move |_, _| backward,
    )
}

/// Which elements one dropout call keeps, and their scale.
#[derive(Clone, Debug)]
struct Mask {
    key: u64,
    /// An element is kept when its 32 random bits are at least this (`prob · 2³²`).
    threshold: u64,
    /// `1/(1 − prob)`.
    scale: f32,
    /// Each element's counter.
    keys: ElementKeys,
}

impl Mask {
    fn new(key: u64, prob: f64, keys: ElementKeys) -> Self {
        Self {
            key,
            threshold: (prob * 4_294_967_296.0).round() as u64,
            scale: (1.0 / (1.0 - prob)) as f32,
            keys,
        }
    }

    /// SplitMix64's output for `pair`: 32 random bits for each of counters `2·pair` and
    /// `2·pair + 1`.
    #[inline(always)]
    fn bits(&self, pair: u64) -> u64 {
        mix64(
            self.key
                .wrapping_add(pair.wrapping_add(1).wrapping_mul(GOLDEN_GAMMA)),
        )
    }

    /// The factor, `scale` or `0`, for an element with random bits `half`.
    #[inline(always)]
    fn factor(&self, half: u64) -> f32 {
        if half & 0xffff_ffff >= self.threshold {
            self.scale
        } else {
            0.0
        }
    }

    /// Calls `f(k, factor)` for the elements `start + k`, `k < len`, row by row of the keys:
    /// within a row counters run on, and one hash decides an even counter and the next.
    #[inline(always)]
    fn for_each(&self, start: usize, len: usize, mut f: impl FnMut(usize, f32)) {
        let row_len = self.keys.row_len;
        let end = start + len;
        let mut element = start;
        while element < end {
            let row = element / row_len;
            let row_end = ((row + 1) * row_len).min(end);
            let mut counter = self.keys.bases[row] + (element - row * row_len) as u64;
            if counter % 2 == 1 {
                f(element - start, self.factor(self.bits(counter / 2) >> 32));
                element += 1;
                counter += 1;
            }
            while element + 1 < row_end {
                let bits = self.bits(counter / 2);
                f(element - start, self.factor(bits));
                f(element + 1 - start, self.factor(bits >> 32));
                element += 2;
                counter += 2;
            }
            if element < row_end {
                f(element - start, self.factor(self.bits(counter / 2)));
                element += 1;
            }
        }
    }
}

crate::simd_kernel! {
    /// `out = input · factor` for the elements from position `start` on; compiled for each SIMD
    /// level and picked at run time.
    fn apply(mask: &Mask, start: usize, input: &[f32], out: &mut [f32]) {
        mask.for_each(start, out.len(), |k, factor| out[k] = input[k] * factor);
    }
}

crate::simd_kernel! {
    /// `values *= factor` for the elements from position `start` on; compiled for each SIMD level
    /// and picked at run time.
    fn apply_in_place(mask: &Mask, start: usize, values: &mut [f32]) {
        mask.for_each(start, values.len(), |k, factor| values[k] *= factor);
    }
}

/// The autodiff node: the gradient passes where the element was kept, scaled the same way.
#[derive(Debug)]
struct DropoutBackward;

impl Backward<Flex, 1> for DropoutBackward {
    type State = Mask;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let mask = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            tensor::update_chunks(grad, CHUNK, |start, grad| {
                apply_in_place(&mask, start, grad)
            })
        });
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{DType, Device, Tensor, TensorData};

    use super::{Mask, apply_in_place};
    use crate::kernel_tests::{grid, to_vec};
    use crate::positions::ElementKeys;

    /// Dropout keyed by each element's place in the tensor.
    #[allow(clippy::result_large_err, reason = "as `super::dropout`")]
    fn dropout<const D: usize>(x: Tensor<D>, prob: f64) -> Result<Tensor<D>, Tensor<D>> {
        let len = x.shape().num_elements();
        super::dropout(x, prob, ElementKeys::flat(len))
    }

    /// Inputs with no zeros, so that a zero in the output means a dropped element.
    fn input(device: &Device, shape: [usize; 3]) -> Tensor<3> {
        let n = shape.iter().product();
        let values = grid(n, 2.0, 0.0)
            .into_iter()
            .map(|v| if v == 0.0 { 0.25 } else { v })
            .collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    #[test]
    fn kept_elements_are_scaled_and_about_prob_are_dropped() {
        let device = Device::flex().autodiff();
        let x = input(&device, [4, 125, 2003]);
        let y = to_vec(dropout(x.clone(), 0.1).expect("an f32 flex tensor"));
        let x = to_vec(x);
        let scale = (1.0 / 0.9f64) as f32;
        let mut dropped = 0usize;
        for (&x, &y) in x.iter().zip(&y) {
            if y == 0.0 {
                dropped += 1;
            } else {
                assert_eq!(y, x * scale);
            }
        }
        // One million Bernoulli(0.1) draws: the standard deviation of the share is 0.0003.
        let share = dropped as f64 / x.len() as f64;
        assert!((share - 0.1).abs() < 0.002, "dropped a share of {share}");
    }

    #[test]
    fn neighbouring_decisions_are_independent() {
        // The two halves of one hash decide neighbouring elements; both being dropped should
        // happen p² of the time, as should any other pairing.
        let n = 1 << 20;
        let mask = Mask::new(0x1234_5678_9abc_def0, 0.5, ElementKeys::flat(n));
        let mut factors = vec![1.0f32; n];
        apply_in_place(&mask, 0, &mut factors);
        let both = |gap: usize| {
            (0..n - gap)
                .filter(|&i| factors[i] == 0.0 && factors[i + gap] == 0.0)
                .count() as f64
                / (n - gap) as f64
        };
        for gap in [1, 2, 3, 64] {
            let share = both(gap);
            assert!((share - 0.25).abs() < 0.003, "gap {gap}: {share}");
        }
    }

    #[test]
    fn a_chunk_sees_the_decisions_of_its_positions() {
        let mask = Mask::new(99, 0.3, ElementKeys::flat(1000));
        let mut whole = vec![1.0f32; 1000];
        apply_in_place(&mask, 0, &mut whole);
        let mut tail = vec![1.0f32; 599];
        apply_in_place(&mask, 401, &mut tail);
        assert_eq!(&whole[401..], &tail[..]);
    }

    #[test]
    fn an_element_is_decided_by_its_counter_not_its_place() {
        // Rows of 5 at counters 100 and 7: the same decisions as those counters in a flat
        // tensor, from any chunk start.
        let keys = ElementKeys {
            row_len: 5,
            bases: [100u64, 7].into(),
        };
        let keyed = Mask::new(42, 0.5, keys);
        let flat = Mask::new(42, 0.5, ElementKeys::flat(200));
        let mut reference = vec![1.0f32; 200];
        apply_in_place(&flat, 0, &mut reference);
        let expected: Vec<f32> = (100..105).chain(7..12).map(|c| reference[c]).collect();
        for start in 0..10 {
            let mut values = vec![1.0f32; 10 - start];
            apply_in_place(&keyed, start, &mut values);
            assert_eq!(values, expected[start..], "from element {start}");
        }
    }

    #[test]
    fn the_gradient_passes_where_the_element_was_kept() {
        for device in [
            Device::flex().autodiff(),
            Device::flex().autodiff().gradient_checkpointing(),
        ] {
            let x = input(&device, [3, 77, 301]).require_grad();
            let upstream = input(&device, [3, 77, 301]).mul_scalar(-3.0);
            let y = dropout(x.clone(), 0.25).expect("an f32 flex tensor");
            let grads = (y.clone() * upstream.clone()).sum().backward();
            let dx = to_vec(x.grad(&grads).expect("x is tracked"));
            let (x, y, upstream) = (to_vec(x), to_vec(y), to_vec(upstream));
            for i in 0..x.len() {
                let expected = if y[i] == 0.0 {
                    0.0
                } else {
                    upstream[i] * y[i] / x[i]
                };
                assert!(
                    (dx[i] - expected).abs() <= 1e-5 * expected.abs().max(1.0),
                    "element {i}: {} vs {expected}",
                    dx[i]
                );
            }
        }
    }

    #[test]
    fn seeding_the_device_fixes_the_mask_and_calls_differ() {
        let device = Device::flex().autodiff();
        let x = input(&device, [2, 64, 384]);
        device.seed(7);
        let first = to_vec(dropout(x.clone(), 0.1).expect("flex"));
        let second = to_vec(dropout(x.clone(), 0.1).expect("flex"));
        device.seed(7);
        let again = to_vec(dropout(x, 0.1).expect("flex"));
        assert_eq!(first, again, "the same seed gives the same mask");
        assert_ne!(first, second, "each call draws a new mask");
    }

    #[test]
    fn views_and_nan_inputs_behave_like_burn() {
        let device = Device::flex().autodiff();
        let x = input(&device, [3, 40, 50]).swap_dims(0, 2);
        let y = dropout(x.clone(), 0.5).expect("flex");
        assert_eq!(y.dims(), [50, 40, 3]);
        let scale = 2.0f32;
        for (x, y) in to_vec(x).iter().zip(to_vec(y)) {
            assert!(y == 0.0 || y == x * scale);
        }
        // A NaN stays NaN even where dropped (NaN · 0), so a NaN loss is still seen.
        let nan = Tensor::<1>::from_data(TensorData::new(vec![f32::NAN; 64], [64]), &device);
        let out = to_vec(dropout(nan, 0.5).expect("flex"));
        assert!(out.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn other_dtypes_and_probabilities_are_handed_back() {
        let device = Device::flex().autodiff();
        let x = input(&device, [2, 3, 4]);
        assert!(dropout(x.clone(), 0.0).is_err());
        assert!(dropout(x.clone(), 1.0).is_err());
        let back = dropout(x.cast(DType::BF16), 0.1).expect_err("bf16 is left to burn");
        assert_eq!(back.dtype(), DType::BF16);
    }
}
