//! Faults during training, for real, on the `bert-ft` binary: SIGKILL at random moments and
//! resuming, Ctrl-C, and disks that are full or cannot be written.
//!
//! The job is a tiny BERT (random weights from a config) on a small learnable task in the
//! GLUE MRPC layout, with a checkpoint every 7 steps and only the last 3 kept.

use crate::common;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use ft_bert::BertForSequenceClassification;
use ft_bert::prelude::*;

/// Long enough that twenty kills at random moments (each after 0.1–1.5 s, start-up included)
/// cannot finish it: about 17 s alone in a test build on a 2-core AMD EPYC. 1000 steps took
/// about 7 s once the forward pass stopped reading the attention mask back, and the run
/// finished after 10 kills.
const STEPS: &str = "2500";

/// The small task of 64 pairs and the tiny BERT, with dropout.
fn write_task(dir: &Path) {
    common::write_mood_task(dir, [64, 16, 16], false);
    common::write_tiny_config(dir, true);
}

fn command(data: &Path, output_dir: &Path, resume: bool) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bert-ft"));
    common::tiny_finetune(&mut command, data, output_dir)
        .args([
            "--max-steps",
            STEPS,
            "--save-steps",
            "7",
            "--save-total-limit",
            "3",
            "--logging-steps",
            "5",
        ])
        .args([
            "--learning-rate",
            "0.01",
            "--eval-strategy",
            "no",
            "--disable-tqdm",
            "true",
        ])
        .env("HF_HUB_OFFLINE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if resume {
        command.args(["--resume-from-checkpoint", "latest"]);
    }
    command
}

fn finish(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

/// Every parameter of a saved model, by name order.
fn weights(dir: &Path) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(
            &mut self,
            p: &burn::module::Param<burn::tensor::Tensor<D>>,
        ) {
            self.0
                .push(p.val().into_data().try_into_vec_as::<f32>().unwrap());
        }
    }
    let model =
        BertForSequenceClassification::from_pretrained(dir.to_str().unwrap(), 2, &Device::flex())
            .unwrap();
    let mut collect = Collect(Vec::new());
    burn::module::Module::visit(&model, &mut collect);
    collect.0
}

fn checkpoints(output_dir: &Path) -> Vec<PathBuf> {
    ft_trainer::sorted_checkpoints(output_dir)
        .into_iter()
        .map(|(_, path)| path)
        .collect()
}

/// A complete checkpoint: every file present, the state readable, the model loadable.
fn assert_complete(checkpoint: &Path) {
    for file in [
        "config.json",
        "model.safetensors",
        "trainer_state.json",
        "optimizer.safetensors",
        "tokenizer.json",
    ] {
        assert!(
            checkpoint.join(file).is_file(),
            "{} lacks {file}",
            checkpoint.display()
        );
    }
    let state = ft_trainer::TrainerState::load(&checkpoint.join("trainer_state.json")).unwrap();
    assert!(checkpoint.ends_with(format!("checkpoint-{}", state.global_step)));
    assert!(!weights(checkpoint).is_empty());
}

/// A small deterministic generator for the kill times.
struct Lcg(u64);

impl Lcg {
    fn next_ms(&mut self, low: u64, high: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        low + (self.0 >> 33) % (high - low)
    }
}

