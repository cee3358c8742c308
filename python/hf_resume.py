"""transformers' Trainer on the rows and model bert-ft's resume tests give it: trains, saves and
resumes (from its own checkpoints or bert-ft's), and reports every step.

Usage:
  python hf_resume.py train --model DIR --tokenizer TOKENIZER.json --data ROWS.jsonl
      --out DIR --report OUT.json
      [--resume CHECKPOINT] --max-steps N --save-steps N --batch-size N --learning-rate LR
      --warmup-steps N --weight-decay WD
  python hf_resume.py compare-optimizers A/optimizer.pt B/optimizer.pt
  python hf_resume.py same-state A/scheduler.pt B/scheduler.pt
  python hf_resume.py check-rng rng_state.pth SEED

`train` fine-tunes the model in DIR (`save_pretrained` output) on ROWS.jsonl (one row a line:
input_ids, token_type_ids, label), batched by `DataCollatorWithPadding` in dataset order
(`train_sampling_strategy="sequential"`), in fp32 on the CPU. The report holds each optimizer
step's loss (the micro-batch's exact loss, not the logged average rounded to 4 digits) and the
learning rate that step took, and, when resuming, what the Trainer loaded (the optimizer's step
count and the scheduler's `last_epoch` as the first resumed step starts) and every message
transformers logged or warned while resuming.

`compare-optimizers` loads two `optimizer.pt` with `weights_only=True` and prints, as JSON,
whether their structure (state indices and keys, shapes, dtypes, param groups) is the same,
each side's step counts, and the largest difference of a moment relative to its largest value
(floored at a millionth of the largest value of its kind).

`same-state` loads two files with `weights_only=True` and prints `equal` if they hold the
same value (types, key order, floats exactly). `check-rng` loads an `rng_state.pth` as
transformers' `_load_rng_state` does (`weights_only=True` with its numpy allow-list) and says,
for Python's, numpy's and torch's CPU generator, whether the state is the one
`transformers.set_seed(SEED)` leaves.
"""

import argparse
import json
import logging
import sys
import warnings

import torch
from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    PreTrainedTokenizerFast,
    Trainer,
    TrainingArguments,
)
from transformers.utils import logging as hf_logging


