//! AdamW's state as torch's `AdamW.state_dict()` holds it, for transformers' `optimizer.pt`.
//!
//! torch names a parameter by its index in the optimizer: transformers' `create_optimizer`
//! makes two groups, the parameters that decay then those that do not, each in
//! `model.named_parameters()` order, and `state_dict()` numbers them through both groups. Our
//! modules declare their fields in transformers' order, so burn's visiting order is
//! `named_parameters()`'s and [`TorchParameters`] is the same list (the cross-framework tests
//! check it against transformers). Each index's `exp_avg` and `exp_avg_sq` have the torch
//! parameter's shape: a `Linear` weight, `[in, out]` in burn, is `[out, in]` in torch, so its
//! moments are transposed on the way out and back, as burn-store's `BurnToPyTorchAdapter`
//! transposes the weight itself.

use std::collections::HashMap;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::store::pytorch_reader::{DType, PytorchReader, Tensor as TorchTensor};
use burn::tensor::Tensor;

use super::{AdamW, MomentValues, is_no_decay};
use crate::error::{CheckpointProblem, TrainerError};
use crate::torch_save::{TensorValue, Value};

/// The module type burn's derive gives `burn::nn::Linear`, whose weight torch transposes.
const LINEAR: &str = "Struct:Linear";

/// One parameter as torch's optimizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorchParameter {
    /// burn's path, the key AdamW keeps its moments under.
    pub path: String,
    /// The shape in torch (a `Linear` weight's two dimensions swapped from burn's).
    pub torch_shape: Vec<usize>,
    /// Whether torch holds it transposed from burn: a `Linear` weight.
    pub transposed: bool,
}

/// A model's parameters in transformers' two optimizer groups: `[decay, no_decay]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorchParameters {
    /// The groups, each in `named_parameters()` order.
    pub groups: [Vec<TorchParameter>; 2],
}

impl TorchParameters {
    /// `model`'s float parameters, grouped as transformers' `create_optimizer` groups them.
    pub fn of<M: Module>(model: &M) -> Self {
        let mut visitor = Layout::default();
        model.visit(&mut visitor);
        let (no_decay, decay): (Vec<_>, Vec<_>) = visitor
            .parameters
            .into_iter()
            .partition(|p| is_no_decay(&p.path));
        Self {
            groups: [decay, no_decay],
        }
    }

    /// Every parameter with its torch index, group by group.
    pub fn indexed(&self) -> impl Iterator<Item = (usize, &TorchParameter)> {
        self.groups.iter().flatten().enumerate()
    }

    /// The parameters of each group.
    pub fn group_sizes(&self) -> [usize; 2] {
        [self.groups[0].len(), self.groups[1].len()]
    }
}

/// Collects each float parameter's path, shape and innermost module type.
#[derive(Default)]
struct Layout {
    path: Vec<String>,
    containers: Vec<String>,
    parameters: Vec<TorchParameter>,
}

impl ModuleVisitor for Layout {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(name.to_string());
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.containers.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let mut torch_shape = param.lazy_shape().dims::<D>().to_vec();
        // As burn-store's adapter finds a parameter's module: the innermost struct or enum,
        // past `Vec`s and the parameter's own entry.
        let module = self
            .containers
            .iter()
            .rev()
            .find(|c| c.starts_with("Struct:") || c.starts_with("Enum:"));
        let transposed = module.is_some_and(|m| m == LINEAR)
            && self.path.last().is_some_and(|name| name == "weight")
            && torch_shape.len() == 2;
        if transposed {
            torch_shape.swap(0, 1);
        }
        self.parameters.push(TorchParameter {
            path: self.path.join("."),
            torch_shape,
            transposed,
        });
    }
}

/// The hyper-parameters of torch's `AdamW` param groups, as transformers sets them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupSettings {
    /// The rate the next step takes (the scheduler has already stepped).
    pub lr: f64,
    /// The schedule's base rate (`initial_lr`, which `LambdaLR` adds).
    pub initial_lr: f64,
    /// `(beta1, beta2)`.
    pub betas: (f64, f64),
    /// `eps`.
    pub eps: f64,
    /// The decaying group's `weight_decay`; the other group has 0.
    pub weight_decay: f64,
    /// `fused=True` (`adamw_torch_fused`) rather than `None` (`adamw_torch`).
    pub fused: bool,
}

