//! AdamW on a device over flat buffers, as PyTorch's multi-tensor AdamW works.
//!
//! Per parameter, AdamW is about a dozen tensor operations: on bert-base's 201 tensors, about
//! 3,000 kernel launches a step, which on a GPU cost more than the arithmetic. Here each
//! weight-decay group's gradients and values are concatenated once and its moments are kept
//! concatenated, so that a step is about fifteen operations per group; each parameter then
//! takes its slice of the group's new values (a view, no copy).

use std::collections::HashMap;

use burn::tensor::{Bool, Device, Tensor};

use super::StepConstants;

/// One step's parameters in their groups' order: per group, the values and the gradients,
/// each concatenated.
pub(super) struct FlatStep {
    groups: Vec<(Tensor<1>, Tensor<1>)>,
}

impl FlatStep {
    /// The squared L2 norm of every gradient, summed in f32 on the device (shape `[1]`);
    /// `None` when there are none.
    pub(super) fn squared_grad_norm(&self) -> Option<Tensor<1>> {
        self.groups
            .iter()
            .map(|(_, grads)| super::sum_of_squares(grads.clone()))
            .reduce(|a, b| a + b)
    }
}

/// What the gradients are multiplied by on their way into the moments.
#[allow(
    clippy::large_enum_variant,
    reason = "one is made a step and passed by reference"
)]
pub(super) enum GradScale {
    /// A host constant: the clipping coefficient, from a norm read beforehand.
    Constant(f64),
    /// A device scalar (shape `[1]`), applied only where `apply` (shape `[1]`) holds:
    /// otherwise the step leaves every value and moment as it was.
    Guarded {
        /// The coefficient.
        scale: Tensor<1>,
        /// Whether the step applies.
        apply: Tensor<1, Bool>,
    },
}

/// A parameter updated on the device: its path, its weight decay, and its value and gradient
/// flattened, in f32.
pub(super) struct FlatInput {
    pub(super) path: String,
    pub(super) weight_decay: f64,
    pub(super) value: Tensor<1>,
    pub(super) grad: Tensor<1>,
}

/// A parameter's place in its group's buffers.
#[derive(Debug, Clone, PartialEq)]
struct Slot {
    path: String,
    len: usize,
}

/// One weight-decay group: its parameters, in the order their slices lie in the buffers, and
/// its two moments.
#[derive(Debug, Clone)]
struct FlatGroup {
    weight_decay: f64,
    slots: Vec<Slot>,
    exp_avg: Tensor<1>,
    exp_avg_sq: Tensor<1>,
}

impl FlatGroup {
    /// Each slot's moments, sliced out (views of the buffers).
    fn split(self) -> impl Iterator<Item = (String, (Tensor<1>, Tensor<1>))> {
        let mut offset = 0;
        self.slots.into_iter().map(move |slot| {
            let start = offset;
            offset += slot.len;
            let moments = (
                self.exp_avg.clone().narrow(0, start, slot.len),
                self.exp_avg_sq.clone().narrow(0, start, slot.len),
            );
            (slot.path, moments)
        })
    }
}

/// The moments of the parameters AdamW updates on the device.
#[derive(Debug, Clone, Default)]
pub(super) struct DeviceMoments {
    /// Moments that no group holds, by parameter path: restored from a checkpoint and not yet
    /// stepped, or left over when a step's parameters differed from the groups'.
    loose: HashMap<String, (Tensor<1>, Tensor<1>)>,
    groups: Vec<FlatGroup>,
}

impl DeviceMoments {
    /// Adds moments by path, which [`DeviceMoments::step`] groups with the others.
    pub(super) fn add_loose(&mut self, moments: HashMap<String, (Tensor<1>, Tensor<1>)>) {
        self.loose.extend(moments);
    }

    /// The moments of the parameter at `path`, if it has any here.
    pub(super) fn get(&self, path: &str) -> Option<(Tensor<1>, Tensor<1>)> {
        if let Some(moments) = self.loose.get(path) {
            return Some(moments.clone());
        }
        self.groups.iter().find_map(|group| {
            let mut offset = 0;
            for slot in &group.slots {
                if slot.path == path {
                    let slice = |t: &Tensor<1>| t.clone().narrow(0, offset, slot.len);
                    return Some((slice(&group.exp_avg), slice(&group.exp_avg_sq)));
                }
                offset += slot.len;
            }
            None
        })
    }

