//! `docs/BENCHMARKS.md`, rendered from the report: one part per CPU kind, newest first, then
//! the hand-written analysis (`docs/benchmarks-analysis.md`).

use std::fmt::Write;

use bench_report::TrainResult;

use super::report::{
    CheckpointingSection, CpuReport, DistributedSection, NamedTrainResult, Report, Section,
    StepSection, TokenizeSection, TrainSection,
};
use crate::cargo::workspace_root;

/// Renders the whole report as Markdown.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    out.push_str("# Benchmarks\n\n");
    out.push_str(
        "Measured by `cargo xtask bench`, which runs each measurement of ours and of the \
         Hugging Face stack alternately (A B A B) in one invocation and reports medians. \
         This file and `docs/benchmarks.json` are written by it; do not edit them by hand. \
         Speed ratios move with the CPU, so every CPU kind measured has its own tables, \
         newest first; each section names the command and date that measured it.\n\n",
    );
    let mut cpus: Vec<&CpuReport> = report.cpus.values().collect();
    cpus.sort_by(|a, b| b.latest_date().cmp(a.latest_date()));
    for entry in cpus {
        render_cpu(&mut out, entry);
    }
    let notes = workspace_root().join("docs/benchmarks-analysis.md");
    if let Ok(text) = std::fs::read_to_string(notes) {
        out.push_str(&text);
    }
    out
}

fn render_cpu(out: &mut String, entry: &CpuReport) {
    let cpu = &entry.cpu;
    let _ = writeln!(out, "## {}\n", cpu.title());
    let _ = writeln!(
        out,
        "{} logical CPUs; SIMD: {}.\n",
        cpu.threads,
        if cpu.simd.is_empty() {
            "not recorded".to_string()
        } else {
            cpu.simd.join(", ")
        }
    );
    if let Some(section) = &entry.tokenize {
        render_tokenize(out, section);
    }
    if let Some(section) = &entry.step {
        render_step(out, section);
    }
    if let Some(section) = &entry.train {
        render_train(out, "Training with the Trainer", section);
    }
    if let Some(section) = &entry.distributed {
        render_distributed(out, section);
    }
    if let Some(section) = &entry.checkpointing {
        render_checkpointing(out, section);
    }
    if let Some(section) = &entry.family {
        render_train(
            out,
            "Training DistilBERT and RoBERTa with the Trainer",
            section,
        );
    }
    if let Some(section) = &entry.proxy {
        render_train(
            out,
            "A GPU's launch overhead on the CPU: a tiny BERT on libtorch, AdamW by tensor \
             operations",
            section,
        );
    }
}

fn provenance<T>(out: &mut String, section: &Section<T>) {
    let _ = writeln!(
        out,
        "Measured {} by `cargo xtask {}`.\n",
        section.date, section.command
    );
}

fn number(value: Option<f64>, digits: usize) -> String {
    value
        .filter(|v| v.is_finite())
        .map_or("not measured".to_string(), |v| format!("{v:.digits$}"))
}

/// [`number`], followed by its ratio to `baseline` where both were measured.
fn number_against(value: Option<f64>, baseline: Option<f64>, digits: usize) -> String {
    let text = number(value, digits);
    match (value, baseline) {
        (Some(v), Some(b)) => format!("{text} ({:.2}×)", v / b),
        _ => text,
    }
}

fn render_tokenize(out: &mut String, section: &Section<TokenizeSection>) {
    let t = &section.results;
    out.push_str("### Tokenization (the `dataset.map` step)\n\n");
    provenance(out, section);
    let _ = writeln!(
        out,
        "All {} MRPC train pairs, `truncation=True`, all-MiniLM-L6-v2's tokenizer \
         (bert-base-uncased's vocabulary); median of {} runs.\n",
        t.ours.pairs, section.runs
    );
    out.push_str("| implementation | pairs/s |\n|---|---|\n");
    let python = t.python.as_ref().map(|p| p.pairs_per_second);
    let _ = writeln!(
        out,
        "| bert-ft (`EncodedDataset::map`, rayon) | {:.0} |\n\
         | transformers fast tokenizer, batches of 1000 | {} |\n",
        t.ours.pairs_per_second,
        number(python, 0)
    );
    let ratio = python.map(|p| t.ours.pairs_per_second / p);
    let _ = writeln!(out, "Ratio (ours / Python): **{}×**\n", number(ratio, 2));
}

