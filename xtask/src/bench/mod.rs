//! `cargo xtask bench`: our numbers beside the Hugging Face stack's, measured in one run,
//! interleaved A B A B, as medians. Results go to `docs/benchmarks.json`, one entry per CPU
//! kind, and are rendered into `docs/BENCHMARKS.md`. The `distributed` section compares
//! `bert-ft` with itself instead: one process against two under `mpirun`.

mod render;
mod report;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use bench_report::{AllReduceResult, CpuIdentity, StepResult, TokenizeResult, TrainResult};
use clap::Args;
use serde::de::DeserializeOwned;

use crate::cargo::{build_cli, build_cli_in, cli_features, workspace_root};
use crate::python;
use report::{
    AllReduceShape, CheckpointingSection, CheckpointingShape, CpuReport, DistributedSection,
    NamedTrainResult, Report, Section, StepSection, StepShape, TokenizeSection, TrainSection,
    TrainShape,
};

/// Arguments of `bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Create the Python virtualenv from PyPI if it is missing (needed for the baseline).
    #[arg(long)]
    with_python: bool,
    /// Runs of each measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Measure nothing: rewrite docs/BENCHMARKS.md from docs/benchmarks.json and
    /// docs/benchmarks-analysis.md.
    #[arg(long)]
    render_only: bool,
    /// Sections to run (default: all): tokenize, step, train, distributed (skipped without
    /// `mpirun`), checkpointing, family (the Trainer on the DistilBERT and RoBERTa shapes),
    /// proxy (a GPU's launch overhead on the CPU: a tiny BERT on tch-cpu with AdamW by tensor
    /// operations; skipped without the project's PyTorch).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Backends the training section measures (default: every CPU backend built: flex,
    /// ndarray, and tch-cpu where the project's PyTorch is installed).
    #[arg(long, value_delimiter = ',')]
    backends: Vec<String>,
    /// Backends the training section also runs with `--bf16`, beside the Hugging Face
    /// Trainer's `bf16=True` (default, where the CPU has AVX512-BF16 or AMX: flex, whose
    /// `--bf16` is autocast on the CPU's bf16 unit, and tch-cpu where libtorch is measured;
    /// `none` for none).
    #[arg(long, value_delimiter = ',')]
    bf16_backends: Vec<String>,
    /// Training steps per run, from the start of training, for every shape (default: 100
    /// on MiniLM and 30 on the bert-base shape); lower for a quick look.
    #[arg(long)]
    train_steps: Option<usize>,
    /// Untimed training steps at the start of each run (default none: users wait for them).
    #[arg(long, default_value_t = 0)]
    train_warmup: usize,
    /// The real checkpoint used for MiniLM measurements.
    #[arg(long, default_value = "../shared/models/all-MiniLM-L6-v2")]
    model: String,
    /// GLUE MRPC in the original TSV layout.
    #[arg(long, default_value = "../shared/data/glue/MRPC")]
    dataset: String,
}

const SECTIONS: [&str; 7] = [
    "tokenize",
    "step",
    "train",
    "distributed",
    "checkpointing",
    "family",
    "proxy",
];

