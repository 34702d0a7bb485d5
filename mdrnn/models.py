"""Recognition networks: the Graves 2009 MDLSTM hierarchy, a BLSTM baseline, and specs.

A network is described by a small JSON-able spec, stored in the model file, so a
new hierarchy needs no code:

    {"type": "mdlstm", "levels": [{"block": [4, 3], "units": 2},
                                  {"block": [4, 3], "tanh": 6, "units": 10}, ...],
     "dropout": 0.0}

Each MDLSTM level gathers blocks of its input into channels, optionally applies a
feed-forward tanh layer without bias (and dropout), then an MDLSTM2D with four
directions. A dense layer gives num_classes + 1 logits per position (blank = 0) and
CollapseHeight sums them over the valid rows. Every model takes two inputs: `image`
(B, H, W, 1), padded, and `width` (B,), each line's own width in pixels.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mdrnn.errors import InputError
from mdrnn.layers import (
    MDLSTM2D,
    BlockSubsample2D,
    CollapseHeight,
    ColumnsToSequence,
    MaskedConvBlock2D,
    Metadata,
    WidthMask,
)
from mdrnn.presets import resolve_spec


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"model spec: {what} must be a positive integer, got {value!r}")
    return value


def _dropout(rate) -> float:
    if not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(f"model spec: dropout must be in [0, 1), got {rate!r}")
    return float(rate)


def _mdlstm_body(x, spec: dict):
    levels = spec.get("levels")
    if not isinstance(levels, list) or not levels:
        raise ValueError(f"model spec: 'levels' must be a non-empty list, got {levels!r}")
    dropout = _dropout(spec.get("dropout", 0.0))
    for number, level in enumerate(levels, 1):
        unknown = set(level) - {"block", "tanh", "units"}
        if unknown:
            raise ValueError(f"model spec: level {number} has unknown keys {sorted(unknown)}")
        x = BlockSubsample2D(tuple(level.get("block", (1, 1))), name=f"block{number}")(x)
        if "tanh" in level:
            width = _positive_int(level["tanh"], f"level {number} tanh")
            x = keras.layers.Dense(width, activation="tanh", use_bias=False,
                                   name=f"tanh{number}")(x)
            if dropout:
                x = keras.layers.Dropout(dropout, name=f"dropout{number}")(x)
        units = _positive_int(level.get("units"), f"level {number} units")
        x = MDLSTM2D(units, name=f"mdlstm{number}")(x)
    return x


def _crnn_body(x, spec: dict):
    blocks = spec.get("conv")
    if not isinstance(blocks, list) or not blocks:
        raise ValueError(f"model spec: 'conv' must be a non-empty list of [filters, [ph, pw]], "
                         f"got {blocks!r}")
    for number, block in enumerate(blocks, 1):
        if not isinstance(block, (list, tuple)) or len(block) != 2:
            raise ValueError(f"model spec: conv block {number} must be [filters, [ph, pw]], "
                             f"got {block!r}")
        filters = _positive_int(block[0], f"conv block {number} filters")
        x = MaskedConvBlock2D(filters, tuple(block[1]), name=f"conv{number}")(x)
    return _recurrent(ColumnsToSequence(name="columns")(x), spec)


def _blstm_body(x, spec: dict):
    x = BlockSubsample2D(tuple(spec.get("block", (1, 1))), name="block")(x)
    return _recurrent(ColumnsToSequence(name="columns")(x), spec)


def _recurrent(x, spec: dict):
    dropout = _dropout(spec.get("dropout", 0.0))
    for number in range(1, _positive_int(spec.get("layers", 2), "layers") + 1):
        lstm = keras.layers.LSTM(_positive_int(spec.get("units", 100), "units"),
                                 return_sequences=True)
        x = keras.layers.Bidirectional(lstm, name=f"blstm{number}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout{number}")(x)
    return x


def build_model(spec: dict | str, num_classes: int, height: int | None = None,
                charset: dict | None = None, preprocessing: dict | None = None,
                name: str | None = None) -> keras.Model:
    """Build a recogniser from a spec (or a preset name).

    Args:
        spec: a spec dict (see the module docstring) or a preset name
            (`mdrnn.presets.PRESETS`).
        num_classes: number of characters K; the model outputs K + 1 logits.
        height: input height, if fixed (the BLSTM needs it; MDLSTM works with any).
        charset, preprocessing: JSON-able configs kept in the model file.
        name: model name; defaults to the spec type.

    Returns:
        A functional model {"image": (B, H, W, 1), "width": (B,)} -> logits (B, T, K+1).
    """
    spec = resolve_spec(spec)
    _positive_int(num_classes, "num_classes")
    kind = spec.get("type")
    if kind in ("blstm", "crnn"):
        height = height or spec.get("height")
        spec["height"] = _positive_int(height, "height")
    image = keras.Input((height, None, 1), name="image")
    width = keras.Input((), dtype="int32", name="width")
    x = WidthMask(name="width_mask")([image, width])
    if kind == "mdlstm":
        x = _mdlstm_body(x, spec)
    elif kind == "blstm":
        x = _blstm_body(x, spec)
    elif kind == "crnn":
        x = _crnn_body(x, spec)
    else:
        raise ValueError(f"model spec: type must be 'mdlstm', 'blstm' or 'crnn', got {kind!r}")
    # Logits stay float32 under mixed precision: CTC needs the precision.
    x = keras.layers.Dense(num_classes + 1, dtype="float32", name="logits")(x)
    if kind == "mdlstm":
        x = CollapseHeight(name="collapse")(x)
    x = Metadata(charset=charset, preprocessing=preprocessing, architecture=spec,
                 name="metadata")(x)
    return keras.Model({"image": image, "width": width}, x, name=name or kind)


def graves2009(num_classes: int, **kwargs) -> keras.Model:
    """The hierarchy of Graves & Schmidhuber (2009); 159,369 weights for 120 labels."""
    return build_model("graves2009", num_classes, **kwargs)


def blstm_ctc(num_classes: int, height: int = 64, **kwargs) -> keras.Model:
    """A 1-D baseline after Liwicki et al. (2007): columns into stacked BLSTMs."""
    return build_model("blstm_ctc", num_classes, height=height, **kwargs)


def output_lengths(model: keras.Model, widths):
    """CTC frames per sample for input widths, chained from each layer's own arithmetic.

    Works on Python ints, NumPy arrays and integer tensors alike.
    """
    lengths = np.asarray(widths) if isinstance(widths, (list, tuple)) else widths
    for layer in model.layers:
        if hasattr(layer, "output_width"):
            lengths = layer.output_width(lengths)
    return lengths


def padded_forward(model: keras.Model, *, xla: bool = False, rows: int | None = None,
                   height: int | None = None):
    """The model's forward pass, compiled once, for padded batches of lines.

    The one forward pass of training-time validation and of transcription.

    Args:
        model: a recogniser.
        xla: compile with XLA (which then compiles once per batch shape).
        rows: top smaller batches up with empty lines (width 0) to this many rows,
            so that XLA compiles one shape per width rather than one per batch size.
        height: the fixed line height, if any.

    Returns:
        ``run(images (B, H, W, 1) float32, widths (B,) int) -> (logits (B, T, K+1),
        output lengths (B,))`` as NumPy arrays.
    """
    signature = [tf.TensorSpec((None, height, None, 1), tf.float32),
                 tf.TensorSpec((None,), tf.int32)]

    @tf.function(jit_compile=xla, input_signature=signature)
    def forward(image, width):
        return model({"image": image, "width": width}, training=False)

    def run(images, widths):
        images = tf.convert_to_tensor(images, tf.float32)
        widths = np.asarray(widths, np.int32)
        size = len(widths)
        missing = max(0, (rows or size) - size)
        if missing:
            images = tf.pad(images, [[0, missing], [0, 0], [0, 0], [0, 0]])
        logits = forward(images, tf.constant(np.pad(widths, [0, missing])))
        return logits.numpy()[:size], np.asarray(output_lengths(model, widths))

    return run


def metadata(model: keras.Model) -> Metadata:
    """The Metadata layer of a recogniser (charset, preprocessing, architecture)."""
    return model.get_layer("metadata")


def width_multiple(model: keras.Model) -> int:
    """The product of the model's block (and pooling) widths: padding widths to a
    multiple of it leaves no partial block at any level."""
    multiple = 1
    for layer in model.layers:
        if isinstance(layer, BlockSubsample2D):
            multiple *= layer.block[1]
        elif isinstance(layer, MaskedConvBlock2D):
            multiple *= layer.pool[1]
    return multiple


def load_model(path: str | Path) -> keras.Model:
    """Load a recogniser from a `.keras` file in Keras safe mode.

    Raises:
        InputError: naming the file, when it is missing or not a loadable Keras model.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path}: not a .keras model (not a zip archive, or a truncated one)")
    try:
        with warnings.catch_warnings():  # Keras warns of odd archive members; we refuse or load
            warnings.simplefilter("ignore")
            return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for a file that is not a model
        reason = " ".join(str(error).split()) or type(error).__name__
        if len(reason) > 400:  # whole sentences, never a cut one
            reason = reason[:400].rsplit(". ", 1)[0] + ". [...]"
        raise InputError(f"{path}: not a loadable .keras model ({reason})") from None