class RecordingTrainer(Trainer):
    """Records each micro-batch's loss and the learning rate its optimizer step takes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps = []
        self.loaded = None

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.loaded is None:
            first = next(iter(self.optimizer.state.values()), {})
            step = first.get("step")
            self.loaded = {
                "optimizer_step": None if step is None else float(step),
                "scheduler_last_epoch": self.lr_scheduler.last_epoch,
            }
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.steps.append(
            {
                "step": self.state.global_step + 1,
                "loss": float(loss),
                "learning_rate": float(self._get_learning_rate()),
            }
        )
        return loss


class Messages(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def read_rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def train(a):
    rows = read_rows(a.data)
    model = AutoModelForSequenceClassification.from_pretrained(a.model)
    # Padding only: the token ids are bert-ft's. Any BERT tokenizer pads with [PAD] = 0.
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=a.tokenizer, pad_token="[PAD]")
    args = TrainingArguments(
        a.out,
        max_steps=a.max_steps,
        save_steps=a.save_steps,
        per_device_train_batch_size=a.batch_size,
        learning_rate=a.learning_rate,
        warmup_steps=a.warmup_steps,
        weight_decay=a.weight_decay,
        logging_steps=1,
        train_sampling_strategy="sequential",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = RecordingTrainer(
        model=model,
        args=args,
        train_dataset=[
            {
                "input_ids": r["input_ids"],
                "token_type_ids": r["token_type_ids"],
                "attention_mask": [1] * len(r["input_ids"]),
                "labels": r["label"],
            }
            for r in rows
        ],
        data_collator=DataCollatorWithPadding(tokenizer),
    )
    handler = Messages()
    hf_logging.set_verbosity_info()
    hf_logging.add_handler(handler)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train(resume_from_checkpoint=a.resume)
    report = {
        "steps": trainer.steps,
        "loaded": trainer.loaded,
        "messages": handler.messages + [str(w.message) for w in caught],
    }
    with open(a.report, "w") as f:
        json.dump(report, f, indent=1)


def compare_optimizers(a, b):
    one = torch.load(a, weights_only=True)
    two = torch.load(b, weights_only=True)
    same_structure = list(one) == list(two) and list(one["state"]) == list(two["state"])
    # A moment's difference relative to its largest value, floored at a millionth of the
    # largest of its kind: some gradients are zero but for rounding (the attention key's bias),
    # and their moments (1e-14) are noise on both sides.
    largest = {}
    for state in one["state"].values():
        for key, tensor in state.items():
            largest[key] = max(largest.get(key, 0.0), float(tensor.abs().max()))
    differences = {}
    for index, state in one["state"].items():
        other = two["state"].get(index, {})
        same_structure &= list(state) == list(other)
        for key, tensor in state.items():
            theirs = other.get(key)
            if theirs is None or theirs.shape != tensor.shape or theirs.dtype != tensor.dtype:
                same_structure = False
                continue
            if key != "step":
                scale = max(float(tensor.abs().max()), 1e-6 * largest[key], 1e-30)
                differences[f"{index}.{key}"] = float((tensor - theirs).abs().max()) / scale
    groups = lambda state: [{k: v for k, v in g.items()} for g in state["param_groups"]]
    steps = lambda state: sorted({float(s["step"]) for s in state["state"].values()})
    print(
        json.dumps(
            {
                "same_structure": same_structure,
                "same_param_groups": groups(one) == groups(two),
                "param_groups": [groups(one), groups(two)],
                "steps": [steps(one), steps(two)],
                "largest_relative_difference": max(differences.values(), default=0.0),
                "moments": len(differences),
            },
            indent=1,
        )
    )


def same(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


def same_state(a, b):
    one, two = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    print("equal" if same(one, two) else f"differs:\n{one!r}\n{two!r}")


def check_rng(path, seed):
    import random

    import numpy as np
    from transformers import set_seed
    from transformers.trainer_pt_utils import safe_globals

    with safe_globals():
        loaded = torch.load(path, weights_only=True)
    set_seed(seed)
    expected = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "cpu": torch.random.get_rng_state(),
    }
    for key, value in expected.items():
        theirs = loaded.get(key)
        if key == "numpy":
            equal = (
                theirs[0] == value[0]
                and theirs[1].dtype == value[1].dtype
                and np.array_equal(theirs[1], value[1])
                and theirs[2:] == value[2:]
            )
        else:
            equal = same(value, theirs)
        print(f"{key}: as set_seed({seed}) leaves it" if equal else f"{key}: differs")
    print(f"keys: {sorted(loaded)}")


def main():
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("train")
    for name in ["--model", "--tokenizer", "--data", "--out", "--report"]:
        run.add_argument(name, required=True)
    run.add_argument("--resume")
    for name in ["--max-steps", "--save-steps", "--batch-size", "--warmup-steps"]:
        run.add_argument(name, type=int, required=True)
    for name in ["--learning-rate", "--weight-decay"]:
        run.add_argument(name, type=float, required=True)
    for name in ["compare-optimizers", "same-state"]:
        compare = commands.add_parser(name)
        compare.add_argument("a")
        compare.add_argument("b")
    rng = commands.add_parser("check-rng")
    rng.add_argument("path")
    rng.add_argument("seed", type=int)
    a = parser.parse_args()
    if a.command == "train":
        train(a)
    elif a.command == "compare-optimizers":
        compare_optimizers(a.a, a.b)
    elif a.command == "same-state":
        same_state(a.a, a.b)
    else:
        check_rng(a.path, a.seed)


if __name__ == "__main__":
    sys.exit(main())