    /// Every parameter path with moments here.
    pub(super) fn paths(&self) -> impl Iterator<Item = &str> {
        let grouped = self.groups.iter().flat_map(|g| &g.slots);
        self.loose
            .keys()
            .map(String::as_str)
            .chain(grouped.map(|slot| slot.path.as_str()))
    }

    /// Groups `inputs` by weight decay, in the order given, and concatenates each group's
    /// values and gradients: the buffers [`DeviceMoments::apply`] updates.
    pub(super) fn prepare(&mut self, inputs: Vec<FlatInput>) -> FlatStep {
        let Some(device) = inputs.first().map(|input| input.value.device()) else {
            return FlatStep { groups: Vec::new() };
        };
        let mut by_decay: Vec<(f64, Vec<FlatInput>)> = Vec::new();
        for input in inputs {
            match by_decay
                .iter_mut()
                .find(|(decay, _)| *decay == input.weight_decay)
            {
                Some((_, members)) => members.push(input),
                None => by_decay.push((input.weight_decay, vec![input])),
            }
        }
        self.regroup(&by_decay, &device);
        let groups = by_decay
            .into_iter()
            .map(|(_, members)| {
                let (values, grads): (Vec<_>, Vec<_>) =
                    members.into_iter().map(|m| (m.value, m.grad)).unzip();
                (Tensor::cat(values, 0), Tensor::cat(grads, 0))
            })
            .collect();
        FlatStep { groups }
    }

    /// One AdamW update of the prepared buffers, their gradients scaled by `scale`; returns
    /// each parameter's new value, flattened, by path.
    pub(super) fn apply(
        &mut self,
        step: FlatStep,
        k: &StepConstants,
        scale: &GradScale,
    ) -> HashMap<String, Tensor<1>> {
        let factors = match scale {
            GradScale::Constant(s) => Factors::Host(*s),
            GradScale::Guarded { scale, apply } => {
                Factors::Device(Box::new(Guard::new(scale, apply, k)))
            }
        };
        let mut updated = HashMap::new();
        for (group, (values, grads)) in self.groups.iter_mut().zip(step.groups) {
            let values = group.update(values, grads, k, &factors);
            let mut offset = 0;
            for slot in &group.slots {
                let value = values.clone().narrow(0, offset, slot.len);
                offset += slot.len;
                updated.insert(slot.path.clone(), value);
            }
        }
        updated
    }

    /// Makes the groups those of `by_decay` (same decay, same parameters in the same order):
    /// kept as they are when they already are, as on every step after the first; otherwise
    /// rebuilt from every parameter's moments, zero for a parameter that has none yet.
    fn regroup(&mut self, by_decay: &[(f64, Vec<FlatInput>)], device: &Device) {
        let slots = |members: &[FlatInput]| -> Vec<Slot> {
            members
                .iter()
                .map(|m| Slot {
                    path: m.path.clone(),
                    len: m.value.dims()[0],
                })
                .collect()
        };
        let same = self.groups.len() == by_decay.len()
            && self
                .groups
                .iter()
                .zip(by_decay)
                .all(|(group, (decay, members))| {
                    group.weight_decay == *decay && group.slots == slots(members)
                });
        if same {
            return;
        }
        for group in std::mem::take(&mut self.groups) {
            self.loose.extend(group.split());
        }
        for (decay, members) in by_decay {
            let slots = slots(members);
            let (exp_avg, exp_avg_sq): (Vec<_>, Vec<_>) = slots
                .iter()
                .map(|slot| {
                    self.loose.remove(&slot.path).unwrap_or_else(|| {
                        let zeros = Tensor::<1>::zeros([slot.len], device);
                        (zeros.clone(), zeros)
                    })
                })
                .unzip();
            self.groups.push(FlatGroup {
                weight_decay: *decay,
                slots,
                exp_avg: Tensor::cat(exp_avg, 0),
                exp_avg_sq: Tensor::cat(exp_avg_sq, 0),
            });
        }
    }
}

