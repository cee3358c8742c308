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

/// The project's Python (`.venv/bin/python`, which CI installs), or `$FT_PYTHON`: for tests
/// that run transformers itself on what we write.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("FT_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        venv.is_file(),
        "no Python environment at {}: create it with `cargo xtask bench --with-python` \
         (or set FT_PYTHON to an interpreter with torch and transformers)",
        venv.display()
    );
    venv
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
