//! Data-parallel training for real: `mpirun -np 2 bert-ft finetune …` against one process,
//! with Open MPI's traffic pinned to loopback.
//!
//! - Two processes at batch 4 train the model one process trains at batch 8 (MiniLM on MRPC
//!   with dropout on flex; a tiny BERT without dropout on the other CPU backends).
//! - A rank killed with SIGKILL ends the whole job, non-zero, naming the rank.
//! - A checkpoint resumes on another number of processes, in both directions.
//! - DistilBERT and RoBERTa (ft-bert's fixture configs, without dropout) train on two
//!   processes as on one, and stop early with TensorBoard on rank 0 as BERT does.
#![cfg(feature = "mpi")]

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `mpirun -np N` on this machine only, whatever its network: shared memory between the
/// processes and loopback for Open MPI's own traffic. `--oversubscribe` lets two processes
/// share fewer cores; without binding, each uses the one rayon thread the test gives it.
fn mpirun(processes: usize) -> Command {
    let mut command = Command::new("mpirun");
    command
        .args(["-np", &processes.to_string(), "--oversubscribe"])
        .args(["--bind-to", "none"])
        .args(["--mca", "btl", "self,vader,tcp"])
        .args(["--mca", "btl_tcp_if_include", "lo"])
        .args(["--mca", "oob_tcp_if_include", "lo"])
        .args(["-x", "RAYON_NUM_THREADS=1", "-x", "HF_HUB_OFFLINE=1"]);
    // The tests' launchers start at the same moment and race to create Open MPI's session
    // folder under one temporary directory (`orte_session_dir`: "File exists"): each gets a
    // base of its own, kept, as mpirun's daemons outlive this function.
    let session = tempfile::tempdir().expect("a temporary folder").keep();
    command.args(["--mca", "orte_tmpdir_base"]).arg(session);
    // Open MPI refuses to run as root unless told twice (CI's containers run as root); the
    // variables change nothing for other users.
    command
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    command.arg(env!("CARGO_BIN_EXE_bert-ft"));
    command
}

/// One process, without a launcher.
fn single() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bert-ft"));
    command
        .env("RAYON_NUM_THREADS", "2")
        .env("HF_HUB_OFFLINE", "1");
    command
}

fn run(mut command: Command) -> Output {
    let output = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("the command starts");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The logits of `predict_results.tsv`, row by row.
fn predicted_logits(output_dir: &Path) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(output_dir.join("predict_results.tsv")).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            line.split('\t')
                .skip(2)
                .map(|value| value.parse().unwrap())
                .collect()
        })
        .collect()
}