fn render_step(out: &mut String, section: &Section<StepSection>) {
    let step = &section.results;
    out.push_str("### Training step and inference batch (ms)\n\n");
    provenance(out, section);
    let _ = writeln!(
        out,
        "Batches of 8 of the first MRPC train pairs in order, each padded to its longest pair; \
         one step is forward, backward and AdamW. bert-ft on `{}` (the Trainer's AdamW, padding \
         removed inside the encoder) against PyTorch 2.9 eager (fused AdamW, as the Trainer's \
         default), same threads; medians of {} runs of 10 timed steps after 2 warm-up steps. \
         \"fused attention\" forces the backend's own attention kernel, which evaluation avoids \
         where it is slower. The GEMM rows time one `[m, k] × [k, n]` product alone, the model's \
         feed-forward shapes: the physical limit the linear layers run against.\n",
        step.backend, section.runs
    );
    out.push_str(
        "| shape | impl | forward | backward | AdamW | step | inference | inference, fused attention |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for shape in &step.shapes {
        let rows = [
            ("bert-ft", Some(&shape.ours)),
            ("PyTorch", shape.pytorch.as_ref()),
        ];
        for (name, r) in rows {
            let Some(r) = r else { continue };
            let _ = writeln!(
                out,
                "| {} | {name} | {:.0} | {:.0} | {:.0} | **{:.0}** | **{:.0}** | {} |",
                shape.shape,
                r.forward_ms,
                r.backward_ms,
                r.optimizer_ms,
                r.step_ms,
                r.infer_ms,
                r.infer_fused_attention_ms
                    .map_or("—".to_string(), |v| format!("{v:.0}")),
            );
        }
        if let Some(theirs) = &shape.pytorch {
            let _ = writeln!(
                out,
                "| | speed ratio (PyTorch time / ours) | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | |",
                theirs.forward_ms / shape.ours.forward_ms,
                theirs.backward_ms / shape.ours.backward_ms,
                theirs.optimizer_ms / shape.ours.optimizer_ms,
                theirs.step_ms / shape.ours.step_ms,
                theirs.infer_ms / shape.ours.infer_ms,
            );
        }
    }
    out.push_str("\n| shape | impl | SIMD code run | GEMM `[m, k] × [k, n]` | ms | GFLOP/s |\n|---|---|---|---|---|---|\n");
    for shape in &step.shapes {
        let rows = [
            ("bert-ft", Some(&shape.ours)),
            ("PyTorch", shape.pytorch.as_ref()),
        ];
        for (name, r) in rows {
            let Some(r) = r else { continue };
            for g in &r.gemm {
                let _ = writeln!(
                    out,
                    "| {} | {name} | {} | [{}, {}] × [{}, {}] | {:.2} | {:.0} |",
                    shape.shape,
                    r.simd.as_deref().unwrap_or("not recorded"),
                    g.m,
                    g.k,
                    g.k,
                    g.n,
                    g.ms,
                    g.gflops
                );
            }
        }
    }
    out.push('\n');
}

/// A goal on a ratio to the Hugging Face Trainer: which of our runs it applies to, what it
/// measures, and the bound (at least, or at most, `target`).
struct Goal {
    applies_to: fn(&str) -> bool,
    what: &'static str,
    value: fn(&TrainResult) -> Option<f64>,
    target: f64,
    at_least: bool,
}

