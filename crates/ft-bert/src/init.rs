//! transformers' weight initialisation (`PreTrainedModel._init_weights`), drawn on the host
//! from a seed and each parameter's name, so that every backend starts from the same values.
//!
//! Parameters are created lazily: a parameter that a checkpoint replaces is never drawn, and
//! the values of the others do not depend on the order in which they are first used.

use burn::module::{Param, ParamId};
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// Draws parameters for one model: `N(0, std)` weights, zero biases, unit LayerNorm scales.
#[derive(Debug, Clone)]
pub(crate) struct Init {
    seed: u64,
    std: f64,
    device: Device,
}

impl Init {
    pub(crate) fn new(seed: u64, std: f64, device: &Device) -> Self {
        Self {
            seed,
            std,
            device: device.clone(),
        }
    }

    /// A `Linear` from `d_input` to `d_output` named `path` (`...query`).
    pub(crate) fn linear(&self, path: &str, d_input: usize, d_output: usize) -> Linear {
        Linear {
            weight: self.normal(format!("{path}.weight"), [d_input, d_output], None),
            bias: Some(self.constant([d_output], 0.0)),
        }
    }

    /// An `Embedding` of `n` rows; transformers zeroes the padding row.
    pub(crate) fn embedding(
        &self,
        path: &str,
        n: usize,
        d: usize,
        padding_idx: Option<usize>,
    ) -> Embedding {
        Embedding {
            weight: self.normal(format!("{path}.weight"), [n, d], padding_idx),
        }
    }

    /// DistilBERT's `sinusoidal_pos_embds` table of `n` positions: `sin` of
    /// `pos / 10000^(2⌊j/2⌋/d)` in even columns, `cos` in odd ones. transformers 5.24 writes
    /// it into a parameter that then trains like any other, as this one does.
    pub(crate) fn sinusoidal_embedding(&self, n: usize, d: usize) -> Embedding {
        let values: Vec<f32> = (0..n)
            .flat_map(|pos| {
                (0..d).map(move |j| {
                    let angle = pos as f64 / 10000f64.powf((2 * (j / 2)) as f64 / d as f64);
                    (if j % 2 == 0 { angle.sin() } else { angle.cos() }) as f32
                })
            })
            .collect();
        Embedding {
            weight: Param::uninitialized(
                ParamId::new(),
                move |device: &Device, require_grad: bool| {
                    Tensor::from_data(TensorData::new(values.clone(), [n, d]), device)
                        .set_require_grad(require_grad)
                },
                self.device.clone(),
                true,
                [n, d].into(),
            ),
        }
    }

    /// A `LayerNorm` with scale 1 and shift 0.
    pub(crate) fn layer_norm(&self, d: usize, epsilon: f64) -> LayerNorm {
        let mut norm = LayerNormConfig::new(d)
            .with_epsilon(epsilon)
            .init(&self.device);
        norm.gamma = self.constant([d], 1.0);
        norm.beta = Some(self.constant([d], 0.0));
        norm
    }

    fn normal<const D: usize>(
        &self,
        name: String,
        shape: [usize; D],
        zero_row: Option<usize>,
    ) -> Param<Tensor<D>> {
        let seed = param_seed(self.seed, &name);
        let std = self.std;
        Param::uninitialized(
            ParamId::new(),
            move |device: &Device, require_grad: bool| {
                let values = normal_values(seed, std, shape.iter().product());
                let mut tensor = Tensor::from_data(TensorData::new(values, shape), device);
                if let Some(row) = zero_row.filter(|&row| row < shape[0]) {
                    let width = shape[1..].iter().product::<usize>();
                    let zeros = Tensor::<1>::zeros([width], device);
                    tensor = tensor
                        .reshape([shape[0], width])
                        .slice_assign([row..row + 1, 0..width], zeros.reshape([1, width]))
                        .reshape(shape);
                }
                tensor.set_require_grad(require_grad)
            },
            self.device.clone(),
            true,
            shape.into(),
        )
    }

    fn constant<const D: usize>(&self, shape: [usize; D], value: f32) -> Param<Tensor<D>> {
        Param::uninitialized(
            ParamId::new(),
            move |device: &Device, require_grad: bool| {
                Tensor::full(shape, value, device).set_require_grad(require_grad)
            },
            self.device.clone(),
            true,
            shape.into(),
        )
    }
}

/// A stream per parameter: the model seed mixed with an FNV-1a hash of the name.
fn param_seed(seed: u64, name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^ seed.wrapping_mul(crate::random::GOLDEN_GAMMA)
}

fn normal_values(seed: u64, std: f64, len: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    match Normal::new(0.0f64, std) {
        Ok(normal) => (0..len).map(|_| normal.sample(&mut rng) as f32).collect(),
        // A zero or invalid std draws nothing: the weights start at zero.
        Err(_) => vec![0.0; len],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_depend_on_seed_and_name_only() {
        let a = normal_values(param_seed(42, "classifier.weight"), 0.02, 1000);
        let b = normal_values(param_seed(42, "classifier.weight"), 0.02, 1000);
        let c = normal_values(param_seed(43, "classifier.weight"), 0.02, 1000);
        let d = normal_values(param_seed(42, "pooler.dense.weight"), 0.02, 1000);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        let mean = a.iter().map(|&v| f64::from(v)).sum::<f64>() / 1000.0;
        let var = a
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / 1000.0;
        assert!(mean.abs() < 0.003, "{mean}");
        assert!((var.sqrt() - 0.02).abs() < 0.002, "{}", var.sqrt());
    }

    #[test]
    fn the_sinusoidal_table_is_distilberts() {
        let init = Init::new(0, 0.02, &Device::flex());
        let table = init.sinusoidal_embedding(8, 6).weight.val().into_data();
        let values: Vec<f32> = table.iter::<f32>().collect();
        let at = |pos: usize, j: usize| values[pos * 6 + j];
        assert_eq!((at(0, 0), at(0, 1)), (0.0, 1.0));
        assert!((at(1, 0) - 1f32.sin()).abs() < 1e-6);
        assert!((at(1, 1) - 1f32.cos()).abs() < 1e-6);
        // Columns 2 and 3 share the frequency 1 / 10000^(2/6).
        let angle = 3.0 / 10000f64.powf(2.0 / 6.0);
        assert!((f64::from(at(3, 2)) - angle.sin()).abs() < 1e-6);
        assert!((f64::from(at(3, 3)) - angle.cos()).abs() < 1e-6);
    }
}
