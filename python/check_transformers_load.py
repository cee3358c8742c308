"""Checks that transformers loads a folder written by bert-ft's `save_pretrained` as it is:
`AutoModelForSequenceClassification.from_pretrained(dir)` with no missing, unexpected or
mismatched keys, and, given an inputs/logits JSON written by the Rust side, the same logits.

Usage: python check_transformers_load.py DIR [EXPECTED.json]
EXPECTED.json may name the class transformers must build ("architecture"); it defaults to
BertForSequenceClassification.
Exits non-zero with a message on any difference.
"""

import json
import sys

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def main():
    directory = sys.argv[1]
    model, info = AutoModelForSequenceClassification.from_pretrained(directory, output_loading_info=True)
    problems = {key: value for key, value in info.items() if value}
    if problems:
        sys.exit(f"transformers reported loading problems for {directory}: {problems}")
    expected = {}
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as f:
            expected = json.load(f)
    architecture = expected.get("architecture", "BertForSequenceClassification")
    if type(model).__name__ != architecture:
        sys.exit(f"loaded as {type(model).__name__}, not {architecture}")
    print(f"loaded {directory}: {type(model).__name__}, num_labels={model.config.num_labels}, no missing or unexpected keys")

    if expected:
        tokenizer = AutoTokenizer.from_pretrained(directory)
        batch = tokenizer(expected["text_a"], expected["text_b"], truncation=True, padding=True, return_tensors="pt")
        model.eval()
        with torch.no_grad():
            logits = model(**batch).logits
        diff = (logits - torch.tensor(expected["logits"])).abs().max().item()
        if diff > float(expected.get("tolerance", 1e-4)):
            sys.exit(f"logits differ from bert-ft's by {diff}")
        print(f"logits match bert-ft's within {diff:.2e}")


if __name__ == "__main__":
    main()