/// A guarded step's multipliers as device scalars (shape `[1]`): AdamW's own where the step
/// applies; where it does not, those that leave every value and moment as it was (betas 1,
/// learning rate 0), with the gradients zeroed, since a NaN gradient makes NaN of anything it
/// is multiplied by, zero included. One masked pass over the gradients instead of a select
/// over each of the values and the two moments.
struct Guard {
    /// The clipping coefficient.
    scale: Tensor<1>,
    skip: Tensor<1, Bool>,
    beta1: Tensor<1>,
    beta2: Tensor<1>,
    learning_rate: Tensor<1>,
}

impl Guard {
    fn new(scale: &Tensor<1>, apply: &Tensor<1, Bool>, k: &StepConstants) -> Self {
        let skip = apply.clone().bool_not();
        let device = scale.device();
        let unless_skipped = |value: f64, skipped: f64| {
            Tensor::<1>::full([1], value, &device).mask_fill(skip.clone(), skipped)
        };
        Self {
            scale: scale.clone(),
            beta1: unless_skipped(k.config.beta1, 1.0),
            beta2: unless_skipped(k.config.beta2, 1.0),
            learning_rate: unless_skipped(k.learning_rate, 0.0),
            skip,
        }
    }
}

/// How a step's multipliers reach the update.
enum Factors {
    /// Host constants, with the gradients' coefficient.
    Host(f64),
    /// Device scalars.
    Device(Box<Guard>),
}

impl FlatGroup {
    /// PyTorch's AdamW on the whole group: updates the moments and returns the new values.
    /// The same operations, in the same order, as one parameter's update would be.
    fn update(
        &mut self,
        value: Tensor<1>,
        grad: Tensor<1>,
        k: &StepConstants,
        factors: &Factors,
    ) -> Tensor<1> {
        let c = k.config;
        // m = b1·m + (1 − b1)·s·g ; v = b2·v + (1 − b2)·s²·g²
        let (exp_avg, exp_avg_sq) = match factors {
            Factors::Host(s) => (
                self.exp_avg.clone().mul_scalar(c.beta1)
                    + grad.clone().mul_scalar((1.0 - c.beta1) * s),
                self.exp_avg_sq.clone().mul_scalar(c.beta2)
                    + grad.square().mul_scalar((1.0 - c.beta2) * s * s),
            ),
            Factors::Device(guard) => {
                let skip = guard.skip.clone().expand([grad.dims()[0]]);
                let grad = (grad * guard.scale.clone()).mask_fill(skip, 0.0);
                (
                    self.exp_avg.clone() * guard.beta1.clone()
                        + grad.clone().mul_scalar(1.0 - c.beta1),
                    self.exp_avg_sq.clone() * guard.beta2.clone()
                        + grad.square().mul_scalar(1.0 - c.beta2),
                )
            }
        };
        // PyTorch: denom = sqrt(v) / sqrt(bc2) + eps ; p -= lr / bc1 · m / denom
        let denom = exp_avg_sq
            .clone()
            .sqrt()
            .div_scalar(k.bias_correction2.sqrt())
            .add_scalar(c.epsilon);
        let ratio = exp_avg.clone() / denom;
        self.exp_avg = exp_avg;
        self.exp_avg_sq = exp_avg_sq;
        let decay = self.weight_decay;
        match factors {
            Factors::Host(_) => {
                let update = ratio.mul_scalar(k.learning_rate / k.bias_correction1);
                let value = if decay != 0.0 {
                    value.mul_scalar(1.0 - k.learning_rate * decay)
                } else {
                    value
                };
                value - update
            }
            Factors::Device(guard) => {
                let lr = guard.learning_rate.clone();
                let update = ratio * lr.clone().div_scalar(k.bias_correction1);
                let value = if decay != 0.0 {
                    value * lr.mul_scalar(-decay).add_scalar(1.0)
                } else {
                    value
                };
                value - update
            }
        }
    }
}