impl AdamW {
    /// `AdamW.state_dict()` for `parameters`: each stepped parameter's `step`, `exp_avg` and
    /// `exp_avg_sq` by its torch index, then the two param groups.
    pub(crate) fn torch_state_dict(
        &self,
        parameters: &TorchParameters,
        settings: &GroupSettings,
    ) -> Result<Value, TrainerError> {
        let mut state = Vec::new();
        for (index, parameter) in parameters.indexed() {
            let Some((exp_avg, exp_avg_sq)) = self.moments(&parameter.path)? else {
                continue;
            };
            let moment = |values: Vec<f32>| {
                let values = match parameter.transposed {
                    // burn's [in, out] row-major: `out` columns, torch's first dimension.
                    true => transpose(&values, parameter.torch_shape[0]),
                    false => values,
                };
                Value::Tensor(TensorValue::f32(parameter.torch_shape.clone(), &values))
            };
            let step = TensorValue::f32(Vec::new(), &[self.steps() as f32]);
            let entry = Value::str_dict([
                ("step", Value::Tensor(step)),
                ("exp_avg", moment(exp_avg)),
                ("exp_avg_sq", moment(exp_avg_sq)),
            ]);
            state.push((Value::Int(index as i64), entry));
        }
        let mut first = 0;
        let groups = parameters
            .group_sizes()
            .into_iter()
            .zip([settings.weight_decay, 0.0])
            .map(|(size, weight_decay)| {
                let indices = (first..first + size)
                    .map(|i| Value::Int(i as i64))
                    .collect();
                first += size;
                param_group(settings, weight_decay, indices)
            })
            .collect();
        Ok(Value::str_dict([
            ("state", Value::Dict(state)),
            ("param_groups", Value::List(groups)),
        ]))
    }
}

/// One param group, its keys in the order torch 2.9's `AdamW` and `LambdaLR` give them.
fn param_group(settings: &GroupSettings, weight_decay: f64, params: Vec<Value>) -> Value {
    let (beta1, beta2) = settings.betas;
    let fused = match settings.fused {
        true => Value::Bool(true),
        false => Value::None,
    };
    Value::str_dict([
        ("weight_decay", Value::Float(weight_decay)),
        ("lr", Value::Float(settings.lr)),
        (
            "betas",
            Value::Tuple(vec![Value::Float(beta1), Value::Float(beta2)]),
        ),
        ("eps", Value::Float(settings.eps)),
        ("amsgrad", Value::Bool(false)),
        ("maximize", Value::Bool(false)),
        ("foreach", Value::None),
        ("capturable", Value::Bool(false)),
        ("differentiable", Value::Bool(false)),
        ("fused", fused),
        ("decoupled_weight_decay", Value::Bool(true)),
        ("initial_lr", Value::Float(settings.initial_lr)),
        ("params", Value::List(params)),
    ])
}

/// A row-major matrix of `columns` columns, transposed.
fn transpose(values: &[f32], columns: usize) -> Vec<f32> {
    let rows = values.len() / columns.max(1);
    let mut out = vec![0.0; values.len()];
    for (r, row) in values.chunks_exact(columns.max(1)).enumerate() {
        for (c, &value) in row.iter().enumerate() {
            out[c * rows + r] = value;
        }
    }
    out
}

/// What a transformers `optimizer.pt` holds for our parameters.
#[derive(Debug, Clone)]
pub struct TorchOptimizerState {
    /// The steps every parameter's state has taken.
    pub step: u64,
    /// Each stepped parameter's moments, by burn path, in burn's layout.
    pub moments: HashMap<String, MomentValues>,
    /// The param groups, in order.
    pub groups: Vec<ParamGroup>,
}

/// A param group of a torch `optimizer.pt`: its hyper-parameters and its parameters.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ParamGroup {
    /// `lr`.
    pub lr: f64,
    /// `initial_lr`, where a scheduler added it.
    #[serde(default)]
    pub initial_lr: Option<f64>,
    /// `betas`.
    pub betas: (f64, f64),
    /// `eps`.
    pub eps: f64,
    /// `weight_decay`.
    pub weight_decay: f64,
    /// The torch indices of its parameters.
    pub params: Vec<usize>,
}

