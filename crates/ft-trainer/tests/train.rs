//! The Trainer on a tiny BERT: the loop, logs, evaluation, checkpoints, determinism, resume.

use crate::common;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ft_bert::prelude::*;
use ft_trainer::{
    IntervalStrategy, ResumeFrom, SetupError, TrainerCallback, TrainerControl, TrainerError,
    TrainerState, TrainingArguments, get_last_checkpoint,
};

#[test]
fn trains_logs_evaluates_and_checkpoints_like_transformers() {
    let _serial = common::serial();
    let out = tempfile::tempdir().unwrap();
    let mut trainer = common::trainer(common::args(out.path()));
    let output = trainer.train(None).unwrap();

    // 64 rows / batch 8 = 8 steps per epoch, 5 epochs.
    assert_eq!(output.global_step, 40);
    let state = trainer.state();
    assert_eq!(state.max_steps, 40);
    assert_eq!(state.epoch, 5.0);
    for key in [
        "train_runtime",
        "train_samples_per_second",
        "train_steps_per_second",
        "total_flos",
        "train_loss",
        "epoch",
    ] {
        assert!(output.metrics.contains_key(key), "{key}");
    }
    assert_eq!(output.metrics["train_loss"], output.training_loss);
    // total_flos = 6 × non-embedding parameters × padded tokens.
    assert!(output.metrics["total_flos"] > 0.0);

    let losses = common::losses(&trainer);
    assert_eq!(losses.len(), 10, "a log every 4 steps");
    assert!(
        losses.last().unwrap() < &(losses[0] * 0.2),
        "the loss falls on a learnable task: {losses:?}"
    );
    let first = &state.log_history[0];
    assert_eq!(first["step"], 4);
    assert_eq!(first["epoch"], 0.5);
    assert!(first.contains_key("grad_norm") && first.contains_key("learning_rate"));
    // Warm-up of ceil(0.1 · 40) = 4 steps: step 4 runs at 2e-2 · 3/4, step 8 at
    // 2e-2 · (40 − 7) / (40 − 4).
    assert!((first["learning_rate"].as_f64().unwrap() - 2e-2 * 3.0 / 4.0).abs() < 1e-15);
    let second = state
        .log_history
        .iter()
        .filter(|e| e.contains_key("loss"))
        .nth(1)
        .unwrap();
    assert!((second["learning_rate"].as_f64().unwrap() - 2e-2 * 33.0 / 36.0).abs() < 1e-15);

    let evals: Vec<_> = state
        .log_history
        .iter()
        .filter(|e| e.contains_key("eval_loss"))
        .collect();
    assert_eq!(evals.len(), 5, "one evaluation per epoch");
    for key in [
        "eval_accuracy",
        "eval_f1",
        "eval_runtime",
        "eval_samples_per_second",
        "eval_steps_per_second",
    ] {
        assert!(evals[0].contains_key(key), "{key}");
    }
    assert_eq!(evals[4]["epoch"], 5.0);
    assert!(
        evals[4]["eval_accuracy"].as_f64().unwrap() > 0.8,
        "{:?}",
        evals[4]
    );
    let last = state.log_history.last().unwrap();
    assert!(last.contains_key("train_runtime"));

    // Checkpoints every 8 steps, complete and loadable.
    let checkpoints = ft_trainer::sorted_checkpoints(out.path());
    assert_eq!(
        checkpoints.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [8, 16, 24, 32, 40]
    );
    let latest = get_last_checkpoint(out.path()).unwrap();
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "trainer_state.json",
        "optimizer.safetensors",
        "scheduler.json",
        "rng_state.json",
        "training_args.json",
    ] {
        assert!(latest.join(file).is_file(), "{file}");
    }
    let saved = TrainerState::load(&latest.join("trainer_state.json")).unwrap();
    assert_eq!(saved.global_step, 40);
    // Saved at step 40 before the epoch-end evaluation and the final summary, as transformers.
    let n = state.log_history.len();
    assert_eq!(saved.log_history, state.log_history[..n - 2]);
    assert!(saved.stateful_callbacks.contains_key("TrainerControl"));
    let model = ft_bert::BertForSequenceClassification::from_pretrained(
        latest.to_str().unwrap(),
        2,
        &burn::tensor::Device::flex(),
    )
    .unwrap();
    assert_eq!(common::weights(&model), common::weights(trainer.model()));

    // predict: logits for every row and test_* metrics.
    let prediction = trainer
        .predict(&common::encoded("validation", 24, 1000))
        .unwrap();
    assert_eq!(prediction.predictions_shape(), (24, 2));
    assert!(prediction.metrics.contains_key("test_accuracy"));
    assert!(prediction.metrics.contains_key("test_loss"));
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let _serial = common::serial();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let out = tempfile::tempdir().unwrap();
            let mut args = common::args(out.path());
            args.num_train_epochs = 1.0;
            args.save_strategy = ft_trainer::SaveStrategy::No;
            let mut trainer = common::trainer(args);
            trainer.train(None).unwrap();
            (common::losses(&trainer), common::weights(trainer.model()))
        })
        .collect();
    assert_eq!(runs[0].0, runs[1].0);
    assert!(
        runs[0].1 == runs[1].1,
        "the weights differ between two runs"
    );
}

