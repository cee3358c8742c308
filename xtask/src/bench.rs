//! `cargo xtask bench`: our numbers beside the Hugging Face stack's, measured in one run,
//! interleaved A B A B, as medians. Results go to `docs/benchmarks.json` and are rendered
//! into `docs/BENCHMARKS.md`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::cargo::{build_cli, workspace_root};
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
    /// Sections to run (default: all): tokenize, step.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The real checkpoint used for MiniLM measurements.
    #[arg(long, default_value = "../shared/models/all-MiniLM-L6-v2")]
    model: String,
    /// GLUE MRPC in the original TSV layout.
    #[arg(long, default_value = "../shared/data/glue/MRPC")]
    dataset: String,
}

const SECTIONS: [&str; 2] = ["tokenize", "step"];

/// Runs the selected sections and rewrites the report.
pub fn run(args: &BenchArgs) -> Result<()> {
    let python = if args.with_python {
        Some(python::ensure_venv()?)
    } else {
        python::venv_python()
    };
    let binary = build_cli(&["flex", "x86-v4"])?;
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
            "tokenize" => tokenize(args, &binary, python.as_deref())?,
            "step" => step(args, &binary, python.as_deref())?,
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
         mimalloc) against PyTorch 2.9 eager (fused AdamW, as the Trainer's default), same \
         threads; medians of {} runs of 10 timed steps after 2 warm-up steps.\n\n",
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

fn provenance(out: &mut String, section: &Value) {
    out.push_str(&format!(
        "Measured {} by `cargo xtask {}`.\n\n",
        section["date"].as_str().unwrap_or("(date unknown)"),
        section["command"].as_str().unwrap_or("bench"),
    ));
}