fn largest_difference(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// `eval_accuracy` and `eval_f1` of `eval_results.json`.
fn eval_scores(output_dir: &Path) -> [f64; 2] {
    let text = std::fs::read_to_string(output_dir.join("eval_results.json")).unwrap();
    let results: serde_json::Value = serde_json::from_str(&text).unwrap();
    ["eval_accuracy", "eval_f1"].map(|key| results[key].as_f64().unwrap())
}

/// The metrics of two runs agree but for at most one row of `rows` that a rounding
/// difference could flip.
fn assert_same_scores(one: &Path, two: &Path, rows: usize) {
    let (one, two) = (eval_scores(one), eval_scores(two));
    for (a, b) in one.iter().zip(&two) {
        assert!(
            (a - b).abs() <= 1.0 / rows as f64 + 1e-9,
            "{one:?} vs {two:?}"
        );
    }
}

fn global_step(output_dir: &Path) -> usize {
    ft_trainer::TrainerState::load(&output_dir.join("trainer_state.json"))
        .unwrap()
        .global_step
}

#[test]
fn two_processes_at_batch_4_train_minilm_as_one_process_at_batch_8() {
    let finetune = |mut command: Command, output_dir: &Path, batch: &str| {
        command
            .arg("finetune-mrpc")
            .arg("--model")
            .arg(test_support::minilm_dir())
            .arg("--dataset")
            .arg(test_support::glue_dir().join("MRPC"))
            .arg("--output-dir")
            .arg(output_dir)
            .args(["--max-steps", "40", "--per-device-train-batch-size", batch])
            .args(["--eval-strategy", "no", "--save-strategy", "no"])
            .args(["--disable-tqdm", "true"]);
        command
    };
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    run(finetune(single(), one.path(), "8"));
    let output = run(finetune(mpirun(2), two.path(), "4"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the weights at the end of training are the same on all 2 processes"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.matches("***** train metrics *****").count(),
        1,
        "rank 0 alone prints:\n{stdout}"
    );
    let difference =
        largest_difference(&predicted_logits(one.path()), &predicted_logits(two.path()));
    eprintln!("largest logit difference after 40 steps: {difference:e}");
    assert!(difference < 1e-3, "{difference}");
    assert_eq!(predicted_logits(two.path()).len(), 408, "every row once");
    // The gathered logits are scored against their own rows' labels.
    assert_same_scores(one.path(), two.path(), 408);
}

/// The small task, its pairs of varied lengths, and a tiny BERT without dropout.
fn write_task(dir: &Path) {
    common::write_mood_task(dir, [100, 21, 5], true);
    common::write_tiny_config(dir, false);
}

/// `finetune-mrpc` of the tiny BERT on the small task.
fn tiny(mut command: Command, data: &Path, output_dir: &Path, backend: &str) -> Command {
    common::tiny_finetune(&mut command, data, output_dir)
        .args(["--backend", backend, "--learning-rate", "0.001"])
        .args(["--eval-strategy", "no", "--disable-tqdm", "true"]);
    command
}

/// Runs on the small task's 21 dev rows, without dropout, on one process and on two: the same
/// scores, and every row's logits within 1e-4.
fn assert_same_small_task_model(one: &Path, two: &Path, what: &str) {
    assert_same_scores(one, two, 21);
    let (one, two) = (predicted_logits(one), predicted_logits(two));
    assert_eq!(two.len(), 21, "{what}");
    let difference = largest_difference(&one, &two);
    assert!(difference < 1e-4, "{what}: {difference}");
}

#[test]
fn without_dropout_every_cpu_backend_trains_the_same_model_on_two_processes() {
    let data = tempfile::tempdir().unwrap();
    write_task(data.path());
    for backend in ["ndarray", "tch-cpu", "flex"] {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        let mut command = tiny(single(), data.path(), one.path(), backend);
        command.args(["--max-steps", "12", "--per-device-train-batch-size", "8"]);
        run(command);
        let mut command = tiny(mpirun(2), data.path(), two.path(), backend);
        command.args(["--max-steps", "12", "--per-device-train-batch-size", "4"]);
        run(command);
        assert_same_small_task_model(one.path(), two.path(), backend);
    }
}

#[test]
fn distilbert_and_roberta_train_the_same_model_on_two_processes() {
    let data = tempfile::tempdir().unwrap();
    common::write_mood_task(data.path(), [100, 21, 5], true);
    for name in ["tiny-distilbert", "tiny-roberta"] {
        let finetune = |mut command: Command, output_dir: &Path, batch: &str| {
            common::family_finetune(&mut command, data.path(), output_dir, name)
                .args(["--max-steps", "12", "--per-device-train-batch-size", batch])
                .args(["--learning-rate", "0.001", "--eval-strategy", "no"])
                .args(["--disable-tqdm", "true"]);
            command
        };
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        run(finetune(single(), one.path(), "8"));
        run(finetune(mpirun(2), two.path(), "4"));
        assert_same_small_task_model(one.path(), two.path(), name);
    }
}

#[test]
fn a_checkpoint_resumes_on_another_number_of_processes() {
    let data = tempfile::tempdir().unwrap();
    write_task(data.path());
    let epochs = |command: &mut Command| {
        command.args([
            "--num-train-epochs",
            "2",
            "--per-device-train-batch-size",
            "8",
        ]);
        command.args(["--save-steps", "3"]);
    };
    // 2 → 1: 100 rows are 7 steps of 16 an epoch; checkpoint-3 has seen 48 rows of epoch 0,
    // which one process at 8 a step (13 steps an epoch) counts as step 6.
    let two = tempfile::tempdir().unwrap();
    let mut command = tiny(mpirun(2), data.path(), two.path(), "flex");
    epochs(&mut command);
    run(command);
    assert_eq!(global_step(two.path()), 14);
    let resumed = tempfile::tempdir().unwrap();
    let mut command = tiny(single(), data.path(), resumed.path(), "flex");
    epochs(&mut command);
    command
        .arg("--resume-from-checkpoint")
        .arg(two.path().join("checkpoint-3"));
    let output = run(command);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("skips the 48 rows of epoch 0") && stderr.contains("at step 6"),
        "{stderr}"
    );
    assert_eq!(global_step(resumed.path()), 26);

    // 1 → 2: checkpoint-9 of one process has seen 72 rows, four steps of 16 for two (rounded
    // down), and the 28 rows left of the epoch.
    let one = tempfile::tempdir().unwrap();
    let mut command = tiny(single(), data.path(), one.path(), "flex");
    epochs(&mut command);
    run(command);
    assert_eq!(global_step(one.path()), 26);
    let resumed = tempfile::tempdir().unwrap();
    let mut command = tiny(mpirun(2), data.path(), resumed.path(), "flex");
    epochs(&mut command);
    command
        .arg("--resume-from-checkpoint")
        .arg(one.path().join("checkpoint-9"));
    let output = run(command);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("skips the 72 rows of epoch 0") && stderr.contains("at step 4"),
        "{stderr}"
    );
    // Two steps for the 28 rows left, then the 7 of epoch 1.
    assert_eq!(global_step(resumed.path()), 4 + 2 + 7);
    let state = ft_trainer::TrainerState::load(&resumed.path().join("trainer_state.json")).unwrap();
    assert_eq!(
        state.train_batch_size,
        Some(8),
        "the per-device batch stays"
    );
}