/// Sets a flag after a given step, as a Ctrl-C would.
struct InterruptAt(usize, Arc<AtomicBool>);

impl TrainerCallback for InterruptAt {
    fn name(&self) -> &str {
        "InterruptAt"
    }
    fn on_step_end(&mut self, _: &TrainingArguments, state: &TrainerState, _: &mut TrainerControl) {
        if state.global_step == self.0 {
            self.1.store(true, Ordering::SeqCst);
        }
    }
}

#[test]
fn an_interrupted_run_resumes_to_the_same_weights() {
    let _serial = common::serial();
    // Per-step logs: a resumed run, like transformers', starts a new logging interval.
    let args = |dir: &std::path::Path| TrainingArguments {
        logging_steps: 1.0,
        ..common::args(dir)
    };
    let full_dir = tempfile::tempdir().unwrap();
    let mut full = common::trainer(args(full_dir.path()));
    full.train(None).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let mut first = common::trainer(args(dir.path()))
        .with_interrupt_flag(flag.clone())
        .with_callback(InterruptAt(11, flag));
    let err = first.train(None).unwrap_err();
    let TrainerError::Interrupted { step, checkpoint } = err else {
        panic!("{err:?}");
    };
    assert_eq!(step, 11);
    assert!(checkpoint.ends_with("checkpoint-11"));

    let mut resumed = common::trainer(args(dir.path()));
    let output = resumed.train(Some(ResumeFrom::Latest)).unwrap();
    assert_eq!(output.global_step, 40);
    assert_eq!(common::losses(&resumed), common::losses(&full));
    assert!(
        common::weights(resumed.model()) == common::weights(full.model()),
        "the resumed weights differ from the uninterrupted run's"
    );
    let evals = |t: &ft_trainer::Trainer<_>| -> Vec<f64> {
        t.state()
            .log_history
            .iter()
            .filter_map(|e| e.get("eval_accuracy")?.as_f64())
            .collect()
    };
    assert_eq!(evals(&resumed), evals(&full));
}

/// Sends this process SIGTERM at the end of a given step.
struct SigtermAt(usize);

impl TrainerCallback for SigtermAt {
    fn name(&self) -> &str {
        "SigtermAt"
    }
    fn on_step_end(&mut self, _: &TrainingArguments, state: &TrainerState, _: &mut TrainerControl) {
        if state.global_step == self.0 {
            // Handled: the Trainer watches SIGTERM under `enable_jit_checkpoint`.
            signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
        }
    }
}

