//! `cargo xtask gpu-check`: builds, here, everything a lent GPU machine (x86-64, CUDA, a
//! Python with PyTorch, no Rust) needs to measure our GPU backends beside the Hugging Face
//! Trainer, into `gpu-check/` (git-ignored, under the device tool's 64 MiB):
//!
//! - `bert-ft-tch.xz`: the command line with libtorch (`tch-cuda`), built against PyPI's
//!   `torch==<--torch>` (the GPU machine's PyTorch; its default wheel is the CUDA build) and
//!   run there on that PyTorch's libraries;
//! - `bert-ft-wgpu.xz`: with `wgpu` (Vulkan on the NVIDIA driver), and in `gl/` Debian's
//!   Vulkan loader and glvnd, which such machines lack. burn's `cuda` backend cannot be built
//!   on these machines: cubecl-cuda's build script downloads LLVM from GitHub;
//! - GLUE MRPC's TSV files and the bert-base-uncased vocabulary (from all-MiniLM-L6-v2);
//! - `bench_train.py`, the Hugging Face side;
//! - `run.sh`, which runs both in stages, each under its own time limit and all under one
//!   deadline, and writes JSON results and logs into `$OUT`.
//!
//! Both binaries are stripped and xz-compressed (`run.sh` unpacks them with Python's lzma).
//! MiniLM's weights (90 MB) do not fit beside them; `--with-minilm` writes them, in fp16, to
//! `gpu-check-minilm/` for a second call.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::cargo::{build_cli_in, cargo_command, workspace_root};

/// Arguments of `gpu-check`.
#[derive(Args, Debug)]
pub struct GpuCheckArgs {
    /// The shared folder with `data/glue` and `models/all-MiniLM-L6-v2`.
    #[arg(long, default_value = "../shared")]
    shared: PathBuf,
    /// The backends to bundle: `tch` (libtorch on CUDA) and `wgpu`; `flex` to try the bundle
    /// on this machine (`BACKENDS=flex DEVICE=cpu bash gpu-check/run.sh`).
    #[arg(long, value_delimiter = ',', default_value = "tch,wgpu")]
    backends: Vec<String>,
    /// The GPU machine's PyTorch version, which the `tch` binary is built against.
    #[arg(long, default_value = "2.11.0")]
    torch: String,
    /// Also write MiniLM's weights, in fp16, to `gpu-check-minilm/`.
    #[arg(long)]
    with_minilm: bool,
}

/// Debian's packages that the NVIDIA driver's Vulkan ICD needs and the GPU machines lack (the
/// Vulkan loader and glvnd); `run.sh` unpacks them into `/`.
const GL_PACKAGES: [&str; 7] = [
    "libvulkan1",
    "libegl1",
    "libglvnd0",
    "libopengl0",
    "libgl1",
    "libglx0",
    "libgles2",
];

const RUN_SCRIPT: &str = include_str!("gpu_check/run.sh");

/// Builds the bundle.
pub fn run(args: &GpuCheckArgs) -> Result<()> {
    let root = workspace_root();
    let bundle = root.join("gpu-check");
    let _ = std::fs::remove_dir_all(&bundle);
    std::fs::create_dir_all(bundle.join("glue/MRPC"))?;
    std::fs::create_dir_all(bundle.join("tokenizer"))?;
    for backend in &args.backends {
        let binary = match backend.as_str() {
            "tch" => build_tch(&args.torch)?,
            "wgpu" => {
                download_gl_packages(&bundle.join("gl"));
                build_cli_in(&["wgpu"], "target/gpu-check")?
            }
            "flex" => build_cli_in(&["flex"], "target/gpu-check")?,
            other => bail!("gpu-check bundles tch, wgpu or flex, not `{other}`"),
        };
        pack(&binary, &bundle.join(format!("bert-ft-{backend}.xz")))?;
    }
    copy_data(&root.join(&args.shared), &bundle)?;
    copy(
        &root.join("python/bench_train.py"),
        &bundle.join("bench_train.py"),
    )?;
    std::fs::write(bundle.join("run.sh"), RUN_SCRIPT)?;
    if args.with_minilm {
        let minilm = root.join(&args.shared).join("models/all-MiniLM-L6-v2");
        write_minilm_fp16(&minilm, &root.join("gpu-check-minilm"))?;
    }
    let size: u64 = walk(&bundle)
        .iter()
        .map(|p| p.metadata().map_or(0, |m| m.len()))
        .sum();
    println!(
        "gpu-check/ is ready ({:.1} MiB). With a device machine: run `bash gpu-check/run.sh` \
         with carry [\"gpu-check\"]; results land in $OUT.",
        size as f64 / (1 << 20) as f64
    );
    if size > 60 << 20 {
        bail!("gpu-check/ is {size} bytes, over what one device call can carry");
    }
    Ok(())
}

