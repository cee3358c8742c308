//! The report `cargo xtask bench` keeps in `docs/benchmarks.json`: medians per CPU kind.
//!
//! Each CPU kind has its own entry, keyed by [`CpuIdentity::key`], so that a run on one CPU
//! never relabels or overwrites another's figures; within an entry each section records the
//! command and date that measured it, since sections can be re-run alone.

use std::collections::BTreeMap;

use bench_report::{
    AllReduceResult, CpuIdentity, GemmResult, StepResult, TokenizeResult, TrainResult, median,
};
use serde::{Deserialize, Serialize};

/// Every CPU kind measured so far.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Entries by [`CpuIdentity::key`].
    pub cpus: BTreeMap<String, CpuReport>,
}

/// The sections measured on one CPU kind.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuReport {
    /// The CPU, as last seen.
    pub cpu: CpuIdentity,
    /// `dataset.map` speed.
    #[serde(default)]
    pub tokenize: Option<Section<TokenizeSection>>,
    /// Training step and inference batch.
    #[serde(default)]
    pub step: Option<Section<StepSection>>,
    /// The whole Trainer.
    #[serde(default)]
    pub train: Option<Section<TrainSection>>,
    /// Data-parallel training over MPI, and its gradient all-reduce.
    #[serde(default)]
    pub distributed: Option<Section<DistributedSection>>,
    /// Gradient checkpointing against the plain pass: speed and peak memory.
    #[serde(default)]
    pub checkpointing: Option<Section<CheckpointingSection>>,
    /// The whole Trainer on the DistilBERT and RoBERTa shapes.
    #[serde(default)]
    pub family: Option<Section<TrainSection>>,
    /// A GPU's launch overhead on the CPU: the tiny BERT on tch-cpu, AdamW by tensor
    /// operations.
    #[serde(default)]
    pub proxy: Option<Section<TrainSection>>,
}

impl CpuReport {
    /// An entry with no section yet.
    pub fn new(cpu: CpuIdentity) -> Self {
        Self {
            cpu,
            tokenize: None,
            step: None,
            train: None,
            distributed: None,
            checkpointing: None,
            family: None,
            proxy: None,
        }
    }

    /// The date of the newest section, for ordering the report.
    pub fn latest_date(&self) -> &str {
        [
            self.tokenize.as_ref().map(|s| s.date.as_str()),
            self.step.as_ref().map(|s| s.date.as_str()),
            self.train.as_ref().map(|s| s.date.as_str()),
            self.distributed.as_ref().map(|s| s.date.as_str()),
            self.checkpointing.as_ref().map(|s| s.date.as_str()),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or("")
    }
}

/// One section's medians, with how they were made.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section<T> {
    /// The `cargo xtask` command line.
    pub command: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Runs of each measurement.
    pub runs: usize,
    /// The medians.
    pub results: T,
}

/// Tokenization: ours and transformers' fast tokenizer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizeSection {
    /// `bert-ft bench tokenize`.
    pub ours: TokenizeResult,
    /// `python/bench_tokenize.py`.
    pub python: Option<TokenizeResult>,
}

/// Step timings for each model shape.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSection {
    /// The backend ours ran on.
    pub backend: String,
    /// One entry per model shape.
    pub shapes: Vec<StepShape>,
}

/// Step timings for one model shape.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepShape {
    /// The shape's label.
    pub shape: String,
    /// `bert-ft bench step`.
    pub ours: StepResult,
    /// `python/bench_step.py`.
    pub pytorch: Option<StepResult>,
}

/// The Trainer for each model shape.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Untimed steps before the timed ones.
    pub warmup: usize,
    /// One entry per model shape.
    pub shapes: Vec<TrainShape>,
}

/// The Trainer on one model shape.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainShape {
    /// The shape's label.
    pub shape: String,
    /// Timed steps.
    pub steps: usize,
    /// `bert-ft bench train`, by backend (`tch-cpu bf16` for a bf16 run).
    pub ours: BTreeMap<String, TrainResult>,
    /// `python/bench_train.py`, fp32.
    pub pytorch: Option<TrainResult>,
    /// `python/bench_train.py --bf16`.
    #[serde(default)]
    pub pytorch_bf16: Option<TrainResult>,
}

/// One process against several on the same global batch, then the all-reduce alone.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributedSection {
    /// The shape trained.
    pub shape: String,
    /// Timed steps of each run.
    pub steps: usize,
    /// Untimed steps before the timed ones.
    pub warmup: usize,
    /// Rows per optimizer step over all processes, the same in every run.
    pub global_batch_size: usize,
    /// The `mpirun` options of the runs with several processes (how they were bound to cores).
    pub launch: String,
    /// `bert-ft bench train`, one process on every logical CPU.
    pub single: TrainResult,
    /// The same under `mpirun`, each process at its share of the global batch.
    pub parallel: TrainResult,
    /// `bert-ft bench allreduce` under the same `mpirun`, per model shape.
    pub all_reduce: Vec<AllReduceShape>,
}

/// The gradient all-reduce of one model shape.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllReduceShape {
    /// The shape's label.
    pub shape: String,
    /// The medians.
    pub result: AllReduceResult,
}