/// A model shape: its label, what `--model` is given, and the Trainer's default step count.
type Shape = (&'static str, String, usize);

/// The other architectures' base shapes (random weights) the family section trains.
fn family_shapes() -> [Shape; 2] {
    [
        (
            "distilbert-base shape (random weights)",
            "distilbert-base".to_string(),
            30,
        ),
        (
            "roberta-base shape (random weights)",
            "roberta-base".to_string(),
            30,
        ),
    ]
}

/// The proxy section's shape: small enough that a step is bound by dispatching operations,
/// as a GPU's step is by launching kernels.
fn proxy_shapes() -> [Shape; 1] {
    [(
        "tiny BERT (2 layers, hidden 64, random weights)",
        "tiny-bert".to_string(),
        300,
    )]
}

/// What the proxy section runs: tch-cpu with AdamW on the device path (libtorch's fused
/// kernels), the path a GPU takes.
fn proxy_runs() -> Vec<OurRun> {
    vec![OurRun {
        backend: "tch-cpu".to_string(),
        bf16: false,
        device_optimizer: true,
    }]
}

/// One of our runs in a training section.
#[derive(Debug, Clone, PartialEq)]
struct OurRun {
    backend: String,
    bf16: bool,
    /// `--device-optimizer`: AdamW by tensor operations even on a CPU backend.
    device_optimizer: bool,
}

impl OurRun {
    /// The backend's fp32 and bf16 runs.
    fn all(backends: &[String], bf16_backends: &[String]) -> Vec<Self> {
        let run = |backend: &String, bf16| OurRun {
            backend: backend.clone(),
            bf16,
            device_optimizer: false,
        };
        let fp32 = backends.iter().map(|b| run(b, false));
        fp32.chain(bf16_backends.iter().map(|b| run(b, true)))
            .collect()
    }

    /// Its name in the report: the backend, then ` bf16` or the optimizer's path.
    fn name(&self) -> String {
        match (self.bf16, self.device_optimizer) {
            (true, _) => format!("{} bf16", self.backend),
            (false, true) => format!("{}, AdamW by tensor operations", self.backend),
            (false, false) => self.backend.clone(),
        }
    }
}

/// The two model shapes the step and training benchmarks use, with the Trainer's default
/// step count for each.
fn shapes(args: &BenchArgs) -> [Shape; 2] {
    [
        (
            "MiniLM (all-MiniLM-L6-v2, real weights)",
            args.model.clone(),
            100,
        ),
        (
            "bert-base shape (random weights)",
            "bert-base".to_string(),
            30,
        ),
    ]
}

/// Runs the selected sections and rewrites the report.
pub fn run(args: &BenchArgs) -> Result<()> {
    let json_path = workspace_root().join("docs/benchmarks.json");
    if args.render_only {
        let text = std::fs::read_to_string(&json_path).context("reading docs/benchmarks.json")?;
        let report: Report = serde_json::from_str(&text).context("parsing docs/benchmarks.json")?;
        return write_markdown(&report);
    }
    let python = if args.with_python {
        Some(python::ensure_venv()?)
    } else {
        python::venv_python()
    };
    let cpu = CpuIdentity::detect();
    let backends = train_backends(args, python.is_some());
    let bf16_backends = bf16_backends(args, &backends, &cpu);
    let selected = |section: &str| args.only.is_empty() || args.only.iter().any(|s| s == section);
    let has_torch = backends.iter().any(|b| b == "tch-cpu");
    // The other sections run flex alone; only the training sections need other backends.
    let mut trained: Vec<&str> = if selected("train") || selected("family") {
        backends
            .iter()
            .chain(&bf16_backends)
            .map(String::as_str)
            .collect()
    } else {
        Vec::new()
    };
    if selected("proxy") && has_torch {
        trained.push("tch-cpu");
    }
    // Tokenization, the step and checkpointing run on flex; the distributed section builds
    // its own binary.
    let flex = ["tokenize", "step", "checkpointing"]
        .into_iter()
        .any(selected)
        .then_some("flex");
    let binaries = Binaries::build(flex.into_iter().chain(trained))?;
    let mut report: Report = match std::fs::read_to_string(&json_path) {
        Ok(text) => serde_json::from_str(&text).context("reading docs/benchmarks.json")?,
        Err(_) => Report::default(),
    };
    let bench = Bench {
        args,
        binaries: &binaries,
        python: python.as_deref(),
        command: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        date: today(),
    };
    let entry = report
        .cpus
        .entry(cpu.key())
        .or_insert_with(|| CpuReport::new(cpu.clone()));
    entry.cpu = cpu;
    for section in SECTIONS {
        if !selected(section) {
            continue;
        }
        match section {
            "tokenize" => entry.tokenize = Some(bench.section(tokenize(&bench)?)),
            "step" => entry.step = Some(bench.section(step(&bench)?)),
            "train" => {
                let runs = OurRun::all(&backends, &bf16_backends);
                let section = train(&bench, &shapes(args), &runs)?;
                entry.train = Some(bench.section(section));
            }
            "family" => {
                let runs = OurRun::all(&backends, &bf16_backends);
                let section = train(&bench, &family_shapes(), &runs)?;
                entry.family = Some(bench.section(section));
            }
            "proxy" if !has_torch => eprintln!(
                "bench: skipping the proxy section: it runs libtorch, from the project's \
                 PyTorch (`--with-python`); the report keeps its previous figures"
            ),
            "proxy" => {
                let section = train(&bench, &proxy_shapes(), &proxy_runs())?;
                entry.proxy = Some(bench.section(section));
            }
            "distributed" if !on_path("mpirun") => eprintln!(
                "bench: skipping the distributed section: no `mpirun` on PATH (install Open \
                 MPI: openmpi-bin, and libopenmpi-dev and libclang-dev to build); the report \
                 keeps its previous figures"
            ),
            "distributed" => entry.distributed = Some(bench.section(distributed(&bench)?)),
            "checkpointing" => {
                entry.checkpointing = Some(bench.section(checkpointing(&bench)?));
            }
            other => bail!("no benchmark section is named {other}"),
        }
    }
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)? + "\n")?;
    write_markdown(&report)
}

