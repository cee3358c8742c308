//! One Trainer on every compiled backend, and mixed precision.
//!
//! The cross-backend test trains the same tiny BERT (same weights, same data, dropout off so
//! that the backends' different random streams do not matter) a few steps on each backend and
//! compares losses and logits with flex's. Tolerance: 1e-3 absolute on logits after 8 AdamW
//! steps (the backends' matmul and reduction orders differ in the last bits, and AdamW's
//! normalised steps carry that into every weight).

use crate::common;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{DType, Device};
use ft_bert::prelude::*;
use ft_bert::{BertConfig, BertForSequenceClassification};
use ft_trainer::{
    AdamW, AdamWConfig, IntervalStrategy, SaveStrategy, Trainer, TrainerError, TrainingArguments,
};

const LOGIT_TOLERANCE: f32 = 1e-3;

fn no_dropout() -> BertConfig {
    let mut config = common::tiny_config();
    config.hidden_dropout_prob = 0.0;
    config.attention_probs_dropout_prob = 0.0;
    config
}

fn short_run(dir: &std::path::Path) -> TrainingArguments {
    let mut args = common::args(dir);
    args.max_steps = 8;
    args.logging_steps = 1.0;
    args.eval_strategy = IntervalStrategy::No;
    args.save_strategy = SaveStrategy::No;
    args
}

/// A finished run: its logged losses, its logits on a fixed eval set, and the Trainer.
type Run = (Vec<f64>, Vec<f32>, Trainer<BertForSequenceClassification>);

fn run(device: &Device, config: &BertConfig, args: TrainingArguments) -> Result<Run, TrainerError> {
    let model = BertForSequenceClassification::from_config(config, 42, device).unwrap();
    let mut trainer = Trainer::new(model, args, device)?
        .without_console()
        .with_train_dataset(common::encoded("train", 64, 0))
        .with_tokenizer(common::tokenizer());
    trainer.train(None)?;
    let eval: Arc<_> = common::encoded("validation", 16, 1000);
    let logits = trainer.predict(&eval)?.prediction.predictions;
    Ok((common::losses(&trainer), logits, trainer))
}

#[test]
fn every_backend_trains_the_same_tiny_bert_to_the_same_logits() {
    let _serial = common::serial();
    let config = no_dropout();
    let mut reference: Option<(Vec<f64>, Vec<f32>)> = None;
    for (name, device) in test_support::devices!() {
        let dir = tempfile::tempdir().unwrap();
        let (losses, logits, _) = run(&device, &config, short_run(dir.path())).unwrap();
        assert_eq!(losses.len(), 8, "{name}");
        assert!(losses[7] < losses[0], "{name}: the loss falls: {losses:?}");
        match &reference {
            None => reference = Some((losses, logits)),
            Some((flex_losses, flex_logits)) => {
                assert!(
                    (losses[0] - flex_losses[0]).abs() < 1e-5,
                    "{name}: first loss {} vs flex {}",
                    losses[0],
                    flex_losses[0]
                );
                let diff = logits
                    .iter()
                    .zip(flex_logits)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(
                    diff <= LOGIT_TOLERANCE,
                    "{name}: logits differ from flex's by {diff}"
                );
            }
        }
    }
}

#[test]
fn bf16_and_fp16_train_with_fp32_master_weights() {
    let _serial = common::serial();
    let config = no_dropout();
    #[allow(unused_mut)]
    let mut half_devices = vec![("flex", Device::flex())];
    #[cfg(feature = "tch")]
    #[allow(deprecated)]
    half_devices.push(("tch-cpu", Device::libtorch()));
    let args = |dir: &std::path::Path, precision: &str| TrainingArguments {
        max_steps: 24,
        bf16: precision == "bf16",
        fp16: precision == "fp16",
        ..short_run(dir)
    };
    for (name, device) in half_devices {
        let dir = tempfile::tempdir().unwrap();
        let (full, _, _) = run(&device, &config, args(dir.path(), "fp32")).unwrap();
        for precision in ["bf16", "fp16"] {
            let (losses, logits, trainer) =
                run(&device, &config, args(dir.path(), precision)).unwrap();
            assert!(
                losses.iter().all(|l| l.is_finite()),
                "{name} {precision}: {losses:?}"
            );
            assert!(
                *losses.last().unwrap() < 0.05,
                "{name} {precision} learns: {losses:?}"
            );
            for (step, (half, full)) in losses.iter().zip(&full).enumerate() {
                assert!(
                    (half - full).abs() < 0.05,
                    "{name} {precision}: step {} loss {half} vs fp32 {full}",
                    step + 1
                );
            }
            assert!(logits.iter().all(|l| l.is_finite()));
            let weight = trainer.model().classifier.weight.val();
            assert_eq!(
                weight.dtype(),
                DType::F32,
                "{name} {precision}: master weights stay fp32"
            );
        }
    }
}

#[test]
fn bf16_is_autocast_on_flex_and_a_bf16_copy_elsewhere() {
    use ft_trainer::Precision;
    let dir = tempfile::tempdir().unwrap();
    let args = TrainingArguments {
        bf16: true,
        ..short_run(dir.path())
    };
    let flex = Precision::for_args(&args, &Device::flex()).unwrap();
    assert_eq!(flex, Precision::Bf16Autocast);
    let model = BertForSequenceClassification::from_config(&no_dropout(), 1, &Device::flex());
    assert!(flex.compute_model(&model.unwrap()).is_none(), "no copy");
    assert!(flex.autocast(ft_bert::autocast::is_autocast_bf16));
    assert!(!Precision::Full.autocast(ft_bert::autocast::is_autocast_bf16));
    #[cfg(feature = "tch")]
    {
        #[allow(deprecated)]
        let libtorch = Device::libtorch();
        let tch = Precision::for_args(&args, &libtorch).unwrap();
        assert_eq!(tch, Precision::Bf16, "tch keeps the bf16 copy");
    }
}

