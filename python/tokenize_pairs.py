"""Prints what transformers' tokenizer gives for sentence pairs, as JSON on stdout.

    python tokenize_pairs.py FOLDER PAIRS.json [MAX_LENGTH]

PAIRS.json is a list of [text_a, text_b]. Each pair is tokenized as the course notebook
does, `tokenizer(a, b, truncation=True)`, with `max_length=MAX_LENGTH` when given. The
output holds the tokenizer's `model_max_length` and each pair's `input_ids` and
`token_type_ids`. ft-collate's tests run it on tokenizer folders that give no length limit.
"""

import json
import sys

from transformers import AutoTokenizer


def main() -> None:
    folder, pairs_path = sys.argv[1], sys.argv[2]
    max_length = int(sys.argv[3]) if len(sys.argv) > 3 else None
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with open(pairs_path, encoding="utf-8") as file:
        pairs = json.load(file)
    encodings = [
        tokenizer(a, b, truncation=True, max_length=max_length) for a, b in pairs
    ]
    print(
        json.dumps(
            {
                "model_max_length": tokenizer.model_max_length,
                "input_ids": [e["input_ids"] for e in encodings],
                "token_type_ids": [e["token_type_ids"] for e in encodings],
            }
        )
    )


if __name__ == "__main__":
    main()
