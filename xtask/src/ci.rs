//! `cargo xtask ci`: the set-up a fresh machine needs, then the checks CI runs, in order.
//!
//! One build holds every backend this machine can run (flex, ndarray, libtorch on the CPU,
//! wgpu on lavapipe) and MPI; tests pick their devices at run time, and the data-parallel
//! tests start `mpirun`.
//!
//! Clippy runs inside that build rather than before it: clippy-driver is cargo's
//! `RUSTC_WORKSPACE_WRAPPER`, as under `cargo clippy`, but for `cargo build --all-targets`,
//! which compiles the units that `cargo clippy --all-targets` checks. The dependencies are
//! then compiled once, with code, instead of once as clippy's metadata and again for the
//! tests (about five minutes of a cold run on two cores, by the file times of the last one);
//! the lints, their level and the targets they see are those of
//! `cargo clippy --workspace --all-targets -- -D warnings`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;

use crate::cargo::{cargo_command, workspace_root};
use crate::setup::{self, Facts, Plan};

/// Arguments of `ci`.
#[derive(Args, Debug)]
pub struct CiArgs {
    /// Only flex (no libtorch, Vulkan or MPI needed; their Debian packages are skipped).
    #[arg(long)]
    flex_only: bool,
    /// Print what the set-up would do and the cargo steps, then stop without doing anything.
    #[arg(long)]
    dry_run: bool,
    /// Do the set-up (Debian packages, `.venv`, the further transformers), then stop.
    #[arg(long, conflicts_with = "dry_run")]
    setup_only: bool,
}

/// The crates with backend features.
const BACKEND_CRATES: [&str; 4] = ["ft-collate", "ft-bert", "ft-trainer", "ft-cli"];
/// The backends CI compiles in.
const CI_BACKENDS: [&str; 4] = ["flex", "ndarray", "tch", "wgpu"];
/// Data-parallel training over MPI (Open MPI's library and libclang to build).
const MPI_FEATURES: [&str; 2] = ["ft-trainer/mpi", "ft-cli/mpi"];
/// clippy-driver's arguments, as `cargo clippy -- -D warnings` passes them. One word, since
/// clippy-driver splits this variable on a separator of its own.
const CLIPPY_ARGS: &str = "-Dwarnings";

/// The `--features` of every build: each backend crate with each backend, and MPI.
fn features(flex_only: bool) -> String {
    let backends: &[&str] = if flex_only { &["flex"] } else { &CI_BACKENDS };
    let mpi: &[&str] = if flex_only { &[] } else { &MPI_FEATURES };
    BACKEND_CRATES
        .iter()
        .flat_map(|krate| backends.iter().map(move |b| format!("{krate}/{b}")))
        .chain(mpi.iter().map(|feature| feature.to_string()))
        .collect::<Vec<_>>()
        .join(",")
}

/// One cargo call of the run, under the name its time is reported by.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    /// The stage it is timed as.
    stage: &'static str,
    /// cargo's arguments.
    args: Vec<String>,
}

/// The cargo calls, in order: formatting, clippy inside the build of everything clippy
/// checks, the test suite (which builds what remains, the examples as tests, and runs), then
/// the doctests.
fn steps(features: &str) -> Vec<Step> {
    let step = |stage, args: &[&str]| Step {
        stage,
        args: args.iter().map(|arg| arg.to_string()).collect(),
    };
    let all = ["--workspace", "--all-targets", "--features", features];
    vec![
        step("fmt", &["fmt", "--all", "--", "--check"]),
        step("clippy + build", &[&["build"][..], &all].concat()),
        step("test", &[&["test"][..], &all].concat()),
        step(
            "doc tests",
            &["test", "--workspace", "--doc", "--features", features],
        ),
    ]
}

