"""Reads the TensorBoard event files that ft-trainer's `TensorBoardCallback` (or transformers')
wrote under a directory, with TensorBoard's own `EventAccumulator`, and prints what
TensorBoard would show as JSON:

    {"scalars": {tag: [[step, value], ...]}, "texts": {tag: "..."}}

Every `events.out.tfevents.*` file under LOGDIR (a run directory, or `output_dir/runs` for
all runs together) is read, oldest first; a tag's scalars from several files are merged in
step order. A text logged at several steps shows the one at the highest step.

Usage: python read_tensorboard.py LOGDIR
Exits non-zero with a message if LOGDIR holds no event file.
"""

import json
import sys
from pathlib import Path

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

# 0 keeps every event; the defaults sample scalars down to 10,000 and tensors to 10.
KEEP_ALL = {event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0}


def event_files(logdir):
    """Event files under `logdir`, in creation order within each run directory: their names
    start with the Unix time, zero-padded."""
    return sorted(path for path in Path(logdir).rglob("events.out.tfevents.*") if path.is_file())


def load(path):
    """One event file, read whole."""
    accumulator = event_accumulator.EventAccumulator(str(path), size_guidance=KEEP_ALL)
    accumulator.Reload()
    return accumulator


def text_of(tensor_event):
    """The string in a text-plugin tensor (torch's `add_text` writes one element)."""
    array = tensor_util.make_ndarray(tensor_event.tensor_proto)
    return "\n".join(item.decode("utf-8") for item in array.flat)


def read(logdir):
    """`{"scalars": ..., "texts": ...}` for every event file under `logdir`."""
    scalars, texts = {}, {}
    for path in event_files(logdir):
        accumulator = load(path)
        tags = accumulator.Tags()
        for tag in tags[event_accumulator.SCALARS]:
            points = [[event.step, event.value] for event in accumulator.Scalars(tag)]
            scalars.setdefault(tag, []).extend(points)
        for tag in tags[event_accumulator.TENSORS]:
            plugin = accumulator.SummaryMetadata(tag).plugin_data.plugin_name
            if plugin != "text":
                continue
            for event in sorted(accumulator.Tensors(tag), key=lambda event: event.step):
                texts[tag] = text_of(event)
    for points in scalars.values():
        points.sort(key=lambda point: point[0])
    return {"scalars": scalars, "texts": texts}


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} LOGDIR")
    logdir = sys.argv[1]
    if not event_files(logdir):
        sys.exit(f"no TensorBoard event file (events.out.tfevents.*) under {logdir}")
    print(json.dumps(read(logdir), sort_keys=True))


if __name__ == "__main__":
    main()
