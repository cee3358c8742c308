//! AdamW as the Trainer uses it: PyTorch's update, transformers' weight-decay groups (no decay
//! on biases and LayerNorm parameters), and `clip_grad_norm_`'s global-norm clipping folded
//! into the update.
//!
//! The moments are kept per parameter *path*, not per burn `ParamId`, so that a checkpoint's
//! optimizer state fits any model with the same architecture, such as the one a resumed run
//! builds afresh.

mod device_update;
mod flat;
// burn 0.22 marks burn-tch deprecated; libtorch stays one of this project's backends.
#[cfg(feature = "tch")]
#[allow(deprecated)]
mod fused;
mod host;
#[cfg(feature = "tch")]
#[allow(deprecated)]
mod libtorch;
mod torch_state;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, FloatDType, Tensor, TensorData, TensorReadError};
use safetensors::tensor::{Dtype, TensorView};

use crate::args::TrainingArguments;
use crate::error::{CheckpointProblem, TrainerError};
use device_update::{FlatInput, GradScale};
use flat::{DeviceMoments, FlatStep};
use ft_bert::device_read::read_vec;
use host::{HostAdamW, host_memory};
pub(crate) use torch_state::{GroupSettings, ParamGroup, TorchParameters, read_torch_state_dict};

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

impl From<&TrainingArguments> for AdamWConfig {
    /// `adam_beta1`, `adam_beta2`, `adam_epsilon` and `weight_decay`, as the Trainer reads them.
    fn from(args: &TrainingArguments) -> Self {
        Self {
            beta1: args.adam_beta1,
            beta2: args.adam_beta2,
            epsilon: args.adam_epsilon,
            weight_decay: args.weight_decay,
        }
    }
}

/// How [`AdamW::step_clipped`] clips a step, and what must be finite for it to apply.
#[derive(Debug, Clone)]
pub struct Clipping {
    /// `max_grad_norm`: the global norm the unscaled gradients are clipped to; none when 0
    /// or less.
    pub max_grad_norm: f64,
    /// What the gradients are divided by first: fp16's loss scale, otherwise 1.
    pub unscale: f64,
    /// Values (such as the loss) that must be finite, with the norm, for the step to apply.
    pub must_be_finite: Tensor<1>,
}

impl Clipping {
    /// The gradients' coefficient for a norm read on the host: `clip_grad_norm_`'s
    /// `max_norm / (norm + 1e-6)`, at most 1, on the unscaled norm, then the unscaling.
    pub fn host_scale(&self, norm: f64) -> f64 {
        let norm = norm / self.unscale;
        let clip = if self.max_grad_norm > 0.0 {
            (self.max_grad_norm / (norm + 1e-6)).min(1.0)
        } else {
            1.0
        };
        clip / self.unscale
    }

    /// [`Clipping::host_scale`] on the device, from `norm` (shape `[1]`), with whether the
    /// step applies.
    fn device_scale(self, norm: Tensor<1>) -> GradScale {
        let apply = norm
            .clone()
            .is_finite()
            .bool_and(self.must_be_finite.is_finite().all());
        let unscaled = norm.div_scalar(self.unscale);
        let clip = if self.max_grad_norm > 0.0 {
            unscaled
                .add_scalar(1e-6)
                .recip()
                .mul_scalar(self.max_grad_norm)
                .clamp_max(1.0)
        } else {
            unscaled.ones_like()
        };
        GradScale::Guarded {
            scale: clip.div_scalar(self.unscale),
            apply,
        }
    }
}

/// A parameter's first and second moments, on the host.
pub type MomentValues = (Vec<f32>, Vec<f32>);

/// A parameter's two moments as read from a file, before both are found.
type PartialMoments = (Option<Vec<f32>>, Option<Vec<f32>>);

/// The optimizer and its state.
#[derive(Debug, Clone)]
pub struct AdamW {
    config: AdamWConfig,
    step: u64,
    /// Moments of the parameters the fused host loop updates, by path: moved in and out of
    /// each update, never copied (on bert-base a copy of both would be 880 MB of memory
    /// traffic per step).
    host_moments: HashMap<String, MomentValues>,
    /// Moments of the parameters updated with tensor operations, in flat groups.
    device_moments: DeviceMoments,
    /// Whether the fused host loop updates the fp32 parameters.
    host: bool,
}

