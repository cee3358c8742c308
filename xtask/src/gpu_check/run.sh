#!/usr/bin/env bash
# Written by `cargo xtask gpu-check`; runs on the GPU machine: bash gpu-check/run.sh
# Stages run in STAGES order while DEADLINE (seconds) allows, each under its own limit, and
# every result and log goes to $OUT. The Hugging Face Trainer and ours alternate (A B A B)
# on the same card. Overrides: BACKENDS (the bundled binaries), DEVICE (cuda; cpu to try it
# on a CPU), MODEL (bert-base), STEPS, WARMUP, EPOCHS, DEADLINE.
set -u
cd "$(dirname "$0")"
OUT="${OUT:-$(pwd)/out}"; mkdir -p "$OUT"
STAGES="${STAGES:-probe hf ours hf ours hf16 ours16 full}"
DEVICE="${DEVICE:-cuda}"; MODEL="${MODEL:-bert-base}"
STEPS="${STEPS:-200}"; WARMUP="${WARMUP:-20}"; EPOCHS="${EPOCHS:-3}"; DEADLINE="${DEADLINE:-480}"
export PYTHONUNBUFFERED=1 RUST_BACKTRACE=1
T0=$(date +%s)
left() { echo $(( DEADLINE - ($(date +%s) - T0) )); }
# The smaller of a stage's own limit and what the deadline leaves.
cap() { local l; l=$(left); if [ "$1" -lt "$l" ]; then echo "$1"; else echo "$l"; fi; }
say() { echo "== $(( $(date +%s) - T0 ))s: $*" | tee -a "$OUT/stages.txt"; }

for packed in bert-ft-*.xz; do
  [ -f "$packed" ] || continue
  binary=${packed%.xz}
  [ -x "$binary" ] || { python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1] + ".xz"), open(sys.argv[1], "wb"))' "$binary" && chmod +x "$binary"; }
done
BACKENDS="${BACKENDS:-$(for b in bert-ft-*; do case $b in *.xz) ;; *) printf '%s ' "${b#bert-ft-}" ;; esac; done)}"
# The Vulkan loader and glvnd, which the NVIDIA driver's Vulkan ICD needs and these machines lack.
if [ -d gl ] && [ "$(id -u)" = 0 ] && ! ldconfig -p | grep -q 'libvulkan.so.1 '; then
  for deb in gl/*.deb; do dpkg -x "$deb" /; done
  ldconfig
fi
# libtorch is the machine's own PyTorch, which the tch binary was built against.
TORCH_LIB=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)
export LD_LIBRARY_PATH="${TORCH_LIB:+$TORCH_LIB:}${LD_LIBRARY_PATH:-}"
ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$ICD" ] && export VK_DRIVER_FILES="$ICD"

# The `--backend` of a bundled binary on $DEVICE.
backend_name() { case $1 in tch) [ "$DEVICE" = cuda ] && echo tch-cuda || echo tch-cpu ;; *) echo "$1" ;; esac; }
hf() { # label [flags]
  local label=$1 t; shift; t=$(cap 180)
  [ "$t" -gt 20 ] || { say "skip $label: deadline"; return; }
  say "$label (limit ${t}s)"
  timeout "$t" python3 bench_train.py --device "$DEVICE" --model "$MODEL" --tokenizer tokenizer \
    --dataset glue/MRPC --steps "$STEPS" --warmup "$WARMUP" "$@" > "$OUT/$label.json" 2> "$OUT/$label.log"
  say "$label rc=$?: $(head -c 300 "$OUT/$label.json")"
}
ours() { # label [flags]
  local label=$1 b t; shift
  for b in $BACKENDS; do
    t=$(cap 180); [ "$t" -gt 20 ] || { say "skip $label-$b: deadline"; return; }
    say "$label-$b (limit ${t}s)"
    timeout "$t" "./bert-ft-$b" bench train --backend "$(backend_name "$b")" --model "$MODEL" \
      --tokenizer tokenizer --dataset glue/MRPC --steps "$STEPS" --warmup "$WARMUP" "$@" \
      > "$OUT/$label-$b.json" 2> "$OUT/$label-$b.log"
    say "$label-$b rc=$?: $(head -c 300 "$OUT/$label-$b.json")"
  done
}
HF_RUNS=0; OUR_RUNS=0
for stage in $STAGES; do
  case $stage in
    probe)
      say probe
      { nvidia-smi -L; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
        python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available())'
        echo "BACKENDS=$BACKENDS TORCH_LIB=$TORCH_LIB"; nproc; free -g
        for b in $BACKENDS; do ldd "./bert-ft-$b" | grep -E "torch|c10|vulkan|not found"; done
        ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d; } > "$OUT/probe.txt" 2>&1 ;;
    hf)
      HF_RUNS=$((HF_RUNS + 1)); hf "hf-$HF_RUNS" ;;
    ours)
      OUR_RUNS=$((OUR_RUNS + 1)); ours "ours-$OUR_RUNS" ;;
    hf16)
      hf hf-bf16 --bf16 ;;
    ours16)
      ours ours-bf16 --bf16 ;;
    full)
      # The notebook's whole job on the first backend, bert-base's shape with random weights.
      b=${BACKENDS%% *}; t=$(cap 300)
      [ "$t" -gt 60 ] || { say "skip full: deadline"; continue; }
      say "full-$b (limit ${t}s)"
      timeout "$t" "./bert-ft-$b" finetune-mrpc --backend "$(backend_name "$b")" \
        --init-from-config tokenizer/bert-base-config.json --model tokenizer --dataset glue/MRPC \
        --num-train-epochs "$EPOCHS" --save-strategy no --disable-tqdm true \
        --output-dir "$OUT/full-$b-run" > "$OUT/full-$b.log" 2>&1
      say "full-$b rc=$?: $(grep -E 'train_runtime|eval_accuracy' "$OUT/full-$b.log" | tail -4 | tr '\n' ' ')" ;;
    *)
      say "unknown stage $stage" ;;
  esac
done
say end