/// The `tch` build against PyPI's `torch==version` (in its own environment and target folder,
/// so that neither `.venv` nor the usual build changes). tch 0.22 expects PyTorch 2.9; its
/// generated API only gained functions up to 2.11, hence `LIBTORCH_BYPASS_VERSION_CHECK`.
fn build_tch(version: &str) -> Result<PathBuf> {
    let root = workspace_root();
    let venv = root.join(format!("target/gpu-check/torch-{version}"));
    if !venv.join("bin/python").is_file() {
        eprintln!(
            "creating {} with torch=={version} (a download of several gigabytes)",
            venv.display()
        );
        run_checked(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    let pip = venv.join("bin/pip");
    run_checked(
        Command::new(&pip)
            .args(["install", "--quiet", &format!("torch=={version}")])
            .env("PIP_NO_CACHE_DIR", "1")
            .env("TMPDIR", root.join("target")),
    )?;
    let target = format!("target/gpu-check/tch-{version}");
    let path = std::env::var("PATH").unwrap_or_default();
    let mut build = cargo_command();
    build
        .args([
            "build",
            "--release",
            "--package",
            "ft-cli",
            "--no-default-features",
        ])
        .args(["--features", "tch", "--target-dir", &target])
        .env("PATH", format!("{}:{path}", venv.join("bin").display()))
        .env("VIRTUAL_ENV", &venv)
        .env("LIBTORCH_USE_PYTORCH", "1")
        .env("LIBTORCH_BYPASS_VERSION_CHECK", "1")
        .env_remove("LIBTORCH");
    run_checked(&mut build)?;
    Ok(root.join(target).join("release/bert-ft"))
}

/// `apt-get download` of [`GL_PACKAGES`] into `dir`. Without them `run.sh` still runs the
/// other stages, so a failure is a warning.
fn download_gl_packages(dir: &Path) {
    let downloaded = std::fs::create_dir_all(dir).is_ok()
        && Command::new("apt-get")
            .arg("download")
            .args(GL_PACKAGES)
            .current_dir(dir)
            .status()
            .is_ok_and(|status| status.success());
    if !downloaded {
        eprintln!(
            "warning: could not download {} into {}; wgpu runs only where the GPU machine \
             has a Vulkan loader",
            GL_PACKAGES.join(" "),
            dir.display()
        );
    }
}

/// `binary`, stripped, then xz-compressed into `to`.
fn pack(binary: &Path, to: &Path) -> Result<()> {
    let stripped = binary.with_extension("stripped");
    run_checked(Command::new("strip").arg("-o").arg(&stripped).arg(binary))?;
    let packed = std::fs::File::create(to).with_context(|| format!("creating {}", to.display()))?;
    run_checked(
        Command::new("xz")
            .args(["-T0", "-6", "-c"])
            .arg(&stripped)
            .stdout(packed),
    )
}

/// MRPC's TSVs, the bert-base-uncased vocabulary and bert-base's config.
fn copy_data(shared: &Path, bundle: &Path) -> Result<()> {
    for file in ["train.tsv", "dev.tsv", "test.tsv"] {
        copy(
            &shared.join("data/glue/MRPC").join(file),
            &bundle.join("glue/MRPC").join(file),
        )?;
    }
    let minilm = shared.join("models/all-MiniLM-L6-v2");
    for file in [
        "vocab.txt",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        copy(&minilm.join(file), &bundle.join("tokenizer").join(file))?;
    }
    // bert-base-uncased's shape; the weights are drawn from the seed.
    std::fs::write(
        bundle.join("tokenizer/bert-base-config.json"),
        r#"{"architectures": ["BertForMaskedLM"], "model_type": "bert"}"#,
    )?;
    Ok(())
}

/// Runs `command`, failing unless it exits with 0.
fn run_checked(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// MiniLM's checkpoint with fp16 weights (half the bytes), via the project's Python.
fn write_minilm_fp16(minilm: &Path, out: &Path) -> Result<()> {
    let python = crate::python::ensure_venv()?;
    std::fs::create_dir_all(out)?;
    for file in [
        "config.json",
        "vocab.txt",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        copy(&minilm.join(file), &out.join(file))?;
    }
    let script = "import sys; from safetensors.torch import load_file, save_file; \
        t = load_file(sys.argv[1]); \
        save_file({k: (v.half() if v.is_floating_point() else v) for k, v in t.items()}, sys.argv[2], metadata={'format': 'pt'})";
    let status = Command::new(python)
        .args(["-c", script])
        .arg(minilm.join("model.safetensors"))
        .arg(out.join("model.safetensors"))
        .status()?;
    if !status.success() {
        bail!("converting MiniLM to fp16 failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stages `run.sh` runs by default (the Hugging Face Trainer and ours alternate).
    const STAGES: [&str; 8] = [
        "probe", "hf", "ours", "hf", "ours", "hf16", "ours16", "full",
    ];

    /// Every stage of the default order has its branch in `run.sh`, and the script parses.
    #[test]
    fn the_run_script_knows_every_stage_and_parses() {
        let default = RUN_SCRIPT
            .lines()
            .find_map(|line| line.strip_prefix("STAGES=\"${STAGES:-"))
            .and_then(|rest| rest.strip_suffix("}\""))
            .expect("run.sh sets a default STAGES");
        assert_eq!(default, STAGES.join(" "));
        for stage in STAGES {
            assert!(
                RUN_SCRIPT.contains(&format!("\n    {stage})")),
                "run.sh has no branch for {stage}"
            );
        }
        let status = Command::new("bash")
            .args(["-n", "-c", RUN_SCRIPT])
            .status()
            .expect("bash runs");
        assert!(status.success(), "run.sh does not parse");
    }
}
