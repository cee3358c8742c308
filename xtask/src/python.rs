//! The project's Python environments. `.venv`, from `python/requirements.txt`, holds torch
//! (libtorch for the `tch` backend, the Hugging Face baseline for benchmarks) and transformers
//! for the checks. Beside it, each `python/requirements-transformers-*.txt` is a further
//! transformers that the checks also run against, installed with `--no-deps` into
//! `.venv/transformers-{version}` and run as `.venv`'s Python with that folder first on
//! `PYTHONPATH`: only transformers and what its version adds are downloaded, torch and the rest
//! come from `.venv` (`test_support::transformers()` reads the same files).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::cargo::workspace_root;

/// The virtualenv, relative to the workspace root.
const VENV: &str = ".venv";
/// What `.venv` installs, relative to the workspace root.
const REQUIREMENTS: &str = "python/requirements.txt";
/// Written into an environment once its requirements are installed whole: a copy of them, so
/// that an interrupted install, or a requirements file changed since, reads as stale.
const STAMP: &str = ".bert-ft-requirements.txt";

/// One of the Python environments the tests run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PythonEnv {
    /// `.venv`, from `python/requirements.txt`.
    Venv,
    /// A further transformers, run from `.venv` with its own folder first on `PYTHONPATH`.
    Transformers {
        /// The version its requirements file pins (`transformers==…`).
        version: String,
        /// Its requirements file, relative to the workspace root.
        requirements: String,
    },
}

/// Whether an environment is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvState {
    /// Not there: it is created.
    Absent,
    /// There, but not known to hold its requirements file as it is now (made by hand,
    /// interrupted, or the file changed): its requirements are installed again.
    Stale,
    /// Holds its requirements file as it is now.
    Current,
}

impl PythonEnv {
    /// Its folder, relative to the workspace root.
    pub fn folder(&self) -> PathBuf {
        match self {
            PythonEnv::Venv => PathBuf::from(VENV),
            PythonEnv::Transformers { version, .. } => {
                Path::new(VENV).join(format!("transformers-{version}"))
            }
        }
    }

    /// Its requirements file, relative to the workspace root.
    pub fn requirements(&self) -> &str {
        match self {
            PythonEnv::Venv => REQUIREMENTS,
            PythonEnv::Transformers { requirements, .. } => requirements,
        }
    }

    /// How plans and messages name it.
    pub fn name(&self) -> String {
        match self {
            PythonEnv::Venv => VENV.to_string(),
            PythonEnv::Transformers { version, .. } => format!("transformers {version}"),
        }
    }

    /// Whether it is there, and holds its requirements as they are now.
    pub fn state(&self, root: &Path) -> EnvState {
        let folder = root.join(self.folder());
        let there = match self {
            PythonEnv::Venv => folder.join("bin/python").is_file(),
            PythonEnv::Transformers { .. } => folder.is_dir(),
        };
        if !there {
            return EnvState::Absent;
        }
        let wanted = std::fs::read_to_string(root.join(self.requirements()));
        let installed = std::fs::read_to_string(folder.join(STAMP));
        match (wanted, installed) {
            (Ok(wanted), Ok(installed)) if wanted == installed => EnvState::Current,
            _ => EnvState::Stale,
        }
    }
}

/// The transformers version a requirements file pins (`transformers==5.25.0`).
pub fn pinned_transformers(requirements: &str) -> Option<&str> {
    requirements.lines().find_map(|line| {
        let spec = line.split('#').next().unwrap_or("").trim();
        let version = spec.strip_prefix("transformers==")?;
        let version = version.split([';', ' ']).next().unwrap_or("").trim();
        (!version.is_empty()).then_some(version)
    })
}

/// `.venv`, then one environment per `python/requirements-transformers-*.txt`, by file name.
pub fn environments(root: &Path) -> Result<Vec<PythonEnv>> {
    let python = root.join("python");
    let mut extra = Vec::new();
    for entry in
        std::fs::read_dir(&python).with_context(|| format!("listing {}", python.display()))?
    {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with("requirements-transformers-") && name.ends_with(".txt") {
            extra.push(name);
        }
    }
    extra.sort();
    let mut environments = vec![PythonEnv::Venv];
    for name in extra {
        let requirements = format!("python/{name}");
        let text = std::fs::read_to_string(root.join(&requirements))
            .with_context(|| format!("reading {requirements}"))?;
        let version = pinned_transformers(&text)
            .with_context(|| format!("{requirements} pins no `transformers==VERSION`"))?
            .to_string();
        environments.push(PythonEnv::Transformers {
            version,
            requirements,
        });
    }
    Ok(environments)
}

