//! `_maybe_log_save_evaluate`, which carries out `DefaultFlowCallback`'s decisions (in
//! `progress.rs`): log, evaluate, save; and the check for Ctrl-C.

use crate::args::SaveStrategy;
use crate::error::{SetupError, TrainerError};
use crate::metrics::Metrics;
use crate::model::TrainableModel;
use crate::trainer::Trainer;

/// Running sums between logs.
#[derive(Debug, Default)]
pub(crate) struct LossTracker {
    /// Loss summed since the last log.
    pub(crate) since_log: f64,
    /// Loss summed over logged intervals.
    pub(crate) logged_total: f64,
    pub(crate) last_logged_step: usize,
    pub(crate) last_grad_norm: Option<f64>,
    pub(crate) last_learning_rate: f64,
}

impl<M: TrainableModel> Trainer<M> {
    /// `_maybe_log_save_evaluate`: log, then evaluate, then save.
    pub(crate) fn maybe_log_save_evaluate(
        &mut self,
        tracker: &mut LossTracker,
    ) -> Result<(), TrainerError> {
        if self.progress.control.should_log
            && self.progress.state.global_step > tracker.last_logged_step
        {
            let steps = (self.progress.state.global_step - tracker.last_logged_step) as f64;
            let mut logs = Metrics::new();
            logs.insert("loss".into(), tracker.since_log / steps);
            if let Some(norm) = tracker.last_grad_norm {
                logs.insert("grad_norm".into(), norm);
            }
            logs.insert("learning_rate".into(), tracker.last_learning_rate);
            tracker.logged_total += tracker.since_log;
            tracker.since_log = 0.0;
            tracker.last_logged_step = self.progress.state.global_step;
            self.log(logs);
            self.progress.control.should_log = false;
        }
        if self.progress.control.should_evaluate {
            let metrics = self.evaluate()?;
            let is_new_best = self.determine_best_metric(&metrics)?;
            if self.args.save_strategy == SaveStrategy::Best {
                self.progress.control.should_save = is_new_best;
            }
        }
        if self.progress.control.should_save {
            self.save_checkpoint()?;
            self.progress.control.should_save = false;
        }
        Ok(())
    }

    /// `_determine_best_metric`: updates the best metric; true on a strict improvement.
    fn determine_best_metric(&mut self, metrics: &Metrics) -> Result<bool, TrainerError> {
        let Some(metric) = self.args.metric_for_best_model.clone() else {
            return Ok(false);
        };
        let key = crate::callbacks::metric_key(&metric);
        let value = *metrics.get(&key).ok_or_else(|| {
            TrainerError::from(SetupError::MetricNotFound {
                key: key.to_string(),
                available: metrics.keys().cloned().collect(),
            })
        })?;
        let greater = self.args.greater_is_better.unwrap_or(true);
        let better = match self.progress.state.best_metric {
            None => true,
            Some(best) if greater => value > best,
            Some(best) => value < best,
        };
        if better {
            self.progress.state.best_metric = Some(value);
            if self.args.save_strategy != SaveStrategy::No {
                self.progress.state.best_global_step = Some(self.progress.state.global_step);
            }
        }
        Ok(better)
    }

    /// After a step: when the Ctrl-C flag is up, writes a checkpoint and stops with
    /// [`TrainerError::Interrupted`], naming it.
    pub(crate) fn check_interrupt(&mut self) -> Result<(), TrainerError> {
        let raised = self.progress.interrupt_raised();
        // Any rank's interrupt stops them all, at the same step.
        let mut raised_anywhere = [f64::from(u8::from(raised))];
        self.group.all_reduce_sum_f64(&mut raised_anywhere);
        if raised_anywhere[0] == 0.0 {
            return Ok(());
        }
        let checkpoint = self.save_checkpoint()?;
        Err(TrainerError::Interrupted {
            step: self.progress.state.global_step,
            checkpoint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::tests::tiny_trainer;

    #[test]
    fn maybe_log_save_evaluate_logs_the_mean_loss_then_saves() {
        let dir = tempfile::tempdir().unwrap();
        let mut trainer = tiny_trainer(dir.path());
        trainer.progress.state.global_step = 4;
        trainer.progress.control.should_log = true;
        trainer.progress.control.should_save = true;
        let mut tracker = LossTracker {
            since_log: 2.0,
            last_logged_step: 0,
            last_grad_norm: Some(0.25),
            last_learning_rate: 1e-4,
            ..LossTracker::default()
        };
        trainer.maybe_log_save_evaluate(&mut tracker).unwrap();
        let entry = trainer.progress.state.log_history.last().unwrap();
        assert_eq!(entry["loss"], 0.5);
        assert_eq!(entry["grad_norm"], 0.25);
        assert_eq!(entry["step"], 4);
        assert_eq!((tracker.since_log, tracker.logged_total), (0.0, 2.0));
        assert!(dir.path().join("checkpoint-4/trainer_state.json").is_file());
        assert!(!trainer.progress.control.should_log && !trainer.progress.control.should_save);

        // Nothing new since the last log: no second entry.
        trainer.progress.control.should_log = true;
        trainer.maybe_log_save_evaluate(&mut tracker).unwrap();
        assert_eq!(trainer.progress.state.log_history.len(), 1);
    }
}
