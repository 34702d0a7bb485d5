"""Export a recogniser as a TensorFlow SavedModel that needs neither mdrnn nor Keras to run.

`export_model(model, folder)` writes:

- the SavedModel (Keras `ExportArchive`) with one endpoint, `serve`, called as
  ``serve({"image": image, "width": width})``: `image` uint8 (B, H, W, 1), lines as
  `mdrnn preprocess --config preprocess.json` writes them (dark ink on light paper,
  the model's height H), right-padded with anything (paper is best), and `width`
  int32 (B,), each line's own width. It returns ``{"logits": (B, T, K+1) float32,
  "lengths": (B,) int32}``: CTC scores with the blank at class 0, and the number of
  valid frames of each line. The conversion to the network's input (ink intensity,
  mirroring for right-to-left scripts, standardisation) happens inside the graph.
- `preprocess.json`: the model's preprocessing settings, the file that
  `mdrnn preprocess --config` reads, to turn scans of lines into `image`.
- `mdrnn.json`: `charset` (the K symbols; symbol i is class i + 1), `separator`
  (joins decoded symbols), `blank` (0) and `decoding`, so that a server decodes
  without this package: best path = argmax per frame over the first `lengths`
  frames, repeats merged, blanks dropped.

The folder is written beside its final name and renamed into place, so an export
that fails leaves nothing half-written.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from mdrnn.datasets.charset import Charset
from mdrnn.errors import InputError
from mdrnn.models import load_model, metadata, output_lengths, width_multiple
from mdrnn.pipelines.preprocess_config import PreprocessConfig

DECODING = ("CTC best path: for each line, take the argmax class of each of its first "
            "`lengths` frames, merge repeated classes, drop the blank (class 0), and map "
            "class i to charset[i - 1], joined by `separator`.")


def serving_function(model: keras.Model, config: PreprocessConfig):
    """The `serve` endpoint: uint8 normalised lines and widths to logits and lengths."""
    multiple = width_multiple(model)
    signature = {"image": tf.TensorSpec((None, config.height, None, 1), tf.uint8, name="image"),
                 "width": tf.TensorSpec((None,), tf.int32, name="width")}

    @tf.function(input_signature=[signature])
    def serve(inputs):
        image, width = inputs["image"], inputs["width"]
        x = 1.0 - tf.cast(image, tf.float32) / 255.0  # paper 0, ink 1
        columns = tf.range(tf.shape(x)[2])
        valid = tf.cast(columns[None, :] < width[:, None], tf.float32)[:, None, :, None]
        x = x * valid
        if config.right_to_left:
            x = tf.reverse_sequence(x, tf.cast(width, tf.int64), seq_axis=2, batch_axis=0)
        if config.mean_std:
            count = tf.maximum(tf.cast(width * config.height, tf.float32), 1.0)[:, None, None,
                                                                                None]
            mean = tf.reduce_sum(x, axis=[1, 2, 3], keepdims=True) / count
            variance = tf.reduce_sum(tf.square((x - mean) * valid), axis=[1, 2, 3],
                                     keepdims=True) / count
            std = tf.sqrt(variance)
            x = (x - mean) / tf.where(std > 1e-6, std, tf.ones_like(std)) * valid
        pad = (-tf.shape(x)[2]) % multiple
        x = tf.pad(x, [[0, 0], [0, 0], [0, pad], [0, 0]])
        logits = model({"image": x, "width": width}, training=False)
        lengths = tf.cast(output_lengths(model, width), tf.int32)
        return {"logits": tf.cast(logits, tf.float32), "lengths": lengths}

    return serve


def export_model(model_path: str | Path, folder: str | Path) -> Path:
    """Write a recogniser's SavedModel, preprocess.json and mdrnn.json to `folder`.

    Raises:
        InputError: the model cannot be read or lacks its metadata, or `folder` exists
            and is not empty.
    """
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(f"{folder}: exists and is not an empty folder")
    model = load_model(model_path)
    try:
        info = metadata(model)
        charset = Charset.from_config(info.charset)
        config = PreprocessConfig.from_dict(info.preprocessing)
    except (ValueError, TypeError):
        raise InputError(f"{model_path}: not an mdrnn recogniser (no usable metadata)") from None
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", serving_function(model, config))
        archive.write_out(str(work / "model"), verbose=False)
        for item in (work / "model").iterdir():
            item.rename(work / item.name)
        (work / "model").rmdir()
        (work / "preprocess.json").write_text(json.dumps(config.to_dict(), indent=1) + "\n",
                                              encoding="utf-8")
        info_file = {"charset": list(charset.symbols), "separator": charset.separator,
                     "blank": 0, "decoding": DECODING, "input_height": config.height,
                     "width_multiple": width_multiple(model)}
        (work / "mdrnn.json").write_text(json.dumps(info_file, ensure_ascii=False, indent=1)
                                         + "\n", encoding="utf-8")
        if folder.exists():
            folder.rmdir()
        work.rename(folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return folder