/// Renders `report` into docs/BENCHMARKS.md and prints it.
fn write_markdown(report: &Report) -> Result<()> {
    let markdown = render::render(report);
    std::fs::write(workspace_root().join("docs/BENCHMARKS.md"), &markdown)?;
    println!("{markdown}");
    Ok(())
}

/// The backends the training section runs in fp32.
fn train_backends(args: &BenchArgs, has_python: bool) -> Vec<String> {
    if !args.backends.is_empty() {
        return args.backends.clone();
    }
    // libtorch only where the project's PyTorch provides it.
    let has_torch = has_python || std::env::var_os("LIBTORCH").is_some();
    let mut all = vec!["flex".to_string(), "ndarray".to_string()];
    if has_torch {
        all.insert(1, "tch-cpu".to_string());
    }
    all
}

/// The backends the training section also runs in bf16.
fn bf16_backends(args: &BenchArgs, backends: &[String], cpu: &CpuIdentity) -> Vec<String> {
    match args.bf16_backends.as_slice() {
        [none] if none == "none" => Vec::new(),
        [] => {
            let has_bf16 = cpu
                .simd
                .iter()
                .any(|f| f == "avx512_bf16" || f == "amx_bf16");
            if !has_bf16 {
                return Vec::new();
            }
            ["flex", "tch-cpu"]
                .into_iter()
                .filter(|wanted| backends.iter().any(|b| b == wanted))
                .map(str::to_string)
                .collect()
        }
        chosen => chosen.to_vec(),
    }
}

/// What every section needs.
struct Bench<'a> {
    args: &'a BenchArgs,
    binaries: &'a Binaries,
    python: Option<&'a Path>,
    command: String,
    date: String,
}

impl Bench<'_> {
    /// `results` with this run's command and date.
    fn section<T>(&self, results: T) -> Section<T> {
        Section {
            command: self.command.clone(),
            date: self.date.clone(),
            runs: self.args.runs,
            results,
        }
    }

    /// `bert-ft` built for `backend`.
    fn ours(&self, backend: &str) -> Result<Command> {
        Ok(Command::new(self.binaries.get(backend)?))
    }

    /// The project's Python running `script`, if there is one.
    fn python(&self, script: &str) -> Option<Command> {
        self.python.map(|python| {
            let mut command = Command::new(python);
            command.arg(script);
            command
        })
    }
}

/// Today's date, `YYYY-MM-DD`.
fn today() -> String {
    Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default()
}

/// One `bert-ft` per backend, built as `cargo xtask finetune-mrpc --backend …` builds it, so
/// that each process holds what a user's would (a flex run maps no libtorch).
struct Binaries(Vec<(String, PathBuf)>);

