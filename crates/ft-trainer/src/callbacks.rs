//! `TrainerCallback`, `EarlyStoppingCallback`, and the console output (progress bar, logs and
//! the notebook's per-epoch table).

use std::io::IsTerminal;

use serde_json::Value;

use crate::args::{IntervalStrategy, TrainingArguments};
use crate::error::BoxedError;
use crate::metrics::Metrics;
use crate::state::{LogEntry, TrainerControl, TrainerState};

/// Hooks into the training loop, as transformers' `TrainerCallback`. Every method does nothing
/// by default; set flags on `control` to steer the loop.
#[allow(unused_variables)]
pub trait TrainerCallback: Send {
    /// A name for `stateful_callbacks` in `trainer_state.json`.
    fn name(&self) -> &str;
    /// Before the first step. An error stops training before it starts: a callback that
    /// cannot work with these arguments says so here rather than doing nothing later.
    fn on_train_begin(
        &mut self,
        args: &TrainingArguments,
        state: &TrainerState,
        control: &mut TrainerControl,
    ) -> Result<(), BoxedError> {
        Ok(())
    }
    /// After the last step.
    fn on_train_end(
        &mut self,
        args: &TrainingArguments,
        state: &TrainerState,
        control: &mut TrainerControl,
    ) {
    }
    /// At the start of an epoch.
    fn on_epoch_begin(
        &mut self,
        args: &TrainingArguments,
        state: &TrainerState,
        control: &mut TrainerControl,
    ) {
    }
    /// At the end of an epoch.
    fn on_epoch_end(
        &mut self,
        args: &TrainingArguments,
        state: &TrainerState,
        control: &mut TrainerControl,
    ) {
    }
    /// Before an optimizer step's micro-batches.
    fn on_step_begin(
        &mut self,
        args: &TrainingArguments,
        state: &TrainerState,
        control: &mut TrainerControl,
    ) {
    }
    /// After an optimizer step.
    fn on_step_end(
        &mut self,
        args: &TrainingArguments,
        state: &TrainerState,
        control: &mut TrainerControl,
    ) {
    }
    /// After an evaluation, with its metrics.
    fn on_evaluate(
        &mut self,
        args: &TrainingArguments,
        state: &TrainerState,
        control: &mut TrainerControl,
        metrics: &Metrics,
    ) {
    }
    /// After a prediction, with its metrics.
    fn on_predict(
        &mut self,
        args: &TrainingArguments,
        state: &TrainerState,
        control: &mut TrainerControl,
        metrics: &Metrics,
    ) {
    }
    /// After a checkpoint is written.
    fn on_save(
        &mut self,
        args: &TrainingArguments,
        state: &TrainerState,
        control: &mut TrainerControl,
    ) {
    }
    /// After a log entry is added to `log_history`.
    fn on_log(
        &mut self,
        args: &TrainingArguments,
        state: &TrainerState,
        control: &mut TrainerControl,
        logs: &LogEntry,
    ) {
    }
    /// State to keep in checkpoints (`{"args": ..., "attributes": ...}`), if any.
    fn state(&self) -> Option<Value> {
        None
    }
    /// Restores what [`TrainerCallback::state`] returned.
    fn load_state(&mut self, state: &Value) {}
}

/// Stops training when `metric_for_best_model` has not improved (by more than
/// `early_stopping_threshold`) for `early_stopping_patience` evaluations.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStoppingCallback {
    /// Evaluations without improvement before stopping.
    pub early_stopping_patience: usize,
    /// How much better a metric must be to count as an improvement.
    pub early_stopping_threshold: f64,
    counter: usize,
}

impl EarlyStoppingCallback {
    /// `EarlyStoppingCallback(early_stopping_patience, early_stopping_threshold)`.
    pub fn new(early_stopping_patience: usize, early_stopping_threshold: f64) -> Self {
        Self {
            early_stopping_patience,
            early_stopping_threshold,
            counter: 0,
        }
    }

    /// Evaluations in a row without improvement.
    pub fn patience_counter(&self) -> usize {
        self.counter
    }

    /// Whether `args` give early stopping something to watch, with transformers' messages: a
    /// `metric_for_best_model` and evaluations. A program can ask before its own work; the
    /// callback asks again when training begins.
    pub fn check_arguments(args: &TrainingArguments) -> Result<(), String> {
        if args.metric_for_best_model.is_none() {
            return Err(
                "EarlyStoppingCallback requires metric_for_best_model to be defined".into(),
            );
        }
        if args.eval_strategy == IntervalStrategy::No {
            return Err("EarlyStoppingCallback requires IntervalStrategy of steps or epoch".into());
        }
        Ok(())
    }
}

