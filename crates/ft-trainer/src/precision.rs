//! Mixed precision (`--bf16`, `--fp16`), which burn does not provide: fp32 master weights and
//! optimizer state always, and dynamic loss scaling for fp16.
//!
//! `--bf16` on flex is autocast, as transformers' `bf16=True` on a CPU: the linear layers'
//! matrix products run with bf16 operands and f32 sums on the CPU's bf16 unit
//! ([`ft_bert::autocast`]), and everything else in f32. On the other backends, whose linear
//! layers are burn's, each step runs on a half-precision copy of the model instead.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{DType, Device, FloatDType, Tensor};
use serde::{Deserialize, Serialize};

use crate::args::TrainingArguments;
use crate::error::{SetupError, TrainerError};

/// The compute precision of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// fp32 throughout.
    Full,
    /// bfloat16 compute on a bf16 copy of the model.
    Bf16,
    /// bf16 autocast (flex): bf16 matrix products, f32 everywhere else.
    Bf16Autocast,
    /// float16 compute with loss scaling.
    Fp16,
}

impl Precision {
    /// The precision the arguments ask for, refused where the device lacks the dtype.
    pub fn for_args(args: &TrainingArguments, device: &Device) -> Result<Self, TrainerError> {
        let precision = match (args.bf16, args.fp16) {
            (true, _) if ft_bert::autocast::autocast_applies(device) => {
                autocast_kernel_note();
                Precision::Bf16Autocast
            }
            (true, _) => Precision::Bf16,
            (_, true) => Precision::Fp16,
            _ => Precision::Full,
        };
        if let Some(dtype) = precision.dtype()
            && !device.supports_dtype(DType::from(dtype))
        {
            return Err(SetupError::PrecisionUnsupported {
                precision: if precision == Precision::Bf16 {
                    "bf16"
                } else {
                    "fp16"
                },
                device: format!("{device:?}"),
            }
            .into());
        }
        Ok(precision)
    }

    /// The dtype of the model's half-precision copy, if it runs on one.
    pub fn dtype(self) -> Option<FloatDType> {
        match self {
            Precision::Full | Precision::Bf16Autocast => None,
            Precision::Bf16 => Some(FloatDType::BF16),
            Precision::Fp16 => Some(FloatDType::F16),
        }
    }

    /// The model to run a step with: the master itself in fp32, or a half-precision copy
    /// whose parameters keep the master's ids, so that its gradients update the master.
    pub fn compute_model<M: Module>(self, master: &M) -> Option<M> {
        self.dtype()
            .map(|dtype| master.clone().map(&mut CastParameters(dtype)))
    }
}

impl Precision {
    /// Runs `f`, a forward pass and its backward, under this precision's autocast, if it has
    /// one.
    pub fn autocast<R>(self, f: impl FnOnce() -> R) -> R {
        match self {
            Precision::Bf16Autocast => ft_bert::autocast::autocast_bf16(f),
            _ => f(),
        }
    }
}

/// Says where `--bf16`'s autocast runs its matrix products in f32, for want of a bf16 unit.
fn autocast_kernel_note() {
    #[cfg(feature = "flex")]
    if ft_bert::autocast::Bf16Kernel::current() == ft_bert::autocast::Bf16Kernel::F32 {
        tracing::warn!(
            "bf16: this CPU has no bf16 unit (AVX512-BF16) or {} forces f32, so the linear \
             layers' products run in f32; the rest of autocast is unchanged",
            ft_bert::autocast::FORCE_VARIABLE
        );
    }
}

/// Casts every float parameter, keeping its id and making it a fresh leaf.
struct CastParameters(FloatDType);

impl ModuleMapper for CastParameters {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dtype = self.0;
        param.map(|tensor| {
            let require_grad = tensor.is_require_grad();
            let autodiff = tensor.is_autodiff();
            let cast = tensor.inner().cast(dtype);
            let cast = if autodiff { cast.autodiff() } else { cast };
            if require_grad {
                cast.require_grad()
            } else {
                cast
            }
        })
    }
}

/// Dynamic loss scaling, as `torch.amp.GradScaler`: the loss is multiplied by the scale
/// before backward; a step whose gradients overflow is skipped and halves the scale; 2000
/// steps in a row without overflow double it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    /// The current scale.
    pub scale: f64,
    /// Steps since the last overflow.
    pub growth_tracker: usize,
}

impl Default for LossScaler {
    fn default() -> Self {
        Self {
            scale: 65536.0,
            growth_tracker: 0,
        }
    }
}

const GROWTH_INTERVAL: usize = 2000;

impl LossScaler {
    /// Records a step: halves the scale after an overflow, doubles it after a long run
    /// without one.
    pub fn update(&mut self, overflow: bool) {
        if overflow {
            self.scale = (self.scale * 0.5).max(1.0);
            self.growth_tracker = 0;
        } else {
            self.growth_tracker += 1;
            if self.growth_tracker >= GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.growth_tracker = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_backs_off_and_grows_like_grad_scaler() {
        let mut scaler = LossScaler::default();
        scaler.update(true);
        assert_eq!(scaler.scale, 32768.0);
        for _ in 0..GROWTH_INTERVAL {
            scaler.update(false);
        }
        assert_eq!(scaler.scale, 65536.0);
        assert_eq!(scaler.growth_tracker, 0);
    }
}