/// The goals of issues 14 and 30, on every CPU kind measured.
const GOALS: [Goal; 7] = [
    Goal {
        applies_to: |run| run == "flex",
        what: "train samples/s",
        value: |r| Some(r.train_samples_per_second),
        target: 1.3,
        at_least: true,
    },
    Goal {
        applies_to: |run| run == "flex",
        what: "eval samples/s",
        value: |r| r.eval_samples_per_second,
        target: 1.3,
        at_least: true,
    },
    Goal {
        applies_to: |run| run == "tch-cpu",
        what: "train samples/s",
        value: |r| Some(r.train_samples_per_second),
        target: 1.2,
        at_least: true,
    },
    // Issue 30's CPU proxy for a GPU's launch overhead.
    Goal {
        applies_to: |run| run == "tch-cpu, AdamW by tensor operations",
        what: "train samples/s",
        value: |r| Some(r.train_samples_per_second),
        target: 1.5,
        at_least: true,
    },
    Goal {
        applies_to: |run| run.ends_with(" bf16"),
        what: "train samples/s (against the Trainer's bf16)",
        value: |r| Some(r.train_samples_per_second),
        target: 1.2,
        at_least: true,
    },
    Goal {
        applies_to: |run| !run.ends_with(" bf16") && !run.starts_with("wgpu"),
        what: "peak memory",
        value: |r| r.peak_rss_mb,
        target: 0.6,
        at_least: false,
    },
    Goal {
        applies_to: |run| !run.ends_with(" bf16") && !run.starts_with("wgpu"),
        what: "time to first step",
        value: |r| r.first_step_seconds,
        target: 0.2,
        at_least: false,
    },
];

fn render_train(out: &mut String, heading: &str, section: &Section<TrainSection>) {
    let train = &section.results;
    let _ = writeln!(out, "### {heading}\n");
    provenance(out, section);
    let timed = if train.warmup == 0 {
        "timed from the start of training, first step included".to_string()
    } else {
        format!("timed after {} untimed steps", train.warmup)
    };
    let _ = writeln!(
        out,
        "The whole Trainer (data loading, collation, forward, backward, clipping, AdamW, \
         schedule) on MRPC train at batch 8, seed 42, every logical CPU, for the steps given per \
         shape, {timed}; evaluation is `evaluate()` on the 408 validation pairs; memory is the \
         process's peak resident set; the first step is counted from process start. Medians of \
         {} rounds, each running every implementation once (bert-ft's `bench train`, then \
         `python/bench_train.py` with transformers 5.24 and torch 2.9.0). Each backend runs in \
         the `bert-ft` that `cargo xtask finetune-mrpc --backend …` builds for it, so only the \
         libtorch run loads libtorch. Ratios are ours / the Hugging Face Trainer's (bf16 runs \
         against its `bf16=True` run).\n",
        section.runs
    );
    out.push_str(
        "| shape | steps | implementation | train samples/s | train tokens/s | eval samples/s | peak RSS (MB) | first step (s) |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    let mut goal_rows = Vec::new();
    for shape in &train.shapes {
        let theirs_for = |run: &str| {
            if run.ends_with(" bf16") {
                shape.pytorch_bf16.as_ref()
            } else {
                shape.pytorch.as_ref()
            }
        };
        for (run, r) in &shape.ours {
            train_row(
                out,
                &shape.shape,
                shape.steps,
                &format!("bert-ft, {run}"),
                r,
                theirs_for(run),
            );
        }
        let theirs = [
            ("Hugging Face Trainer (torch CPU)", &shape.pytorch),
            (
                "Hugging Face Trainer (torch CPU, bf16)",
                &shape.pytorch_bf16,
            ),
        ];
        for (name, r) in theirs {
            if let Some(r) = r {
                train_row(out, &shape.shape, shape.steps, name, r, None);
            }
        }
        for goal in &GOALS {
            for (run, r) in &shape.ours {
                let theirs = theirs_for(run).and_then(goal.value);
                let (true, Some(ours), Some(theirs)) =
                    ((goal.applies_to)(run), (goal.value)(r), theirs)
                else {
                    continue;
                };
                let x = ours / theirs;
                let met = if goal.at_least {
                    x >= goal.target
                } else {
                    x <= goal.target
                };
                let sign = if goal.at_least { "≥" } else { "≤" };
                goal_rows.push(format!(
                    "| {} | {run} | {} | {sign} {}× | {x:.2}× | {} |\n",
                    shape.shape,
                    goal.what,
                    goal.target,
                    if met { "met" } else { "**missed**" }
                ));
            }
        }
    }
    out.push('\n');
    if !goal_rows.is_empty() {
        out.push_str("#### Goals\n\n| shape | run | measure | goal | measured | |\n|---|---|---|---|---|---|\n");
        for row in goal_rows {
            out.push_str(&row);
        }
        out.push('\n');
    }
}

fn render_distributed(out: &mut String, section: &Section<DistributedSection>) {
    let d = &section.results;
    out.push_str("### Data-parallel training (MPI)\n\n");
    provenance(out, section);
    let timed = if d.warmup == 0 {
        "timed from the start of training".to_string()
    } else {
        format!("timed after {} untimed steps", d.warmup)
    };
    let _ = writeln!(
        out,
        "bert-ft's Trainer on {}, flex, MRPC train, {} steps {timed}, at a global batch of {} \
         in every run: one process on every logical CPU, against `mpirun {}` with each process \
         at its share of the batch and rayon on its share of the CPUs, so that both use the same \
         CPUs. Both runs are the same `bert-ft` (built with the `mpi` feature), alternated in \
         {}; medians. Samples/s count every process's rows. The all-reduce is \
         `average_gradients` alone under the same `mpirun`, as each optimizer step runs it: \
         every gradient to one host buffer of `f32`, one MPI all-reduce, and back (median of \
         10 after one untimed, then the median over rounds).\n",
        d.shape,
        d.steps,
        d.global_batch_size,
        d.launch,
        plural(section.runs, "round", "rounds")
    );
    out.push_str(
        "| run | per-device batch | train samples/s | eval samples/s |\n|---|---|---|---|\n",
    );
    for (r, baseline) in [(&d.single, None), (&d.parallel, Some(&d.single))] {
        let cell = |value: fn(&TrainResult) -> Option<f64>| {
            number_against(value(r), baseline.and_then(value), 1)
        };
        let _ = writeln!(
            out,
            "| {} × {} | {} | {} | {} |",
            plural(r.processes, "process", "processes"),
            plural(r.threads, "thread", "threads"),
            d.global_batch_size / r.processes.max(1),
            cell(|r| Some(r.train_samples_per_second)),
            cell(|r| r.eval_samples_per_second),
        );
    }
    out.push_str(
        "\n| shape | processes | all-reduce per step (ms) | parameters | MB |\n|---|---|---|---|---|\n",
    );
    for shape in &d.all_reduce {
        let r = &shape.result;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} |",
            shape.shape,
            r.processes,
            number(Some(r.milliseconds), 1),
            r.parameters,
            r.megabytes
        );
    }
    out.push('\n');
}

