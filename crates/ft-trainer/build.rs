//! With the `tch` feature, compiles `csrc/fused_adamw.cpp` against the libtorch that torch-sys
//! links (its `DEP_TCH_LIBTORCH_LIB`), with the same C++ ABI.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    println!("cargo:rerun-if-changed=csrc/fused_adamw.cpp");
    let lib = PathBuf::from(
        env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys passes its libtorch folder"),
    );
    let include = lib.join("..").join("include");
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={}", cxx11_abi()))
        .file("csrc/fused_adamw.cpp")
        .compile("ft_fused_adamw");
}

/// The ABI torch-sys builds with: `LIBTORCH_CXX11_ABI`, or with `LIBTORCH_USE_PYTORCH` the one
/// that PyTorch was built with, else 1.
fn cxx11_abi() -> String {
    for name in ["LIBTORCH_CXX11_ABI", "LIBTORCH_USE_PYTORCH", "VIRTUAL_ENV"] {
        println!("cargo:rerun-if-env-changed={name}");
    }
    if let Ok(abi) = env::var("LIBTORCH_CXX11_ABI") {
        return abi;
    }
    if env::var_os("LIBTORCH_USE_PYTORCH").is_none() {
        return "1".to_owned();
    }
    // torch-sys's choice of interpreter.
    let python = if env::var_os("VIRTUAL_ENV").is_some() {
        "python"
    } else {
        "python3"
    };
    let output = Command::new(python)
        .args([
            "-c",
            "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))",
        ])
        .output()
        .unwrap_or_else(|error| panic!("running {python}: {error}"));
    assert!(
        output.status.success(),
        "{python} could not import torch: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
