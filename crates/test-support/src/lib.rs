//! Test support shared by the workspace's test suites (never a dependency of library code):
//! a Hugging Face Hub stand-in, and where the shared GLUE data and model live.

#![warn(missing_docs)]

pub mod hub;

use std::path::{Path, PathBuf};

pub use hub::{COMMIT, FakeHub, FakeRepo, RepoKind};

/// Every backend the calling test build compiles in, each with a name for messages, as a
/// `Vec<(&'static str, burn::tensor::Device)>`.
///
/// A macro rather than a function so that the `feature = "…"` checks are the calling crate's
/// own backend features (this crate has none, and does not depend on burn).
#[macro_export]
macro_rules! devices {
    () => {{
        #[allow(unused_mut)]
        let mut devices: Vec<(&'static str, burn::tensor::Device)> =
            vec![("flex", burn::tensor::Device::flex())];
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        devices.push(("ndarray", burn::tensor::Device::ndarray()));
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        devices.push(("tch-cpu", burn::tensor::Device::libtorch()));
        #[cfg(feature = "wgpu")]
        devices.push((
            "wgpu",
            burn::tensor::Device::wgpu(burn::tensor::DeviceKind::Cpu),
        ));
        devices
    }};
}

/// The folder shared beside the checkout (`../shared`), or `$FT_SHARED_DIR`.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("FT_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// The original GLUE TSV files (`shared/data/glue`), or `$GLUE_DIR`.
pub fn glue_dir() -> PathBuf {
    match std::env::var_os("GLUE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => shared_dir().join("data/glue"),
    }
}

/// The project's Python (`.venv/bin/python`), or `$FT_PYTHON`: for tests that run
/// transformers itself on what we write.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("FT_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = venv_dir().join("bin/python");
    assert!(
        venv.is_file(),
        "no Python environment at {}: `cargo xtask ci` creates it from \
         python/requirements.txt before it tests (`cargo xtask ci --setup-only` stops there); \
         or set FT_PYTHON to an interpreter with torch and transformers",
        venv.display()
    );
    venv
}

/// The project's virtualenv, `.venv` in the workspace root.
fn venv_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv")
}

/// A transformers that the tests check what we write against.
///
/// `.venv`'s own comes first (`python/requirements.txt`); then, for each
/// `python/requirements-transformers-*.txt`, the version it pins, which `cargo xtask ci`
/// installs without dependencies into `.venv/transformers-{version}` and which runs as
/// `.venv`'s Python with that folder first on `PYTHONPATH`, so that torch and the rest are
/// `.venv`'s.
#[derive(Debug, Clone)]
pub struct Transformers {
    /// The version it is installed as, which `transformers.__version__` must report; `None`
    /// for `$FT_PYTHON`'s, which is whatever that interpreter has.
    pub version: Option<String>,
    /// The folder put first on `PYTHONPATH`; `None` for the interpreter's own transformers.
    site: Option<PathBuf>,
}

impl Transformers {
    /// The project's Python (see [`python`]) with this transformers the one it imports.
    pub fn command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(python());
        if let Some(site) = &self.site {
            let mut path = std::ffi::OsString::from(site);
            if let Some(existing) = std::env::var_os("PYTHONPATH") {
                path.push(":");
                path.push(existing);
            }
            command.env("PYTHONPATH", path);
        }
        command
    }
}

impl std::fmt::Display for Transformers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.version {
            Some(version) => write!(f, "transformers {version}"),
            None => write!(f, "$FT_PYTHON's transformers"),
        }
    }
}

/// Every transformers the tests check what we write against, `.venv`'s first (see
/// [`Transformers`]); with `$FT_PYTHON` set, that interpreter's alone.
pub fn transformers() -> Vec<Transformers> {
    if std::env::var_os("FT_PYTHON").is_some() {
        return vec![Transformers {
            version: None,
            site: None,
        }];
    }
    let requirements = read_requirements("requirements.txt");
    let own = Transformers {
        version: Some(pinned_transformers(&requirements, "requirements.txt")),
        site: None,
    };
    let mut further = further_transformers_files();
    further.sort();
    let further = further.into_iter().map(|name| {
        let version = pinned_transformers(&read_requirements(&name), &name);
        let site = venv_dir().join(format!("transformers-{version}"));
        assert!(
            site.is_dir(),
            "transformers {version} (python/{name}) is not installed at {}: `cargo xtask ci` \
             installs it before it tests (`cargo xtask ci --setup-only` stops there)",
            site.display()
        );
        Transformers {
            version: Some(version),
            site: Some(site),
        }
    });
    std::iter::once(own).chain(further).collect()
}

/// The names of `python/requirements-transformers-*.txt`.
fn further_transformers_files() -> Vec<String> {
    let dir = python_script("");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("listing {}: {error}", dir.display()));
    entries
        .map(|entry| entry.expect("a readable python/ entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.starts_with("requirements-transformers-") && name.ends_with(".txt"))
        .collect()
}

/// The text of `python/{name}`.
fn read_requirements(name: &str) -> String {
    let path = python_script(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

/// The version a requirements file pins with `transformers==VERSION`, as xtask reads it
/// (`xtask/src/python.rs`, which installs what these files name).
fn pinned_transformers(requirements: &str, name: &str) -> String {
    let version = requirements.lines().find_map(|line| {
        let spec = line.split('#').next().unwrap_or("").trim();
        let version = spec.strip_prefix("transformers==")?;
        let version = version.split([';', ' ']).next().unwrap_or("").trim();
        (!version.is_empty()).then(|| version.to_string())
    });
    version.unwrap_or_else(|| panic!("python/{name} pins no `transformers==VERSION`"))
}

/// One of the project's Python scripts (`python/{name}`).
pub fn python_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../python")
        .join(name)
}

/// An error and its causes, joined as anyhow's `{:#}` prints them (and `bert-ft` shows them).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text += &format!(": {error}");
        cause = error.source();
    }
    text
}

/// The real all-MiniLM-L6-v2 checkpoint (`shared/models/all-MiniLM-L6-v2`).
pub fn minilm_dir() -> PathBuf {
    shared_dir().join("models/all-MiniLM-L6-v2")
}

/// FNV-1a 64 over little-endian u32s, as the fixture scripts hash token ids
/// (`make_tokenizer_fixture.py`, `make_family_fixtures.py`), in hex.
pub fn fnv1a64(values: impl IntoIterator<Item = u32>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in values.into_iter().flat_map(u32::to_le_bytes) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_transformers_is_read_past_comments_and_markers() {
        let text = "# 5.25\ntorch==2.9.0\ntransformers==5.25.0  # new\nkernels==0.19.1\n";
        assert_eq!(pinned_transformers(text, "a.txt"), "5.25.0");
        let marked = "transformers==5.24.0; python_version >= '3.10'";
        assert_eq!(pinned_transformers(marked, "b.txt"), "5.24.0");
        let unpinned = std::panic::catch_unwind(|| pinned_transformers("transformers>=5", "c.txt"));
        assert!(unpinned.is_err());
    }
}