fn render_checkpointing(out: &mut String, section: &Section<CheckpointingSection>) {
    let c = &section.results;
    out.push_str("### Gradient checkpointing\n\n");
    provenance(out, section);
    let _ = writeln!(
        out,
        "The Trainer on the {}, MRPC train at batch 8, {} steps timed from the start of \
         training, no evaluation; bert-ft on {} beside the Hugging Face Trainer, alternated in \
         {}; medians. `gradient_checkpointing` keeps each encoder layer's input alone and runs \
         the layer again in the backward pass (transformers' semantics); burn's Balanced \
         strategy recomputes memory-bound operations and keeps matrix products. Peak memory \
         is the process's peak resident size, weights, moments and data included. Each ratio \
         is against the same stack without checkpointing.\n",
        c.model,
        c.steps,
        c.backend,
        plural(section.runs, "round", "rounds")
    );
    out.push_str(
        "| rows | tokens/row | run | train samples/s | peak memory (MB) |\n|---|---|---|---|---|\n",
    );
    for shape in &c.shapes {
        for (stack, runs) in [("bert-ft", &shape.ours), ("Hugging Face", &shape.pytorch)] {
            checkpointing_rows(out, &shape.shape, stack, runs);
        }
    }
    out.push('\n');
}

/// One stack's runs on one row length, each against the stack's first (plain) run.
fn checkpointing_rows(out: &mut String, shape: &str, stack: &str, runs: &[NamedTrainResult]) {
    let Some(plain) = runs.first() else {
        return;
    };
    for (i, run) in runs.iter().enumerate() {
        let r = &run.result;
        // The plain run is the baseline, so it gets no ratio of its own.
        let baseline = (i > 0).then_some(&plain.result);
        let ratio = |value: fn(&TrainResult) -> Option<f64>, digits: usize| {
            number_against(value(r), baseline.and_then(value), digits)
        };
        let _ = writeln!(
            out,
            "| {shape} | {:.0} | {stack}, {} | {} | {} |",
            r.train_tokens_per_second / r.train_samples_per_second,
            run.name,
            ratio(|r| Some(r.train_samples_per_second), 2),
            ratio(|r| r.peak_rss_mb, 0),
        );
    }
}