/// The process ids of `mpirun`'s children that run rank `rank`.
fn rank_pid(launcher: u32, rank: usize) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let parent: u32 = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
            let is_rank = environ
                .split(|&byte| byte == 0)
                .any(|var| var == wanted.as_bytes());
            (parent == launcher && is_rank).then_some(pid)
        })
}

fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn a_killed_rank_ends_the_whole_job_naming_it() {
    let data = tempfile::tempdir().unwrap();
    write_task(data.path());
    let out = tempfile::tempdir().unwrap();
    let mut command = tiny(mpirun(2), data.path(), out.path(), "flex");
    command.args(["--max-steps", "100000", "--save-strategy", "no"]);
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let launcher = child.id();
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    // Rank 1 is killed once rank 0 has announced the training loop.
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !log
        .iter()
        .any(|line: &String| line.contains("Running training"))
    {
        let line = received
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("training never started:\n{}", log.join("\n")));
        log.push(line);
    }
    std::thread::sleep(Duration::from_secs(1));
    let victim = rank_pid(launcher, 1).expect("rank 1 runs under mpirun");
    let killed = Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_for(&mut child, Duration::from_secs(60)).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("the job still runs a minute after rank 1 was killed")
    });
    reader.join().unwrap();
    log.extend(received.try_iter());
    let log = log.join("\n");
    assert!(!status.success(), "{log}");
    assert!(log.contains("rank 1"), "{log}");
}

#[test]
fn rank_zero_alone_writes_tensorboard_and_every_rank_stops_early_together() {
    let data = tempfile::tempdir().unwrap();
    write_task(data.path());
    for name in ["tiny-bert", "tiny-distilbert", "tiny-roberta"] {
        let out = tempfile::tempdir().unwrap();
        let mut command = mpirun(2);
        match name {
            "tiny-bert" => common::tiny_finetune(&mut command, data.path(), out.path()),
            _ => common::family_finetune(&mut command, data.path(), out.path(), name),
        };
        command.args(["--disable-tqdm", "true"]);
        // Accuracy cannot improve by more than 1: the second evaluation, at step 4, stops the
        // run on both ranks, which see the same gathered accuracy.
        let flags = [
            "--max-steps 40 --per-device-train-batch-size 4 --eval-strategy steps --eval-steps 2",
            "--save-strategy steps --save-steps 2 --metric-for-best-model accuracy",
            "--load-best-model-at-end true --early-stopping-patience 1",
            "--early-stopping-threshold 1.0 --report-to tensorboard",
        ];
        command.args(flags.join(" ").split(' '));
        run(command);
        assert_eq!(global_step(out.path()), 4, "{name}");
        let runs: Vec<_> = std::fs::read_dir(out.path().join("runs"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert_eq!(runs.len(), 1, "{name}: {runs:?}");
        // `events.out.tfevents.<time>.<host>.<pid>.<n>`: one for training, one for the final
        // evaluation (as transformers reopens its writer), both from one process.
        let pids: std::collections::BTreeSet<String> = std::fs::read_dir(&runs[0])
            .unwrap()
            .map(|entry| {
                let name = entry.unwrap().file_name().into_string().unwrap();
                assert!(name.starts_with("events.out.tfevents."), "{name}");
                name.rsplit('.').nth(1).unwrap().to_string()
            })
            .collect();
        assert_eq!(
            pids.len(),
            1,
            "{name}: event files from one process, rank 0: {pids:?}"
        );
    }
}
