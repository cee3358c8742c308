"""Writes the seed corpora of fuzz/seeds/<target>/: valid files of every kind the readers
accept (cut from the real GLUE files and from small transformers checkpoints) and known-hostile
ones. `cargo xtask fuzz` starts from them and grows fuzz/corpus/<target>/; CI replays both
(crates/fuzz-harness).

Run from the repository root with the project's venv: .venv/bin/python fuzz/make_seeds.py
"""

import io
import json
import os
import pickle
import struct
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors.torch import save as save_safetensors
from transformers import BertConfig, BertForSequenceClassification

ROOT = "fuzz/seeds"
GLUE = "../shared/data/glue"
# The order of glue_data::Task::ALL: the harness's first byte picks the task.
TASKS = ["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli", "ax"]
FOLDERS = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "stsb": "STS-B", "rte": "RTE", "wnli": "WNLI"}


def write(target, name, data):
    os.makedirs(f"{ROOT}/{target}", exist_ok=True)
    with open(f"{ROOT}/{target}/{name}", "wb") as f:
        f.write(data)


def selector(task):
    return bytes([TASKS.index(task)])


# --- GLUE TSV: the head of each real file, then broken variants.
for task, folder in FOLDERS.items():
    for split in ["train", "dev", "test"]:
        with open(f"{GLUE}/{folder}/{split}.tsv", "rb") as f:
            head = b"".join(f.readlines()[:6])
        write("glue_tsv", f"{task}-{split}", selector(task) + head)
mrpc = open(f"{GLUE}/MRPC/train.tsv", "rb").read().splitlines(keepends=True)[:4]
write("glue_tsv", "mrpc-crlf", selector("mrpc") + b"".join(l.rstrip(b"\n") + b"\r\n" for l in mrpc))
write("glue_tsv", "mrpc-missing-column", selector("mrpc") + mrpc[0] + b"1\t2\t3\tonly one sentence\n")
write("glue_tsv", "mrpc-bad-label", selector("mrpc") + mrpc[0] + b"yes\t1\t2\ta\tb\n")
write("glue_tsv", "mrpc-invalid-utf8", selector("mrpc") + mrpc[0] + b"1\t1\t2\t\xff\xfe\tb\n")
write("glue_tsv", "mrpc-header-only", selector("mrpc") + mrpc[0])
write("glue_tsv", "stsb-nan-score", selector("stsb") + open(f"{GLUE}/STS-B/train.tsv", "rb").readline()
      + b"main-captions\tMSRvid\t2012test\t0001\tnone\tnan\ta\tb\n")
write("glue_tsv", "empty", b"")
write("glue_tsv", "bom-only", selector("mrpc") + b"\xef\xbb\xbf")

# --- Hub parquet: the schema nyu-mll/glue uses, and a wrong one.
def parquet(table):
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()

pair = pa.table({
    "sentence1": ["The cat sat .", "A dog ran ."],
    "sentence2": ["A cat sat .", "Dogs run ."],
    "label": pa.array([1, -1], pa.int64()),
    "idx": pa.array([0, 1], pa.int32()),
})
write("glue_parquet", "mrpc", selector("mrpc") + parquet(pair))
write("glue_parquet", "stsb", selector("stsb") + parquet(pair.set_column(2, "label", pa.array([4.5, -1.0], pa.float32()))))
write("glue_parquet", "cola", selector("cola") + parquet(pa.table({
    "sentence": ["Good .", "Bad bad ."], "label": pa.array([1, 0], pa.int64()), "idx": pa.array([0, 1], pa.int32())})))
write("glue_parquet", "mrpc-wrong-types", selector("mrpc") + parquet(pair.set_column(2, "label", pa.array(["x", "y"]))))
write("glue_parquet", "mrpc-truncated", selector("mrpc") + parquet(pair)[:200])

# --- config.json
tiny = dict(vocab_size=16, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=16, max_position_embeddings=16, type_vocab_size=2)
write("bert_config", "minilm", open("../shared/models/all-MiniLM-L6-v2/config.json", "rb").read())
write("bert_config", "tiny", json.dumps(tiny).encode())
write("bert_config", "heads-mismatch", json.dumps({**tiny, "num_attention_heads": 3}).encode())
write("bert_config", "huge-vocab", json.dumps({**tiny, "vocab_size": 2**64 - 1}).encode())
write("bert_config", "labels", json.dumps({**tiny, "id2label": {"0": "no", "1": "yes"}, "problem_type": "single_label_classification"}).encode())
write("bert_config", "not-json", b"{\"hidden_size\": ")

# --- tokenizer_config.json (beside a fixed vocab.txt)
write("tokenizer_config", "minilm", open("../shared/models/all-MiniLM-L6-v2/tokenizer_config.json", "rb").read())
write("tokenizer_config", "short", json.dumps({"model_max_length": 8, "do_lower_case": True}).encode())
write("tokenizer_config", "too-short", json.dumps({"model_max_length": 2}).encode())
write("tokenizer_config", "unbounded", json.dumps({"model_max_length": 1e30}).encode())
write("tokenizer_config", "negative", json.dumps({"model_max_length": -5}).encode())
write("tokenizer_config", "special-tokens", json.dumps({"model_max_length": 16, "pad_token": {"content": "[PAD]"}, "unk_token": "[NOPE]"}).encode())

# --- checkpoints in the harness's tiny shape
torch.manual_seed(0)
model = BertForSequenceClassification(BertConfig(**tiny, num_labels=2)).eval()
state = {k: v.contiguous() for k, v in model.state_dict().items()}
good = save_safetensors(state, metadata={"format": "pt"})
write("safetensors", "tiny-bert", good)
bare = {k.removeprefix("bert."): v for k, v in state.items() if k.startswith("bert.")}
write("safetensors", "tiny-bert-bare", save_safetensors(bare, metadata={"format": "pt"}))
write("safetensors", "truncated", good[: len(good) // 2])
(header_len,) = struct.unpack("<Q", good[:8])
# A header length far beyond the file: must be refused without allocating it.
write("safetensors", "huge-header-length", struct.pack("<Q", 2**62) + good[8:])
# A tensor claiming a shape far larger than its data.
header = json.loads(good[8:8 + header_len])
name = next(k for k in header if k != "__metadata__")
header[name]["shape"] = [2**31, 2**31]
text = json.dumps(header).encode()
write("safetensors", "huge-shape", struct.pack("<Q", len(text)) + text + good[8 + header_len:])

buf = io.BytesIO()
torch.save(state, buf)
write("pytorch", "tiny-bert", buf.getvalue())
buf = io.BytesIO()
torch.save(bare, buf)
write("pytorch", "tiny-bert-bare", buf.getvalue())
write("pytorch", "truncated", buf.getvalue()[: len(buf.getvalue()) // 2])


class RunsCode:
    """Unpickling this would call os.system; the reader must refuse it without running it."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/bert-ft-fuzz-pwned",))


buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("archive/data.pkl", pickle.dumps({"bert.pooler.dense.bias": RunsCode()}, protocol=2))
    z.writestr("archive/version", "3\n")
write("pytorch", "runs-code", buf.getvalue())
write("pytorch", "raw-pickle-runs-code", pickle.dumps(RunsCode(), protocol=2))
print("seeds written to", ROOT)