#[test]
fn sigterm_under_enable_jit_checkpoint_writes_a_checkpoint_and_stops() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let args = TrainingArguments {
        enable_jit_checkpoint: true,
        ..common::args(dir.path())
    };
    let mut trainer = common::trainer(args).with_callback(SigtermAt(5));
    let err = trainer.train(None).unwrap_err();
    let TrainerError::Interrupted { step, checkpoint } = err else {
        panic!("{err:?}");
    };
    assert_eq!(step, 5);
    assert!(checkpoint.ends_with("checkpoint-5"));
    let state = TrainerState::load(&checkpoint.join("trainer_state.json")).unwrap();
    assert_eq!(state.global_step, 5);

    // A signal from before `train()` is not taken for one during it.
    let dir = tempfile::tempdir().unwrap();
    let args = TrainingArguments {
        enable_jit_checkpoint: true,
        max_steps: 3,
        ..common::args(dir.path())
    };
    let output = common::trainer(args).train(None).unwrap();
    assert_eq!(output.global_step, 3);
}

#[test]
fn eval_on_start_evaluates_before_the_first_step() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let args = TrainingArguments {
        eval_on_start: true,
        max_steps: 2,
        ..common::args(dir.path())
    };
    let mut trainer = common::trainer(args);
    trainer.train(None).unwrap();
    let history = &trainer.state().log_history;
    let first = &history[0];
    assert!(first.contains_key("eval_accuracy"), "{first:?}");
    assert_eq!((&first["step"], &first["epoch"]), (&0.into(), &0.0.into()));
    let evals = history.iter().filter(|e| e.contains_key("eval_loss"));
    assert_eq!(evals.count(), 2, "at the start and at the end of the epoch");
}

#[test]
fn setup_errors_are_clear() {
    let _serial = common::serial();
    let out = tempfile::tempdir().unwrap();
    let device = burn::tensor::Device::flex();
    let model =
        ft_bert::BertForSequenceClassification::from_config(&common::tiny_config(), 1, &device)
            .unwrap();
    let mut args = common::args(out.path());
    args.eval_strategy = IntervalStrategy::Epoch;
    let mut trainer = ft_trainer::Trainer::new(model, args, &device)
        .unwrap()
        .without_console()
        .with_train_dataset(common::encoded("train", 16, 0))
        .with_tokenizer(common::tokenizer());
    let err = trainer.train(None).unwrap_err();
    assert!(
        matches!(
            &err,
            TrainerError::Setup(SetupError::EvalStrategyWithoutDataset { strategy })
                if strategy == "epoch"
        ),
        "{err:?}"
    );

    let mut trainer = common::trainer(common::args(out.path()));
    let err = trainer.train(Some(ResumeFrom::Latest)).unwrap_err();
    assert!(matches!(err, TrainerError::NoCheckpoint(_)), "{err:?}");

    // Early stopping without a metric to watch refuses before the first step.
    let mut trainer = common::trainer(common::args(out.path()))
        .with_callback(ft_trainer::EarlyStoppingCallback::new(2, 0.0));
    let err = trainer.train(None).unwrap_err();
    assert!(
        matches!(&err, TrainerError::Callback { callback, .. } if callback == "EarlyStoppingCallback"),
        "{err:?}"
    );
    assert_eq!(trainer.state().global_step, 0);
    assert!(ft_trainer::sorted_checkpoints(out.path()).is_empty());

    // BERT's token types (0 and 1) for a RoBERTa, which embeds one type: refused by row, as
    // transformers would fail on the index; DistilBERT, which takes none, ignores them.
    let config = |json: &str| {
        ft_bert::BertConfig::from_json_bytes(std::path::Path::new("config.json"), json.as_bytes())
            .unwrap()
    };
    let sizes = r#""vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 64"#;
    let roberta = config(&format!(
        r#"{{"model_type": "roberta", {sizes}, "type_vocab_size": 1, "pad_token_id": 1,
            "max_position_embeddings": 130}}"#
    ));
    let model =
        ft_bert::RobertaForSequenceClassification::from_config(&roberta, 1, &device).unwrap();
    let mut args = common::args(out.path());
    args.eval_strategy = IntervalStrategy::No;
    args.max_steps = 1;
    let mut trainer = ft_trainer::Trainer::new(model, args.clone(), &device)
        .unwrap()
        .without_console()
        .with_train_dataset(common::encoded("train", 16, 0))
        .with_tokenizer(common::tokenizer());
    let err = trainer.train(None).unwrap_err();
    assert!(
        matches!(
            err,
            TrainerError::Setup(SetupError::TokenTypeBeyondVocabulary {
                role: "train",
                idx: 0,
                token_type: 1,
                type_vocab_size: 1
            })
        ),
        "{err:?}"
    );
    let distilbert = config(
        r#"{"model_type": "distilbert", "vocab_size": 30522, "dim": 32, "n_layers": 1,
            "n_heads": 2, "hidden_dim": 64}"#,
    );
    let model =
        ft_bert::DistilBertForSequenceClassification::from_config(&distilbert, 1, &device).unwrap();
    let mut trainer = ft_trainer::Trainer::new(model, args, &device)
        .unwrap()
        .without_console()
        .with_train_dataset(common::encoded("train", 16, 0))
        .with_tokenizer(common::tokenizer());
    assert_eq!(trainer.train(None).unwrap().global_step, 1);
}

