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
use super::device_update::{FlatInput, GradScale};
#[cfg(feature = "tch")]
use super::fused;

/// One step's parameters, by weight-decay group in the groups' order.
#[allow(clippy::large_enum_variant, reason = "one a step, moved, never copied")]
pub(super) enum FlatStep {
    /// Each group's values and gradients, each concatenated, for the composed update.
    Concatenated(Vec<(Tensor<1>, Tensor<1>)>),
    /// Each group's libtorch tensors, for its fused kernels ([`fused`]).
    #[cfg(feature = "tch")]
    Fused(Vec<fused::Members>),
}

impl FlatStep {
    /// The global L2 norm of every gradient, in f32 on the device (shape `[1]`); `None` when
    /// there are none.
    pub(super) fn grad_norm(&self) -> Option<Tensor<1>> {
        match self {
            Self::Concatenated(groups) => groups
                .iter()
                .map(|(_, grads)| super::sum_of_squares(grads.clone()))
                .reduce(|a, b| a + b)
                .map(Tensor::sqrt),
            #[cfg(feature = "tch")]
            Self::Fused(groups) => (!groups.is_empty()).then(|| fused::total_norm(groups.iter())),
        }
    }
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
    /// Whether libtorch's fused kernels are passed over for the composed update (tests
    /// compare the two).
    #[cfg(feature = "tch")]
    composed_only: bool,
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

    /// The composed update everywhere, libtorch included.
    #[cfg(all(test, feature = "tch"))]
    pub(super) fn composed_only() -> Self {
        Self {
            composed_only: true,
            ..Self::default()
        }
    }

