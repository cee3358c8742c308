//! `cargo xtask bench`: our numbers beside the Hugging Face stack's, measured in one run,
//! interleaved A B A B, as medians. Results go to `docs/benchmarks.json` and are rendered
//! into `docs/BENCHMARKS.md`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::cargo::{build_cli, cli_features, workspace_root};
use crate::python;

/// Arguments of `bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Create the Python virtualenv from PyPI if it is missing (needed for the baseline).
    #[arg(long)]
    with_python: bool,
    /// Runs of each measurement; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Sections to run (default: all): tokenize, step, train.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Backends the training section measures (default: every CPU backend built: flex,
    /// ndarray, and tch-cpu where the project's PyTorch is installed).
    #[arg(long, value_delimiter = ',')]
    backends: Vec<String>,
    /// Timed training steps per run, after the warm-up.
    #[arg(long, default_value_t = 20)]
    train_steps: usize,
    /// Untimed training steps at the start of each run.
    #[arg(long, default_value_t = 3)]
    train_warmup: usize,
    /// The real checkpoint used for MiniLM measurements.
    #[arg(long, default_value = "../shared/models/all-MiniLM-L6-v2")]
    model: String,
    /// GLUE MRPC in the original TSV layout.
    #[arg(long, default_value = "../shared/data/glue/MRPC")]
    dataset: String,
}

const SECTIONS: [&str; 3] = ["tokenize", "step", "train"];

/// Runs the selected sections and rewrites the report.
pub fn run(args: &BenchArgs) -> Result<()> {
    let python = if args.with_python {
        Some(python::ensure_venv()?)
    } else {
        python::venv_python()
    };
    // libtorch only where the project's PyTorch provides it.
    let has_torch = python::venv_python().is_some() || std::env::var_os("LIBTORCH").is_some();
    let backends = if args.backends.is_empty() {
        let mut all = vec!["flex".to_string(), "ndarray".to_string()];
        if has_torch {
            all.insert(1, "tch-cpu".to_string());
        }
        all
    } else {
        args.backends.clone()
    };
    let binaries = Binaries::build(&backends)?;
    let binary = binaries.get("flex")?;
    let json_path = workspace_root().join("docs/benchmarks.json");
    let mut report: Value = match std::fs::read_to_string(&json_path) {
        Ok(text) => serde_json::from_str(&text).context("reading docs/benchmarks.json")?,
        Err(_) => json!({ "sections": {} }),
    };
    report["machine"] = machine();
    report["command"] = json!(std::env::args().skip(1).collect::<Vec<_>>().join(" "));
    for section in SECTIONS {
        if !args.only.is_empty() && !args.only.iter().any(|s| s == section) {
            continue;
        }
        let result = match section {
            "tokenize" => tokenize(args, binary, python.as_deref())?,
            "step" => step(args, binary, python.as_deref())?,
            "train" => train(args, &binaries, python.as_deref(), &backends)?,
            _ => unreachable!("every section is listed"),
        };
        let mut result = result;
        // Sections can be re-run alone, so each records the command and date that made it.
        result["command"] = report["command"].clone();
        result["date"] = report["machine"]["date"].clone();
        report["sections"][section] = result;
    }
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)? + "\n")?;
    let markdown = render(&report);
    std::fs::write(workspace_root().join("docs/BENCHMARKS.md"), &markdown)?;
    println!("{markdown}");
    Ok(())
}

/// One `bert-ft` per backend, built as `cargo xtask finetune-mrpc --backend …` builds it, so
/// that each process holds what a user's would (a flex run maps no libtorch).
struct Binaries(Vec<(String, PathBuf)>);

impl Binaries {
    /// Builds the binary of every backend in `backends`, and flex's, which the other sections
    /// use. Each build overwrites `target/release/bert-ft`, so it is copied aside.
    fn build(backends: &[String]) -> Result<Self> {
        let dir = workspace_root().join("target/bench-bin");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut binaries: Vec<(String, PathBuf)> = Vec::new();
        let flex = "flex".to_string();
        for backend in std::iter::once(&flex).chain(backends) {
            let features = cli_features(backend)?;
            if binaries.iter().any(|(name, _)| name == backend) {
                continue;
            }
            let built = build_cli(&features)?;
            let copy = dir.join(format!("bert-ft-{}", features.join("-")));
            std::fs::copy(&built, &copy)
                .with_context(|| format!("copying {} to {}", built.display(), copy.display()))?;
            binaries.push((backend.clone(), copy));
        }
        Ok(Self(binaries))
    }

