//! AdamW as the Trainer uses it: PyTorch's update, transformers' weight-decay groups (no decay
//! on biases and LayerNorm parameters), and `clip_grad_norm_`'s global-norm clipping folded
//! into the update.
//!
//! The moments are kept per parameter *path*, not per burn `ParamId`, so that a checkpoint's
//! optimizer state fits any model with the same architecture, such as the one a resumed run
//! builds afresh.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::tensor::{Dtype, TensorView};

use crate::error::TrainerError;

/// File name of the optimizer state in a checkpoint.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// Whether transformers exempts a parameter from weight decay: biases and everything inside
/// a norm layer (`get_decay_parameter_names`' patterns, applied to burn's paths).
pub fn is_no_decay(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.contains("bias")
        || lower.contains("layernorm")
        || lower.contains("rmsnorm")
        || lower
            .split('.')
            .any(|segment| segment == "norm" || segment.ends_with("_norm"))
}

/// AdamW's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// beta1.
    pub beta1: f64,
    /// beta2.
    pub beta2: f64,
    /// epsilon, added to the bias-corrected second-moment root.
    pub epsilon: f64,
    /// Decoupled weight decay, scaled by the learning rate.
    pub weight_decay: f64,
}

/// First and second moments of one parameter, flattened.
#[derive(Debug, Clone)]
struct Moments {
    exp_avg: Tensor<1>,
    exp_avg_sq: Tensor<1>,
}

/// The optimizer and its state.
#[derive(Debug, Clone)]
pub struct AdamW {
    config: AdamWConfig,
    step: u64,
    moments: HashMap<String, Moments>,
}

impl AdamW {
    /// A fresh optimizer.
    pub fn new(config: AdamWConfig) -> Self {
        Self {
            config,
            step: 0,
            moments: HashMap::new(),
        }
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The global L2 norm of all gradients, as `torch.nn.utils.clip_grad_norm_` computes it,
    /// on the device (no host read).
    pub fn grad_norm<M: Module>(model: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
        let mut visitor = SquaredNorms {
            grads,
            parts: Vec::new(),
        };
        model.visit(&mut visitor);
        if visitor.parts.is_empty() {
            return None;
        }
        Some(Tensor::cat(visitor.parts, 0).sum().sqrt())
    }

    /// One update of every parameter that has a gradient, with the gradients multiplied by
    /// `grad_scale` (the clipping coefficient).
    pub fn step<M: Module>(
        &mut self,
        model: M,
        grads: GradientsParams,
        learning_rate: f64,
        grad_scale: f64,
    ) -> M {
        self.step += 1;
        let t = self.step as i32;
        let mut mapper = Update {
            config: self.config,
            bias_correction1: 1.0 - self.config.beta1.powi(t),
            bias_correction2: 1.0 - self.config.beta2.powi(t),
            learning_rate,
            grad_scale,
            grads,
            moments: &mut self.moments,
            path: Vec::new(),
        };
        model.map(&mut mapper)
    }

    /// Writes the moments (by parameter path) and the step count as safetensors.
    pub fn save(&self, path: &Path) -> Result<(), TrainerError> {
        let mut buffers: BTreeMap<String, (Vec<u8>, usize)> = BTreeMap::new();
        for (name, moments) in &self.moments {
            for (kind, tensor) in [
                ("exp_avg", &moments.exp_avg),
                ("exp_avg_sq", &moments.exp_avg_sq),
            ] {
                let values = tensor
                    .to_data()
                    .try_into_vec_as::<f32>()
                    .map_err(|e| save_error(path, format!("{e:?}")))?;
                let len = values.len();
                let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                buffers.insert(format!("{kind}/{name}"), (bytes, len));
            }
        }
        let views = buffers
            .iter()
            .map(|(name, (bytes, len))| {
                TensorView::new(Dtype::F32, vec![*len], bytes)
                    .map(|view| (name.clone(), view))
                    .map_err(|e| save_error(path, e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let metadata = HashMap::from([
            ("step".to_string(), self.step.to_string()),
            ("format".to_string(), "bert-ft AdamW".to_string()),
        ]);
        safetensors::serialize_to_file(views, Some(metadata), path)
            .map_err(|e| save_error(path, e.to_string()))
    }

    /// Reads the state written by [`AdamW::save`] onto `device`.
    pub fn load(&mut self, path: &Path, device: &Device) -> Result<(), TrainerError> {
        let load_error = |reason: String| TrainerError::Load {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| TrainerError::io(path, e))?;
        let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| load_error(e.to_string()))?;
        let step = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get("step"))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| load_error("no step count in the metadata".into()))?;
        let tensors =
            safetensors::SafeTensors::deserialize(&bytes).map_err(|e| load_error(e.to_string()))?;
        let mut moments: HashMap<String, (Option<Tensor<1>>, Option<Tensor<1>>)> = HashMap::new();
        for (name, view) in tensors.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(load_error(format!(
                    "{name} is {:?}, expected F32",
                    view.dtype()
                )));
            }
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let len = values.len();
            let tensor = Tensor::<1>::from_data(TensorData::new(values, [len]), device);
            let entry = match name.split_once('/') {
                Some(("exp_avg", param)) => (param.to_string(), true),
                Some(("exp_avg_sq", param)) => (param.to_string(), false),
                _ => return Err(load_error(format!("unexpected tensor `{name}`"))),
            };
            let slot = moments.entry(entry.0).or_default();
            if entry.1 {
                slot.0 = Some(tensor);
            } else {
                slot.1 = Some(tensor);
            }
        }
        let mut complete = HashMap::new();
        for (name, pair) in moments {
            match pair {
                (Some(exp_avg), Some(exp_avg_sq)) => {
                    complete.insert(
                        name,
                        Moments {
                            exp_avg,
                            exp_avg_sq,
                        },
                    );
                }
                _ => return Err(load_error(format!("`{name}` lacks one of its two moments"))),
            }
        }
        self.step = step;
        self.moments = complete;
        Ok(())
    }
}