impl Binaries {
    /// Builds the binary of every backend in `backends`. Each build overwrites
    /// `target/release/bert-ft`, so it is copied aside.
    fn build<'a>(backends: impl Iterator<Item = &'a str>) -> Result<Self> {
        let dir = workspace_root().join("target/bench-bin");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut binaries: Vec<(String, PathBuf)> = Vec::new();
        for backend in backends {
            if binaries.iter().any(|(name, _)| name == backend) {
                continue;
            }
            let features = cli_features(backend)?;
            let built = build_cli(&features)?;
            let copy = dir.join(format!("bert-ft-{}", features.join("-")));
            std::fs::copy(&built, &copy)
                .with_context(|| format!("copying {} to {}", built.display(), copy.display()))?;
            binaries.push((backend.to_string(), copy));
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

/// Runs a measurement command and parses the result on its last stdout line.
fn measure<T: DeserializeOwned>(mut command: Command) -> Result<T> {
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

/// A named measurement, run once per round.
type Job<'a, T> = (String, Box<dyn FnMut() -> Result<T> + 'a>);

/// Runs every job once per round, `runs` rounds (A B C A B C …), so that drift in the
/// machine's speed falls on all of them alike.
fn round_robin<T>(runs: usize, jobs: &mut [Job<'_, T>]) -> Result<Vec<Vec<T>>> {
    let mut results: Vec<Vec<T>> = jobs.iter().map(|_| Vec::new()).collect();
    for run in 0..runs {
        for (i, (name, job)) in jobs.iter_mut().enumerate() {
            eprintln!("  run {}/{runs}: {name}", run + 1);
            results[i].push(job()?);
        }
    }
    Ok(results)
}

/// Ours and, where Python is there, theirs, in rounds; the medians of each.
fn ours_and_theirs<'a, T>(
    runs: usize,
    ours: Command,
    theirs: Option<Command>,
    summarise: fn(&[T]) -> Option<T>,
) -> Result<(T, Option<T>)>
where
    T: DeserializeOwned + 'a,
{
    let mut jobs: Vec<Job<'a, T>> = vec![("bert-ft".into(), replay(ours))];
    if let Some(theirs) = theirs {
        jobs.push(("Hugging Face".into(), replay(theirs)));
    }
    let mut medians = round_robin(runs, &mut jobs)?
        .into_iter()
        .map(|r| summarise(&r));
    let ours = medians.next().flatten().context("no run of ours")?;
    Ok((ours, medians.next().flatten()))
}

/// A job that runs a copy of `command` each time.
fn replay<'a, T: DeserializeOwned + 'a>(command: Command) -> Box<dyn FnMut() -> Result<T> + 'a> {
    Box::new(move || {
        let mut copy = Command::new(command.get_program());
        copy.args(command.get_args());
        for (name, value) in command.get_envs() {
            match value {
                Some(value) => copy.env(name, value),
                None => copy.env_remove(name),
            };
        }
        measure(copy)
    })
}

fn tokenize(cx: &Bench<'_>) -> Result<TokenizeSection> {
    eprintln!("bench: tokenization of MRPC train");
    let args = cx.args;
    let mut ours = cx.ours("flex")?;
    ours.args(["bench", "tokenize", "--model", &args.model])
        .args(["--dataset", &args.dataset]);
    let theirs = cx.python("python/bench_tokenize.py").map(|mut command| {
        command.args(["--model", &args.model, "--dataset", &args.dataset]);
        command
    });
    let (ours, python) =
        ours_and_theirs::<TokenizeResult>(args.runs, ours, theirs, report::median_tokenize)?;
    Ok(TokenizeSection { ours, python })
}

fn step(cx: &Bench<'_>) -> Result<StepSection> {
    let args = cx.args;
    let mut shapes = Vec::new();
    for (label, model, _) in self::shapes(args) {
        eprintln!("bench: training step and inference, {label}");
        let common = |command: &mut Command| {
            command
                .args(["--model", &model, "--tokenizer", &args.model])
                .args(["--dataset", &args.dataset]);
        };
        let mut ours = cx.ours("flex")?;
        ours.args(["bench", "step", "--backend", "flex"]);
        common(&mut ours);
        let theirs = cx.python("python/bench_step.py").map(|mut command| {
            common(&mut command);
            command
        });
        let (ours, pytorch) =
            ours_and_theirs::<StepResult>(args.runs, ours, theirs, report::median_step)?;
        shapes.push(StepShape {
            shape: label.to_string(),
            ours,
            pytorch,
        });
    }
    Ok(StepSection {
        backend: "flex".to_string(),
        shapes,
    })
}

/// Logical CPUs, which both sides use.
fn cpu_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The Trainer on MRPC for a fixed number of steps from the start of training: each of our
/// `runs`, and the Hugging Face Trainer (`python/bench_train.py`, fp32, and bf16 where one of
/// ours runs bf16), in rounds.
fn train(cx: &Bench<'_>, shapes_to_run: &[Shape], runs: &[OurRun]) -> Result<TrainSection> {
    let args = cx.args;
    let mut shapes = Vec::new();
    for (label, model, default_steps) in shapes_to_run {
        eprintln!("bench: training with the Trainer, {label}");
        let steps = args.train_steps.unwrap_or(*default_steps);
        let common = |command: &mut Command, bf16: bool| {
            command
                .args(["--model", model, "--tokenizer", &args.model])
                .args(["--dataset", &args.dataset])
                .args(["--steps", &steps.to_string()])
                .args(["--warmup", &args.train_warmup.to_string()]);
            if bf16 {
                command.arg("--bf16");
            }
        };
        let mut names = Vec::new();
        let mut jobs: Vec<Job<'_, TrainResult>> = Vec::new();
        for run in runs {
            let mut command = cx.ours(&run.backend)?;
            command.args(["bench", "train", "--backend", &run.backend]);
            common(&mut command, run.bf16);
            if run.device_optimizer {
                command.arg("--device-optimizer");
            }
            let name = run.name();
            names.push(Some(name.clone()));
            jobs.push((format!("bert-ft on {name}"), replay(command)));
        }
        let hugging_face: &[bool] = if runs.iter().any(|run| run.bf16) {
            &[false, true]
        } else {
            &[false]
        };
        for &bf16 in hugging_face {
            let Some(mut command) = cx.python("python/bench_train.py") else {
                break;
            };
            command.args(["--threads", &cpu_threads().to_string()]);
            common(&mut command, bf16);
            names.push(None);
            jobs.push((
                format!("Hugging Face Trainer, bf16 {bf16}"),
                replay(command),
            ));
        }
        let runs = round_robin(args.runs, &mut jobs)?;
        let mut shape = TrainShape {
            shape: label.to_string(),
            steps,
            ours: Default::default(),
            pytorch: None,
            pytorch_bf16: None,
        };
        for (name, runs) in names.into_iter().zip(runs) {
            let Some(median) = report::median_train(&runs) else {
                continue;
            };
            match name {
                Some(name) => {
                    shape.ours.insert(name, median);
                }
                None if median.bf16 => shape.pytorch_bf16 = Some(median),
                None => shape.pytorch = Some(median),
            }
        }
        shapes.push(shape);
    }
    Ok(TrainSection {
        warmup: args.train_warmup,
        shapes,
    })
}

/// Whether `program` is an executable file in a folder of `PATH`.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Processes of the data-parallel runs, and the global batch every run trains at.
const PROCESSES: usize = 2;
const GLOBAL_BATCH: usize = 8;

/// The `mpirun` options of the distributed section: `PROCESSES` processes on this machine,
/// each bound to an equal share of its logical CPUs (so rayon runs one thread per CPU of its
/// share, and the runs use the CPUs one process does), Open MPI's traffic over shared memory
/// and loopback only, whatever the machine's network.
fn mpirun_options() -> Vec<String> {
    let per_process = cpu_threads() / PROCESSES;
    let binding = if per_process >= 1 {
        vec![
            "--bind-to".to_string(),
            "core".to_string(),
            "--map-by".to_string(),
            format!("slot:PE={per_process}"),
        ]
    } else {
        // Fewer CPUs than processes: they can only share.
        ["--oversubscribe", "--bind-to", "none"]
            .map(String::from)
            .to_vec()
    };
    ["-np".to_string(), PROCESSES.to_string()]
        .into_iter()
        .chain(binding)
        .chain(
            [
                "--mca",
                "btl",
                "self,vader,tcp",
                "--mca",
                "btl_tcp_if_include",
                "lo",
                "--mca",
                "oob_tcp_if_include",
                "lo",
            ]
            .map(String::from),
        )
        .collect()
}

/// `mpirun` with the section's options, starting `binary`.
fn mpirun(options: &[String], binary: &Path) -> Command {
    let mut command = Command::new("mpirun");
    command.args(options);
    // Open MPI refuses to run as root unless both are set (containers often run as root); they
    // change nothing for other users. As variables rather than `--allow-run-as-root`, they
    // stay out of the options the report records.
    command
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    command.arg(binary);
    command
}

/// Data-parallel training against one process: MiniLM on flex through the Trainer, one
/// process at batch 8 on every logical CPU against `PROCESSES` processes at batch 4 each
/// sharing the same CPUs, in rounds, with the same `bert-ft` (built with MPI); then the
/// gradient all-reduce alone for each model shape, under the same `mpirun`.
fn distributed(cx: &Bench<'_>) -> Result<DistributedSection> {
    let args = cx.args;
    let mut features = cli_features("flex")?;
    features.push("mpi");
    // Its own target folder, so that the MPI build does not replace the usual one.
    let binary = build_cli_in(&features, "target/bench-mpi")?;
    let options = mpirun_options();
    let [(label, model, default_steps), _] = shapes(args);
    let steps = args.train_steps.unwrap_or(default_steps);
    eprintln!(
        "bench: data-parallel training, {label}: 1 process against `mpirun {}`",
        options.join(" ")
    );
    let train = |command: &mut Command, per_device: usize| {
        command
            .args(["bench", "train", "--backend", "flex"])
            .args(["--model", &model, "--tokenizer", &args.model])
            .args(["--dataset", &args.dataset])
            .args(["--steps", &steps.to_string()])
            .args(["--warmup", &args.train_warmup.to_string()])
            .args(["--per-device-train-batch-size", &per_device.to_string()]);
    };
    let mut single = Command::new(&binary);
    train(&mut single, GLOBAL_BATCH);
    let mut parallel = mpirun(&options, &binary);
    train(&mut parallel, GLOBAL_BATCH / PROCESSES);
    let mut jobs: Vec<Job<'_, TrainResult>> = vec![
        ("bert-ft, 1 process".into(), replay(single)),
        (format!("bert-ft, {PROCESSES} processes"), replay(parallel)),
    ];
    let mut medians = round_robin(args.runs, &mut jobs)?
        .into_iter()
        .map(|runs| report::median_train(&runs));
    let single = medians.next().flatten().context("no one-process run")?;
    let parallel = medians
        .next()
        .flatten()
        .context("no run of several processes")?;

    let mut names = Vec::new();
    let mut jobs: Vec<Job<'_, AllReduceResult>> = Vec::new();
    for (label, model, _) in shapes(args) {
        let mut command = mpirun(&options, &binary);
        command.args(["bench", "allreduce", "--backend", "flex", "--model", &model]);
        jobs.push((format!("gradient all-reduce, {label}"), replay(command)));
        names.push(label.to_string());
    }
    eprintln!("bench: the gradient all-reduce alone, {PROCESSES} processes");
    let all_reduce = names
        .into_iter()
        .zip(round_robin(args.runs, &mut jobs)?)
        .filter_map(|(shape, runs)| {
            let result = report::median_all_reduce(&runs)?;
            Some(AllReduceShape { shape, result })
        })
        .collect();
    Ok(DistributedSection {
        shape: label.to_string(),
        steps,
        warmup: args.train_warmup,
        global_batch_size: GLOBAL_BATCH,
        launch: options.join(" "),
        single,
        parallel,
        all_reduce,
    })
}