impl AdamW {
    /// A fresh optimizer updating parameters with tensor operations on their device, over
    /// flat buffers (about fifteen operations per weight-decay group and step).
    pub fn new(config: AdamWConfig) -> Self {
        Self {
            config,
            step: 0,
            host_moments: HashMap::new(),
            device_moments: DeviceMoments::default(),
            host: false,
        }
    }

    /// A fresh optimizer for parameters on `device`: where its tensors are host memory (flex,
    /// libtorch on the CPU), one fused multithreaded loop per parameter instead of tensor
    /// operations.
    pub fn for_device(config: AdamWConfig, device: &Device) -> Self {
        Self {
            host: host_memory(device),
            ..Self::new(config)
        }
    }

    /// Forgets every step and moment, as a newly built optimizer, keeping its configuration
    /// and where it keeps its moments.
    pub fn reset(&mut self) {
        self.step = 0;
        self.host_moments.clear();
        self.device_moments = DeviceMoments::default();
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
        let constants = self.next_constants(learning_rate, grad_scale);
        let flat = self.prepare_flat(&model, &grads, &constants);
        let scale = GradScale::Constant(grad_scale);
        let updated = self.device_moments.apply(flat, &constants, &scale);
        self.map_update(model, grads, constants, updated)
    }

    /// Whether every update is tensor operations on the parameters' device (no fused host
    /// loop), so that the Trainer queues a whole step, clipped on the device, without reading
    /// anything first.
    pub fn updates_on_device(&self) -> bool {
        !self.host
    }

    /// One update queued without a read from the device, as `clip_grad_norm_` and
    /// `optimizer.step()` queue theirs on a GPU: the gradients' global norm is computed from
    /// the flat buffers, the clipping coefficient from it on the device, and the step
    /// applies only if that norm and `clipping.must_be_finite` are finite. Otherwise a
    /// device-side select keeps every weight and moment as it was, and the caller, once it
    /// has read the norm, calls [`AdamW::retract_step`]. Returns the model and the norm of
    /// the gradients as given (shape `[1]`).
    ///
    /// Where the fused host loop updates some parameters ([`AdamW::updates_on_device`] is
    /// false), their coefficient has to be on the host: the norm is read first (one read),
    /// and on a failed read the model comes back unchanged with the error.
    pub fn step_clipped<M: Module>(
        &mut self,
        model: M,
        grads: GradientsParams,
        learning_rate: f64,
        clipping: Clipping,
    ) -> (M, Result<Tensor<1>, TensorReadError>) {
        if self.host {
            return self.step_clipped_on_host(model, grads, learning_rate, clipping);
        }
        let constants = self.next_constants(learning_rate, 1.0);
        let flat = self.prepare_flat(&model, &grads, &constants);
        let norm = match flat.grad_norm() {
            Some(norm) => norm,
            None => Tensor::zeros([1], &clipping.must_be_finite.device()),
        };
        let scale = clipping.device_scale(norm.clone());
        let updated = self.device_moments.apply(flat, &constants, &scale);
        (self.map_update(model, grads, constants, updated), Ok(norm))
    }

    /// [`AdamW::step_clipped`] with the host loop: the norm and the values that must be
    /// finite are read, and a step that would not apply is not taken (but counted, to be
    /// retracted, as on the device).
    fn step_clipped_on_host<M: Module>(
        &mut self,
        model: M,
        grads: GradientsParams,
        learning_rate: f64,
        clipping: Clipping,
    ) -> (M, Result<Tensor<1>, TensorReadError>) {
        let device = clipping.must_be_finite.device();
        let norm = Self::grad_norm(&model, &grads)
            .unwrap_or_else(|| Tensor::zeros([1], &device))
            .reshape([1]);
        let values = Tensor::cat(vec![norm.clone(), clipping.must_be_finite.clone()], 0);
        let values = match read_vec::<f64, 1>(values) {
            Ok(values) => values,
            Err(error) => return (model, Err(error)),
        };
        if values.iter().any(|v| !v.is_finite()) {
            self.step += 1;
            return (model, Ok(norm));
        }
        let scale = clipping.host_scale(values[0]);
        (self.step(model, grads, learning_rate, scale), Ok(norm))
    }

    /// Takes back the step count of the last [`AdamW::step_clipped`], which did not apply.
    pub fn retract_step(&mut self) {
        self.step = self.step.saturating_sub(1);
    }

