"""One step-timing measurement for `cargo xtask bench`: PyTorch eager (what the Hugging Face
Trainer runs) on the same batches as `bert-ft bench step`: the first MRPC train pairs in order,
batches of 8 padded to their longest pair. Times forward, backward and AdamW (fused, as the
Trainer's default `adamw_torch_fused`) per training step, and one eval-mode forward per batch.
Prints one JSON object.
"""

import argparse
import csv
import json
import os
import time

import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    DataCollatorWithPadding,
)


def median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def time_gemm(m, k, n):
    """`[m, k] x [k, n]` alone, as the model's linear layers run it: median ms and GFLOP/s."""
    lhs, rhs = torch.rand(m, k), torch.rand(k, n)
    times = []
    with torch.no_grad():
        for i in range(23):
            t0 = time.perf_counter()
            torch.matmul(lhs, rhs)
            if i >= 3:
                times.append((time.perf_counter() - t0) * 1000)
    ms = median(times)
    return {"m": m, "k": k, "n": n, "ms": ms, "gflops": 2 * m * k * n / (ms * 1e6)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help="model folder, or bert-base")
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--dataset", required=True, help="GLUE MRPC folder")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--gemm-rows", type=int, default=512)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(42)

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    with open(os.path.join(args.dataset, "train.tsv"), encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    total = args.warmup + args.steps
    rows = rows[: total * args.batch_size]
    enc = tokenizer([r["#1 String"] for r in rows], [r["#2 String"] for r in rows], truncation=True)
    features = [{**{k: enc[k][i] for k in enc}, "labels": int(rows[i]["Quality"])} for i in range(len(rows))]
    collator = DataCollatorWithPadding(tokenizer)
    batches = [collator(features[i * args.batch_size : (i + 1) * args.batch_size]) for i in range(total)]

    if args.model == "bert-base":
        model = BertForSequenceClassification(BertConfig())
    else:
        model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, eps=1e-8, weight_decay=0.0, fused=True)

    forward, backward, update = [], [], []
    for i, batch in enumerate(batches):
        t0 = time.perf_counter()
        loss = model(**batch).loss
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        if i >= args.warmup:
            forward.append((t1 - t0) * 1000)
            backward.append((t2 - t1) * 1000)
            update.append((t3 - t2) * 1000)

    model.eval()
    infer = []
    with torch.no_grad():
        for i, batch in enumerate(batches):
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            t0 = time.perf_counter()
            model(**inputs)
            if i >= args.warmup:
                infer.append((time.perf_counter() - t0) * 1000)

    config = model.config
    gemm = [
        time_gemm(args.gemm_rows, config.hidden_size, config.intermediate_size),
        time_gemm(args.gemm_rows, config.intermediate_size, config.hidden_size),
    ]
    print(
        json.dumps(
            {
                "model": args.model,
                "batch_size": args.batch_size,
                "steps": args.steps,
                "forward_ms": median(forward),
                "backward_ms": median(backward),
                "optimizer_ms": median(update),
                "step_ms": median(forward) + median(backward) + median(update),
                "infer_ms": median(infer),
                "gemm": gemm,
                "simd": f"ATen CPU capability {torch.backends.cpu.get_cpu_capability()}",
                "threads": args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
