"""Checks that transformers accepts a `TrainingArguments` JSON written by ft-trainer's
`TrainingArguments::to_json()` as it is: `transformers.TrainingArguments(**json)` constructs,
and every key of the JSON reads back from the constructed object with the same value after
transformers' own normalisation (enums compare by `.value`, `report_to` as a list, numbers
numerically, `output_dir` as a string).

A deprecation warning (FutureWarning or DeprecationWarning) from the construction is a
refusal too: a file we write must not use a name transformers is retiring.

Usage: python check_training_args.py ARGS.json
Exits non-zero with a message if transformers refuses the arguments or any value differs.
"""

import enum
import json
import numbers
import sys
import warnings

from transformers import TrainingArguments


def normalised(value):
    """A constructed attribute as plain JSON-like data: enums (also in lists) by `.value`."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [normalised(item) for item in value]
    return value


def report_to_list(value):
    """`report_to` as transformers' `__post_init__` normalises it: "none" -> [], "x" -> ["x"]."""
    if value is None or value == "none" or value == ["none"]:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def same(actual, expected):
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(actual, numbers.Number) and isinstance(expected, numbers.Number):
        return float(actual) == float(expected)
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(same(a, e) for a, e in zip(actual, expected))
    return actual == expected


def main():
    path = sys.argv[1]
    with open(path) as f:
        values = json.load(f)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)
            warnings.simplefilter("error", DeprecationWarning)
            args = TrainingArguments(**values)
    except Exception as error:  # noqa: BLE001 - any refusal is the finding
        sys.exit(f"transformers.TrainingArguments refused {path}: {type(error).__name__}: {error}")

    mismatches = []
    for key, expected in values.items():
        actual = normalised(getattr(args, key))
        if key == "report_to":
            actual, expected = report_to_list(actual), report_to_list(expected)
        elif key == "output_dir":
            actual, expected = str(actual), str(expected)
        if not same(actual, expected):
            mismatches.append(f"{key}: JSON has {expected!r}, transformers has {actual!r}")
    if mismatches:
        print(f"transformers.TrainingArguments reads {path} differently:", file=sys.stderr)
        for line in mismatches:
            print(f"  {line}", file=sys.stderr)
        sys.exit(1)
    print(f"transformers.TrainingArguments accepts {path}: {len(values)} keys, every value as written")


if __name__ == "__main__":
    main()
