//! Resuming across the two Trainers: a checkpoint bert-ft writes resumes in transformers'
//! Trainer, and one transformers writes resumes in bert-ft, each continuing as a run that
//! never left its Trainer. Runs python/hf_resume.py with every transformers the project checks
//! against (`test_support::transformers()`: `.venv`'s 5.24 and 5.25 beside it, or
//! `$FT_PYTHON`'s alone). The shared runs are made once, in cargo's folder for test files.
//!
//! Both Trainers fine-tune one tiny BERT (bert-ft's random initialisation, saved with
//! `save_pretrained`) on the same 64 token-id rows, in dataset order, in fp32, without dropout,
//! for 12 steps of 8 rows with 2 warm-up steps, weight decay and clipping; checkpoints at step
//! 5. The resumed 7 steps (across the epoch's end at step 8) are compared with the
//! uninterrupted run of the Trainer that resumed.
//!
//! Tolerance: the resumed run starts from weights and moments that the other framework
//! computed for 5 steps. Its float32 kernels sum in other orders (GEMM tiling, softmax,
//! LayerNorm), so the two differ by rounding, relatively about 1e-6 of a weight or a moment
//! after 5 steps (measured: 9e-6 of a moment's largest value), and Adam's update, a ratio of
//! the moments, passes such differences on without amplifying them over 7 more steps. The
//! losses, about 0.67 (one float32 ulp is 6e-8), agree to 1e-5: measured 1.2e-7 resuming in
//! transformers and 6e-8 resuming in bert-ft (and 1e-7 between the two uninterrupted runs).
//! What the test is there to catch is two orders of magnitude above it: moments restarted
//! from zero move the loss by 8.8e-3, and moments of non-square weights transposed the wrong
//! way (a bug this test found) by 6.2e-3.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::tensor::Device;
use ft_bert::prelude::*;
use ft_bert::{BertConfig, BertForSequenceClassification};
use ft_trainer::{
    CheckpointProblem, IntervalStrategy, ResumeFrom, SaveStrategy, StepRecord,
    TrainSamplingStrategy, Trainer, TrainerError, TrainingArguments,
};
use glue_data::Label;
use test_support::Transformers;

use crate::common;

const ROWS: usize = 64;
const BATCH: usize = 8;
const STEPS: usize = 12;
const SAVED_AT: usize = 5;
const WARMUP: usize = 2;
const LEARNING_RATE: f64 = 5e-3;
const WEIGHT_DECAY: f64 = 0.01;
/// See the module's documentation.
const LOSS_TOLERANCE: f64 = 1e-5;

/// A step as either Trainer reports it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
struct Step {
    step: usize,
    loss: f64,
    learning_rate: f64,
}

/// What python/hf_resume.py reports of a run.
#[derive(Debug, Clone, serde::Deserialize)]
struct HfReport {
    steps: Vec<Step>,
    loaded: Option<HfLoaded>,
    messages: Vec<String>,
}

/// What transformers had loaded as the first resumed step started.
#[derive(Debug, Clone, serde::Deserialize)]
struct HfLoaded {
    optimizer_step: Option<f64>,
    scheduler_last_epoch: i64,
}

/// The files both directions share: the initial model, the rows, and the uninterrupted run of
/// bert-ft's Trainer and of each transformers', with their checkpoints at step 5. Made once
/// for this binary's tests, in cargo's folder for test files, replaced by the next run.
struct Runs {
    dir: PathBuf,
    ours: Vec<Step>,
    hf: Vec<HfRun>,
}

/// One transformers' uninterrupted run.
struct HfRun {
    transformers: Transformers,
    /// Its output folder's name in [`Runs::dir`].
    out: String,
    report: HfReport,
}

impl Runs {
    fn get() -> &'static Runs {
        static RUNS: OnceLock<Runs> = OnceLock::new();
        RUNS.get_or_init(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hf_resume");
            let _ = std::fs::remove_dir_all(&dir);
            let model = BertForSequenceClassification::from_config(&config(), 42, &Device::flex());
            model.unwrap().save_pretrained(&dir.join("init")).unwrap();
            write_rows(&dir.join("rows.jsonl"));
            let ours = {
                let _serial = common::serial();
                let mut trainer = trainer(&dir.join("init"), &dir.join("ours"));
                trainer.train(None).unwrap();
                steps(trainer.step_history())
            };
            let hf = test_support::transformers()
                .into_iter()
                .map(|transformers| {
                    let out = format!("hf-{}", label(&transformers));
                    let report = hf_train(&transformers, &dir, &out, None);
                    HfRun {
                        transformers,
                        out,
                        report,
                    }
                })
                .collect();
            Runs { dir, ours, hf }
        })
    }
}