#[test]
fn save_total_limit_1_keeps_only_the_best_checkpoint_at_the_end() {
    let _serial = common::serial();
    let out = tempfile::tempdir().unwrap();
    let mut args = common::args(out.path());
    args.num_train_epochs = 3.0;
    args.save_strategy = ft_trainer::SaveStrategy::Epoch;
    args.load_best_model_at_end = true;
    args.save_total_limit = Some(1);
    let mut trainer = common::trainer(args.validated().unwrap());
    trainer.train(None).unwrap();
    let best = trainer.state().best_model_checkpoint.clone().unwrap();
    let left: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("checkpoint"))
        .collect();
    let best_name = std::path::Path::new(&best).file_name().unwrap();
    assert_eq!(
        left,
        [best_name.to_string_lossy()],
        "nothing half-deleted is left"
    );
}

#[test]
fn a_diverging_run_stops_at_the_first_non_finite_step_without_saving_it() {
    let _serial = common::serial();
    let out = tempfile::tempdir().unwrap();
    let mut args = common::args(out.path());
    args.learning_rate = 1e30;
    args.max_grad_norm = 0.0;
    args.save_steps = 1.0;
    let mut trainer = common::trainer(args);
    let err = trainer.train(None).unwrap_err();
    let TrainerError::NonFinite { step, .. } = err else {
        panic!("{err:?}");
    };
    assert!(err.to_string().contains(&format!("optimizer step {step}")));
    let last = ft_trainer::sorted_checkpoints(out.path())
        .last()
        .map(|(s, _)| *s);
    assert_eq!(last, Some(step - 1), "checkpoints stop before the bad step");
}

#[test]
fn gradient_accumulation_counts_optimizer_steps_and_sums_micro_batch_losses() {
    let _serial = common::serial();
    let out = tempfile::tempdir().unwrap();
    let mut args = common::args(out.path());
    args.gradient_accumulation_steps = 3;
    args.learning_rate = 0.0;
    args.logging_steps = 1.0;
    args.num_train_epochs = 1.0;
    args.eval_strategy = IntervalStrategy::No;
    args.save_strategy = ft_trainer::SaveStrategy::No;
    let mut trainer = common::trainer(args);
    let output = trainer.train(None).unwrap();
    // 8 micro-batches per epoch in windows of 3: 3 optimizer steps (3 + 3 + 2).
    assert_eq!(output.global_step, 3);
    let losses = common::losses(&trainer);
    // transformers 5 sums the micro-batch means for BERT (no division by the accumulation).
    assert!(losses[0] > 1.8 && losses[0] < 2.4, "{losses:?}");
    assert!(losses[2] > 1.2 && losses[2] < 1.6, "{losses:?}");
}

