//! Where training stands: transformers' `TrainerState` and `TrainerControl`, the record of
//! every step, and `DefaultFlowCallback`'s decisions, which read the arguments and change
//! nothing but these.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use crate::args::{IntervalStrategy, SaveStrategy, TrainingArguments};
use crate::metrics::Metrics;
use crate::state::{LogEntry, StepRecord, TrainerControl, TrainerState};
use crate::trainer::jit_checkpoint::{self, SigtermGuard};

/// The Trainer's progress. It owns three invariants: `state.global_step` and `state.epoch`
/// are those of the last record in `history`, once training has stepped; `total_flos` grows
/// by the cost of the tokens trained on; and a new `train()` starts with no requests pending.
#[derive(Debug)]
pub(crate) struct Progress {
    /// transformers' `trainer.state`.
    pub(crate) state: TrainerState,
    /// What the callbacks asked the loop to do next.
    pub(crate) control: TrainerControl,
    /// Every optimizer step of the last `train()` call.
    history: Vec<StepRecord>,
    /// A training step's floating-point operations per token: 6 × the non-embedding
    /// parameters, as transformers' `floating_point_ops` counts them.
    flos_per_token: f64,
    /// The Ctrl-C flag, when the caller gave one.
    interrupt: Option<Arc<AtomicBool>>,
    /// SIGTERM, watched while an `enable_jit_checkpoint` run trains.
    sigterm: Option<SigtermGuard>,
}

impl Progress {
    /// No progress yet, for a model of `non_embedding_parameters`.
    pub(crate) fn new(non_embedding_parameters: usize) -> Self {
        Self {
            state: TrainerState::default(),
            control: TrainerControl::default(),
            history: Vec::new(),
            flos_per_token: 6.0 * non_embedding_parameters as f64,
            interrupt: None,
            sigterm: None,
        }
    }

    /// Watches `flag`: when it is raised, training saves a checkpoint and stops.
    pub(crate) fn set_interrupt(&mut self, flag: Arc<AtomicBool>) {
        self.interrupt = Some(flag);
    }