/// A transformers' version, to name folders by.
fn label(transformers: &Transformers) -> String {
    transformers
        .version
        .clone()
        .unwrap_or_else(|| "ft-python".to_string())
}

/// A tiny BERT without dropout, so that both Trainers compute one function.
fn config() -> BertConfig {
    let mut config = serde_json::to_value(common::tiny_config()).unwrap();
    config["hidden_dropout_prob"] = 0.0.into();
    config["attention_probs_dropout_prob"] = 0.0.into();
    serde_json::from_value(config).unwrap()
}

/// The rows as token ids, so that both Trainers see bert-ft's tokenization.
fn write_rows(path: &Path) {
    let dataset = common::encoded("train", ROWS, 0);
    let lines: Vec<String> = dataset
        .rows()
        .map(|row| {
            let Some(Label::Class(label)) = row.label else {
                panic!("the task has class labels");
            };
            serde_json::json!({
                "input_ids": row.input_ids,
                "token_type_ids": row.token_type_ids.unwrap(),
                "label": label,
            })
            .to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n")).unwrap();
}

/// bert-ft's Trainer on the model saved in `init`, with the settings python/hf_resume.py
/// gives transformers'.
fn trainer(init: &Path, output_dir: &Path) -> Trainer<BertForSequenceClassification> {
    let model =
        BertForSequenceClassification::from_pretrained(init.to_str().unwrap(), 2, &Device::flex());
    trainer_of(model.unwrap(), output_dir)
}

/// bert-ft's Trainer on `model`, with the settings python/hf_resume.py gives transformers'.
fn trainer_of(
    model: BertForSequenceClassification,
    output_dir: &Path,
) -> Trainer<BertForSequenceClassification> {
    let args = TrainingArguments {
        max_steps: STEPS as i64,
        save_steps: SAVED_AT as f64,
        save_strategy: SaveStrategy::Steps,
        per_device_train_batch_size: BATCH,
        learning_rate: LEARNING_RATE,
        warmup_steps: WARMUP as f64,
        weight_decay: WEIGHT_DECAY,
        logging_steps: 1.0,
        eval_strategy: IntervalStrategy::No,
        train_sampling_strategy: TrainSamplingStrategy::Sequential,
        disable_tqdm: true,
        ..TrainingArguments::new(output_dir)
    };
    Trainer::new(model, args, &Device::flex())
        .unwrap()
        .without_console()
        .with_train_dataset(common::encoded("train", ROWS, 0))
        .with_tokenizer(common::tokenizer())
}

/// Runs python/hf_resume.py with `transformers` and `args`; returns its stdout, failing on
/// an error.
fn hf_resume_py(transformers: &Transformers, args: &[&std::ffi::OsStr]) -> String {
    let output = transformers
        .command()
        .arg(test_support::python_script("hf_resume.py"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{transformers}: {stdout}\n{stderr}"
    );
    stdout
}

fn steps(history: &[StepRecord]) -> Vec<Step> {
    history
        .iter()
        .map(|r| Step {
            step: r.step,
            loss: r.loss,
            learning_rate: r.learning_rate,
        })
        .collect()
}

/// Runs `transformers`' Trainer for 12 steps into `dir/out`, from `resume` if given.
fn hf_train(transformers: &Transformers, dir: &Path, out: &str, resume: Option<&Path>) -> HfReport {
    let report = dir.join(format!("{out}.json"));
    let mut command = transformers.command();
    command
        .arg(test_support::python_script("hf_resume.py"))
        .arg("train")
        .arg("--model")
        .arg(dir.join("init"))
        .arg("--tokenizer")
        .arg(test_support::minilm_dir().join("tokenizer.json"))
        .arg("--data")
        .arg(dir.join("rows.jsonl"))
        .arg("--out")
        .arg(dir.join(out))
        .arg("--report")
        .arg(&report);
    for (flag, value) in [
        ("--max-steps", STEPS.to_string()),
        ("--save-steps", SAVED_AT.to_string()),
        ("--batch-size", BATCH.to_string()),
        ("--warmup-steps", WARMUP.to_string()),
        ("--learning-rate", LEARNING_RATE.to_string()),
        ("--weight-decay", WEIGHT_DECAY.to_string()),
    ] {
        command.args([flag, &value]);
    }
    if let Some(resume) = resume {
        command.arg("--resume").arg(resume);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap()
}

/// The largest loss difference over the steps after the checkpoint, and the learning rates
/// of the first resumed step in both runs.
fn compare(resumed: &[Step], uninterrupted: &[Step]) -> (f64, f64, f64) {
    let after: Vec<&Step> = uninterrupted.iter().filter(|s| s.step > SAVED_AT).collect();
    let resumed: Vec<&Step> = resumed.iter().filter(|s| s.step > SAVED_AT).collect();
    assert_eq!(
        resumed.iter().map(|s| s.step).collect::<Vec<_>>(),
        after.iter().map(|s| s.step).collect::<Vec<_>>(),
        "the resumed run takes the steps after the checkpoint"
    );
    let largest = resumed
        .iter()
        .zip(&after)
        .map(|(a, b)| (a.loss - b.loss).abs())
        .fold(0.0, f64::max);
    (largest, resumed[0].learning_rate, after[0].learning_rate)
}

/// The files of a checkpoint, by name.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_bert_ft_checkpoint_resumes_in_transformers_as_its_own_run() {
    let runs = Runs::get();
    let checkpoint = runs.dir.join(format!("ours/checkpoint-{SAVED_AT}"));
    let present = files(&checkpoint);
    for file in [
        "optimizer.pt",
        "scheduler.pt",
        "rng_state.pth",
        "optimizer.safetensors",
    ] {
        assert!(present.iter().any(|f| f == file), "{file} in {present:?}");
    }
    for run in &runs.hf {
        let transformers = &run.transformers;
        let out = format!("{}-from-ours", run.out);
        let resumed = hf_train(transformers, &runs.dir, &out, Some(&checkpoint));

        let loaded = resumed.loaded.clone().expect("a step ran");
        assert_eq!(
            loaded.optimizer_step,
            Some(SAVED_AT as f64),
            "{transformers}: AdamW"
        );
        assert_eq!(
            loaded.scheduler_last_epoch, SAVED_AT as i64,
            "{transformers}: schedule"
        );
        let complaints: Vec<&String> = resumed
            .messages
            .iter()
            .filter(|m| m.contains("RNG") || m.contains("optimizer") || m.contains("scheduler"))
            .collect();
        assert!(complaints.is_empty(), "{transformers}: {complaints:#?}");

        let (largest, lr_resumed, lr_uninterrupted) = compare(&resumed.steps, &run.report.steps);
        eprintln!("bert-ft -> {transformers}: largest loss difference {largest:e}");
        assert!(largest < LOSS_TOLERANCE, "{transformers}: {largest:e}");
        assert_eq!(lr_resumed, lr_uninterrupted, "{transformers}");
    }
}

#[test]
fn a_transformers_checkpoint_resumes_in_bert_ft_as_its_own_run() {
    let runs = Runs::get();
    for run in &runs.hf {
        let transformers = &run.transformers;
        let checkpoint = runs.dir.join(format!("{}/checkpoint-{SAVED_AT}", run.out));
        let present = files(&checkpoint);
        for ours in [
            "optimizer.safetensors",
            "scheduler.json",
            "rng_state.json",
            "training_args.json",
        ] {
            assert!(!present.iter().any(|f| f == ours), "{ours} in {present:?}");
        }
        for theirs in [
            "optimizer.pt",
            "scheduler.pt",
            "training_args.bin",
            "rng_state.pth",
        ] {
            assert!(
                present.iter().any(|f| f == theirs),
                "{theirs} in {present:?}"
            );
        }
        let _serial = common::serial();
        let out = runs.dir.join(format!("ours-from-{}", run.out));
        let mut trainer = trainer(&runs.dir.join("init"), &out);
        let output = trainer.train(Some(ResumeFrom::Path(checkpoint))).unwrap();
        assert_eq!(output.global_step, STEPS);

        let (largest, lr_resumed, lr_uninterrupted) =
            compare(&steps(trainer.step_history()), &runs.ours);
        eprintln!("{transformers} -> bert-ft: largest loss difference {largest:e}");
        assert!(largest < LOSS_TOLERANCE, "{transformers}: {largest:e}");
        assert_eq!(lr_resumed, lr_uninterrupted, "{transformers}");
    }
}

#[test]
fn our_optimizer_pt_is_transformers_own_at_the_same_step() {
    #[derive(serde::Deserialize)]
    struct Comparison {
        same_structure: bool,
        same_param_groups: bool,
        steps: [Vec<f64>; 2],
        largest_relative_difference: f64,
        moments: usize,
    }
    let runs = Runs::get();
    let optimizer = |run: &str| {
        runs.dir
            .join(format!("{run}/checkpoint-{SAVED_AT}/optimizer.pt"))
    };
    for run in &runs.hf {
        let transformers = &run.transformers;
        let stdout = hf_resume_py(
            transformers,
            &[
                "compare-optimizers".as_ref(),
                optimizer("ours").as_os_str(),
                optimizer(&run.out).as_os_str(),
            ],
        );
        let comparison: Comparison = serde_json::from_str(&stdout).unwrap();
        assert!(comparison.same_structure, "{transformers}: {stdout}");
        assert!(comparison.same_param_groups, "{transformers}: {stdout}");
        let at = vec![SAVED_AT as f64];
        assert_eq!(comparison.steps, [at.clone(), at], "{transformers}");
        // 2 layers of 16 tensors, 5 in the embeddings, 2 in the pooler and 2 in the
        // classifier; two moments each.
        assert_eq!(comparison.moments, 2 * (2 * 16 + 5 + 2 + 2));
        // Each moment as transformers computed it, to float rounding over 5 steps.
        let difference = comparison.largest_relative_difference;
        eprintln!("{transformers}: largest moment difference {difference:e} of its largest value");
        assert!(difference < 1e-4, "{transformers}: {stdout}");
    }
}

#[test]
fn both_trainers_take_the_same_steps() {
    let runs = Runs::get();
    assert_eq!(runs.ours.len(), STEPS);
    for run in &runs.hf {
        let transformers = &run.transformers;
        assert_eq!(run.report.steps.len(), STEPS, "{transformers}");
        let mut largest: f64 = 0.0;
        for (ours, theirs) in runs.ours.iter().zip(&run.report.steps) {
            assert_eq!(ours.step, theirs.step);
            assert_eq!(
                ours.learning_rate, theirs.learning_rate,
                "step {}",
                ours.step
            );
            largest = largest.max((ours.loss - theirs.loss).abs());
        }
        eprintln!("bert-ft against {transformers}: largest loss difference {largest:e}");
        assert!(largest < LOSS_TOLERANCE, "{transformers}: {largest:e}");
    }
}

#[test]
fn our_scheduler_pt_is_transformers_own_and_rng_state_pth_is_set_seeds() {
    let runs = Runs::get();
    let file = |run: &str, name: &str| runs.dir.join(format!("{run}/checkpoint-{SAVED_AT}/{name}"));
    let seed = TrainingArguments::default().seed.to_string();
    for run in &runs.hf {
        let transformers = &run.transformers;
        let report = hf_resume_py(
            transformers,
            &[
                "same-state".as_ref(),
                file("ours", "scheduler.pt").as_os_str(),
                file(&run.out, "scheduler.pt").as_os_str(),
            ],
        );
        assert_eq!(report.trim(), "equal", "{transformers}: {report}");
        // transformers' own loader, with the numpy globals it allows, then each generator.
        let report = hf_resume_py(
            transformers,
            &[
                "check-rng".as_ref(),
                file("ours", "rng_state.pth").as_os_str(),
                seed.as_ref(),
            ],
        );
        for generator in ["python", "numpy", "cpu"] {
            let line = format!("{generator}: as set_seed({seed}) leaves it");
            assert!(report.contains(&line), "{transformers}: {line}\n{report}");
        }
    }
}

/// Copies a checkpoint folder.
fn copy_checkpoint(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_transformers_checkpoint_of_another_model_or_with_a_broken_file_is_refused_by_name() {
    let runs = Runs::get();
    let scratch = tempfile::tempdir().unwrap();
    let checkpoint = scratch.path().join(format!("checkpoint-{SAVED_AT}"));
    let transformers_checkpoint = format!("{}/checkpoint-{SAVED_AT}", runs.hf[0].out);
    copy_checkpoint(&runs.dir.join(transformers_checkpoint), &checkpoint);
    let optimizer = checkpoint.join("optimizer.pt");
    let _serial = common::serial();

    let mut one_layer = serde_json::to_value(config()).unwrap();
    one_layer["num_hidden_layers"] = 1.into();
    let one_layer: BertConfig = serde_json::from_value(one_layer).unwrap();
    let model = BertForSequenceClassification::from_config(&one_layer, 42, &Device::flex());
    let mut smaller = trainer_of(model.unwrap(), &scratch.path().join("one-layer"));
    let error = smaller
        .train(Some(ResumeFrom::Path(checkpoint.clone())))
        .unwrap_err();
    let TrainerError::Load { path, source } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*path, optimizer);
    assert_eq!(
        source.downcast_ref::<CheckpointProblem>(),
        Some(&CheckpointProblem::ParamGroups {
            found: vec![17, 24],
            expected: vec![11, 14],
        })
    );
    assert_eq!(smaller.state().global_step, 0, "nothing was restored");

    let bytes = std::fs::read(&optimizer).unwrap();
    std::fs::write(&optimizer, &bytes[..bytes.len() / 2]).unwrap();
    let mut broken = trainer(&runs.dir.join("init"), &scratch.path().join("broken"));
    let error = broken
        .train(Some(ResumeFrom::Path(checkpoint.clone())))
        .unwrap_err();
    assert!(
        matches!(&error, TrainerError::Load { path, .. } if *path == optimizer),
        "{error:?}"
    );
}