    /// The binary that runs `backend`.
    fn get(&self, backend: &str) -> Result<&Path> {
        self.0
            .iter()
            .find(|(name, _)| name == backend)
            .map(|(_, path)| path.as_path())
            .with_context(|| format!("no bert-ft was built for {backend}"))
    }
}

/// CPU model, core count and date, so that numbers are read against their machine.
fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let date = Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default();
    json!({ "cpu": cpu, "cores": cores, "date": date })
}

/// Runs a measurement command and parses the JSON object on its last stdout line.
fn measure(mut command: Command) -> Result<Value> {
    crate::cargo::backend_env(&mut command);
    let output = command
        .current_dir(workspace_root())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("parsing the output of {command:?}: {line}"))
}

/// The median of `key` over `runs`.
fn median(runs: &[Value], key: &str) -> Option<f64> {
    let mut values: Vec<f64> = runs.iter().filter_map(|r| r[key].as_f64()).collect();
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

/// Runs `ours` and `theirs` alternately `runs` times each.
fn interleave(
    runs: usize,
    mut ours: impl FnMut() -> Result<Value>,
    mut theirs: Option<impl FnMut() -> Result<Value>>,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for run in 0..runs {
        eprintln!("  run {}/{runs}", run + 1);
        a.push(ours()?);
        if let Some(theirs) = theirs.as_mut() {
            b.push(theirs()?);
        }
    }
    Ok((a, b))
}

fn tokenize(args: &BenchArgs, binary: &Path, python: Option<&Path>) -> Result<Value> {
    eprintln!("bench: tokenization of MRPC train");
    let ours = || {
        let mut command = Command::new(binary);
        command.args([
            "bench",
            "tokenize",
            "--model",
            &args.model,
            "--dataset",
            &args.dataset,
        ]);
        measure(command)
    };
    let theirs = python.map(|python| {
        move || {
            let mut command = Command::new(python);
            command
                .args(["python/bench_tokenize.py", "--model", &args.model])
                .args(["--dataset", &args.dataset]);
            measure(command)
        }
    });
    let (a, b) = interleave(args.runs, ours, theirs)?;
    let ours = median(&a, "pairs_per_second");
    let theirs = median(&b, "pairs_per_second");
    Ok(json!({
        "runs": args.runs,
        "pairs": a.first().map(|r| r["pairs"].clone()),
        "ours_pairs_per_second": ours,
        "python_pairs_per_second": theirs,
        "ratio": ours.zip(theirs).map(|(o, t)| o / t),
    }))
}

/// The two model shapes the step and training benchmarks use.
fn shapes(args: &BenchArgs) -> [(&'static str, String); 2] {
    [
        (
            "MiniLM (all-MiniLM-L6-v2, real weights)",
            args.model.clone(),
        ),
        ("bert-base shape (random weights)", "bert-base".to_string()),
    ]
}

const STEP_KEYS: [&str; 6] = [
    "forward_ms",
    "backward_ms",
    "optimizer_ms",
    "step_ms",
    "infer_ms",
    "infer_explicit_attention_ms",
];

fn step(args: &BenchArgs, binary: &Path, python: Option<&Path>) -> Result<Value> {
    let mut results = Vec::new();
    for (label, model) in shapes(args) {
        eprintln!("bench: training step and inference, {label}");
        let common = |command: &mut Command| {
            command
                .args(["--model", &model, "--tokenizer", &args.model])
                .args(["--dataset", &args.dataset]);
        };
        let ours = || {
            let mut command = Command::new(binary);
            command.args(["bench", "step", "--backend", "flex"]);
            common(&mut command);
            measure(command)
        };
        let theirs = python.map(|python| {
            move || {
                let mut command = Command::new(python);
                command.arg("python/bench_step.py");
                common(&mut command);
                measure(command)
            }
        });
        let (a, b) = interleave(args.runs, ours, theirs)?;
        let summarise = |runs: &[Value], keys: &[&str]| {
            let mut out = serde_json::Map::new();
            for key in keys {
                out.insert(key.to_string(), json!(median(runs, key)));
            }
            Value::Object(out)
        };
        results.push(json!({
            "shape": label,
            "mean_padded_len": a.first().map(|r| r["mean_padded_len"].clone()),
            "ours": summarise(&a, &STEP_KEYS),
            "pytorch": summarise(&b, &STEP_KEYS[..5]),
        }));
    }
    Ok(json!({ "runs": args.runs, "backend": "flex", "shapes": results }))
}

/// A named measurement, run once per round.
type Job<'a> = (String, Box<dyn FnMut() -> Result<Value> + 'a>);

/// Runs every job once per round, `runs` rounds (A B C A B C …), so that drift in the
/// machine's speed falls on all of them alike.
fn round_robin(runs: usize, jobs: &mut [Job<'_>]) -> Result<Vec<Vec<Value>>> {
    let mut results = vec![Vec::new(); jobs.len()];
    for run in 0..runs {
        for (i, (name, job)) in jobs.iter_mut().enumerate() {
            eprintln!("  run {}/{runs}: {name}", run + 1);
            results[i].push(job()?);
        }
    }
    Ok(results)
}

/// What the training section reports for each implementation.
const TRAIN_KEYS: [&str; 5] = [
    "train_samples_per_second",
    "train_tokens_per_second",
    "eval_samples_per_second",
    "peak_rss_mb",
    "first_step_seconds",
];

/// The Trainer on MRPC for a fixed number of steps: ours on each backend, and the Hugging
/// Face Trainer (`python/bench_train.py`), in rounds.
fn train(
    args: &BenchArgs,
    binaries: &Binaries,
    python: Option<&Path>,
    backends: &[String],
) -> Result<Value> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut results = Vec::new();
    for (label, model) in shapes(args) {
        eprintln!("bench: training with the Trainer, {label}");
        let common = |command: &mut Command| {
            command
                .args(["--model", &model, "--tokenizer", &args.model])
                .args(["--dataset", &args.dataset])
                .args(["--steps", &args.train_steps.to_string()])
                .args(["--warmup", &args.train_warmup.to_string()]);
        };
        let mut jobs: Vec<Job<'_>> = Vec::new();
        for backend in backends {
            let binary = binaries.get(backend)?;
            jobs.push((
                format!("bert-ft on {backend}"),
                Box::new(move || {
                    let mut command = Command::new(binary);
                    command.args(["bench", "train", "--backend", backend]);
                    common(&mut command);
                    measure(command)
                }),
            ));
        }
        if let Some(python) = python {
            jobs.push((
                "Hugging Face Trainer".to_string(),
                Box::new(move || {
                    let mut command = Command::new(python);
                    command.arg("python/bench_train.py");
                    command.args(["--threads", &threads.to_string()]);
                    common(&mut command);
                    measure(command)
                }),
            ));
        }
        let runs = round_robin(args.runs, &mut jobs)?;
        let summarise = |runs: &[Value]| {
            let mut out = serde_json::Map::new();
            for key in TRAIN_KEYS {
                out.insert(key.to_string(), json!(median(runs, key)));
            }
            Value::Object(out)
        };
        let mut ours = serde_json::Map::new();
        for (backend, runs) in backends.iter().zip(&runs) {
            ours.insert(backend.clone(), summarise(runs));
        }
        let pytorch = python.map(|_| summarise(&runs[backends.len()]));
        results.push(json!({
            "shape": label,
            "ours": ours,
            "pytorch": pytorch,
        }));
    }
    Ok(json!({
        "runs": args.runs,
        "steps": args.train_steps,
        "warmup": args.train_warmup,
        "threads": threads,
        "shapes": results,
    }))
}

fn number(value: &Value, digits: usize) -> String {
    value
        .as_f64()
        .map_or("not measured".to_string(), |v| format!("{v:.digits$}"))
}

/// Renders the whole report as Markdown.
fn render(report: &Value) -> String {
    let machine = &report["machine"];
    let mut out = String::new();
    out.push_str("# Benchmarks\n\n");
    out.push_str(
        "Measured by `cargo xtask bench`, which runs each measurement of ours and of the \
         Hugging Face stack alternately (A B A B) in one invocation and reports medians. \
         This file and `docs/benchmarks.json` are written by it; do not edit them by hand.\n\n",
    );
    out.push_str(&format!(
        "Machine: {} ({} cores). Each section names the command and date that measured it.\n\n",
        machine["cpu"].as_str().unwrap_or("unknown"),
        machine["cores"],
    ));
    let sections = &report["sections"];
    if let Some(t) = sections.get("tokenize") {
        out.push_str("## Tokenization (the `dataset.map` step)\n\n");
        provenance(&mut out, t);
        out.push_str(&format!(
            "All {} MRPC train pairs, `truncation=True`, all-MiniLM-L6-v2's tokenizer \
             (bert-base-uncased's vocabulary); median of {} runs.\n\n",
            t["pairs"], t["runs"]
        ));
        out.push_str("| implementation | pairs/s |\n|---|---|\n");
        out.push_str(&format!(
            "| bert-ft (`EncodedDataset::map`, rayon) | {} |\n",
            number(&t["ours_pairs_per_second"], 0)
        ));
        out.push_str(&format!(
            "| transformers fast tokenizer, batches of 1000 | {} |\n",
            number(&t["python_pairs_per_second"], 0)
        ));
        out.push_str(&format!(
            "\nRatio (ours / Python): **{}×**\n\n",
            number(&t["ratio"], 2)
        ));
    }
    if let Some(step) = sections.get("step") {
        render_step(&mut out, step);
    }
    if let Some(train) = sections.get("train") {
        render_train(&mut out, train);
    }
    let notes = workspace_root().join("docs/benchmarks-analysis.md");
    if let Ok(text) = std::fs::read_to_string(notes) {
        out.push_str(&text);
    }
    out
}

fn render_step(out: &mut String, step: &Value) {
    out.push_str("## Training step and inference batch (ms)\n\n");
    provenance(out, step);
    out.push_str(&format!(
        "Batches of 8 of the first MRPC train pairs in order, each padded to its longest pair; \
         one step is forward, backward and AdamW. bert-ft on `{}` (with `x86-v4` kernels and \
         mimalloc, the Trainer's AdamW, padding removed inside the encoder) against PyTorch 2.9 \
         eager (fused AdamW, as the Trainer's default), same threads; medians of {} runs of 10 timed steps after 2 warm-up steps.\n\n",
        step["backend"].as_str().unwrap_or("flex"),
        step["runs"]
    ));
    out.push_str(
        "| shape | impl | forward | backward | AdamW | step | inference | inference, explicit attention |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for shape in step["shapes"].as_array().into_iter().flatten() {
        for (name, key) in [("bert-ft", "ours"), ("PyTorch", "pytorch")] {
            let r = &shape[key];
            out.push_str(&format!(
                "| {} (mean padded length {}) | {name} | {} | {} | {} | **{}** | **{}** | {} |\n",
                shape["shape"].as_str().unwrap_or(""),
                number(&shape["mean_padded_len"], 1),
                number(&r["forward_ms"], 0),
                number(&r["backward_ms"], 0),
                number(&r["optimizer_ms"], 0),
                number(&r["step_ms"], 0),
                number(&r["infer_ms"], 0),
                r.get("infer_explicit_attention_ms")
                    .map_or("—".to_string(), |v| number(v, 0)),
            ));
        }
        let ratio = |key: &str| {
            shape["pytorch"][key]
                .as_f64()
                .zip(shape["ours"][key].as_f64())
                .map_or("not measured".to_string(), |(t, o)| format!("{:.2}", t / o))
        };
        out.push_str(&format!(
            "| | speed ratio (PyTorch time / ours) | | | | {} | {} | |\n",
            ratio("step_ms"),
            ratio("infer_ms")
        ));
    }
    out.push('\n');
}

/// The goals, as (backend, what, minimum or maximum ratio to the Hugging Face Trainer).
/// A ratio is ours / theirs; for memory and start-up smaller is better.
const GOALS: [(&str, &str, &str, f64, bool); 5] = [
    (
        "flex",
        "train samples/s",
        "train_samples_per_second",
        1.0,
        true,
    ),
    (
        "tch-cpu",
        "train samples/s",
        "train_samples_per_second",
        1.2,
        true,
    ),
    (
        "every CPU backend",
        "eval samples/s",
        "eval_samples_per_second",
        1.2,
        true,
    ),
    (
        "every CPU backend",
        "peak memory",
        "peak_rss_mb",
        0.6,
        false,
    ),
    (
        "every CPU backend",
        "time to first step",
        "first_step_seconds",
        0.2,
        false,
    ),
];

fn render_train(out: &mut String, train: &Value) {
    out.push_str(
        "## Training with the Trainer

",
    );
    provenance(out, train);
    out.push_str(&format!(
        "The whole Trainer (data loading, collation, forward, backward, clipping, AdamW, \
         schedule) on MRPC train at batch 8, seed 42, {} threads: {} warm-up steps, then {} timed \
         steps; evaluation is `evaluate()` on the 408 validation pairs; memory is the process's \
         peak resident set; the first step is counted from process start. Medians of {} rounds, \
         each running every implementation once (bert-ft's `bench train`, then \
         `python/bench_train.py` with transformers 5.x and torch 2.9.0). Each backend runs in \
         the `bert-ft` that `cargo xtask finetune-mrpc --backend …` builds for it, so only the \
         libtorch run loads libtorch. Ratios are ours / the Hugging Face Trainer's.\n\n",
        train["threads"], train["warmup"], train["steps"], train["runs"]
    ));
    out.push_str(
        "| shape | implementation | train samples/s | train tokens/s | eval samples/s | peak RSS (MB) | first step (s) |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let mut goal_rows = Vec::new();
    for shape in train["shapes"].as_array().into_iter().flatten() {
        let name = shape["shape"].as_str().unwrap_or("");
        let theirs = &shape["pytorch"];
        let ratio = |ours: &Value, key: &str| {
            ours[key]
                .as_f64()
                .zip(theirs[key].as_f64())
                .map(|(o, t)| o / t)
        };
        let cell = |r: &Value, key: &str, digits: usize, ours: bool| {
            let value = number(&r[key], digits);
            match ratio(r, key).filter(|_| ours) {
                Some(x) => format!("{value} ({x:.2}×)"),
                None => value,
            }
        };
        let mut rows: Vec<(String, &Value, bool)> = shape["ours"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(backend, r)| (format!("bert-ft, {backend}"), r, true))
            .collect();
        rows.push((
            "Hugging Face Trainer (torch CPU)".to_string(),
            theirs,
            false,
        ));
        for (implementation, r, ours) in rows {
            out.push_str(&format!(
                "| {name} | {implementation} | {} | {} | {} | {} | {} |\n",
                cell(r, "train_samples_per_second", 1, ours),
                cell(r, "train_tokens_per_second", 0, ours),
                cell(r, "eval_samples_per_second", 1, ours),
                cell(r, "peak_rss_mb", 0, ours),
                cell(r, "first_step_seconds", 2, ours),
            ));
        }
        for (backend, what, key, target, at_least) in GOALS {
            for (ours_backend, r) in shape["ours"].as_object().into_iter().flatten() {
                let applies = backend == "every CPU backend" || backend == ours_backend;
                if !applies || ours_backend.starts_with("wgpu") {
                    continue;
                }
                let Some(x) = ratio(r, key) else { continue };
                let met = if at_least { x >= target } else { x <= target };
                let sign = if at_least { "≥" } else { "≤" };
                goal_rows.push(format!(
                    "| {name} | {ours_backend} | {what} | {sign} {target}× | {x:.2}× | {} |\n",
                    if met { "met" } else { "**missed**" }
                ));
            }
        }
    }
    out.push('\n');
    if !goal_rows.is_empty() {
        out.push_str("### Goals\n\n| shape | backend | measure | goal | measured | |\n|---|---|---|---|---|---|\n");
        for row in goal_rows {
            out.push_str(&row);
        }
        out.push('\n');
    }
}

fn provenance(out: &mut String, section: &Value) {
    out.push_str(&format!(
        "Measured {} by `cargo xtask {}`.\n\n",
        section["date"].as_str().unwrap_or("(date unknown)"),
        section["command"].as_str().unwrap_or("bench"),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_goal_verdicts() {
        let runs = [json!({"x": 3.0}), json!({"x": 1.0}), json!({"x": 2.0})];
        assert_eq!(median(&runs, "x"), Some(2.0));
        assert_eq!(median(&runs[..2], "x"), Some(2.0));
        assert_eq!(median(&runs, "y"), None);

        let train = json!({
            "runs": 3, "steps": 20, "warmup": 3, "threads": 2,
            "shapes": [{
                "shape": "MiniLM",
                "ours": {
                    "flex": {"train_samples_per_second": 10.0, "eval_samples_per_second": 130.0,
                             "peak_rss_mb": 500.0, "first_step_seconds": 1.0,
                             "train_tokens_per_second": 500.0},
                },
                "pytorch": {"train_samples_per_second": 20.0, "eval_samples_per_second": 100.0,
                            "peak_rss_mb": 1000.0, "first_step_seconds": 10.0,
                            "train_tokens_per_second": 1000.0},
            }],
        });
        let mut out = String::new();
        render_train(&mut out, &train);
        assert!(
            out.contains("| MiniLM | flex | train samples/s | ≥ 1× | 0.50× | **missed** |"),
            "{out}"
        );
        assert!(
            out.contains("| MiniLM | flex | eval samples/s | ≥ 1.2× | 1.30× | met |"),
            "{out}"
        );
        assert!(
            out.contains("| MiniLM | flex | peak memory | ≤ 0.6× | 0.50× | met |"),
            "{out}"
        );
        assert!(out.contains("10.0 (0.50×)"), "{out}");
    }
}
