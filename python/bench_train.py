"""One training measurement for `cargo xtask bench` (and the GPU check): the Hugging Face
Trainer on GLUE MRPC, as the notebook sets it up (batch 8, AdamW, linear schedule, seed 42),
for a fixed number of steps. Prints one JSON object with:

- train_samples_per_second: from the start of training (after `--warmup` steps, none by
  default) to the end of the last step, timed by callbacks;
- first_step_seconds: from process start (before `import torch`) to the end of step 1;
- eval_samples_per_second: `trainer.evaluate()` on the 408 validation pairs (absent with
  `--skip-evaluation`);
- peak_rss_mb: the process's peak resident memory.
"""

import argparse
import csv
import json
import os
import resource
import time


def process_start_time():
    """Wall-clock time at which this process started, from /proc."""
    with open("/proc/self/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    ticks = os.sysconf("SC_CLK_TCK")
    return time.time() - uptime + start_ticks / ticks


START = process_start_time()

import torch  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)


# The shapes built at random, as bert-ft's `bench` builds them (ft-cli/src/bench.rs `SHAPES`).
# They read bert-base-uncased's vocabulary; DistilBERT and RoBERTa take no token types.
SHAPES = {
    "bert-base": (lambda: BertForSequenceClassification(BertConfig()), True),
    "tiny-bert": (
        lambda: BertForSequenceClassification(
            BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256)
        ),
        True,
    ),
    "distilbert-base": (lambda: DistilBertForSequenceClassification(DistilBertConfig(n_layers=6)), False),
    "roberta-base": (
        lambda: RobertaForSequenceClassification(
            RobertaConfig(
                vocab_size=50265,
                max_position_embeddings=514,
                type_vocab_size=1,
                pad_token_id=1,
                layer_norm_eps=1e-5,
            )
        ),
        False,
    ),
}


class Rows(torch.utils.data.Dataset):
    def __init__(self, features):
        self.features = features

    def __len__(self):
        return len(self.features)

    def __getitem__(self, i):
        return self.features[i]


def load(path, tokenizer, repeat_text=1):
    """The split, each pair's sentences `repeat_text` times over joined by spaces (as
    `bert-ft bench train --repeat-text` makes long rows), truncated to the model's length."""
    with open(path, encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    repeat = lambda text: " ".join([text] * repeat_text)  # noqa: E731
    enc = tokenizer(
        [repeat(r["#1 String"]) for r in rows], [repeat(r["#2 String"]) for r in rows], truncation=True
    )
    return Rows([{**{k: enc[k][i] for k in enc}, "label": int(rows[i]["Quality"])} for i in range(len(rows))])


class StepClock(TrainerCallback):
    def __init__(self, warmup):
        self.warmup, self.times = warmup, {}

    def on_train_begin(self, args, state, control, **kwargs):
        self.times[0] = time.time()

    def on_step_end(self, args, state, control, **kwargs):
        self.times[state.global_step] = time.time()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help="model folder, or one of SHAPES")
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--dataset", required=True, help="GLUE MRPC folder")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--repeat-text", type=int, default=1)
    parser.add_argument("--skip-evaluation", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    _, token_types = SHAPES.get(args.model, (None, True))
    names = {} if token_types else {"model_input_names": ["input_ids", "attention_mask"]}
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer, **names)
    train = load(os.path.join(args.dataset, "train.tsv"), tokenizer, args.repeat_text)
    validation = load(os.path.join(args.dataset, "dev.tsv"), tokenizer, args.repeat_text)
    if args.model in SHAPES:
        torch.manual_seed(42)
        model = SHAPES[args.model][0]()
    else:
        model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2)
    clock = StepClock(args.warmup)
    training_args = TrainingArguments(
        output_dir="/tmp/bert-ft-bench-hf",
        max_steps=args.warmup + args.steps,
        per_device_train_batch_size=8,
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=42,
        use_cpu=args.device == "cpu",
        bf16=args.bf16,
        gradient_checkpointing=args.gradient_checkpointing,
    )
    trainer = Trainer(
        model,
        training_args,
        train_dataset=train,
        eval_dataset=validation,
        processing_class=tokenizer,
        callbacks=[clock],
    )
    trainer.train()
    timed = clock.times[args.warmup + args.steps] - clock.times[args.warmup]
    evaluation = {} if args.skip_evaluation else trainer.evaluate()
    tokens = sum(len(f["input_ids"]) for f in train.features) / len(train)
    samples_per_second = args.steps * 8 / timed
    print(
        json.dumps(
            {
                "train_samples_per_second": samples_per_second,
                "train_tokens_per_second": samples_per_second * tokens,
                "first_step_seconds": clock.times[1] - START,
                "eval_samples_per_second": evaluation.get("eval_samples_per_second"),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "steps": args.steps,
                "threads": args.threads,
                "bf16": args.bf16,
                "backend": f"torch-{args.device}",
            }
        )
    )


if __name__ == "__main__":
    main()