    /// Groups `inputs` by weight decay, in the order given: on libtorch each group's tensors
    /// for its fused kernels, elsewhere each group's values and gradients concatenated, the
    /// buffers [`DeviceMoments::apply`] updates.
    pub(super) fn prepare(&mut self, inputs: Vec<FlatInput>) -> FlatStep {
        let Some(device) = inputs.first().map(|input| input.value.device()) else {
            return FlatStep::Concatenated(Vec::new());
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
        let members = by_decay.into_iter().map(|(_, members)| members);
        #[cfg(feature = "tch")]
        if !self.composed_only && fused::is_libtorch(&device) {
            return FlatStep::Fused(members.map(fused::Members::new).collect());
        }
        let groups = members
            .map(|members| {
                let (values, grads): (Vec<_>, Vec<_>) =
                    members.into_iter().map(|m| (m.value, m.grad)).unzip();
                (Tensor::cat(values, 0), Tensor::cat(grads, 0))
            })
            .collect();
        FlatStep::Concatenated(groups)
    }

    /// One AdamW update of the prepared buffers, their gradients scaled by `scale`; returns
    /// each parameter's new value, flattened, by path.
    pub(super) fn apply(
        &mut self,
        step: FlatStep,
        k: &StepConstants,
        scale: &GradScale,
    ) -> HashMap<String, Tensor<1>> {
        match step {
            FlatStep::Concatenated(groups) => {
                let factors = match scale {
                    GradScale::Constant(s) => Factors::Host(*s),
                    GradScale::Guarded { scale, apply } => {
                        Factors::Device(Box::new(Guard::new(scale, apply, k)))
                    }
                };
                self.each_group(groups, |mut group, (values, grads)| {
                    let values = group.update(values, grads, k, &factors);
                    (group, values)
                })
            }
            #[cfg(feature = "tch")]
            FlatStep::Fused(groups) => {
                let device = groups
                    .first()
                    .map_or(tch::Device::Cpu, fused::Members::device);
                let scalars = fused::Scalars::new(k, scale, &device);
                self.each_group(groups, |group, members| {
                    // Moved, not cloned: a moment shared with nothing is written in place.
                    let FlatGroup {
                        weight_decay,
                        slots,
                        exp_avg,
                        exp_avg_sq,
                    } = group;
                    let (values, (exp_avg, exp_avg_sq)) =
                        fused::step(members, (exp_avg, exp_avg_sq), k, weight_decay, &scalars);
                    let group = FlatGroup {
                        weight_decay,
                        slots,
                        exp_avg,
                        exp_avg_sq,
                    };
                    (group, values)
                })
            }
        }
    }

    /// Runs `update` on each group, taken and given back, with its step's parameters; returns
    /// each parameter's new value, flattened, by path, from the group's new values,
    /// concatenated.
    fn each_group<T>(
        &mut self,
        inputs: Vec<T>,
        mut update: impl FnMut(FlatGroup, T) -> (FlatGroup, Tensor<1>),
    ) -> HashMap<String, Tensor<1>> {
        let mut updated = HashMap::new();
        let groups = std::mem::take(&mut self.groups);
        for (group, input) in groups.into_iter().zip(inputs) {
            let (group, values) = update(group, input);
            let mut offset = 0;
            for slot in &group.slots {
                let value = values.clone().narrow(0, offset, slot.len);
                offset += slot.len;
                updated.insert(slot.path.clone(), value);
            }
            self.groups.push(group);
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

#[cfg(all(test, feature = "tch"))]
mod tests {
    use burn::module::Param;
    use burn::nn::Linear;
    use burn::optim::GradientsParams;
    use burn::tensor::TensorData;

    use super::*;
    use crate::optimizer::{AdamW, AdamWConfig, Clipping};

    fn values(len: usize, seed: f32) -> Vec<f32> {
        (0..len).map(|i| (i as f32 * 0.37 + seed).sin()).collect()
    }

    fn linear(device: &Device) -> Linear {
        Linear {
            weight: Param::from_data(TensorData::new(values(96 * 40, 0.0), [96, 40]), device),
            bias: Some(Param::from_data(
                TensorData::new(values(40, 1.0), [40]),
                device,
            )),
        }
    }

    fn gradients(model: &Linear, step: usize, device: &Device) -> GradientsParams {
        let mut grads = GradientsParams::new();
        let seed = step as f32;
        grads.register(
            model.weight.id,
            Tensor::<2>::from_data(TensorData::new(values(96 * 40, seed), [96, 40]), device),
        );
        let bias = model.bias.as_ref().map(|bias| bias.id);
        grads.register(
            bias.expect("the layer has a bias"),
            Tensor::<1>::from_data(TensorData::new(values(40, seed + 0.5), [40]), device),
        );
        grads
    }

    /// Four steps: clipped by a host coefficient, unclipped, then clipped on the device.
    fn train(mut optimizer: AdamW, device: &Device) -> (Linear, AdamW) {
        let mut model = linear(device);
        for (step, scale) in [(1, 0.7), (2, 0.7), (3, 1.0)] {
            let grads = gradients(&model, step, device);
            model = optimizer.step(model, grads, 1e-2, scale);
        }
        let clipping = Clipping {
            max_grad_norm: 0.1,
            unscale: 2.0,
            must_be_finite: Tensor::from_data(TensorData::new(vec![0.5f32], [1]), device),
        };
        let grads = gradients(&model, 4, device);
        let (model, norm) = optimizer.step_clipped(model, grads, 1e-2, clipping);
        assert!(norm.is_ok());
        (model, optimizer)
    }

    fn worst(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    #[allow(
        deprecated,
        reason = "burn 0.22 marks libtorch deprecated; it stays our backend"
    )]
    fn libtorch_steps_through_its_fused_kernels_as_the_composed_update_does() {
        let device = Device::libtorch();
        let config = AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.01,
        };
        let mut probe = AdamW::new(config);
        let model = linear(&device);
        let grads = gradients(&model, 1, &device);
        let constants = probe.next_constants(1e-2, 1.0);
        let step = probe.prepare_flat(&model, &grads, &constants);
        assert!(
            matches!(&step, FlatStep::Fused(groups) if groups.len() == 2),
            "libtorch takes the fused kernels, one call per decay group"
        );

        let (fused, fused_optimizer) = train(AdamW::new(config), &device);
        let composed_optimizer = AdamW {
            device_moments: DeviceMoments::composed_only(),
            ..AdamW::new(config)
        };
        let (composed, composed_optimizer) = train(composed_optimizer, &device);
        let read = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
        let difference = worst(&read(fused.weight.val()), &read(composed.weight.val()));
        assert!(difference < 1e-6, "the weights differ by {difference}");
        let bias = |model: &Linear| model.bias.as_ref().unwrap().val().into_data();
        let difference = worst(
            &bias(&fused).try_to_vec::<f32>().unwrap(),
            &bias(&composed).try_to_vec::<f32>().unwrap(),
        );
        assert!(difference < 1e-6, "the biases differ by {difference}");
        for name in ["weight", "bias"] {
            let (m, v) = fused_optimizer.moments(name).unwrap().expect(name);
            let (m_ref, v_ref) = composed_optimizer.moments(name).unwrap().expect(name);
            let difference = worst(&m, &m_ref).max(worst(&v, &v_ref));
            assert!(difference < 1e-6, "{name}'s moments differ by {difference}");
        }
    }
}
