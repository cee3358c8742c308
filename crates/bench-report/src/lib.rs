//! What `bert-ft bench` measures and `cargo xtask bench` reports, as types shared by both.
//!
//! `bert-ft bench …` and the Python baselines print one of these results as a JSON object;
//! the xtask reads it back into the same type, so a renamed field is a compile error (or, for
//! the Python side, a parse error naming it) rather than a table cell reading "not measured".
//! This crate holds no tensors and no burn, so that the xtask builds in seconds. It also holds
//! the other table both read: the backends and their cargo features ([`BACKENDS`]).

#![warn(missing_docs)]

mod backends;
mod cpu;

pub use backends::{BACKEND_CHOICES, BACKENDS, backend_feature};
pub use cpu::CpuIdentity;
use serde::{Deserialize, Serialize};

/// `bench tokenize`: the `dataset.map` step on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizeResult {
    /// Pairs tokenized.
    pub pairs: usize,
    /// Tokens produced (ours only).
    #[serde(default)]
    pub tokens: Option<usize>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Pairs per second.
    pub pairs_per_second: f64,
    /// Threads the implementation used.
    pub threads: usize,
}

/// One matrix product `[m, k] × [k, n]` timed alone: the physical limit the model's linear
/// layers run against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GemmResult {
    /// Rows of the left operand (the batch's tokens).
    pub m: usize,
    /// The shared dimension.
    pub k: usize,
    /// Columns of the result.
    pub n: usize,
    /// Median milliseconds per product.
    pub ms: f64,
    /// Achieved GFLOP/s, `2·m·k·n / time`.
    pub gflops: f64,
}

impl GemmResult {
    /// The result of timing `[m, k] × [k, n]` at `ms` milliseconds per product.
    pub fn new(m: usize, k: usize, n: usize, ms: f64) -> Self {
        let flops = 2.0 * (m * k * n) as f64;
        Self {
            m,
            k,
            n,
            ms,
            gflops: flops / (ms * 1e6),
        }
    }
}

/// `bench step`: milliseconds per training step and per inference batch, on the same batches
/// for both implementations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepResult {
    /// Model folder, or `bert-base` for that shape with random weights.
    pub model: String,
    /// Rows per batch.
    pub batch_size: usize,
    /// Timed steps.
    pub steps: usize,
    /// Mean padded length of the timed batches (ours only).
    #[serde(default)]
    pub mean_padded_len: Option<f64>,
    /// Mean real tokens per row of the timed batches (ours only).
    #[serde(default)]
    pub mean_tokens: Option<f64>,
    /// Forward pass of a training step.
    pub forward_ms: f64,
    /// Backward pass.
    pub backward_ms: f64,
    /// The optimizer's update.
    pub optimizer_ms: f64,
    /// Forward, backward and update.
    pub step_ms: f64,
    /// One evaluation-mode forward pass.
    pub infer_ms: f64,
    /// The same with the backend's fused attention kernel forced (ours only).
    #[serde(default)]
    pub infer_fused_attention_ms: Option<f64>,
    /// The model's largest products, timed alone.
    #[serde(default)]
    pub gemm: Vec<GemmResult>,
    /// Which SIMD code the implementation runs on this CPU.
    #[serde(default)]
    pub simd: Option<String>,
    /// Threads the implementation used.
    pub threads: usize,
    /// Under bf16 autocast (ours: the linear layers' products, GEMM rows included, in bf16).
    #[serde(default)]
    pub bf16: bool,
}

/// `bench train`: the whole Trainer for a fixed number of steps from the start of training,
/// then one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainResult {
    /// Samples per second over every step from the first.
    pub train_samples_per_second: f64,
    /// Real (unpadded) tokens per second over the same steps.
    pub train_tokens_per_second: f64,
    /// Seconds from process start to the end of the first step.
    #[serde(default)]
    pub first_step_seconds: Option<f64>,
    /// `evaluate()` on the validation split, samples per second.
    #[serde(default)]
    pub eval_samples_per_second: Option<f64>,
    /// The process's peak resident memory.
    #[serde(default)]
    pub peak_rss_mb: Option<f64>,
    /// Training steps timed.
    pub steps: usize,
    /// Threads the implementation used.
    pub threads: usize,
    /// bfloat16 compute.
    #[serde(default)]
    pub bf16: bool,
    /// The backend (ours only).
    #[serde(default)]
    pub backend: Option<String>,
    /// Processes training together (data-parallel over MPI), each at the same per-device
    /// batch; results from before data-parallel training had one.
    #[serde(default = "one_process")]
    pub processes: usize,
}

/// The number of processes of a result that does not say: one, as every run was before
/// data-parallel training.
fn one_process() -> usize {
    1
}

/// `bench allreduce`: one optimizer step's gradient all-reduce across the processes of an MPI
/// job, alone (`ft_trainer::distributed::average_gradients`: the gradients to the host, one
/// all-reduce of a flat buffer, and back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllReduceResult {
    /// Float parameters averaged, i.e. values in the buffer.
    pub parameters: usize,
    /// Size of the buffer, in MB (10^6 bytes) of `f32`.
    pub megabytes: f64,
    /// Median milliseconds per all-reduce.
    pub milliseconds: f64,
    /// Processes in the job.
    pub processes: usize,
}

/// The median of `values`; `None` when there are none.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_rate_and_medians() {
        let gemm = GemmResult::new(512, 384, 1536, 2.0);
        assert!((gemm.gflops - 2.0 * 512.0 * 384.0 * 1536.0 / 2e6).abs() < 1e-9);
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0]), Some(2.5));
        assert_eq!(median([f64::NAN]), None);
    }

    #[test]
    fn a_misspelt_field_is_an_error_naming_it() {
        let json = r#"{"model": "m", "batch_size": 8, "steps": 10, "forward_ms": 1.0,
            "backward_ms": 1.0, "optimiser_ms": 1.0, "step_ms": 3.0, "infer_ms": 1.0,
            "threads": 2}"#;
        let error = serde_json::from_str::<StepResult>(json)
            .unwrap_err()
            .to_string();
        assert!(error.contains("optimiser_ms"), "{error}");
    }

    #[test]
    fn python_baseline_output_parses() {
        let json = r#"{"model": "bert-base", "batch_size": 8, "steps": 10, "forward_ms": 1.0,
            "backward_ms": 2.0, "optimizer_ms": 0.5, "step_ms": 3.5, "infer_ms": 0.7,
            "gemm": [{"m": 420, "k": 384, "n": 1536, "ms": 1.0, "gflops": 495.5}],
            "simd": "AVX512", "threads": 2}"#;
        let step: StepResult = serde_json::from_str(json).expect("parses");
        assert_eq!(step.gemm[0].n, 1536);
        assert_eq!(step.infer_fused_attention_ms, None);
    }

    #[test]
    fn a_train_result_from_before_data_parallel_training_had_one_process() {
        let json = r#"{"train_samples_per_second": 20.0, "train_tokens_per_second": 1000.0,
            "steps": 100, "threads": 2}"#;
        let train: TrainResult = serde_json::from_str(json).expect("parses");
        assert_eq!(train.processes, 1);
    }
}