    /// The next step's constants, counting the step.
    fn next_constants(&mut self, learning_rate: f64, grad_scale: f64) -> StepConstants {
        self.step += 1;
        let t = self.step as i32;
        StepConstants {
            config: self.config,
            step: self.step,
            bias_correction1: 1.0 - self.config.beta1.powi(t),
            bias_correction2: 1.0 - self.config.beta2.powi(t),
            learning_rate,
            grad_scale,
        }
    }

    /// The device-updated parameters in their flat groups.
    fn prepare_flat<M: Module>(
        &mut self,
        model: &M,
        grads: &GradientsParams,
        constants: &StepConstants,
    ) -> FlatStep {
        let inputs = self.device_inputs(model, grads, constants);
        self.device_moments.prepare(inputs)
    }

    /// Every parameter with a gradient takes its new value: from `updated`, or from the
    /// fused host loop.
    fn map_update<M: Module>(
        &mut self,
        model: M,
        grads: GradientsParams,
        constants: StepConstants,
        updated: HashMap<String, Tensor<1>>,
    ) -> M {
        let mut mapper = Update {
            host: self.host,
            constants,
            grads,
            host_moments: &mut self.host_moments,
            updated,
            path: Vec::new(),
        };
        model.map(&mut mapper)
    }

    /// The parameters with a gradient that tensor operations update, flattened in f32, in the
    /// model's order. Moments restored to the host for one of them move to the device.
    fn device_inputs<M: Module>(
        &mut self,
        model: &M,
        grads: &GradientsParams,
        constants: &StepConstants,
    ) -> Vec<FlatInput> {
        let mut visitor = DeviceInputs {
            host: self.host,
            constants,
            grads,
            path: Vec::new(),
            inputs: Vec::new(),
        };
        model.visit(&mut visitor);
        let restored: HashMap<_, _> = visitor
            .inputs
            .iter()
            .filter_map(|input| {
                let (exp_avg, exp_avg_sq) = self.host_moments.remove(&input.path)?;
                let device = input.value.device();
                let tensor = |values: Vec<f32>| {
                    let len = values.len();
                    Tensor::<1>::from_data(TensorData::new(values, [len]), &device)
                };
                Some((input.path.clone(), (tensor(exp_avg), tensor(exp_avg_sq))))
            })
            .collect();
        if !restored.is_empty() {
            self.device_moments.add_loose(restored);
        }
        visitor.inputs
    }