#[cfg(feature = "ndarray")]
#[test]
fn a_device_without_bf16_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    #[allow(deprecated)]
    let device = Device::ndarray();
    let mut args = short_run(dir.path());
    args.bf16 = true;
    let model = BertForSequenceClassification::from_config(&no_dropout(), 42, &device).unwrap();
    let err = Trainer::new(model, args, &device).err().expect("refused");
    assert!(
        matches!(
            err,
            TrainerError::Setup(ft_trainer::SetupError::PrecisionUnsupported {
                precision: "bf16",
                ..
            })
        ),
        "{err}"
    );
}

#[test]
fn the_master_model_is_not_touched_by_the_half_copy() {
    let device = Device::flex();
    let model = BertForSequenceClassification::from_config(&no_dropout(), 1, &device).unwrap();
    let before = common::weights(&model);
    let half = ft_trainer::Precision::Bf16.compute_model(&model).unwrap();
    assert_eq!(half.classifier.weight.val().dtype(), DType::BF16);
    assert_eq!(
        half.classifier.weight.id, model.classifier.weight.id,
        "same parameter ids"
    );
    assert!(common::weights(&model) == before);
    assert_eq!(half.num_params(), model.num_params());
}

#[test]
fn gradient_checkpointing_trains_as_the_plain_pass_on_every_backend() {
    let _serial = common::serial();
    let config = no_dropout();
    for (name, device) in test_support::devices!() {
        let dir = tempfile::tempdir().unwrap();
        let (plain_losses, plain_logits, _) = run(&device, &config, short_run(dir.path())).unwrap();
        let mut args = short_run(dir.path());
        args.activation_checkpointing = true;
        let (losses, logits, _) = run(&device, &config, args).unwrap();
        for (step, (a, b)) in plain_losses.iter().zip(&losses).enumerate() {
            assert!(
                (a - b).abs() < 1e-4,
                "{name}, step {}: {a} against {b}",
                step + 1
            );
        }
        let difference = plain_logits
            .iter()
            .zip(&logits)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            difference < LOGIT_TOLERANCE,
            "{name}: logits differ by {difference}"
        );
    }
}

/// The read budget: every read from the device to the host goes through
/// `ft_bert::device_read`, which counts them. On a GPU each read waits for everything queued
/// before it. A step that logs, evaluates and saves nothing reads once: the loss and the
/// gradient norm together, after AdamW's update is queued where AdamW runs as tensor
/// operations (`AdamW::new`, as on a GPU), before the fused host loop otherwise. Gradient
/// checkpointing adds one, the recomputed layers' dropout key (one per pass, not one per
/// layer). burn's own dropout reads nothing; flex's draws its key with a read of host memory,
/// so flex runs here without dropout.
#[test]
fn a_training_step_reads_from_the_device_once() {
    use ft_bert::device_read::reads_on_this_thread;
    let _serial = common::serial();
    const STEPS: u64 = 4;
    for (backend, device) in test_support::devices!() {
        let config = if backend == "flex" {
            no_dropout()
        } else {
            common::tiny_config()
        };
        for (checkpointing, on_device) in [(false, false), (true, false), (false, true)] {
            let dir = tempfile::tempdir().unwrap();
            let mut args = short_run(dir.path());
            args.max_steps = STEPS as i64;
            args.logging_strategy = IntervalStrategy::No;
            args.activation_checkpointing = checkpointing;
            let optimizer = if on_device {
                AdamW::new(AdamWConfig::from(&args))
            } else {
                AdamW::for_device(AdamWConfig::from(&args), &device)
            };
            let model = BertForSequenceClassification::from_config(&config, 42, &device).unwrap();
            let mut trainer = Trainer::new(model, args, &device)
                .unwrap()
                .without_console()
                .with_optimizer(optimizer)
                .with_train_dataset(common::encoded("train", 64, 0))
                .with_tokenizer(common::tokenizer());
            let before = reads_on_this_thread();
            let output = trainer.train(None).unwrap();
            let reads = reads_on_this_thread() - before;
            let per_step = 1 + u64::from(checkpointing);
            assert_eq!(
                reads,
                STEPS * per_step,
                "{backend}, gradient checkpointing {checkpointing}, AdamW on the device \
                 {on_device}: {reads} reads in {STEPS} steps"
            );
            assert_eq!(output.global_step, STEPS as usize);
            assert!(output.training_loss.is_finite(), "{backend}: {output:?}");
        }
    }
}

/// Evaluation reads once per batch: its logits and loss together.
#[test]
fn evaluation_reads_from_the_device_once_per_batch() {
    use ft_bert::device_read::reads_on_this_thread;
    for (backend, device) in test_support::devices!() {
        let dir = tempfile::tempdir().unwrap();
        let mut args = short_run(dir.path());
        args.per_device_eval_batch_size = 8;
        let model = BertForSequenceClassification::from_config(&no_dropout(), 42, &device).unwrap();
        let mut trainer = Trainer::new(model, args, &device)
            .unwrap()
            .without_console()
            .with_eval_dataset(common::encoded("validation", 20, 1000))
            .with_tokenizer(common::tokenizer());
        let before = reads_on_this_thread();
        let metrics = trainer.evaluate().unwrap();
        let reads = reads_on_this_thread() - before;
        assert_eq!(reads, 3, "{backend}: 20 rows in batches of 8");
        assert!(metrics["eval_loss"].is_finite(), "{backend}: {metrics:?}");
    }
}