/// Reads an `AdamW.state_dict()` saved by `torch.save` (transformers' `optimizer.pt`) for
/// `parameters`: the groups must hold as many parameters as ours, each moment must have its
/// parameter's torch shape, and every parameter must be at the same step.
pub fn read_torch_state_dict(
    path: &Path,
    parameters: &TorchParameters,
) -> Result<TorchOptimizerState, TrainerError> {
    let invalid = |problem| TrainerError::invalid_checkpoint(path, problem);
    let groups: Vec<ParamGroup> = PytorchReader::load_config(path, Some("param_groups"))
        .map_err(|e| TrainerError::load(path, e))?;
    let found: Vec<usize> = groups.iter().map(|g| g.params.len()).collect();
    if found != parameters.group_sizes() {
        return Err(invalid(CheckpointProblem::ParamGroups {
            found,
            expected: parameters.group_sizes().to_vec(),
        }));
    }
    let mut tensors = PytorchReader::new(path)
        .map_err(|e| TrainerError::load(path, e))?
        .into_tensors();
    let mut moments = HashMap::new();
    let mut step = None;
    for (group, ours) in groups.iter().zip(&parameters.groups) {
        for (&index, parameter) in group.params.iter().zip(ours) {
            let Some(read) = read_parameter(path, &mut tensors, index, parameter)? else {
                continue;
            };
            let first = *step.get_or_insert(read.step);
            if read.step != first {
                let (step, first) = (read.step, first);
                return Err(invalid(CheckpointProblem::StepCountsDisagree {
                    index,
                    step,
                    first,
                }));
            }
            moments.insert(parameter.path.clone(), read.moments);
        }
    }
    if let Some(name) = tensors.keys().find(|name| name.starts_with("state.")) {
        let name = name.clone();
        return Err(invalid(CheckpointProblem::UnexpectedTensor { name }));
    }
    Ok(TorchOptimizerState {
        step: step.unwrap_or(0),
        moments,
        groups,
    })
}

/// One parameter's state, read.
struct ParameterState {
    step: u64,
    moments: MomentValues,
}

/// The state of the parameter at torch index `index`, taken out of `tensors`; `None` if it
/// has none (it never had a gradient).
fn read_parameter(
    path: &Path,
    tensors: &mut HashMap<String, TorchTensor>,
    index: usize,
    parameter: &TorchParameter,
) -> Result<Option<ParameterState>, TrainerError> {
    let invalid = |problem| TrainerError::invalid_checkpoint(path, problem);
    let mut take = |kind: &str| tensors.remove(&format!("state.{index}.{kind}"));
    let (step, exp_avg, exp_avg_sq) = (take("step"), take("exp_avg"), take("exp_avg_sq"));
    let Some(step) = step else {
        return match exp_avg.is_some() || exp_avg_sq.is_some() {
            true => Err(invalid(CheckpointProblem::BadStep { index })),
            false => Ok(None),
        };
    };
    let bytes = step.read().map_err(|e| TrainerError::load(path, e))?;
    let step = step_count(step.dtype(), &bytes)
        .ok_or_else(|| invalid(CheckpointProblem::BadStep { index }))?;
    let (Some(exp_avg), Some(exp_avg_sq)) = (exp_avg, exp_avg_sq) else {
        let name = format!("{} (index {index})", parameter.path);
        return Err(invalid(CheckpointProblem::MissingMoment { name }));
    };
    let moment = |tensor: &TorchTensor| read_moment(path, tensor, index, parameter);
    Ok(Some(ParameterState {
        step,
        moments: (moment(&exp_avg)?, moment(&exp_avg_sq)?),
    }))
}

/// A `step` scalar's count: torch keeps it as a float (an integer where `capturable` or
/// another optimizer wrote it); anything but a whole, non-negative count is refused.
fn step_count(dtype: DType, bytes: &[u8]) -> Option<u64> {
    let value = match (dtype, bytes.len()) {
        (DType::F32, 4) => f64::from(f32::from_ne_bytes(bytes.try_into().ok()?)),
        (DType::F64, 8) => f64::from_ne_bytes(bytes.try_into().ok()?),
        (DType::I64, 8) => i64::from_ne_bytes(bytes.try_into().ok()?) as f64,
        _ => return None,
    };
    let whole = value >= 0.0 && value.fract() == 0.0 && value < 2f64.powi(53);
    whole.then_some(value as u64)
}