    /// Writes the moments (by parameter path) and the step count as safetensors.
    pub fn save(&self, path: &Path) -> Result<(), TrainerError> {
        let mut buffers: BTreeMap<String, (Vec<u8>, usize)> = BTreeMap::new();
        let names = self
            .host_moments
            .keys()
            .map(String::as_str)
            .chain(self.device_moments.paths());
        for name in names {
            let Some((exp_avg, exp_avg_sq)) = self.moments(name)? else {
                continue;
            };
            for (kind, values) in [("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq)] {
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
                    .map_err(|e| TrainerError::save(path, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let metadata = HashMap::from([
            ("step".to_string(), self.step.to_string()),
            ("format".to_string(), "bert-ft AdamW".to_string()),
        ]);
        safetensors::serialize_to_file(views, Some(metadata), path)
            .map_err(|e| TrainerError::save(path, e))
    }

    /// A parameter's two moments (`exp_avg`, `exp_avg_sq`), by its path, once it has had a
    /// step.
    pub fn moments(&self, parameter: &str) -> Result<Option<MomentValues>, TrainerError> {
        if let Some(values) = self.host_moments.get(parameter) {
            return Ok(Some(values.clone()));
        }
        let Some((exp_avg, exp_avg_sq)) = self.device_moments.get(parameter) else {
            return Ok(None);
        };
        let read = read_vec::<f32, 1>;
        let values = read(exp_avg).and_then(|m| Ok((m, read(exp_avg_sq)?)));
        values.map(Some).map_err(|source| TrainerError::DeviceRead {
            what: format!("the optimizer moments of `{parameter}`"),
            source,
        })
    }

    /// Reads the state written by [`AdamW::save`] for `model`'s parameters: each moment must
    /// belong to one of them and have its length. The moments reach the parameters' device
    /// at the next step.
    ///
    /// Nothing changes unless the whole file is read and fits `model`.
    pub fn load<M: Module>(&mut self, path: &Path, model: &M) -> Result<(), TrainerError> {
        let invalid = |problem: CheckpointProblem| TrainerError::invalid_checkpoint(path, problem);
        let (step, moments) = read_moments(path)?;
        let mut complete = HashMap::new();
        for (name, pair) in moments {
            let (Some(exp_avg), Some(exp_avg_sq)) = pair else {
                return Err(invalid(CheckpointProblem::MissingMoment { name }));
            };
            complete.insert(name, (exp_avg, exp_avg_sq));
        }
        self.restore(step, complete, model).map_err(invalid)
    }

    /// Takes `moments` (by parameter path, in burn's layout) at `step`, for `model`'s
    /// parameters: each must belong to one of them and have its length. On an error the
    /// optimizer is unchanged.
    pub(crate) fn restore<M: Module>(
        &mut self,
        step: u64,
        moments: HashMap<String, MomentValues>,
        model: &M,
    ) -> Result<(), CheckpointProblem> {
        let sizes = parameter_sizes(model);
        for (name, (exp_avg, exp_avg_sq)) in &moments {
            let Some(&size) = sizes.get(name) else {
                return Err(CheckpointProblem::UnknownParameter { name: name.clone() });
            };
            for (kind, values) in [("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq)] {
                if values.len() != size {
                    return Err(CheckpointProblem::MomentSize {
                        kind,
                        name: name.clone(),
                        found: values.len(),
                        expected: size,
                    });
                }
            }
        }
        self.step = step;
        // Host vectors for now: the first step moves those of device-updated parameters.
        self.host_moments = moments;
        self.device_moments = DeviceMoments::default();
        Ok(())
    }
}

/// The step count and every parameter's moments in a file written by [`AdamW::save`].
fn read_moments(path: &Path) -> Result<(u64, HashMap<String, PartialMoments>), TrainerError> {
    let invalid = |problem: CheckpointProblem| TrainerError::invalid_checkpoint(path, problem);
    let bytes = std::fs::read(path).map_err(|e| TrainerError::io(path, e))?;
    let (_, metadata) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| TrainerError::load(path, e))?;
    let step = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get("step"))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(CheckpointProblem::NoStepCount))?;
    let tensors =
        safetensors::SafeTensors::deserialize(&bytes).map_err(|e| TrainerError::load(path, e))?;
    let mut moments: HashMap<String, PartialMoments> = HashMap::new();
    for (name, view) in tensors.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(invalid(CheckpointProblem::NotF32 {
                name,
                dtype: format!("{:?}", view.dtype()),
            }));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let slot = match name.split_once('/') {
            Some(("exp_avg", param)) => &mut moments.entry(param.to_string()).or_default().0,
            Some(("exp_avg_sq", param)) => &mut moments.entry(param.to_string()).or_default().1,
            _ => {
                return Err(invalid(CheckpointProblem::UnexpectedTensor {
                    name: name.clone(),
                }));
            }
        };
        *slot = Some(values);
    }
    Ok((step, moments))
}

/// Every float parameter's element count, by the path the moments are kept under.
fn parameter_sizes<M: Module>(model: &M) -> HashMap<String, usize> {
    struct Sizes {
        path: Vec<String>,
        sizes: HashMap<String, usize>,
    }
    impl ModuleVisitor for Sizes {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let size = param.lazy_shape().num_elements();
            self.sizes.insert(self.path.join("."), size);
        }
    }
    let mut visitor = Sizes {
        path: Vec::new(),
        sizes: HashMap::new(),
    };
    model.visit(&mut visitor);
    visitor.sizes
}

/// Collects each gradient's squared L2 norm.
struct SquaredNorms<'a> {
    grads: &'a GradientsParams,
    parts: Vec<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorms<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            // Half-precision gradients are summed in fp32, as clip_grad_norm_ does.
            let numel = grad.shape().num_elements();
            let grad = grad.cast(FloatDType::F32).reshape([numel]);
            self.parts.push(sum_of_squares(grad));
        }
    }
}

/// The most elements burn's wgpu backend sums correctly along one axis: above it `sum` and
/// `sum_dim` come out as if the axis had 262,132 elements (burn 0.22.1, on Mesa's lavapipe;
/// `a_clipped_step_applies_only_when_everything_is_finite` catches it).
const LONGEST_SUM: usize = 1 << 17;

