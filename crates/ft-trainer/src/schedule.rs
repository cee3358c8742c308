//! Learning-rate schedules, as transformers' `get_scheduler` lambdas.

use std::f64::consts::PI;

use crate::args::{SchedulerType, TrainingArguments};

/// The learning rate of every optimizer step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// The schedule's shape.
    pub kind: SchedulerType,
    /// Peak learning rate.
    pub base: f64,
    /// Warm-up steps.
    pub warmup: usize,
    /// Total optimizer steps.
    pub total: usize,
}

impl Schedule {
    /// The schedule of a run of `max_steps` optimizer steps with `args`, as the Trainer's
    /// `create_scheduler` makes it.
    pub fn for_run(args: &TrainingArguments, max_steps: usize) -> Self {
        Self {
            kind: args.lr_scheduler_type,
            base: args.learning_rate,
            warmup: args.warmup_steps_for(max_steps),
            total: max_steps,
        }
    }

    /// The rate used by optimizer step `step` (1-based), as `LambdaLR` gives it:
    /// `base · λ(step − 1)`.
    pub fn learning_rate(&self, step: usize) -> f64 {
        let s = step.saturating_sub(1) as f64;
        let (w, t) = (self.warmup as f64, self.total as f64);
        let factor = match self.kind {
            SchedulerType::Constant => 1.0,
            _ if s < w => s / w.max(1.0),
            SchedulerType::ConstantWithWarmup => 1.0,
            SchedulerType::Linear => ((t - s) / (t - w).max(1.0)).max(0.0),
            SchedulerType::Cosine => {
                let progress = (s - w) / (t - w).max(1.0);
                (0.5 * (1.0 + (PI * 0.5 * 2.0 * progress).cos())).max(0.0)
            }
        };
        self.base * factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_matches_transformers() {
        // transformers, lr 1e-3, 11 steps, warmup_steps 0.2 → 3: steps 3, 6, 9 log
        // 1e-3·2/3, 7.5e-4 and 3.75e-4.
        let schedule = Schedule {
            kind: SchedulerType::Linear,
            base: 1e-3,
            warmup: 3,
            total: 11,
        };
        assert_eq!(schedule.learning_rate(1), 0.0);
        assert!((schedule.learning_rate(3) - 1e-3 * 2.0 / 3.0).abs() < 1e-15);
        assert!((schedule.learning_rate(6) - 7.5e-4).abs() < 1e-15);
        assert!((schedule.learning_rate(9) - 3.75e-4).abs() < 1e-15);
        let no_warmup = Schedule {
            warmup: 0,
            total: 10,
            ..schedule
        };
        assert_eq!(no_warmup.learning_rate(1), 1e-3);
        assert!((no_warmup.learning_rate(2) - 9e-4).abs() < 1e-15);
    }

    #[test]
    fn cosine_and_constant() {
        let cosine = Schedule {
            kind: SchedulerType::Cosine,
            base: 1.0,
            warmup: 0,
            total: 10,
        };
        assert_eq!(cosine.learning_rate(1), 1.0);
        assert!((cosine.learning_rate(6) - 0.5).abs() < 1e-12);
        let constant = Schedule {
            kind: SchedulerType::Constant,
            warmup: 5,
            ..cosine
        };
        assert_eq!(constant.learning_rate(1), 1.0);
        let with_warmup = Schedule {
            kind: SchedulerType::ConstantWithWarmup,
            ..constant
        };
        assert_eq!(with_warmup.learning_rate(2), 0.2);
        assert_eq!(with_warmup.learning_rate(9), 1.0);
    }
}
