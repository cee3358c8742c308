//! Running cargo and the `bert-ft` binary it builds.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The workspace root (the folder above `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A `cargo` command in the workspace root, with the backend environment.
pub fn cargo_command() -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root());
    backend_env(&mut command);
    command
}

/// What the backends need from the environment, set only where the user has not set it:
/// - `tch`: libtorch from the project's PyTorch 2.9.0 (`.venv`), found at build time through
///   `LIBTORCH_USE_PYTORCH=1` with that Python first on `PATH`, and at run time through
///   `LD_LIBRARY_PATH`;
/// - `wgpu`: a persistent Mesa shader cache, so that lavapipe compiles each shader once.
pub fn backend_env(command: &mut Command) {
    let root = workspace_root();
    let venv = root.join(".venv");
    if venv.join("bin/python").is_file() && std::env::var_os("LIBTORCH").is_none() {
        let path = std::env::var("PATH").unwrap_or_default();
        command.env("PATH", format!("{}:{path}", venv.join("bin").display()));
        command.env("VIRTUAL_ENV", &venv);
        command.env("LIBTORCH_USE_PYTORCH", "1");
        let torch_lib = std::fs::read_dir(venv.join("lib"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().join("site-packages/torch/lib"))
            .find(|path| path.is_dir());
        if let Some(torch_lib) = torch_lib {
            let existing = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
            command.env(
                "LD_LIBRARY_PATH",
                format!("{}:{existing}", torch_lib.display()),
            );
        }
    }
    if std::env::var_os("MESA_SHADER_CACHE_DIR").is_none() {
        command.env(
            "MESA_SHADER_CACHE_DIR",
            root.join("target/mesa-shader-cache"),
        );
    }
}

/// Runs `cargo args…`, failing on a non-zero exit.
pub fn cargo(args: &[&str]) -> Result<()> {
    eprintln!("$ cargo {}", args.join(" "));
    let status = cargo_command()
        .args(args)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The cargo feature of `bert-ft` that a `--backend` value needs (`bench_report::BACKENDS`,
/// the table `bert-ft` reads too).
pub fn backend_feature(backend: &str) -> Result<&'static str> {
    bench_report::backend_feature(backend).with_context(|| {
        format!(
            "unknown backend `{backend}`; expected {}",
            bench_report::BACKEND_CHOICES
        )
    })
}

/// The `--backend` value in `args`, if any.
fn backend_arg(args: &[String]) -> Option<&str> {
    args.iter().enumerate().find_map(|(i, arg)| {
        arg.strip_prefix("--backend=").or_else(|| {
            (arg == "--backend")
                .then(|| args.get(i + 1).map(String::as_str))
                .flatten()
        })
    })
}

/// Builds `bert-ft` in release mode with `features` and returns its path.
pub fn build_cli(features: &[&str]) -> Result<PathBuf> {
    build_cli_in(features, "target")
}

/// [`build_cli`] into another target folder (relative to the workspace root), so that a
/// build with other features does not invalidate the usual one.
pub fn build_cli_in(features: &[&str], target_dir: &str) -> Result<PathBuf> {
    let features = features.join(",");
    cargo(&[
        "build",
        "--release",
        "--package",
        "ft-cli",
        "--no-default-features",
        "--features",
        &features,
        "--target-dir",
        target_dir,
    ])?;
    Ok(workspace_root().join(target_dir).join("release/bert-ft"))
}

/// The cargo features of the `bert-ft` build that runs on `backend`: its backend alone, so
/// that a flex run does not load libtorch (about 500 MB resident) it never calls.
pub fn cli_features(backend: &str) -> Result<Vec<&'static str>> {
    let feature = backend_feature(backend)?;
    let mut features = vec![feature];
    // AVX-512 kernels for flex, picked at run time where the CPU has them.
    if feature == "flex" && cfg!(target_arch = "x86_64") {
        features.push("x86-v4");
    }
    Ok(features)
}

/// Builds `bert-ft` with the features the arguments' `--backend` needs (flex by default),
/// then runs `bert-ft subcommand args…` and exits with its status. With `--nproc-per-node N`
/// (N > 1) or `--hostfile FILE`, the build has MPI and `mpirun` starts the processes.
pub fn run_cli(subcommand: &str, args: &[String]) -> Result<()> {
    let (launch, args) = Launch::take_from(args)?;
    let mut features = cli_features(backend_arg(&args).unwrap_or("flex"))?;
    if launch.is_distributed() {
        features.push("mpi");
    }
    let binary = build_cli(&features)?;
    let mut command = if launch.is_distributed() {
        launch.mpirun(&binary)
    } else {
        Command::new(&binary)
    };
    backend_env(&mut command);
    let status = command
        .arg(subcommand)
        .args(&args)
        .status()
        .with_context(|| format!("running {}", binary.display()))?;
    std::process::exit(status.code().unwrap_or(1));
}

/// How many processes run the job, as `torchrun --nproc-per-node` says it, and on which
/// machines (an Open MPI hostfile).
#[derive(Debug, PartialEq)]
struct Launch {
    nproc_per_node: usize,
    hostfile: Option<String>,
}

impl Launch {
    /// Takes `--nproc-per-node N` and `--hostfile FILE` out of `args`; the rest is
    /// `bert-ft`'s.
    fn take_from(args: &[String]) -> Result<(Self, Vec<String>)> {
        let mut launch = Launch {
            nproc_per_node: 1,
            hostfile: None,
        };
        let mut rest = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (arg.as_str(), None),
            };
            if name != "--nproc-per-node" && name != "--hostfile" {
                rest.push(arg.clone());
                continue;
            }
            let value = match inline {
                Some(value) => value,
                None => args
                    .next()
                    .cloned()
                    .with_context(|| format!("{name} needs a value"))?,
            };
            if name == "--hostfile" {
                launch.hostfile = Some(value);
            } else {
                launch.nproc_per_node = value
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .with_context(|| format!("--nproc-per-node {value}: expected a count"))?;
            }
        }
        Ok((launch, rest))
    }

    fn is_distributed(&self) -> bool {
        self.nproc_per_node > 1 || self.hostfile.is_some()
    }

    /// `mpirun` for `binary`: N processes per machine, each bound to an equal share of the
    /// machine's cores (rayon then runs one thread per core of its share), or unbound when
    /// there are more processes than cores.
    fn mpirun(&self, binary: &Path) -> Command {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let per_process = cores / self.nproc_per_node;
        let mut command = Command::new("mpirun");
        match &self.hostfile {
            Some(hostfile) => command.args(["--hostfile", hostfile]),
            None => command.args(["-np", &self.nproc_per_node.to_string()]),
        };
        command.args(["--npernode", &self.nproc_per_node.to_string()]);
        if per_process >= 1 {
            command.args(["--map-by", &format!("slot:PE={per_process}")]);
            command.args(["--bind-to", "core"]);
        } else {
            command.args(["--oversubscribe", "--bind-to", "none"]);
        }
        // Open MPI refuses root unless told twice (containers often run as root); the
        // variables change nothing for other users.
        command
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        eprintln!(
            "$ mpirun … ({} processes per machine, {} cores each)",
            self.nproc_per_node,
            per_process.max(1)
        );
        command.arg(binary);
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_map_to_features() {
        assert_eq!(backend_feature("tch-cuda:1").unwrap(), "tch");
        assert_eq!(backend_feature("wgpu").unwrap(), "wgpu");
        assert!(backend_feature("tpu").is_err());
        assert_eq!(cli_features("tch-cpu").unwrap(), ["tch"]);
        assert_eq!(cli_features("flex").unwrap()[0], "flex");
        let args: Vec<String> = ["--task", "mrpc", "--backend", "tch-cpu"]
            .map(String::from)
            .to_vec();
        assert_eq!(backend_arg(&args), Some("tch-cpu"));
        assert_eq!(backend_arg(&["--backend=wgpu".to_string()]), Some("wgpu"));
        assert_eq!(backend_arg(&[]), None);
    }

    #[test]
    fn launch_flags_are_taken_out_of_bert_fts_arguments() {
        let args: Vec<String> = ["--nproc-per-node", "2", "--max-steps", "5", "--hostfile=h"]
            .map(String::from)
            .to_vec();
        let (launch, rest) = Launch::take_from(&args).unwrap();
        assert_eq!(
            launch,
            Launch {
                nproc_per_node: 2,
                hostfile: Some("h".into())
            }
        );
        assert_eq!(rest, ["--max-steps", "5"]);
        assert!(launch.is_distributed());
        let (single, _) = Launch::take_from(&[]).unwrap();
        assert!(!single.is_distributed());
        assert!(Launch::take_from(&["--nproc-per-node".into(), "0".into()]).is_err());
        assert!(Launch::take_from(&["--nproc-per-node".into()]).is_err());
    }
}