/// `count` followed by the noun in its number.
fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

fn train_row(
    out: &mut String,
    shape: &str,
    steps: usize,
    name: &str,
    r: &TrainResult,
    theirs: Option<&TrainResult>,
) {
    let cell = |value: fn(&TrainResult) -> Option<f64>, digits: usize| {
        number_against(value(r), theirs.and_then(value), digits)
    };
    let _ = writeln!(
        out,
        "| {shape} | {steps} | {name} | {} | {} | {} | {} | {} |",
        cell(|r| Some(r.train_samples_per_second), 1),
        cell(|r| Some(r.train_tokens_per_second), 0),
        cell(|r| r.eval_samples_per_second, 1),
        cell(|r| r.peak_rss_mb, 0),
        cell(|r| r.first_step_seconds, 2),
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bench_report::CpuIdentity;

    use super::super::report::TrainShape;
    use super::*;

    fn result(samples: f64, eval: f64, rss: f64, first: f64, bf16: bool) -> TrainResult {
        TrainResult {
            train_samples_per_second: samples,
            train_tokens_per_second: samples * 50.0,
            first_step_seconds: Some(first),
            eval_samples_per_second: Some(eval),
            peak_rss_mb: Some(rss),
            steps: 100,
            threads: 2,
            bf16,
            backend: None,
            processes: 1,
        }
    }

    #[test]
    fn goal_verdicts_compare_like_with_like() {
        let ours = BTreeMap::from([
            ("flex".to_string(), result(10.0, 130.0, 500.0, 1.0, false)),
            (
                "tch-cpu bf16".to_string(),
                result(30.0, 100.0, 900.0, 3.0, true),
            ),
        ]);
        let section = Section {
            command: "bench".into(),
            date: "2026-12-02".into(),
            runs: 3,
            results: TrainSection {
                warmup: 0,
                shapes: vec![TrainShape {
                    shape: "MiniLM".into(),
                    steps: 100,
                    ours,
                    pytorch: Some(result(20.0, 100.0, 1000.0, 10.0, false)),
                    pytorch_bf16: Some(result(24.0, 120.0, 1000.0, 10.0, true)),
                }],
            },
        };
        let mut out = String::new();
        render_train(&mut out, "Training with the Trainer", &section);
        for row in [
            "| MiniLM | flex | train samples/s | ≥ 1.3× | 0.50× | **missed** |",
            "| MiniLM | flex | eval samples/s | ≥ 1.3× | 1.30× | met |",
            "| MiniLM | flex | peak memory | ≤ 0.6× | 0.50× | met |",
            "| MiniLM | tch-cpu bf16 | train samples/s (against the Trainer's bf16) | ≥ 1.2× | 1.25× | met |",
            "10.0 (0.50×)",
        ] {
            assert!(out.contains(row), "{row} not in\n{out}");
        }
        // A bf16 run is not held to the fp32 memory goal.
        assert!(!out.contains("| tch-cpu bf16 | peak memory"), "{out}");
    }

    #[test]
    fn data_parallel_rows_compare_with_one_process() {
        use bench_report::AllReduceResult;

        use super::super::report::AllReduceShape;

        let single = TrainResult {
            threads: 16,
            ..result(20.0, 100.0, 500.0, 1.0, false)
        };
        let parallel = TrainResult {
            threads: 8,
            processes: 2,
            ..result(30.0, 150.0, 500.0, 1.0, false)
        };
        let all_reduce = |shape: &str, parameters: usize, milliseconds| AllReduceShape {
            shape: shape.into(),
            result: AllReduceResult {
                parameters,
                megabytes: parameters as f64 * 4.0 / 1e6,
                milliseconds,
                processes: 2,
            },
        };
        let section = Section {
            command: "bench --only distributed".into(),
            date: "2026-12-02".into(),
            runs: 3,
            results: DistributedSection {
                shape: "MiniLM".into(),
                steps: 100,
                warmup: 0,
                global_batch_size: 8,
                launch: "-np 2 --bind-to core --map-by slot:PE=8".into(),
                single,
                parallel,
                all_reduce: vec![
                    all_reduce("MiniLM", 22_713_984, 12.5),
                    all_reduce("bert-base", 109_483_778, 61.0),
                ],
            },
        };
        let mut out = String::new();
        render_distributed(&mut out, &section);
        for row in [
            "### Data-parallel training (MPI)",
            "`mpirun -np 2 --bind-to core --map-by slot:PE=8`",
            "| 1 process × 16 threads | 8 | 20.0 | 100.0 |",
            "| 2 processes × 8 threads | 4 | 30.0 (1.50×) | 150.0 (1.50×) |",
            "| MiniLM | 2 | 12.5 | 22713984 | 90.9 |",
            "| bert-base | 2 | 61.0 | 109483778 | 437.9 |",
        ] {
            assert!(out.contains(row), "{row} not in\n{out}");
        }
    }

    #[test]
    fn checkpointed_runs_compare_with_their_own_stack_unchecked() {
        use super::super::report::CheckpointingShape;

        let named = |name: &str, samples, rss| NamedTrainResult {
            name: name.into(),
            result: TrainResult {
                train_tokens_per_second: samples * 512.0,
                ..result(samples, 0.0, rss, 1.0, false)
            },
        };
        let section = Section {
            command: "bench --only checkpointing".into(),
            date: "2026-12-02".into(),
            runs: 2,
            results: CheckpointingSection {
                model: "bert-base shape".into(),
                backend: "flex".into(),
                steps: 4,
                shapes: vec![CheckpointingShape {
                    shape: "long rows".into(),
                    repeat_text: 11,
                    ours: vec![
                        named("no checkpointing", 0.4, 8000.0),
                        named("gradient_checkpointing", 0.3, 4000.0),
                    ],
                    pytorch: vec![
                        named("no checkpointing", 0.5, 6000.0),
                        named("gradient_checkpointing", 0.25, 4500.0),
                    ],
                }],
            },
        };
        let mut out = String::new();
        render_checkpointing(&mut out, &section);
        for row in [
            "### Gradient checkpointing",
            "| long rows | 512 | bert-ft, no checkpointing | 0.40 | 8000 |",
            "| long rows | 512 | bert-ft, gradient_checkpointing | 0.30 (0.75×) | 4000 (0.50×) |",
            "| long rows | 512 | Hugging Face, gradient_checkpointing | 0.25 (0.50×) | 4500 (0.75×) |",
        ] {
            assert!(out.contains(row), "{row} not in\n{out}");
        }
    }

    #[test]
    fn every_cpu_keeps_its_own_tables() {
        let mut report = Report::default();
        for (vendor, family) in [("GenuineIntel", 6), ("AuthenticAMD", 25)] {
            let cpu = CpuIdentity {
                vendor: vendor.into(),
                family: Some(family),
                model: Some(1),
                model_name: format!("{vendor} CPU"),
                simd: vec!["avx2".into()],
                threads: 2,
            };
            report.cpus.insert(cpu.key(), CpuReport::new(cpu));
        }
        let out = render(&report);
        assert!(
            out.contains("## GenuineIntel CPU (GenuineIntel, family 6, model 1)"),
            "{out}"
        );
        assert!(
            out.contains("## AuthenticAMD CPU (AuthenticAMD, family 25, model 1)"),
            "{out}"
        );
    }
}