/// The virtualenv's interpreter, if the environment exists.
pub fn venv_python() -> Option<PathBuf> {
    let python = workspace_root().join(VENV).join("bin/python");
    python.is_file().then_some(python)
}

/// The virtualenv's interpreter, creating the environment from PyPI if it is missing.
pub fn ensure_venv() -> Result<PathBuf> {
    if let Some(python) = venv_python() {
        return Ok(python);
    }
    let root = workspace_root();
    prepare(&root, &PythonEnv::Venv, EnvState::Absent)?;
    Ok(root.join(VENV).join("bin/python"))
}

/// Brings `env` from `state` to [`EnvState::Current`]; `.venv` must be current before any
/// further transformers is prepared, since their pip is `.venv`'s.
pub fn prepare(root: &Path, env: &PythonEnv, state: EnvState) -> Result<()> {
    match (env, state) {
        (_, EnvState::Current) => Ok(()),
        (PythonEnv::Venv, EnvState::Absent) => create_venv(root),
        (PythonEnv::Venv, EnvState::Stale) => {
            eprintln!("installing {REQUIREMENTS} into the existing {VENV}");
            let pip = Pip::new(root)?;
            pip.run(&["install", "--quiet", "-r", REQUIREMENTS])?;
            stamp(root, env, &root.join(VENV))
        }
        (PythonEnv::Transformers { version, .. }, _) => install_transformers(root, env, version),
    }
}

/// `python3 -m venv .venv`, a current pip, then `python/requirements.txt`.
fn create_venv(root: &Path) -> Result<()> {
    eprintln!("creating {VENV} from {REQUIREMENTS} (PyTorch is a download of several gigabytes)");
    let status = Command::new("python3")
        .args(["-m", "venv", VENV])
        .current_dir(root)
        .status()
        .context("running python3 -m venv")?;
    ensure!(status.success(), "python3 -m venv {VENV} failed ({status})");
    let pip = Pip::new(root)?;
    // A new venv's pip is the one bundled with the system's Python, often years older than
    // the one the pins were resolved with.
    pip.run(&["install", "--quiet", "--upgrade", "pip"])?;
    pip.run(&["install", "--quiet", "-r", REQUIREMENTS])?;
    stamp(root, &PythonEnv::Venv, &root.join(VENV))
}

/// Installs a further transformers into a fresh folder with `--no-deps`, checks that `.venv`
/// satisfies the rest of what it requires and that it imports as its version, then renames
/// the folder into place, so that the environment is whole or absent.
fn install_transformers(root: &Path, env: &PythonEnv, version: &str) -> Result<()> {
    let folder = root.join(env.folder());
    // Not `with_extension`: the folder's name ends in the version's last number.
    let mut partial = folder.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    remove_if_there(&partial)?;
    eprintln!(
        "installing {} into {}",
        env.requirements(),
        env.folder().display()
    );
    let pip = Pip::new(root)?;
    let target = partial.to_string_lossy().into_owned();
    pip.run(&[
        "install",
        "--quiet",
        "--no-deps",
        "--target",
        &target,
        "-r",
        env.requirements(),
    ])?;
    pip.run_on_path(&partial, &["check"]).with_context(|| {
        format!(
            "transformers {version} needs more than {} and {REQUIREMENTS} hold: pin what it \
             adds in {}",
            env.requirements(),
            env.requirements()
        )
    })?;
    let imported = pip.python_on_path(
        &partial,
        "import transformers; print(transformers.__version__)",
    )?;
    ensure!(
        imported.trim() == version,
        "{} imports transformers {} rather than {version}",
        env.folder().display(),
        imported.trim()
    );
    stamp(root, env, &partial)?;
    remove_if_there(&folder)?;
    std::fs::rename(&partial, &folder)
        .with_context(|| format!("renaming {} to {}", partial.display(), folder.display()))
}

/// Records that `folder` holds `env`'s requirements as they are now.
fn stamp(root: &Path, env: &PythonEnv, folder: &Path) -> Result<()> {
    let requirements = root.join(env.requirements());
    std::fs::copy(&requirements, folder.join(STAMP))
        .with_context(|| format!("recording {} in {}", env.requirements(), folder.display()))?;
    Ok(())
}

/// Removes a folder left by an earlier run, if there is one.
fn remove_if_there(folder: &Path) -> Result<()> {
    if folder.exists() {
        std::fs::remove_dir_all(folder)
            .with_context(|| format!("removing {}", folder.display()))?;
    }
    Ok(())
}