/// Timed steps of each checkpointing run unless `--train-steps` says otherwise: a 512-token
/// step of bert-base takes tens of seconds on a small CPU, and memory peaks in the first.
const CHECKPOINTING_STEPS: usize = 4;

/// The row lengths of the checkpointing section: MRPC's pairs, and each pair's sentences 11
/// times over, which the tokenizer truncates to bert-base's 512 positions.
const CHECKPOINTING_SHAPES: [(&str, usize); 2] = [
    ("MRPC rows", 1),
    (
        "long rows (each sentence 11 times, truncated at 512 tokens)",
        11,
    ),
];

/// bert-base's shape on flex, plain, with per-layer recompute (`gradient_checkpointing`) and
/// with burn's Balanced strategy, beside the Hugging Face Trainer plain and with
/// `gradient_checkpointing=True`, in rounds; no closing evaluation.
fn checkpointing(cx: &Bench<'_>) -> Result<CheckpointingSection> {
    let steps = cx.args.train_steps.unwrap_or(CHECKPOINTING_STEPS);
    let shapes = CHECKPOINTING_SHAPES
        .into_iter()
        .map(|(label, repeat_text)| checkpointing_shape(cx, label, repeat_text, steps))
        .collect::<Result<_>>()?;
    Ok(CheckpointingSection {
        model: "bert-base shape (random weights)".to_string(),
        backend: "flex".to_string(),
        steps,
        shapes,
    })
}