impl TrainerCallback for EarlyStoppingCallback {
    fn name(&self) -> &str {
        "EarlyStoppingCallback"
    }

    /// Refuses arguments it cannot work with, as transformers asserts: it needs a metric and
    /// evaluations to watch.
    fn on_train_begin(
        &mut self,
        args: &TrainingArguments,
        _: &TrainerState,
        _: &mut TrainerControl,
    ) -> Result<(), BoxedError> {
        Self::check_arguments(args)?;
        // The run then ends with the last weights, not the best.
        if !args.load_best_model_at_end {
            tracing::warn!(
                "Using EarlyStoppingCallback without load_best_model_at_end=True. Once training \
                 is finished, the best model will not be loaded automatically."
            );
        }
        Ok(())
    }

    fn on_evaluate(
        &mut self,
        args: &TrainingArguments,
        state: &TrainerState,
        control: &mut TrainerControl,
        metrics: &Metrics,
    ) {
        let Some(metric) = &args.metric_for_best_model else {
            return;
        };
        let key = metric_key(metric);
        let Some(&value) = metrics.get(&key) else {
            tracing::warn!(
                "early stopping required metric_for_best_model, but did not find {key} so early \
                 stopping is disabled"
            );
            return;
        };
        let greater = args.greater_is_better.unwrap_or(true);
        let improved = match state.best_metric {
            None => true,
            Some(best) => {
                let better = if greater { value > best } else { value < best };
                better && (value - best).abs() > self.early_stopping_threshold
            }
        };
        if improved {
            self.counter = 0;
        } else {
            self.counter += 1;
        }
        if self.counter >= self.early_stopping_patience {
            control.should_training_stop = true;
        }
    }

    fn state(&self) -> Option<Value> {
        Some(serde_json::json!({
            "args": {
                "early_stopping_patience": self.early_stopping_patience,
                "early_stopping_threshold": self.early_stopping_threshold,
            },
            "attributes": { "early_stopping_patience_counter": self.counter },
        }))
    }

    fn load_state(&mut self, state: &Value) {
        if let Some(counter) = state["attributes"]["early_stopping_patience_counter"].as_u64() {
            self.counter = counter as usize;
        }
    }
}

/// `metric` with the `eval_` prefix transformers adds when it is missing.
pub fn metric_key(metric: &str) -> String {
    if metric.starts_with("eval_") {
        metric.to_string()
    } else {
        format!("eval_{metric}")
    }
}

/// Python's `f"{value:.4g}"`, which transformers uses to print logs.
pub fn format_g4(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return match value {
            v if v.is_nan() => "nan".into(),
            v if v == f64::INFINITY => "inf".into(),
            v if v == f64::NEG_INFINITY => "-inf".into(),
            _ => "0".into(),
        };
    }
    let exponent = value.abs().log10().floor() as i32;
    // Rounding can carry into the next power of ten (9.9996 -> 10).
    let rounded = format!("{:.3e}", value);
    let exponent = rounded
        .split('e')
        .nth(1)
        .and_then(|e| e.parse::<i32>().ok())
        .unwrap_or(exponent);
    if !(-4..4).contains(&exponent) {
        let (mantissa, _) = rounded.split_once('e').unwrap_or((&rounded, ""));
        let mantissa = trim_zeros(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else {
        let decimals = (3 - exponent).max(0) as usize;
        trim_zeros(&format!("{value:.decimals$}")).to_string()
    }
}

fn trim_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// What the console shows: a progress bar with ETA (on a terminal, unless `disable_tqdm`),
/// each log as transformers prints it, and the notebook's table row after each evaluation.
pub struct ConsoleCallback {
    bar: Option<indicatif::ProgressBar>,
    columns: Vec<String>,
    first_column: RowIndex,
}

/// What the first column of the notebook's table counts: epochs under the `epoch` eval
/// strategy, steps otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowIndex {
    Epoch,
    Step,
}

impl RowIndex {
    fn header(self) -> &'static str {
        match self {
            RowIndex::Epoch => "Epoch",
            RowIndex::Step => "Step",
        }
    }
}