fn save_error(path: &Path, reason: String) -> TrainerError {
    TrainerError::Save {
        path: path.to_path_buf(),
        reason,
    }
}

/// Collects each gradient's squared L2 norm.
struct SquaredNorms<'a> {
    grads: &'a GradientsParams,
    parts: Vec<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorms<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            self.parts.push(grad.square().sum());
        }
    }
}

/// Applies one AdamW update to every parameter with a gradient.
struct Update<'a> {
    config: AdamWConfig,
    bias_correction1: f64,
    bias_correction2: f64,
    learning_rate: f64,
    grad_scale: f64,
    grads: GradientsParams,
    moments: &'a mut HashMap<String, Moments>,
    path: Vec<String>,
}

impl ModuleMapper for Update<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let name = self.path.join(".");
        let require_grad = tensor.is_require_grad();
        let was_autodiff = tensor.is_autodiff();
        let shape = tensor.shape();
        let value = tensor.inner();
        let numel = shape.num_elements();
        let grad = grad.inner().reshape([numel]);
        let c = self.config;
        let weight_decay = if is_no_decay(&name) {
            0.0
        } else {
            c.weight_decay
        };

        let (exp_avg, exp_avg_sq) = match self.moments.remove(&name) {
            Some(m) => (m.exp_avg, m.exp_avg_sq),
            None => (grad.zeros_like(), grad.zeros_like()),
        };
        let s = self.grad_scale;
        // m = b1·m + (1 − b1)·s·g ; v = b2·v + (1 − b2)·s²·g²
        let exp_avg = exp_avg.mul_scalar(c.beta1) + grad.clone().mul_scalar((1.0 - c.beta1) * s);
        let exp_avg_sq =
            exp_avg_sq.mul_scalar(c.beta2) + grad.square().mul_scalar((1.0 - c.beta2) * s * s);
        // PyTorch: denom = sqrt(v) / sqrt(bc2) + eps ; p -= lr / bc1 · m / denom
        let denom = exp_avg_sq
            .clone()
            .sqrt()
            .div_scalar(self.bias_correction2.sqrt())
            .add_scalar(c.epsilon);
        let update = (exp_avg.clone() / denom)
            .mul_scalar(self.learning_rate / self.bias_correction1)
            .reshape(shape.clone());
        let mut value = value;
        if weight_decay != 0.0 {
            value = value.mul_scalar(1.0 - self.learning_rate * weight_decay);
        }
        let value = value - update;
        self.moments.insert(
            name,
            Moments {
                exp_avg,
                exp_avg_sq,
            },
        );

        let mut value = if was_autodiff {
            value.autodiff()
        } else {
            value
        };
        if require_grad {
            value = value.require_grad();
        }
        Param::from_mapped_value(id, value, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_groups_match_transformers() {
        for path in [
            "bert.encoder.layer.0.attention.self_attention.query.bias",
            "bert.embeddings.layer_norm.gamma",
            "bert.encoder.layer.3.output.layer_norm.beta",
            "classifier.bias",
        ] {
            assert!(is_no_decay(path), "{path}");
        }
        for path in [
            "bert.encoder.layer.0.attention.self_attention.query.weight",
            "bert.embeddings.word_embeddings.weight",
            "bert.pooler.dense.weight",
            "classifier.weight",
        ] {
            assert!(!is_no_decay(path), "{path}");
        }
    }
}