/// One row length of the checkpointing section: every run, alternated in rounds.
fn checkpointing_shape(
    cx: &Bench<'_>,
    label: &str,
    repeat_text: usize,
    steps: usize,
) -> Result<CheckpointingShape> {
    let args = cx.args;
    eprintln!("bench: gradient checkpointing, bert-base shape, {label}");
    let common = |command: &mut Command| {
        command
            .args(["--model", "bert-base", "--tokenizer", &args.model])
            .args(["--dataset", &args.dataset])
            .args(["--steps", &steps.to_string(), "--warmup", "0"])
            .args(["--repeat-text", &repeat_text.to_string()])
            .arg("--skip-evaluation");
    };
    let mut jobs: Vec<Job<'_, TrainResult>> = Vec::new();
    let mut names = Vec::new();
    for (name, flag) in [
        ("no checkpointing", None),
        ("gradient_checkpointing", Some("--gradient-checkpointing")),
        (
            "burn's Balanced checkpointing",
            Some("--burn-checkpointing"),
        ),
    ] {
        let mut command = cx.ours("flex")?;
        command.args(["bench", "train", "--backend", "flex"]);
        common(&mut command);
        command.args(flag);
        jobs.push((format!("bert-ft, {name}"), replay(command)));
        names.push((true, name));
    }
    for (name, flag) in [
        ("no checkpointing", None),
        ("gradient_checkpointing", Some("--gradient-checkpointing")),
    ] {
        let Some(mut command) = cx.python("python/bench_train.py") else {
            break;
        };
        command.args(["--threads", &cpu_threads().to_string()]);
        common(&mut command);
        command.args(flag);
        jobs.push((format!("Hugging Face Trainer, {name}"), replay(command)));
        names.push((false, name));
    }
    let mut shape = CheckpointingShape {
        shape: label.to_string(),
        repeat_text,
        ours: Vec::new(),
        pytorch: Vec::new(),
    };
    for ((ours, name), runs) in names.into_iter().zip(round_robin(args.runs, &mut jobs)?) {
        let Some(result) = report::median_train(&runs) else {
            continue;
        };
        let named = NamedTrainResult {
            name: name.to_string(),
            result,
        };
        if ours {
            shape.ours.push(named);
        } else {
            shape.pytorch.push(named);
        }
    }
    Ok(shape)
}
