//! `cargo xtask gpu-check`: builds, here, everything a lent GPU machine (x86-64, CUDA, a
//! Python with PyTorch, no Rust) needs to run the MRPC job on a GPU backend beside the
//! Hugging Face Trainer, into `gpu-check/` (git-ignored, under the device tool's 64 MiB):
//!
//! - `bert-ft.xz`, stripped and compressed, with the `wgpu` backend (Vulkan on the NVIDIA driver), and the
//!   Vulkan loader in `lib/` in case the machine lacks one. burn's `cuda` backend cannot be
//!   built on these machines: cubecl-cuda's build script downloads LLVM from GitHub;
//! - GLUE MRPC's TSV files and the bert-base-uncased vocabulary (from all-MiniLM-L6-v2);
//! - `bench_train.py`, the Hugging Face side;
//! - `run.sh`, which runs both and writes JSON results and logs into `$OUT`.
//!
//! MiniLM's weights (90 MB) do not fit beside the binary; `--with-minilm` writes them, in
//! fp16, to `gpu-check-minilm/` for a second call.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::cargo::{build_cli_in, workspace_root};

/// Arguments of `gpu-check`.
#[derive(Args, Debug)]
pub struct GpuCheckArgs {
    /// The shared folder with `data/glue` and `models/all-MiniLM-L6-v2`.
    #[arg(long, default_value = "../shared")]
    shared: PathBuf,
    /// Features of the binary: `wgpu` for the GPU (`cuda` where the build can reach GitHub;
    /// `flex` to try the bundle here).
    #[arg(long, default_value = "wgpu")]
    backend_feature: String,
    /// Also write MiniLM's weights, in fp16, to `gpu-check-minilm/`.
    #[arg(long)]
    with_minilm: bool,
}

const RUN_SCRIPT: &str = r#"#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root: `bash gpu-check/run.sh`.
# BACKEND (default wgpu), STEPS and EPOCHS can be overridden to try it elsewhere.
set -u
cd "$(dirname "$0")"
# The Vulkan loader, for machines with the NVIDIA driver's Vulkan ICD but no loader.
export LD_LIBRARY_PATH="$(pwd)/lib:${LD_LIBRARY_PATH:-}"
[ -x bert-ft ] || { python3 -c 'import lzma, shutil; shutil.copyfileobj(lzma.open("bert-ft.xz"), open("bert-ft", "wb"))' && chmod +x bert-ft; }
OUT="${OUT:-$(pwd)/out}"; mkdir -p "$OUT"
BACKEND="${BACKEND:-wgpu}"; STEPS="${STEPS:-100}"; EPOCHS="${EPOCHS:-3}"
export PYTHONUNBUFFERED=1
(nvidia-smi -L; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d) > "$OUT/gpu.txt" 2>&1
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available())' > "$OUT/python.txt" 2>&1

# 1. Throughput, bert-base shape with random weights: ours, then the Hugging Face Trainer.
./bert-ft bench train --backend "$BACKEND" --model bert-base --tokenizer tokenizer \
    --dataset glue/MRPC --steps "$STEPS" --warmup 10 > "$OUT/ours-bert-base.json" 2> "$OUT/ours-bert-base.log"
python3 bench_train.py --device cuda --model bert-base --tokenizer tokenizer \
    --dataset glue/MRPC --steps "$STEPS" --warmup 10 > "$OUT/hf-bert-base.json" 2> "$OUT/hf-bert-base.log"

# 2. The notebook's whole job on the bert-base shape (random weights), timed.
start=$(date +%s.%N)
./bert-ft finetune-mrpc --backend "$BACKEND" --init-from-config tokenizer/bert-base-config.json \
    --model tokenizer --dataset glue/MRPC --num-train-epochs "$EPOCHS" --save-strategy no \
    --disable-tqdm true --output-dir /tmp/bert-ft-gpu > "$OUT/ours-finetune.log" 2>&1
echo "{\"wall_seconds\": $(echo "$(date +%s.%N) - $start" | bc)}" > "$OUT/ours-finetune.json"

# 3. MiniLM with real weights, if its folder was carried (gpu-check-minilm/).
if [ -f ../gpu-check-minilm/model.safetensors ]; then
    ./bert-ft bench train --backend "$BACKEND" --model ../gpu-check-minilm --tokenizer ../gpu-check-minilm \
        --dataset glue/MRPC --steps "$STEPS" --warmup 10 > "$OUT/ours-minilm.json" 2> "$OUT/ours-minilm.log"
    python3 bench_train.py --device cuda --model ../gpu-check-minilm --tokenizer ../gpu-check-minilm \
        --dataset glue/MRPC --steps "$STEPS" --warmup 10 > "$OUT/hf-minilm.json" 2> "$OUT/hf-minilm.log"
fi
ls -la "$OUT"
"#;

/// Builds the bundle.
pub fn run(args: &GpuCheckArgs) -> Result<()> {
    let root = workspace_root();
    let bundle = root.join("gpu-check");
    let binary = build_cli_in(&[&args.backend_feature, "flex"], "target/gpu-check")?;
    let _ = std::fs::remove_dir_all(&bundle);
    std::fs::create_dir_all(bundle.join("glue/MRPC"))?;
    std::fs::create_dir_all(bundle.join("lib"))?;
    let loader = Path::new("/usr/lib/x86_64-linux-gnu/libvulkan.so.1");
    if args.backend_feature.contains("wgpu") && loader.exists() {
        copy(loader, &bundle.join("lib/libvulkan.so.1"))?;
    }
    std::fs::create_dir_all(bundle.join("tokenizer"))?;
    let stripped = root.join("target/gpu-check/bert-ft-stripped");
    let status = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&binary)
        .status()
        .context("running strip")?;
    if !status.success() {
        bail!("strip failed ({status})");
    }
    // The wgpu build is about 100 MiB even stripped; xz brings it to about 20. run.sh unpacks
    // it with Python's lzma, which every machine with Python has.
    let packed = std::fs::File::create(bundle.join("bert-ft.xz"))?;
    let status = Command::new("xz")
        .args(["-T0", "-6", "-c"])
        .arg(&stripped)
        .stdout(packed)
        .status()
        .context("running xz")?;
    if !status.success() {
        bail!("xz failed ({status})");
    }
    let shared = root.join(&args.shared);
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
    copy(
        &root.join("python/bench_train.py"),
        &bundle.join("bench_train.py"),
    )?;
    std::fs::write(bundle.join("run.sh"), RUN_SCRIPT)?;
    if args.with_minilm {
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
