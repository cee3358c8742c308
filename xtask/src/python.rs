//! The project's Python environment (`.venv`, from `python/requirements.txt`): the Hugging
//! Face baseline for benchmarks, and transformers for checks.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cargo::workspace_root;

/// The virtualenv's interpreter, if the environment exists.
pub fn venv_python() -> Option<PathBuf> {
    let python = workspace_root().join(".venv/bin/python");
    python.is_file().then_some(python)
}

/// The virtualenv's interpreter, creating the environment from PyPI if it is missing.
pub fn ensure_venv() -> Result<PathBuf> {
    if let Some(python) = venv_python() {
        return Ok(python);
    }
    let root = workspace_root();
    eprintln!("creating .venv from python/requirements.txt (PyTorch is a large download)");
    let status = Command::new("python3")
        .args(["-m", "venv", ".venv"])
        .current_dir(&root)
        .status()
        .context("running python3 -m venv")?;
    if !status.success() {
        bail!("python3 -m venv .venv failed ({status})");
    }
    let python = root.join(".venv/bin/python");
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "-r",
            "python/requirements.txt",
        ])
        .current_dir(&root)
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!("pip install -r python/requirements.txt failed ({status})");
    }
    Ok(python)
}
