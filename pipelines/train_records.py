"""What a training run writes beside its model and checkpoint, after each epoch:
`log.csv`, `curves.png` (with the plot extra) and TensorBoard events (scalars, and
with the plot extra the `mdrnn show` pictures of a few validation lines)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from mdrnn.errors import InputError
from mdrnn.pipelines.atomic import atomic_path, atomic_write

LOG_FIELDS = ["epoch", "learning_rate", "loss", "val_cer", "val_wer", "val_line_accuracy",
              "lines_per_s", "seconds"]
PICTURE_LINES = 3


def _write_log(path: Path, history: list[dict]) -> None:
    """Rewrite the CSV log from the checkpoint's history, so the two always agree."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, LOG_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)


def _write_curves(out: Path, history: list[dict]) -> None:
    """OUT/curves.png (`mdrnn plot`), when matplotlib (the plot extra) is installed."""
    from mdrnn.pipelines.pictures import curves

    try:
        picture = curves(history, out.name)
    except InputError:  # no matplotlib: no picture
        return
    atomic_write(out / "curves.png", picture)


def _write_scalars(writer, epoch: int, row: dict) -> None:
    # tf.summary.scalar needs the tensorboard package; these events are what it writes.
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    with writer.as_default(step=epoch):
        for key in ("learning_rate", "loss", "val_cer", "val_wer", "lines_per_s"):
            tf.summary.write(key, tf.constant(row[key], tf.float32),
                             metadata=metadata.SerializeToString())


def _write_pictures(writer, epoch: int, model, samples) -> None:
    """The `mdrnn show` pictures of the first validation lines (greedy), as TensorBoard
    images, when matplotlib is installed."""
    import cv2

    from mdrnn.pipelines.explain import explain
    from mdrnn.pipelines.pictures import pyplot, render
    from mdrnn.pipelines.recognizer import Recognizer

    try:
        pyplot()
    except InputError:  # no matplotlib: no pictures
        return
    recognizer = Recognizer(model, batch_size=1)
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="images"))
    with writer.as_default(step=epoch):
        for number, sample in enumerate(samples[:PICTURE_LINES], 1):
            try:
                picture = render(explain(recognizer, sample.load()), str(sample.id))
            except (InputError, OSError, ValueError, cv2.error):
                continue  # an unreadable line: counted where the data is read
            height, width = cv2.imdecode(np.frombuffer(picture, np.uint8), 0).shape
            # What tf.summary.image writes: width, height, then the encoded images.
            tf.summary.write(f"validation line {number}",
                             tf.constant([str(width), str(height), picture]),
                             metadata=metadata.SerializeToString())


def write_records(out: Path, writer, history: list[dict], model, val_samples) -> None:
    """Rewrite log.csv and curves.png from the history; add the last epoch's events."""
    row = history[-1]
    _write_log(out / "log.csv", history)
    _write_curves(out, history)
    _write_scalars(writer, row["epoch"], row)
    _write_pictures(writer, row["epoch"], model, val_samples)
    writer.flush()