#[test]
fn early_stopping_and_the_best_model_at_end() {
    let _serial = common::serial();
    let out = tempfile::tempdir().unwrap();
    let mut args = common::args(out.path());
    args.num_train_epochs = 20.0;
    args.save_strategy = ft_trainer::SaveStrategy::Epoch;
    args.load_best_model_at_end = true;
    args.metric_for_best_model = Some("loss".into());
    args.save_total_limit = Some(2);
    let mut trainer = common::trainer(args.validated().unwrap())
        .with_callback(ft_trainer::EarlyStoppingCallback::new(2, 0.0));
    let output = trainer.train(None).unwrap();
    assert!(
        output.global_step < 160,
        "stopped early at step {}",
        output.global_step
    );
    let state = trainer.state();
    let best = state
        .best_model_checkpoint
        .clone()
        .expect("a best checkpoint");
    let best_step = state.best_global_step.unwrap();
    assert!(best.ends_with(&format!("checkpoint-{best_step}")));
    let eval_losses: Vec<f64> = state
        .log_history
        .iter()
        .filter_map(|e| e.get("eval_loss")?.as_f64())
        .collect();
    let min = eval_losses.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(state.best_metric, Some(min));
    // Two evaluations without improvement after the best one stopped the run.
    assert_eq!(eval_losses.iter().rev().position(|&l| l == min), Some(2));
    // The best checkpoint survives rotation and its weights are the model's now.
    let kept = ft_trainer::sorted_checkpoints(out.path());
    assert_eq!(kept.len(), 2);
    assert!(kept.iter().any(|(s, _)| *s == best_step));
    let model = ft_bert::BertForSequenceClassification::from_pretrained(
        &best,
        2,
        &burn::tensor::Device::flex(),
    )
    .unwrap();
    assert!(common::weights(&model) == common::weights(trainer.model()));
}

/// transformers' `LabelSmoother` over every row at once, in f64, from the logits the Trainer
/// predicted.
fn smoothed_cross_entropy(prediction: &ft_trainer::EvalPrediction, epsilon: f64) -> f64 {
    let labels = prediction.label_ids.as_ref().unwrap();
    let rows = prediction.len();
    let mut total = 0.0;
    for (row, &label) in labels.iter().enumerate() {
        let logits: Vec<f64> = prediction.row(row).iter().map(|&v| v as f64).collect();
        let max = logits.iter().cloned().fold(f64::MIN, f64::max);
        let log_sum = logits.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
        let neg_log_probs: Vec<f64> = logits.iter().map(|v| log_sum - v).collect();
        let uniform = neg_log_probs.iter().sum::<f64>() / logits.len() as f64;
        total += (1.0 - epsilon) * neg_log_probs[label as usize] + epsilon * uniform;
    }
    total / rows as f64
}

#[test]
fn label_smoothing_changes_the_training_and_evaluation_loss_as_transformers_does() {
    let _serial = common::serial();
    let out = tempfile::tempdir().unwrap();
    let mut args = common::args(out.path());
    // Enough steps for confident predictions, where smoothing weighs most.
    args.max_steps = 24;
    args.eval_strategy = IntervalStrategy::No;
    args.save_strategy = ft_trainer::SaveStrategy::No;
    args.logging_steps = 1.0;
    let plain_losses = {
        let mut trainer = common::trainer(args.clone());
        trainer.train(None).unwrap();
        common::losses(&trainer)
    };
    args.label_smoothing_factor = 0.2;
    let mut trainer = common::trainer(args);
    trainer.train(None).unwrap();
    let smoothed_losses = common::losses(&trainer);
    // The first step's weights are the same, so its loss differs by the smoothing alone; a
    // smoothed loss is larger on a model that is not yet uniform.
    assert!(
        smoothed_losses[0] > plain_losses[0],
        "{smoothed_losses:?} {plain_losses:?}"
    );

    let eval = common::encoded("validation", 24, 1000);
    let output = trainer.predict(&eval).unwrap();
    let expected = smoothed_cross_entropy(&output.prediction, 0.2);
    let loss = output.metrics["test_loss"];
    assert!((loss - expected).abs() < 1e-5, "{loss} against {expected}");
    let unsmoothed = smoothed_cross_entropy(&output.prediction, 0.0);
    assert!(
        (loss - unsmoothed).abs() > 1e-3,
        "the smoothing shows in the loss: {loss} against {unsmoothed} unsmoothed"
    );
}

