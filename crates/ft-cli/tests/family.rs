//! `bert-ft finetune-mrpc --model <folder>` for DistilBERT and RoBERTa: the whole job on the
//! small random checkpoints of ft-bert's fixtures (no pre-trained weights of either can be
//! fetched here), which must fit 32 MRPC pairs: evaluated on those same pairs at the end,
//! without dropout, the loss is below 0.1. A run killed with SIGKILL resumes to the
//! uninterrupted run's weights. In bf16 and fp16 each trains as in fp32 and saves fp32
//! weights.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use ft_bert::Architecture;
use ft_bert::prelude::*;
use safetensors::SafeTensors;
use safetensors::tensor::Dtype;

use crate::common;

/// 40 epochs of 4 steps, a checkpoint every 10.
fn finetune(model: &Path, data: &Path, output_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bert-ft"));
    command
        .arg("finetune-mrpc")
        .arg("--model")
        .arg(model)
        .arg("--dataset")
        .arg(data)
        .arg("--output-dir")
        .arg(output_dir)
        .args(["--num-train-epochs", "40", "--learning-rate", "5e-3"])
        .args([
            "--logging-steps",
            "4",
            "--save-steps",
            "10",
            "--save-total-limit",
            "2",
        ])
        .args(["--eval-strategy", "no", "--disable-tqdm", "true"])
        .env("HF_HUB_OFFLINE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn run(mut command: Command) -> String {
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Every parameter of the model saved in `dir`, in visiting order.
fn weights(dir: &Path) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0
                .push(p.val().into_data().try_into_vec_as::<f32>().unwrap());
        }
    }
    let model = AutoModelForSequenceClassification::from_pretrained(
        dir.to_str().unwrap(),
        2,
        &Device::flex(),
    )
    .unwrap();
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}

/// The training losses logged in the run's `trainer_state.json`.
fn logged_losses(output_dir: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(output_dir.join("trainer_state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&text).unwrap();
    state["log_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry.get("loss")?.as_f64())
        .collect()
}

#[test]
fn each_architecture_fits_32_mrpc_pairs_and_resumes_after_sigkill() {
    let data = tempfile::tempdir().unwrap();
    common::small_mrpc(data.path(), 32, 8);
    // The final evaluation on the training pairs themselves: how well they were fitted.
    std::fs::copy(data.path().join("train.tsv"), data.path().join("dev.tsv")).unwrap();
    for (name, architecture) in [
        ("tiny-roberta", Architecture::Roberta),
        ("tiny-distilbert", Architecture::DistilBert),
    ] {
        let model = common::fixture_checkpoint(name);
        let reference = tempfile::tempdir().unwrap();
        let stdout = run(finetune(&model, data.path(), reference.path()));
        assert!(stdout.contains("train_loss"), "{name}: {stdout}");
        let losses = logged_losses(reference.path());
        assert!(losses.last() < losses.first(), "{name}: {losses:?}");
        let results = std::fs::read_to_string(reference.path().join("eval_results.json")).unwrap();
        let results: serde_json::Value = serde_json::from_str(&results).unwrap();
        let fitted = results["eval_loss"].as_f64().unwrap();
        assert!(
            fitted < 0.1,
            "{name}: the loss on the 32 training pairs is {fitted}"
        );
        assert_eq!(results["eval_accuracy"], 1.0, "{name}: {results}");
        let config = std::fs::read_to_string(reference.path().join("config.json")).unwrap();
        let config: serde_json::Value = serde_json::from_str(&config).unwrap();
        assert_eq!(config["model_type"], architecture.model_type());
        assert_eq!(config["architectures"][0], architecture.class_name());

        // Killed for real once its first checkpoint is written, then resumed.
        let output_dir = tempfile::tempdir().unwrap();
        let mut child = finetune(&model, data.path(), output_dir.path())
            .spawn()
            .unwrap();
        let first = output_dir.path().join("checkpoint-10/trainer_state.json");
        let start = Instant::now();
        while !first.is_file() {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{name}: no checkpoint"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            !output_dir.path().join("model.safetensors").exists(),
            "{name}: the run ended before it was killed"
        );
        let mut resume = finetune(&model, data.path(), output_dir.path());
        resume.args(["--resume-from-checkpoint", "latest"]);
        run(resume);
        assert!(
            weights(output_dir.path()) == weights(reference.path()),
            "{name}: the resumed run's weights differ from the uninterrupted run's"
        );
    }
}

/// 24 logged steps of 8 on the mood task in `data`, of the fixture architecture `name` at
/// random without dropout, on `backend`.
fn short_run(data: &Path, output_dir: &Path, name: &str, backend: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bert-ft"));
    common::family_finetune(&mut command, data, output_dir, name)
        .args(["--backend", backend, "--max-steps", "24"])
        .args([
            "--per-device-train-batch-size",
            "8",
            "--learning-rate",
            "5e-3",
        ])
        .args(["--logging-steps", "1", "--save-strategy", "no"])
        .args(["--eval-strategy", "no", "--disable-tqdm", "true"])
        .env("HF_HUB_OFFLINE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// The dtypes of the tensors of a `.safetensors` file.
fn safetensors_dtypes(path: &Path) -> Vec<Dtype> {
    let bytes = std::fs::read(path).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    tensors.iter().map(|(_, view)| view.dtype()).collect()
}

#[test]
fn each_architecture_trains_in_bf16_and_fp16_as_in_fp32_and_saves_fp32() {
    let data = tempfile::tempdir().unwrap();
    common::write_mood_task(data.path(), [64, 16, 4], true);
    #[allow(unused_mut)]
    let mut backends = vec!["flex"];
    #[cfg(feature = "tch")]
    backends.push("tch-cpu");
    for name in ["tiny-distilbert", "tiny-roberta"] {
        for backend in &backends {
            let full = tempfile::tempdir().unwrap();
            run(short_run(data.path(), full.path(), name, backend));
            let full = logged_losses(full.path());
            assert_eq!(full.len(), 24, "{name} {backend}");
            assert!(full[23] < full[0], "{name} {backend} learns: {full:?}");
            for precision in ["--bf16", "--fp16"] {
                let half = tempfile::tempdir().unwrap();
                let mut command = short_run(data.path(), half.path(), name, backend);
                command.args([precision, "true"]);
                run(command);
                let losses = logged_losses(half.path());
                assert_eq!(losses.len(), 24, "{name} {backend} {precision}");
                for (step, (half, full)) in losses.iter().zip(&full).enumerate() {
                    assert!(
                        (half - full).abs() < 0.05,
                        "{name} {backend} {precision}: step {} loss {half} vs fp32 {full}",
                        step + 1
                    );
                }
                let dtypes = safetensors_dtypes(&half.path().join("model.safetensors"));
                assert!(
                    !dtypes.is_empty() && dtypes.iter().all(|&dtype| dtype == Dtype::F32),
                    "{name} {backend} {precision}: master weights stay fp32, not {dtypes:?}"
                );
            }
        }
    }
}
