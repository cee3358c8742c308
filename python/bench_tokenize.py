"""One tokenization measurement for `cargo xtask bench`: the notebook's
`raw_datasets.map(tokenize_function, batched=True)` step, as Python's fast tokenizer runs it
(batches of 1000 pairs, `truncation=True`), timed without file loading. Prints one JSON object.

The `datasets` library adds Arrow bookkeeping around the same tokenizer calls, so this
measures the tokenizer alone, which flatters Python slightly.
"""

import argparse
import csv
import json
import os
import time

from transformers import AutoTokenizer

COLUMNS = {"mrpc": ("#1 String", "#2 String")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", required=True, help="GLUE task folder, e.g. glue/MRPC")
    parser.add_argument("--task", default="mrpc")
    parser.add_argument("--split", default="train")
    args = parser.parse_args()

    file = {"train": "train.tsv", "validation": "dev.tsv"}[args.split]
    first, second = COLUMNS[args.task]
    with open(os.path.join(args.dataset, file), encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    s1 = [row[first] for row in rows]
    s2 = [row[second] for row in rows]
    tokenizer = AutoTokenizer.from_pretrained(args.model)

    start = time.perf_counter()
    tokens = 0
    for i in range(0, len(rows), 1000):
        batch = tokenizer(s1[i : i + 1000], s2[i : i + 1000], truncation=True)
        tokens += sum(len(ids) for ids in batch["input_ids"])
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "pairs": len(rows),
                "tokens": tokens,
                "seconds": seconds,
                "pairs_per_second": len(rows) / seconds,
                # The Rust tokenizer behind it splits a batch across every core.
                "threads": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