/// The Trainer with and without gradient checkpointing, on one model at several row lengths.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointingSection {
    /// The model shape trained.
    pub model: String,
    /// The backend ours ran on.
    pub backend: String,
    /// Timed steps of each run, from the start of training.
    pub steps: usize,
    /// One entry per row length.
    pub shapes: Vec<CheckpointingShape>,
}

/// The runs of one row length: each stack plain first, then its checkpointed runs.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointingShape {
    /// The rows' label.
    pub shape: String,
    /// Each pair's sentences this many times over (`--repeat-text`).
    pub repeat_text: usize,
    /// `bert-ft bench train`: no checkpointing, per-layer recompute, burn's Balanced.
    pub ours: Vec<NamedTrainResult>,
    /// `python/bench_train.py`: no checkpointing, `gradient_checkpointing=True`.
    pub pytorch: Vec<NamedTrainResult>,
}

/// A run's medians under the name of its configuration.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTrainResult {
    /// How it trained (`no checkpointing`, `gradient_checkpointing`, …).
    pub name: String,
    /// The medians.
    pub result: TrainResult,
}

/// The median of one field over `runs`; `None` when no run has it.
fn field<T>(runs: &[T], value: impl Fn(&T) -> Option<f64>) -> Option<f64> {
    median(runs.iter().filter_map(value))
}

/// Per-field medians of tokenization runs; `None` for no run.
pub fn median_tokenize(runs: &[TokenizeResult]) -> Option<TokenizeResult> {
    let first = runs.first()?;
    Some(TokenizeResult {
        seconds: field(runs, |r| Some(r.seconds))?,
        pairs_per_second: field(runs, |r| Some(r.pairs_per_second))?,
        ..first.clone()
    })
}

/// Per-field medians of step runs; `None` for no run.
pub fn median_step(runs: &[StepResult]) -> Option<StepResult> {
    let first = runs.first()?;
    let ms = |value: fn(&StepResult) -> f64| field(runs, |r| Some(value(r))).unwrap_or(f64::NAN);
    let gemm = (0..first.gemm.len())
        .filter_map(|i| {
            let g = &first.gemm[i];
            let time = field(runs, |r| r.gemm.get(i).map(|g| g.ms))?;
            Some(GemmResult::new(g.m, g.k, g.n, time))
        })
        .collect();
    Some(StepResult {
        forward_ms: ms(|r| r.forward_ms),
        backward_ms: ms(|r| r.backward_ms),
        optimizer_ms: ms(|r| r.optimizer_ms),
        step_ms: ms(|r| r.step_ms),
        infer_ms: ms(|r| r.infer_ms),
        infer_fused_attention_ms: field(runs, |r| r.infer_fused_attention_ms),
        gemm,
        ..first.clone()
    })
}

/// Per-field medians of Trainer runs; `None` for no run.
pub fn median_train(runs: &[TrainResult]) -> Option<TrainResult> {
    let first = runs.first()?;
    Some(TrainResult {
        train_samples_per_second: field(runs, |r| Some(r.train_samples_per_second))?,
        train_tokens_per_second: field(runs, |r| Some(r.train_tokens_per_second))?,
        first_step_seconds: field(runs, |r| r.first_step_seconds),
        eval_samples_per_second: field(runs, |r| r.eval_samples_per_second),
        peak_rss_mb: field(runs, |r| r.peak_rss_mb),
        ..first.clone()
    })
}

/// The median time of all-reduce runs; `None` for no run.
pub fn median_all_reduce(runs: &[AllReduceResult]) -> Option<AllReduceResult> {
    let first = runs.first()?;
    Some(AllReduceResult {
        milliseconds: field(runs, |r| Some(r.milliseconds))?,
        ..first.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn train(samples: f64, eval: Option<f64>) -> TrainResult {
        TrainResult {
            train_samples_per_second: samples,
            train_tokens_per_second: samples * 50.0,
            first_step_seconds: Some(1.0),
            eval_samples_per_second: eval,
            peak_rss_mb: None,
            steps: 100,
            threads: 2,
            bf16: false,
            backend: Some("flex".into()),
            processes: 1,
        }
    }

    #[test]
    fn the_committed_report_parses() {
        let path = crate::cargo::workspace_root().join("docs/benchmarks.json");
        let text = std::fs::read_to_string(&path).expect("docs/benchmarks.json is committed");
        let report: Report = serde_json::from_str(&text).expect("the report parses");
        assert!(!report.cpus.is_empty());
        for (key, entry) in &report.cpus {
            assert_eq!(
                key,
                &entry.cpu.key(),
                "an entry is filed under its CPU's key"
            );
        }
    }

    #[test]
    fn medians_are_taken_field_by_field() {
        let runs = [
            train(3.0, Some(9.0)),
            train(1.0, None),
            train(2.0, Some(7.0)),
        ];
        let m = median_train(&runs).expect("runs");
        assert_eq!(m.train_samples_per_second, 2.0);
        assert_eq!(m.eval_samples_per_second, Some(8.0));
        assert_eq!(m.peak_rss_mb, None);
        assert!(median_train(&[]).is_none());
        let all_reduce = |milliseconds| AllReduceResult {
            parameters: 10,
            megabytes: 4e-5,
            milliseconds,
            processes: 2,
        };
        let m = median_all_reduce(&[all_reduce(3.0), all_reduce(1.0), all_reduce(2.0)]);
        assert_eq!(m.map(|m| m.milliseconds), Some(2.0));
    }
}
