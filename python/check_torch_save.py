"""Checks a file written by ft-trainer's `torch_save` against torch itself.

The file must hold the nested value of `torch_save`'s unit test (`nested()` in
crates/ft-trainer/src/torch_save/mod.rs). This script

1. loads it with `torch.load(weights_only=True)`, as transformers loads a checkpoint, and
   compares it with the same value built here (types, key order, dtypes, shapes, values);
2. saves that value with `torch.save` under the same file name, and compares the two zip
   archives record by record: `data.pkl` byte for byte, every storage, and the record names,
   order and data offsets (all but `.data/serialization_id`, whose digits torch derives from
   a `std::hash` of the names).

Usage: python check_torch_save.py FILE
Prints one line per check; exits non-zero on the first difference.
"""

import os
import sys
import tempfile
import zipfile

import torch


def expected():
    return {
        "none": None,
        "flags": [True, False],
        "ints": (0, 255, 65536, -7, 2**31, -(2**40)),
        "floats": [1e-8, -0.5],
        "text": "naïve ✓",
        "bytes": bytes([0, 127, 128, 255]),
        "state": {
            0: {"step": torch.tensor(3.0), "exp_avg": torch.arange(1.0, 7.0).reshape(2, 3)},
            1: torch.tensor([9, 8, 7], dtype=torch.uint8),
        },
    }


def same(a, b):
    if isinstance(a, torch.Tensor):
        return (
            isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool((a == b).all())
        )
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


def records(path):
    """(name, data offset, bytes) of every record, in the archive's order."""
    with zipfile.ZipFile(path) as archive:
        result = []
        for info in archive.infolist():
            with open(path, "rb") as f:
                f.seek(info.header_offset + 26)
                name_len = int.from_bytes(f.read(2), "little")
                extra_len = int.from_bytes(f.read(2), "little")
            start = info.header_offset + 30 + name_len + extra_len
            result.append((info.filename, start, archive.read(info.filename), info.compress_type))
        return result


def fail(message):
    print(message)
    sys.exit(1)


def main(path):
    loaded = torch.load(path, weights_only=True)
    if not same(expected(), loaded):
        fail(f"loaded with weights_only: differs: {loaded!r}")
    print("loaded with weights_only: equal")

    with tempfile.TemporaryDirectory() as tmp:
        reference = os.path.join(tmp, os.path.basename(path))
        torch.save(expected(), reference)
        ours, theirs = records(path), records(reference)
    folder = os.path.splitext(os.path.basename(path))[0]
    pickles = [data for name, _, data, _ in ours + theirs if name == f"{folder}/data.pkl"]
    if len(pickles) != 2 or pickles[0] != pickles[1]:
        fail(f"data.pkl: differs\nours:   {pickles[0]!r}\ntorch's: {pickles[-1]!r}")
    print("data.pkl: identical")
    layout = lambda recs: [(n, start) for n, start, _, _ in recs if not n.endswith("serialization_id")]
    if layout(ours) != layout(theirs):
        fail(f"records: differ\nours:   {layout(ours)}\ntorch's: {layout(theirs)}")
    if any(compression != zipfile.ZIP_STORED for _, _, _, compression in ours):
        fail("records: some are compressed")
    print("records: identical but .data/serialization_id")
    storages = lambda recs: [(n, d) for n, _, d, _ in recs if "/data/" in n]
    if storages(ours) != storages(theirs):
        fail("storages: differ")
    print("storages: identical")


if __name__ == "__main__":
    main(sys.argv[1])