/// What TensorBoard shows for the event files under `dir`, read by TensorBoard's own
/// `EventAccumulator` (`python/read_tensorboard.py`).
fn tensorboard_view(dir: &std::path::Path) -> serde_json::Value {
    let output = std::process::Command::new(test_support::python())
        .arg(test_support::python_script("read_tensorboard.py"))
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn report_to_tensorboard_writes_every_logged_value_as_tensorboard_reads_it() {
    let _serial = common::serial();
    let out = tempfile::tempdir().unwrap();
    let mut args = common::args(out.path());
    args.num_train_epochs = 2.0;
    args.report_to = vec![ft_trainer::Integration::Tensorboard];
    let mut trainer = common::trainer(args);
    trainer.train(None).unwrap();

    let runs: Vec<_> = std::fs::read_dir(out.path().join("runs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(
        runs.len(),
        1,
        "one run folder, runs/<date>_<host>: {runs:?}"
    );
    let view = tensorboard_view(&runs[0]);
    let scalars = view["scalars"].as_object().unwrap();
    // Every number of every log_history entry, under transformers' tag, at its step.
    let mut expected = std::collections::BTreeMap::<String, Vec<(u64, f64)>>::new();
    for entry in &trainer.state().log_history {
        let step = entry["step"].as_u64().unwrap();
        for (key, value) in entry.iter().filter(|(key, _)| key.as_str() != "step") {
            let tag = ft_trainer::tensorboard::rewrite_tag(key);
            expected
                .entry(tag)
                .or_default()
                .push((step, value.as_f64().unwrap()));
        }
    }
    assert!(expected.contains_key("train/loss") && expected.contains_key("eval/accuracy"));
    assert!(expected.contains_key("train/learning_rate") && expected.contains_key("eval/loss"));
    let tags: Vec<&String> = scalars.keys().collect();
    assert_eq!(tags, expected.keys().collect::<Vec<_>>());
    for (tag, points) in &expected {
        let read: Vec<(u64, f64)> = scalars[tag]
            .as_array()
            .unwrap()
            .iter()
            .map(|point| (point[0].as_u64().unwrap(), point[1].as_f64().unwrap()))
            .collect();
        assert_eq!(read.len(), points.len(), "{tag}");
        for ((step, value), (read_step, read_value)) in points.iter().zip(&read) {
            assert_eq!(step, read_step, "{tag}");
            // TensorBoard keeps scalars in single precision.
            let tolerance = 1e-6 * value.abs().max(1.0);
            assert!(
                (value - read_value).abs() <= tolerance,
                "{tag} at {step}: {value} {read_value}"
            );
        }
    }
    let arguments: serde_json::Value =
        serde_json::from_str(view["texts"]["args/text_summary"].as_str().unwrap()).unwrap();
    assert_eq!(arguments["report_to"], serde_json::json!(["tensorboard"]));
    assert_eq!(arguments["learning_rate"], 2e-2);
    assert!(
        view["texts"]["model_config/text_summary"]
            .as_str()
            .unwrap()
            .contains("\"hidden_size\"")
    );
}