    /// Whether this process was asked to stop with a checkpoint: Ctrl-C's flag, or SIGTERM
    /// while it is watched.
    pub(crate) fn interrupt_raised(&self) -> bool {
        let flag = self
            .interrupt
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::SeqCst));
        flag || self.sigterm.as_ref().is_some_and(SigtermGuard::requested)
    }

    /// Watches SIGTERM (`enable_jit_checkpoint`) when `on`, until [`Progress::unwatch_sigterm`].
    pub(crate) fn watch_sigterm(&mut self, on: bool) {
        self.sigterm = if on { jit_checkpoint::arm() } else { None };
    }

    /// SIGTERM ends the process again.
    pub(crate) fn unwatch_sigterm(&mut self) {
        self.sigterm = None;
    }

    /// Every optimizer step of the last `train()` call.
    pub(crate) fn history(&self) -> &[StepRecord] {
        &self.history
    }

    /// A `train()` call starts from `plan`: no steps recorded and no requests pending.
    pub(crate) fn begin(&mut self, plan: TrainerState) {
        self.state = plan;
        self.history.clear();
        self.control = TrainerControl::default();
    }

    /// Resumes from a checkpoint's state, keeping this run's plan (its step counts and
    /// intervals come from this run's arguments).
    pub(crate) fn restore(&mut self, saved: TrainerState) {
        let plan = &self.state;
        self.state = TrainerState {
            max_steps: plan.max_steps,
            num_train_epochs: plan.num_train_epochs,
            logging_steps: plan.logging_steps,
            eval_steps: plan.eval_steps,
            save_steps: plan.save_steps,
            train_batch_size: plan.train_batch_size,
            ..saved
        };
    }

    /// The floating-point operations of training on `tokens` tokens.
    pub(crate) fn flos(&self, tokens: usize) -> f64 {
        self.flos_per_token * tokens as f64
    }

    /// Counts a step as done.
    pub(crate) fn record_step(&mut self, record: StepRecord) {
        self.state.global_step = record.step;
        self.state.epoch = record.epoch;
        self.history.push(record);
    }

    /// `self.log(logs)`'s entry: `logs` with `epoch` and `step`, appended to `log_history`.
    pub(crate) fn log_entry(&mut self, logs: Metrics) -> LogEntry {
        let mut entry: LogEntry = logs.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
        entry.insert("epoch".into(), Value::from(self.state.epoch));
        entry.insert("step".into(), Value::from(self.state.global_step));
        self.state.log_history.push(entry.clone());
        entry
    }

    /// Clears the requests a step acts on, before the step begins.
    pub(crate) fn clear_step_requests(&mut self) {
        self.control.should_log = false;
        self.control.should_evaluate = false;
        self.control.should_save = false;
    }

    /// `DefaultFlowCallback.on_step_end`.
    pub(crate) fn flow_on_step_end(&mut self, args: &TrainingArguments) {
        let (state, control) = (&self.state, &mut self.control);
        let step = state.global_step;
        let every = |interval: usize| interval > 0 && step.is_multiple_of(interval);
        if step == 1 && args.logging_first_step {
            control.should_log = true;
        }
        if args.logging_strategy == IntervalStrategy::Steps && every(state.logging_steps) {
            control.should_log = true;
        }
        let evaluates_by_steps = args.eval_strategy == IntervalStrategy::Steps;
        if evaluates_by_steps && every(state.eval_steps) {
            control.should_evaluate = true;
        }
        let saves_by_steps = args.save_strategy == SaveStrategy::Steps;
        if saves_by_steps && every(state.save_steps) {
            control.should_save = true;
        }
        if step >= state.max_steps {
            control.should_training_stop = true;
            // The last step is evaluated and saved even off the interval.
            if evaluates_by_steps && state.eval_steps > 0 && !every(state.eval_steps) {
                control.should_evaluate = true;
            }
            if saves_by_steps {
                control.should_save = true;
            }
        }
    }

    /// `DefaultFlowCallback.on_epoch_end`.
    pub(crate) fn flow_on_epoch_end(&mut self, args: &TrainingArguments) {
        let control = &mut self.control;
        if args.logging_strategy == IntervalStrategy::Epoch {
            control.should_log = true;
        }
        if args.eval_strategy == IntervalStrategy::Epoch {
            control.should_evaluate = true;
        }
        if args.save_strategy == SaveStrategy::Epoch {
            control.should_save = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: usize) -> StepRecord {
        StepRecord {
            step,
            epoch: step as f64 / 4.0,
            loss: 0.5,
            learning_rate: 1e-5,
            grad_norm: 1.0,
        }
    }

    #[test]
    fn a_recorded_step_moves_the_state_and_a_new_run_forgets_it() {
        let mut progress = Progress::new(10);
        progress.record_step(record(1));
        progress.record_step(record(2));
        assert_eq!(progress.state.global_step, 2);
        assert_eq!(progress.state.epoch, 0.5);
        assert_eq!(progress.history().len(), 2);
        assert_eq!(progress.flos(3), 180.0);

        progress.control.should_save = true;
        progress.begin(TrainerState {
            max_steps: 9,
            ..TrainerState::default()
        });
        assert_eq!(progress.state.global_step, 0);
        assert!(progress.history().is_empty());
        assert_eq!(progress.control, TrainerControl::default());
    }

    #[test]
    fn restoring_keeps_this_runs_plan_and_the_checkpoints_position() {
        let mut progress = Progress::new(0);
        progress.begin(TrainerState {
            max_steps: 100,
            logging_steps: 5,
            ..TrainerState::default()
        });
        progress.restore(TrainerState {
            max_steps: 50,
            logging_steps: 7,
            global_step: 12,
            best_metric: Some(0.8),
            ..TrainerState::default()
        });
        let state = &progress.state;
        assert_eq!((state.max_steps, state.logging_steps), (100, 5));
        assert_eq!((state.global_step, state.best_metric), (12, Some(0.8)));
    }

    #[test]
    fn the_flow_asks_for_logs_and_saves_on_their_steps_and_at_the_end() {
        let args = TrainingArguments::new("unused");
        let mut progress = Progress::new(0);
        progress.state.logging_steps = 2;
        progress.state.save_steps = 3;
        progress.state.max_steps = 5;
        let mut asked = Vec::new();
        for step in 1..=5 {
            progress.state.global_step = step;
            progress.control = Default::default();
            progress.flow_on_step_end(&args);
            let c = &progress.control;
            asked.push((c.should_log, c.should_save, c.should_training_stop));
        }
        assert_eq!(
            asked,
            [
                (false, false, false),
                (true, false, false),
                (false, true, false),
                (true, false, false),
                (false, true, true),
            ]
        );
    }

    #[test]
    fn the_interrupt_flag_is_read_when_given() {
        let mut progress = Progress::new(0);
        assert!(!progress.interrupt_raised());
        let flag = Arc::new(AtomicBool::new(false));
        progress.set_interrupt(flag.clone());
        assert!(!progress.interrupt_raised());
        flag.store(true, Ordering::SeqCst);
        assert!(progress.interrupt_raised());
    }
}
