//! Gradients averaged across ranks, as DDP's all-reduce does, through one flat host buffer.
//!
//! burn's `backward()` returns every gradient at once and has no per-gradient hook, so the
//! reduction cannot overlap the backward pass as DDP's buckets do: it runs once per optimizer
//! step, after accumulation and before clipping, over a single buffer (one collective rather
//! than one per parameter).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, Tensor, TensorData, TensorReadError};

use super::ProcessGroup;

/// Replaces `grads` with their mean over the group's ranks, and `scalars` with their sum.
///
/// A parameter's gradient counts as zero on a rank that has none, as DDP counts unused
/// parameters; a parameter without a gradient on any rank stays without one. Every rank must
/// pass the same model (the same parameters in the same order).
pub fn average_gradients<M: Module>(
    group: &ProcessGroup,
    model: &M,
    grads: &mut GradientsParams,
    scalars: &mut [f64],
    device: &Device,
) -> Result<(), TensorReadError> {
    let mut taken = Take {
        grads,
        params: Vec::new(),
        error: None,
    };
    model.visit(&mut taken);
    let Take {
        grads,
        params,
        error,
    } = taken;
    if let Some(error) = error {
        return Err(error);
    }
    // First which parameters have a gradient anywhere, with the caller's scalars.
    let mut counts: Vec<f64> = params
        .iter()
        .map(|p| f64::from(u8::from(p.values.is_some())))
        .chain(scalars.iter().copied())
        .collect();
    group.all_reduce_sum_f64(&mut counts);
    let (present, summed) = counts.split_at(params.len());
    scalars.copy_from_slice(summed);

    let mut flat = Vec::with_capacity(params.iter().map(|p| p.len).sum());
    for (param, &count) in params.iter().zip(present) {
        match (&param.values, count > 0.0) {
            (Some(values), _) => flat.extend_from_slice(values),
            (None, true) => flat.extend(std::iter::repeat_n(0.0, param.len)),
            (None, false) => {}
        }
    }
    drop(params);
    group.all_reduce_sum(&mut flat);
    let scale = 1.0 / group.world_size() as f32;
    flat.iter_mut().for_each(|value| *value *= scale);

    model.visit(&mut Give {
        grads,
        present: present.iter().map(|&count| count > 0.0).collect(),
        index: 0,
        flat: &flat,
        offset: 0,
        device,
    });
    Ok(())
}

/// A digest of every parameter's values, bit for bit, in the model's order: equal on two
/// processes exactly when they hold the same weights (but for a hash collision).
pub fn weights_digest<M: Module>(model: &M) -> Result<u64, TensorReadError> {
    struct Digest {
        hasher: std::collections::hash_map::DefaultHasher,
        error: Option<TensorReadError>,
    }
    impl ModuleVisitor for Digest {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            use std::hash::Hasher;
            match ft_bert::device_read::read_vec::<f32, D>(param.val()) {
                Ok(values) => values
                    .iter()
                    .for_each(|value| self.hasher.write_u32(value.to_bits())),
                Err(error) => {
                    self.error.get_or_insert(error);
                }
            }
        }
    }
    // `DefaultHasher::new` has fixed keys: the same values give the same digest everywhere.
    let mut digest = Digest {
        hasher: std::collections::hash_map::DefaultHasher::new(),
        error: None,
    };
    model.visit(&mut digest);
    match digest.error {
        Some(error) => Err(error),
        None => Ok(std::hash::Hasher::finish(&digest.hasher)),
    }
}

/// One parameter's gradient, taken out of `GradientsParams` to the host.
struct Taken {
    len: usize,
    values: Option<Vec<f32>>,
}

/// Takes each parameter's gradient, in the model's order.
struct Take<'a> {
    grads: &'a mut GradientsParams,
    params: Vec<Taken>,
    error: Option<TensorReadError>,
}

impl ModuleVisitor for Take<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let len = param.shape().num_elements();
        let values = match self.grads.remove::<D>(param.id) {
            Some(grad) => match ft_bert::device_read::read_vec::<f32, D>(grad) {
                Ok(values) => Some(values),
                Err(error) => {
                    self.error.get_or_insert(error);
                    None
                }
            },
            None => None,
        };
        self.params.push(Taken { len, values });
    }
}

/// Registers the averaged gradients back, in the model's order, in the parameters' dtype.
struct Give<'a> {
    grads: &'a mut GradientsParams,
    present: Vec<bool>,
    index: usize,
    flat: &'a [f32],
    offset: usize,
    device: &'a Device,
}

impl ModuleVisitor for Give<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let present = self.present.get(self.index).copied().unwrap_or(false);
        self.index += 1;
        if !present {
            return;
        }
        let shape = param.shape();
        let len = shape.num_elements();
        let values = self.flat[self.offset..self.offset + len].to_vec();
        self.offset += len;
        let dtype: DType = param.val().dtype();
        let grad = Tensor::<D>::from_data(TensorData::new(values, shape), (self.device, dtype));
        self.grads.register(param.id, grad);
    }
}