/// The environment of every cargo call: clippy-driver as the workspace's compiler wrapper
/// (the same for all, so that each call finds the previous one's build fresh), and
/// incremental compilation off on CI.
fn cargo_env(clippy_driver: &Path, incremental_off: bool) -> Vec<(&'static str, String)> {
    let mut env = vec![
        (
            "RUSTC_WORKSPACE_WRAPPER",
            clippy_driver.to_string_lossy().into_owned(),
        ),
        ("CLIPPY_ARGS", CLIPPY_ARGS.to_string()),
    ];
    if incremental_off {
        env.push(("CARGO_INCREMENTAL", "0".to_string()));
    }
    env
}

/// The toolchain's clippy-driver: beside rustc in the sysroot that rust-toolchain.toml picks.
fn clippy_driver(root: &Path) -> Result<PathBuf> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .current_dir(root)
        .output()
        .context("running rustc --print sysroot")?;
    ensure!(
        output.status.success(),
        "rustc --print sysroot failed ({})",
        output.status
    );
    let sysroot = String::from_utf8(output.stdout).context("rustc's sysroot is not UTF-8")?;
    let driver = Path::new(sysroot.trim())
        .join("bin")
        .join(format!("clippy-driver{}", std::env::consts::EXE_SUFFIX));
    ensure!(
        driver.is_file(),
        "no clippy-driver at {}: `rustup component add clippy`",
        driver.display()
    );
    Ok(driver)
}

/// The set-up, then formatting, clippy and the whole test suite on every backend; prints the
/// time of each stage that ran at the end, whether or not the run succeeded.
pub fn run(args: &CiArgs) -> Result<()> {
    let root = workspace_root();
    let plan = setup::plan(&Facts::gather(&root)?, args.flex_only);
    let steps = steps(&features(args.flex_only));
    if args.dry_run {
        print_dry_run(&root, &plan, &steps);
        return Ok(());
    }
    // Found before the set-up, so that a toolchain without clippy stops the run at once.
    let env = if args.setup_only {
        Vec::new()
    } else {
        cargo_env(&clippy_driver(&root)?, plan.incremental_off)
    };
    let mut stages = Stages::default();
    let result = set_up(&root, &plan, &mut stages).and_then(|()| {
        let steps = if args.setup_only { &[][..] } else { &steps[..] };
        steps
            .iter()
            .try_for_each(|step| stages.time(step.stage, || run_step(step, &env)))
    });
    if !stages.times.is_empty() {
        eprint!("{stages}");
    }
    result
}

/// Stops on what only the user can supply, says what is skipped, then installs packages and
/// makes the Python environments.
fn set_up(root: &Path, plan: &Plan, stages: &mut Stages) -> Result<()> {
    let blockers = plan.blockers();
    if !blockers.is_empty() {
        bail!(
            "cargo xtask ci cannot start on this machine:\n- {}",
            blockers.join("\n- ")
        );
    }
    for warning in plan.warnings() {
        eprintln!("ci: WARNING: {warning}");
    }
    stages.time("set-up: apt", || setup::install_packages(plan))?;
    stages.time("set-up: python", || setup::prepare_python(root, plan))
}