/// `.venv`'s pip, run as CI needs it on a machine where disk is the scarce resource: no cache
/// (it would hold a second, compressed copy of every wheel, gigabytes for torch's CUDA
/// libraries), no check for a newer pip, and temporary files in `target/pip-tmp`, on the build
/// disk rather than a possibly small `/tmp`, removed when this is dropped.
struct Pip {
    /// `.venv`'s interpreter.
    python: PathBuf,
    /// pip's temporary folder, `target/pip-tmp`.
    tmp: PathBuf,
    /// The workspace root, where pip runs (requirements paths are relative to it).
    root: PathBuf,
}

impl Pip {
    /// `.venv`'s pip, with its temporary folder made.
    fn new(root: &Path) -> Result<Self> {
        let tmp = root.join("target/pip-tmp");
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        Ok(Pip {
            python: root.join(VENV).join("bin/python"),
            tmp,
            root: root.to_path_buf(),
        })
    }

    /// `.venv`'s Python with pip's environment, in the workspace root.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.python);
        command
            .current_dir(&self.root)
            .env("PIP_NO_CACHE_DIR", "1")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("TMPDIR", &self.tmp);
        command
    }

    /// `python -m pip args…`, failing on a non-zero exit.
    fn run(&self, args: &[&str]) -> Result<()> {
        self.run_with(self.command(), args)
    }

    /// [`Pip::run`] with `folder` first on `PYTHONPATH`.
    fn run_on_path(&self, folder: &Path, args: &[&str]) -> Result<()> {
        let mut command = self.command();
        command.env("PYTHONPATH", folder);
        self.run_with(command, args)
    }

    /// `command -m pip args…`, failing on a non-zero exit.
    fn run_with(&self, mut command: Command, args: &[&str]) -> Result<()> {
        let status = command
            .args(["-m", "pip"])
            .args(args)
            .status()
            .context("running pip")?;
        if !status.success() {
            bail!("pip {} failed ({status})", args.join(" "));
        }
        Ok(())
    }

    /// What `python -c code` prints with `folder` first on `PYTHONPATH`.
    fn python_on_path(&self, folder: &Path, code: &str) -> Result<String> {
        let output = self
            .command()
            .env("PYTHONPATH", folder)
            .args(["-c", code])
            .output()
            .context("running python")?;
        ensure!(
            output.status.success(),
            "python -c {code:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Drop for Pip {
    fn drop(&mut self) {
        // Best effort: a leftover folder under target/ costs disk, not correctness.
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_transformers_is_read_past_comments_and_markers() {
        let text = "# the next one\ntorch==2.9.0\ntransformers==5.25.0  # new\nkernels==0.19.1\n";
        assert_eq!(pinned_transformers(text), Some("5.25.0"));
        assert_eq!(
            pinned_transformers("transformers==5.24.0; python_version >= '3.10'"),
            Some("5.24.0")
        );
        assert_eq!(
            pinned_transformers("# transformers==5.0.0\ntransformers>=5"),
            None
        );
        assert_eq!(pinned_transformers("transformers=="), None);
    }

    #[test]
    fn environments_are_the_venv_then_each_further_transformers() {
        let root = workspace_root();
        let environments = environments(&root).unwrap();
        assert_eq!(environments[0], PythonEnv::Venv);
        assert_eq!(environments[0].folder(), Path::new(".venv"));
        let further: Vec<_> = environments[1..].iter().map(PythonEnv::name).collect();
        assert!(
            further.contains(&"transformers 5.25.0".to_string()),
            "{further:?}"
        );
        let tf = &environments[1];
        assert_eq!(tf.folder(), Path::new(".venv/transformers-5.25.0"));
        assert!(
            tf.requirements()
                .starts_with("python/requirements-transformers-")
        );
    }

    #[test]
    fn an_environment_is_current_only_with_its_requirements_recorded() {
        // A folder of our own: xtask has no tempfile dependency, for one test.
        let dir = std::env::temp_dir().join(format!("xtask-python-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("python")).unwrap();
        std::fs::write(dir.join(REQUIREMENTS), "torch==2.9.0\n").unwrap();
        let state = || PythonEnv::Venv.state(&dir);
        assert_eq!(state(), EnvState::Absent);
        std::fs::create_dir_all(dir.join(".venv/bin")).unwrap();
        std::fs::write(dir.join(".venv/bin/python"), "").unwrap();
        assert_eq!(state(), EnvState::Stale);
        stamp(&dir, &PythonEnv::Venv, &dir.join(".venv")).unwrap();
        assert_eq!(state(), EnvState::Current);
        std::fs::write(dir.join(REQUIREMENTS), "torch==2.10.0\n").unwrap();
        assert_eq!(state(), EnvState::Stale);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