/// `Σ x²` of a flat tensor (shape `[1]`). A long one is summed in rows of at most
/// [`LONGEST_SUM`], then over the rows, through views rather than copies; the word
/// embeddings' gradient alone is 11.7M elements on MiniLM.
pub(super) fn sum_of_squares(x: Tensor<1>) -> Tensor<1> {
    let n = x.dims()[0];
    if n <= LONGEST_SUM {
        return x.square().sum();
    }
    let width = 1024 * n.div_ceil(1024 * LONGEST_SUM);
    let rows = n / width;
    let body = x.clone().narrow(0, 0, rows * width).reshape([rows, width]);
    let body = body.square().sum_dim(1).sum();
    match n - rows * width {
        0 => body,
        rest => body + x.narrow(0, rows * width, rest).square().sum(),
    }
}

/// What one step's update of every parameter shares.
#[derive(Debug, Clone, Copy)]
pub(super) struct StepConstants {
    config: AdamWConfig,
    /// The step's count, this step included (libtorch's fused kernel takes it as a tensor).
    #[cfg_attr(not(feature = "tch"), allow(dead_code))]
    step: u64,
    bias_correction1: f64,
    bias_correction2: f64,
    learning_rate: f64,
    /// The clipping coefficient the gradients are multiplied by.
    grad_scale: f64,
}

impl StepConstants {
    /// The decoupled weight decay of the parameter at `path`: none in transformers'
    /// no-decay group.
    fn weight_decay(&self, path: &str) -> f64 {
        if is_no_decay(path) {
            0.0
        } else {
            self.config.weight_decay
        }
    }
}

/// Whether tensor operations update a parameter of `dtype`, rather than the fused host loop.
fn updated_on_device(host: bool, dtype: DType) -> bool {
    !(host && dtype == DType::F32)
}

/// Collects the parameters with a gradient that tensor operations update.
struct DeviceInputs<'a> {
    host: bool,
    constants: &'a StepConstants,
    grads: &'a GradientsParams,
    path: Vec<String>,
    inputs: Vec<FlatInput>,
}

impl ModuleVisitor for DeviceInputs<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(grad) = self.grads.get::<D>(param.id) else {
            return;
        };
        let value = param.val().inner();
        if !updated_on_device(self.host, value.dtype()) {
            return;
        }
        let path = self.path.join(".");
        let numel = value.shape().num_elements();
        self.inputs.push(FlatInput {
            weight_decay: self.constants.weight_decay(&path),
            path,
            value: value.reshape([numel]).cast(FloatDType::F32),
            grad: grad.inner().reshape([numel]).cast(FloatDType::F32),
        });
    }
}

/// Applies one AdamW update to every parameter with a gradient: the fused host loop's here,
/// or the new value [`DeviceMoments::step`] computed.
struct Update<'a> {
    host: bool,
    constants: StepConstants,
    grads: GradientsParams,
    host_moments: &'a mut HashMap<String, MomentValues>,
    /// The device-updated parameters' new values, flattened, by path.
    updated: HashMap<String, Tensor<1>>,
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
        let value = tensor.inner();
        let value = match self.updated.remove(&name) {
            Some(flat) => {
                debug_assert!(updated_on_device(self.host, value.dtype()));
                flat.reshape(value.shape()).cast(value.dtype())
            }
            None => self.update_host(name, value, grad.inner()),
        };
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

impl Update<'_> {
    /// PyTorch's AdamW on the fp32 parameter at `path` in one fused pass over host memory
    /// (see [`host`]).
    fn update_host<const D: usize>(
        &mut self,
        path: String,
        value: Tensor<D>,
        grad: Tensor<D>,
    ) -> Tensor<D> {
        let numel = value.shape().num_elements();
        let device = value.device();
        let (mut exp_avg, mut exp_avg_sq) = self
            .host_moments
            .remove(&path)
            .unwrap_or_else(|| (vec![0.0; numel], vec![0.0; numel]));
        let constants = HostAdamW::new(&self.constants, self.constants.weight_decay(&path));
        let grad = grad.cast(FloatDType::F32);
        let value = host::update_in_host_memory(value, grad, &device, |p, g| {
            constants.apply(p, &mut exp_avg, &mut exp_avg_sq, g)
        });
        self.host_moments.insert(path, (exp_avg, exp_avg_sq));
        value
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