/// One moment of parameter `index`, checked against its torch shape, in burn's layout.
fn read_moment(
    path: &Path,
    tensor: &TorchTensor,
    index: usize,
    parameter: &TorchParameter,
) -> Result<Vec<f32>, TrainerError> {
    let invalid = |problem| TrainerError::invalid_checkpoint(path, problem);
    if tensor.dtype() != DType::F32 {
        return Err(invalid(CheckpointProblem::NotF32 {
            name: tensor.name.clone(),
            dtype: format!("{:?}", tensor.dtype()),
        }));
    }
    if tensor.shape() != parameter.torch_shape {
        return Err(invalid(CheckpointProblem::MomentShape {
            name: tensor.name.clone(),
            parameter: parameter.path.clone(),
            index,
            found: tensor.shape().to_vec(),
            expected: parameter.torch_shape.clone(),
        }));
    }
    let bytes = tensor.read().map_err(|e| TrainerError::load(path, e))?;
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(match parameter.transposed {
        // torch's [out, in] row-major, `in` columns, back to burn's [in, out].
        true => transpose(&values, parameter.torch_shape[1]),
        false => values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::tests::tiny_trainer;

    #[test]
    fn parameters_take_transformers_indices_and_torch_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let trainer = tiny_trainer(dir.path());
        let parameters = TorchParameters::of(&trainer.model);
        let listed = |group: &[TorchParameter]| -> Vec<(String, Vec<usize>, bool)> {
            group
                .iter()
                .map(|p| (p.path.clone(), p.torch_shape.clone(), p.transposed))
                .collect()
        };
        // transformers 5.24's named_parameters() for this config (hidden 8, one layer,
        // intermediate 16), split by get_decay_parameter_names, with torch's shapes.
        let layer = "bert.encoder.layer.0";
        let expected_decay = [
            (
                "bert.embeddings.word_embeddings.weight".to_string(),
                vec![64, 8],
                false,
            ),
            (
                "bert.embeddings.position_embeddings.weight".into(),
                vec![16, 8],
                false,
            ),
            (
                "bert.embeddings.token_type_embeddings.weight".into(),
                vec![2, 8],
                false,
            ),
            (
                format!("{layer}.attention.self_attention.query.weight"),
                vec![8, 8],
                true,
            ),
            (
                format!("{layer}.attention.self_attention.key.weight"),
                vec![8, 8],
                true,
            ),
            (
                format!("{layer}.attention.self_attention.value.weight"),
                vec![8, 8],
                true,
            ),
            (
                format!("{layer}.attention.output.dense.weight"),
                vec![8, 8],
                true,
            ),
            (
                format!("{layer}.intermediate.dense.weight"),
                vec![16, 8],
                true,
            ),
            (format!("{layer}.output.dense.weight"), vec![8, 16], true),
            ("bert.pooler.dense.weight".into(), vec![8, 8], true),
            ("classifier.weight".into(), vec![2, 8], true),
        ];
        assert_eq!(listed(&parameters.groups[0]), expected_decay);
        let no_decay: Vec<String> = parameters.groups[1]
            .iter()
            .map(|p| p.path.clone())
            .collect();
        let expected_no_decay = [
            "bert.embeddings.layer_norm.gamma".to_string(),
            "bert.embeddings.layer_norm.beta".into(),
            format!("{layer}.attention.self_attention.query.bias"),
            format!("{layer}.attention.self_attention.key.bias"),
            format!("{layer}.attention.self_attention.value.bias"),
            format!("{layer}.attention.output.dense.bias"),
            format!("{layer}.attention.output.layer_norm.gamma"),
            format!("{layer}.attention.output.layer_norm.beta"),
            format!("{layer}.intermediate.dense.bias"),
            format!("{layer}.output.dense.bias"),
            format!("{layer}.output.layer_norm.gamma"),
            format!("{layer}.output.layer_norm.beta"),
            "bert.pooler.dense.bias".into(),
            "classifier.bias".into(),
        ];
        assert_eq!(no_decay, expected_no_decay);
        assert_eq!(parameters.indexed().last().map(|(i, _)| i), Some(24));
    }

    #[test]
    fn a_fresh_optimizer_has_no_state_and_both_groups() {
        let dir = tempfile::tempdir().unwrap();
        let trainer = tiny_trainer(dir.path());
        let parameters = TorchParameters::of(&trainer.model);
        let settings = GroupSettings {
            lr: 1e-3,
            initial_lr: 2e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.01,
            fused: true,
        };
        let optimizer = AdamW::new(crate::optimizer::AdamWConfig::from(&trainer.args));
        let Value::Dict(entries) = optimizer.torch_state_dict(&parameters, &settings).unwrap()
        else {
            panic!("a state dict is a dict");
        };
        assert_eq!(entries[0], (Value::str("state"), Value::Dict(Vec::new())));
        let Value::List(groups) = &entries[1].1 else {
            panic!("param_groups is a list");
        };
        let params = |group: &Value| match group {
            Value::Dict(keys) => keys.last().cloned(),
            _ => None,
        };
        let indices = |range: std::ops::Range<i64>| Value::List(range.map(Value::Int).collect());
        assert_eq!(
            params(&groups[0]),
            Some((Value::str("params"), indices(0..11)))
        );
        assert_eq!(
            params(&groups[1]),
            Some((Value::str("params"), indices(11..25)))
        );
    }

    #[test]
    fn transposing_twice_gives_the_matrix_back() {
        let burn = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // [[1, 2, 3], [4, 5, 6]], 2 × 3
        let torch = transpose(&burn, 3);
        assert_eq!(torch, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(transpose(&torch, 2), burn);
    }
}