def transfer_weights(source: keras.Model, target: keras.Model) -> None:
    """Copy a trained model's weights into a model of the same layers (fine-tuning).

    Weights are matched by layer name and order. Where the target's weight is larger
    in its last dimension only (the logits of a charset with symbols appended), the
    source's values fill the leading part and the rest keeps its fresh initialisation.

    Raises:
        ValueError: a layer or weight the two models do not share.
    """
    for layer in target.layers:
        targets = layer.weights
        if not targets:
            continue
        try:
            sources = source.get_layer(layer.name).weights
        except ValueError:
            raise ValueError(f"the trained model has no layer {layer.name!r}") from None
        if len(sources) != len(targets):
            raise ValueError(f"layer {layer.name!r}: {len(sources)} weights in the trained "
                             f"model, {len(targets)} here")
        for old, new in zip(sources, targets):
            value, fresh = keras.ops.convert_to_numpy(old), keras.ops.convert_to_numpy(new)
            if value.shape != fresh.shape:
                if value.shape[:-1] != fresh.shape[:-1] or value.shape[-1] > fresh.shape[-1]:
                    raise ValueError(f"layer {layer.name!r}: weight {old.path} has shape "
                                     f"{value.shape} in the trained model, {fresh.shape} here")
                fresh[..., :value.shape[-1]] = value
                value = fresh
            new.assign(value)