#[test]
fn sigkill_at_random_moments_then_resume_gives_the_uninterrupted_weights() {
    let data = tempfile::tempdir().unwrap();
    write_task(data.path());
    let reference = tempfile::tempdir().unwrap();
    let output = finish(
        command(data.path(), reference.path(), false)
            .spawn()
            .unwrap(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected = weights(reference.path());

    let out = tempfile::tempdir().unwrap();
    let mut rng = Lcg(20261127);
    let mut kills = 0;
    let mut mid_save_kills = 0;
    let mut attempts = 0;
    loop {
        attempts += 1;
        assert!(attempts < 200, "the run never finished");
        let resume = !checkpoints(out.path()).is_empty();
        let mut child = command(data.path(), out.path(), resume).spawn().unwrap();
        if kills < 20 {
            // Early kills land in start-up and the first steps; later ones anywhere,
            // including in the middle of writing a checkpoint (one every 7 steps).
            std::thread::sleep(Duration::from_millis(rng.next_ms(100, 1500)));
            let _ = child.kill();
            let output = finish(child);
            if output.status.success() {
                break;
            }
            kills += 1;
            // A hidden folder left behind means the kill landed while a checkpoint was being
            // written or deleted.
            let hidden = std::fs::read_dir(out.path())
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with('.'));
            mid_save_kills += usize::from(hidden);
            // Whatever the moment of the kill, every checkpoint present is whole.
            for checkpoint in checkpoints(out.path()) {
                assert_complete(&checkpoint);
            }
        } else {
            let output = finish(child);
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            break;
        }
    }
    assert!(
        kills >= 20,
        "only {kills} kills landed before the run finished"
    );
    println!("{kills} kills, {mid_save_kills} of them while a checkpoint was being written");
    assert!(
        weights(out.path()) == expected,
        "resumed weights differ from the uninterrupted run's"
    );
    let last = checkpoints(out.path()).pop().unwrap();
    assert!(last.ends_with(format!("checkpoint-{STEPS}")));
}

fn send(child: &Child, signal: i32) {
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
}

/// Waits until the child has written its first checkpoint (so training is under way).
fn wait_for_training(output_dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while checkpoints(output_dir).is_empty() {
        assert!(Instant::now() < deadline, "training never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checks that a run stopped by a signal exited with 130 after a complete checkpoint of an
/// unfinished run; returns its stderr.
fn stopped_with_checkpoint(output: &Output, output_dir: &Path) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("resume with --resume-from-checkpoint"),
        "{stderr}"
    );
    let last = checkpoints(output_dir).pop().unwrap();
    assert_complete(&last);
    let state = ft_trainer::TrainerState::load(&last.join("trainer_state.json")).unwrap();
    assert!(
        state.global_step < STEPS.parse().unwrap(),
        "stopped early, at step {}",
        state.global_step
    );
    stderr
}

#[test]
fn the_first_ctrl_c_checkpoints_and_exits_130_the_second_exits_at_once() {
    let data = tempfile::tempdir().unwrap();
    write_task(data.path());

    let out = tempfile::tempdir().unwrap();
    let child = command(data.path(), out.path(), false).spawn().unwrap();
    wait_for_training(out.path());
    send(&child, libc::SIGINT);
    stopped_with_checkpoint(&finish(child), out.path());
    // It resumes from there and finishes.
    let output = finish(command(data.path(), out.path(), true).spawn().unwrap());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let out = tempfile::tempdir().unwrap();
    let child = command(data.path(), out.path(), false).spawn().unwrap();
    wait_for_training(out.path());
    send(&child, libc::SIGINT);
    send(&child, libc::SIGINT);
    let start = Instant::now();
    let output = finish(child);
    assert_eq!(output.status.code(), Some(130));
    assert!(start.elapsed() < Duration::from_secs(5));
    for checkpoint in checkpoints(out.path()) {
        assert_complete(&checkpoint);
    }
}

#[test]
fn sigterm_checkpoints_under_enable_jit_checkpoint_and_ends_the_process_otherwise() {
    use std::os::unix::process::ExitStatusExt;
    let data = tempfile::tempdir().unwrap();
    write_task(data.path());

    let out = tempfile::tempdir().unwrap();
    let mut jit = command(data.path(), out.path(), false);
    jit.args(["--enable-jit-checkpoint", "true"]);
    let child = jit.spawn().unwrap();
    wait_for_training(out.path());
    send(&child, libc::SIGTERM);
    let stderr = stopped_with_checkpoint(&finish(child), out.path());
    assert!(stderr.contains("JIT checkpointing enabled"), "{stderr}");

    // Without the flag, as in transformers, SIGTERM ends the process at once.
    let out = tempfile::tempdir().unwrap();
    let child = command(data.path(), out.path(), false).spawn().unwrap();
    wait_for_training(out.path());
    send(&child, libc::SIGTERM);
    let output = finish(child);
    assert_eq!(output.status.signal(), Some(libc::SIGTERM));
}

#[test]
fn an_unwritable_output_dir_is_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    write_task(data.path());
    // A path below a regular file cannot be created, even by root.
    let blocker = data.path().join("not-a-folder");
    std::fs::write(&blocker, b"").unwrap();
    let output = finish(
        command(data.path(), &blocker.join("out"), false)
            .spawn()
            .unwrap(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    // Refused before any work, not when the first checkpoint is written.
    assert!(
        stderr.contains("cannot be a folder") && stderr.contains("not-a-folder"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("DatasetDict"));
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_full_disk_fails_the_save_and_keeps_the_previous_checkpoint() {
    let data = tempfile::tempdir().unwrap();
    write_task(data.path());
    let out = tempfile::tempdir().unwrap();
    // A tiny checkpoint is about 21 MB (the model 4 MB, the optimizer state 8 MB in our file
    // and 8 MB in transformers' optimizer.pt): the disk holds one, not two. A small tmpfs is
    // a real full disk; without the privilege to mount one, a file-size limit gives the same
    // failure.
    let mount = out.path().join("disk");
    std::fs::create_dir(&mount).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=32m", "tmpfs"])
        .arg(&mount)
        .status()
        .is_ok_and(|s| s.success());
    let output_dir = mount.join("out");
    let mut cmd = command(data.path(), &output_dir, false);
    if !mounted {
        use std::os::unix::process::CommandExt;
        // The limit is per file: the model (4 MB) fits, the optimizer state (8 MB) does not,
        // so here the very first checkpoint fails.
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 6 << 20,
                    rlim_max: 6 << 20,
                };
                libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
    }
    let output = finish(cmd.spawn().unwrap());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the disk filled up");
    assert!(stderr.contains("writing checkpoint"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let kept = checkpoints(&output_dir);
    assert!(
        !mounted || !kept.is_empty(),
        "earlier checkpoints were written"
    );
    for checkpoint in &kept {
        assert_complete(checkpoint);
    }
    let leftovers: Vec<_> = std::fs::read_dir(&output_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "the failed checkpoint's folder was removed"
    );
    if mounted {
        let _ = Command::new("umount").arg(&mount).status();
    }
}
