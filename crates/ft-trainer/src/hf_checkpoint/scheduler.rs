//! `scheduler.pt`: the `LambdaLR` state transformers' schedules save.
//!
//! transformers builds every schedule of `get_scheduler` as a `LambdaLR` over its two param
//! groups; `state_dict()` is the scheduler's attributes with its lambdas replaced by their
//! `__dict__` (`{}` for the `functools.partial` of the linear, cosine and warm-up schedules)
//! or `None` (the plain function of the constant schedule). On load, transformers keeps its
//! own lambdas and takes `last_epoch` (the steps taken), `base_lrs` and `_last_lr` from here.

use std::path::Path;

use burn::store::pytorch_reader::PytorchReader;

use crate::args::SchedulerType;
use crate::error::TrainerError;
use crate::schedule::Schedule;
use crate::torch_save::Value;

/// The param groups transformers' `create_optimizer` makes (decay, no decay).
const GROUPS: usize = 2;

/// `LambdaLR.state_dict()` after `step` optimizer steps of `schedule`.
pub fn lambda_lr_state_dict(schedule: &Schedule, step: usize) -> Value {
    let per_group = |value: Value| Value::List(vec![value; GROUPS]);
    let lambda = match schedule.kind {
        SchedulerType::Constant => Value::None,
        _ => Value::Dict(Vec::new()),
    };
    Value::str_dict([
        ("base_lrs", per_group(Value::Float(schedule.base))),
        ("last_epoch", Value::Int(step as i64)),
        ("_step_count", Value::Int(step as i64 + 1)),
        ("_is_initial", Value::Bool(false)),
        ("_get_lr_called_within_step", Value::Bool(false)),
        (
            "_last_lr",
            per_group(Value::Float(schedule.learning_rate(step + 1))),
        ),
        ("lr_lambdas", per_group(lambda)),
    ])
}

/// What resuming reads of a `LambdaLR` state.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct LambdaLrState {
    /// Each group's base rate.
    pub base_lrs: Vec<f64>,
    /// The steps the scheduler has taken.
    pub last_epoch: i64,
}

/// Reads a `scheduler.pt` that `torch.save` wrote.
pub fn read_lambda_lr(path: &Path) -> Result<LambdaLrState, TrainerError> {
    PytorchReader::load_config(path, None).map_err(|e| TrainerError::load(path, e))
}