/// Runs one cargo call, showing it with the environment it gets.
fn run_step(step: &Step, env: &[(&'static str, String)]) -> Result<()> {
    let shown = shown(step, env);
    eprintln!("$ {shown}");
    let status = cargo_command()
        .envs(env.iter().cloned())
        .args(&step.args)
        .status()
        .context("running cargo")?;
    ensure!(status.success(), "`{shown}` failed ({status})");
    Ok(())
}

/// A cargo call as a shell would run it.
fn shown(step: &Step, env: &[(&'static str, String)]) -> String {
    let env = env.iter().map(|(name, value)| format!("{name}={value} "));
    format!("{}cargo {}", env.collect::<String>(), step.args.join(" "))
}

/// `--dry-run`: the set-up plan and the cargo calls.
fn print_dry_run(root: &Path, plan: &Plan, steps: &[Step]) {
    println!("cargo xtask ci --dry-run: nothing is done\n\nset-up:\n{plan}");
    let driver = clippy_driver(root).unwrap_or_else(|error| PathBuf::from(format!("<{error}>")));
    let env = cargo_env(&driver, plan.incremental_off);
    let env: Vec<String> = env
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    println!("then, each cargo call with {}:", env.join(" "));
    for step in steps {
        println!("  {:<20} cargo {}", step.stage, step.args.join(" "));
    }
}

/// The wall time of each stage run so far, in order.
#[derive(Default)]
struct Stages {
    /// Each stage and its wall time.
    times: Vec<(&'static str, Duration)>,
}

impl Stages {
    /// Runs `stage`, recording its time whether it succeeds or not.
    fn time<T>(&mut self, stage: &'static str, run: impl FnOnce() -> Result<T>) -> Result<T> {
        let start = Instant::now();
        let result = run();
        self.times.push((stage, start.elapsed()));
        result
    }
}

impl std::fmt::Display for Stages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "ci: wall time per stage")?;
        let total: Duration = self.times.iter().map(|(_, time)| *time).sum();
        for (stage, time) in self.times.iter().chain([&("total", total)]) {
            writeln!(f, "ci:   {stage:<15} {}", minutes(*time))?;
        }
        Ok(())
    }
}

/// A duration as `26m 43s`, or `4.2s` under a minute.
fn minutes(time: Duration) -> String {
    let seconds = time.as_secs_f64();
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else {
        format!("{}m {:02}s", time.as_secs() / 60, time.as_secs() % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_crate_gets_every_backend() {
        let all = features(false);
        assert!(all.contains("ft-bert/tch") && all.contains("ft-cli/wgpu"));
        assert!(all.contains("ft-cli/mpi"));
        assert_eq!(all.split(',').count(), 18);
        assert!(!features(true).contains("tch") && !features(true).contains("mpi"));
    }

    #[test]
    fn clippy_sees_every_target_and_the_tests_find_its_build_fresh() {
        let steps = steps("ft-cli/flex");
        let stages: Vec<_> = steps.iter().map(|s| s.stage).collect();
        assert_eq!(stages, ["fmt", "clippy + build", "test", "doc tests"]);
        assert_eq!(
            steps[1].args.join(" "),
            "build --workspace --all-targets --features ft-cli/flex"
        );
        assert_eq!(
            steps[2].args.join(" "),
            "test --workspace --all-targets --features ft-cli/flex"
        );
        assert_eq!(
            steps[3].args.join(" "),
            "test --workspace --doc --features ft-cli/flex"
        );
        let env = cargo_env(Path::new("/sysroot/bin/clippy-driver"), false);
        assert_eq!(
            shown(&steps[1], &env),
            "RUSTC_WORKSPACE_WRAPPER=/sysroot/bin/clippy-driver CLIPPY_ARGS=-Dwarnings \
             cargo build --workspace --all-targets --features ft-cli/flex"
        );
        let on_ci = cargo_env(Path::new("clippy-driver"), true);
        assert!(on_ci.contains(&("CARGO_INCREMENTAL", "0".to_string())));
    }

    #[test]
    fn stage_times_are_kept_on_failure_and_summed() {
        let mut stages = Stages::default();
        stages.time("fmt", || Ok(())).unwrap();
        assert!(
            stages
                .time("test", || -> Result<()> { bail!("red") })
                .is_err()
        );
        let shown = stages.to_string();
        assert!(
            shown.contains("ci:   fmt ") && shown.contains("ci:   test "),
            "{shown}"
        );
        assert!(shown.contains("ci:   total "), "{shown}");
        assert_eq!(minutes(Duration::from_secs(1603)), "26m 43s");
        assert_eq!(minutes(Duration::from_millis(4200)), "4.2s");
    }

    #[test]
    fn the_toolchain_has_a_clippy_driver() {
        let driver = clippy_driver(&workspace_root()).unwrap();
        assert!(
            driver.ends_with("bin/clippy-driver"),
            "{}",
            driver.display()
        );
    }
}