impl ConsoleCallback {
    /// A console reporter; `show_bar` is false when output is not a terminal.
    pub fn new(show_bar: bool) -> Self {
        Self {
            bar: show_bar.then(indicatif::ProgressBar::hidden),
            columns: Vec::new(),
            first_column: RowIndex::Step,
        }
    }

    /// A reporter with a bar when stdout is a terminal and `args.disable_tqdm` is off.
    pub fn for_args(args: &TrainingArguments) -> Self {
        Self::new(!args.disable_tqdm && std::io::stdout().is_terminal())
    }

    fn print(&self, line: &str) {
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.println(line),
            _ => println!("{line}"),
        }
    }
}

impl TrainerCallback for ConsoleCallback {
    fn name(&self) -> &str {
        "ConsoleCallback"
    }

    fn on_train_begin(
        &mut self,
        args: &TrainingArguments,
        state: &TrainerState,
        _: &mut TrainerControl,
    ) -> Result<(), BoxedError> {
        // Only rank 0 reports, as transformers' printer and progress callbacks do.
        if !state.is_world_process_zero {
            self.bar = None;
        }
        if let Some(bar) = &mut self.bar {
            let new = indicatif::ProgressBar::new(state.max_steps as u64);
            new.set_style(
                indicatif::ProgressStyle::with_template(
                    "{percent:>3}% {wide_bar} {pos}/{len} [{elapsed_precise}<{eta_precise}, {per_sec}]",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            new.set_position(state.global_step as u64);
            *bar = new;
        }
        self.first_column = if args.eval_strategy == IntervalStrategy::Epoch {
            RowIndex::Epoch
        } else {
            RowIndex::Step
        };
        self.columns.clear();
        Ok(())
    }

    fn on_step_end(&mut self, _: &TrainingArguments, state: &TrainerState, _: &mut TrainerControl) {
        if let Some(bar) = &self.bar {
            bar.set_position(state.global_step as u64);
        }
    }

    fn on_log(
        &mut self,
        _: &TrainingArguments,
        state: &TrainerState,
        _: &mut TrainerControl,
        logs: &LogEntry,
    ) {
        if !state.is_world_process_zero {
            return;
        }
        // transformers prints each log as a dict of `.4g` strings, without total_flos.
        let fields: Vec<String> = logs
            .iter()
            .filter(|(key, _)| key.as_str() != "total_flos" && key.as_str() != "step")
            .map(|(key, value)| match value.as_f64() {
                Some(v) => format!("'{key}': '{}'", format_g4(v)),
                None => format!("'{key}': {value}"),
            })
            .collect();
        self.print(&format!("{{{}}}", fields.join(", ")));
    }

    fn on_evaluate(
        &mut self,
        _: &TrainingArguments,
        state: &TrainerState,
        _: &mut TrainerControl,
        metrics: &Metrics,
    ) {
        if !state.is_world_process_zero {
            return;
        }
        let training_loss = state
            .log_history
            .iter()
            .rev()
            .find_map(|entry| entry.get("loss").and_then(Value::as_f64))
            .map_or("No log".to_string(), |loss| format!("{loss:.6}"));
        let first = match self.first_column {
            RowIndex::Epoch => format!("{}", state.epoch as usize),
            RowIndex::Step => state.global_step.to_string(),
        };
        let mut cells = vec![
            (self.first_column.header().to_string(), first),
            ("Training Loss".to_string(), training_loss),
        ];
        for (key, value) in metrics {
            let Some(name) = key.strip_prefix("eval_") else {
                continue;
            };
            if name.ends_with("runtime") || name.ends_with("per_second") || name == "epoch" {
                continue;
            }
            let title = if name == "loss" {
                "Validation Loss".to_string()
            } else {
                name.split('_')
                    .map(|part| {
                        let mut chars = part.chars();
                        chars.next().map_or(String::new(), |c| {
                            c.to_uppercase().collect::<String>() + chars.as_str()
                        })
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            cells.push((title, format!("{value:.6}")));
        }
        // Validation Loss comes right after Training Loss, as in the notebook.
        if let Some(i) = cells
            .iter()
            .position(|(title, _)| title == "Validation Loss")
        {
            let cell = cells.remove(i);
            cells.insert(2, cell);
        }
        let widths: Vec<usize> = cells.iter().map(|(t, v)| t.len().max(v.len())).collect();
        let titles: Vec<String> = cells.iter().map(|(t, _)| t.clone()).collect();
        if titles != self.columns {
            let header: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|((t, _), w)| format!("{t:<w$}"))
                .collect();
            self.print(&header.join(" | "));
            self.columns = titles;
        }
        let row: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|((_, v), w)| format!("{v:<w$}"))
            .collect();
        self.print(&row.join(" | "));
    }

    fn on_train_end(&mut self, _: &TrainingArguments, _: &TrainerState, _: &mut TrainerControl) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// transformers' `CallbackHandler`: the console first, then every other callback in the
/// order they were added. The console is a part of its own, so that
/// [`crate::Trainer::without_console`] removes it by what it is, not by its name.
pub(crate) struct CallbackHandler {
    console: Option<ConsoleCallback>,
    others: Vec<Box<dyn TrainerCallback>>,
}

impl CallbackHandler {
    /// The console alone.
    pub(crate) fn new(console: ConsoleCallback) -> Self {
        Self {
            console: Some(console),
            others: Vec::new(),
        }
    }

    /// Adds a callback after the others.
    pub(crate) fn add(&mut self, callback: Box<dyn TrainerCallback>) {
        self.others.push(callback);
    }

    /// Drops the console's output.
    pub(crate) fn remove_console(&mut self) {
        self.console = None;
    }

    /// Every callback, in the order events reach them.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(dyn TrainerCallback + 'static)> {
        let console = self
            .console
            .iter()
            .map(|c| c as &(dyn TrainerCallback + 'static));
        console.chain(self.others.iter().map(|c| c.as_ref()))
    }

    /// Every callback, mutably, in the order events reach them.
    pub(crate) fn iter_mut(
        &mut self,
    ) -> impl Iterator<Item = &mut (dyn TrainerCallback + 'static)> {
        let console = self
            .console
            .iter_mut()
            .map(|c| c as &mut (dyn TrainerCallback + 'static));
        console.chain(self.others.iter_mut().map(|c| c.as_mut()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_g4_is_pythons() {
        for (value, expected) in [
            (0.6932938098907471, "0.6933"),
            (0.25, "0.25"),
            (0.0006666666666666666, "0.0006667"),
            (5e-05, "5e-05"),
            (0.42857142857142855, "0.4286"),
            (1.0, "1"),
            (3.0, "3"),
            (1377.0, "1377"),
            (12345.0, "1.234e+04"),
            (0.0, "0"),
            (9.99996, "10"),
            (-0.5, "-0.5"),
        ] {
            assert_eq!(format_g4(value), expected, "{value}");
        }
    }

    #[test]
    fn early_stopping_refuses_to_start_without_a_metric_or_evaluations() {
        let mut callback = EarlyStoppingCallback::new(2, 0.0);
        let (state, mut control) = (TrainerState::default(), TrainerControl::default());
        let mut args = TrainingArguments::new("x");
        args.eval_strategy = IntervalStrategy::Epoch;
        let error = callback
            .on_train_begin(&args, &state, &mut control)
            .unwrap_err();
        assert!(
            error.to_string().contains("metric_for_best_model"),
            "{error}"
        );

        args.metric_for_best_model = Some("f1".into());
        args.eval_strategy = IntervalStrategy::No;
        let error = callback
            .on_train_begin(&args, &state, &mut control)
            .unwrap_err();
        assert!(error.to_string().contains("steps or epoch"), "{error}");

        args.eval_strategy = IntervalStrategy::Epoch;
        assert!(callback.on_train_begin(&args, &state, &mut control).is_ok());
    }

    #[test]
    fn early_stopping_counts_evaluations_without_improvement() {
        let mut args = TrainingArguments::new("x");
        args.metric_for_best_model = Some("accuracy".into());
        args.greater_is_better = Some(true);
        let mut callback = EarlyStoppingCallback::new(2, 0.0);
        let mut state = TrainerState::default();
        let mut control = TrainerControl::default();
        let metrics = |v: f64| Metrics::from([("eval_accuracy".to_string(), v)]);
        callback.on_evaluate(&args, &state, &mut control, &metrics(0.7));
        state.best_metric = Some(0.7);
        callback.on_evaluate(&args, &state, &mut control, &metrics(0.7));
        assert_eq!(callback.patience_counter(), 1);
        assert!(!control.should_training_stop);
        callback.on_evaluate(&args, &state, &mut control, &metrics(0.69));
        assert!(control.should_training_stop);
        let saved = callback.state().unwrap();
        let mut restored = EarlyStoppingCallback::new(2, 0.0);
        restored.load_state(&saved);
        assert_eq!(restored.patience_counter(), 2);
    }
}
