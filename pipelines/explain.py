"""What a recogniser reads in one line and where: the numbers behind `mdrnn show`.

For a line image: the line as the network saw it (preprocessed), the text the
decoder read, the columns of the line each character was read from (its frames on
the best alignment of the text, `mdrnn.alignment`, times the network's width
reduction), each character's confidence, the CTC output probabilities per frame,
and optionally the hidden activations of the first MDLSTM level in each scan
direction.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import keras
import numpy as np

from mdrnn.decoding import log_probabilities
from mdrnn.layers import MDLSTM2D
from mdrnn.pipelines.recognizer import LineResult, Recognizer


@dataclass
class Explanation:
    """One line read by a recogniser.

    Args:
        line: the preprocessed line (height, W), paper 0, ink 1.
        result: the text and confidences (`LineResult`).
        spans: per symbol of `result.symbols`, the columns [x0, x1) of `line` its
            frames cover (`LineResult.char_columns`, within the line).
        frame_width: columns of `line` per output frame.
        blank: (T,) the blank's probability per frame.
        best: (T,) the probability of the likeliest symbol other than the blank.
        activations: None, or {direction: (h, w) mean absolute hidden activation of
            the first MDLSTM level in that scan direction}.
        image: the line image as given (gray).
        image_spans: `spans` mapped back onto `image` (None where preprocessing does
            not keep columns: deskew, slant).
    """

    line: np.ndarray
    result: LineResult
    spans: list[tuple[int, int]]
    frame_width: int
    blank: np.ndarray
    best: np.ndarray
    activations: dict[str, np.ndarray] | None = None
    image: np.ndarray | None = None
    image_spans: list[tuple[int, int]] | None = None


@functools.lru_cache(maxsize=4)
def first_mdlstm(model: keras.Model) -> tuple[keras.Model, MDLSTM2D]:
    """A model from the recogniser's inputs to its first MDLSTM2D level (built once per
    model, not once per line)."""
    layer = next((x for x in model.layers if isinstance(x, MDLSTM2D)), None)
    if layer is None:
        raise ValueError("the model has no MDLSTM2D layer")
    return keras.Model(model.inputs, layer.output), layer


def first_mdlstm_activations(model: keras.Model, line: np.ndarray) -> dict[str, np.ndarray]:
    """The first MDLSTM2D level's hidden activations for `line`, per scan direction:
    the mean over its units of |h|, (h, w) at that level's resolution."""
    probe, layer = first_mdlstm(model)
    inputs = {"image": line[None, :, :, None].astype("float32"),
              "width": np.array([line.shape[1]], "int32")}
    hidden = np.asarray(probe(inputs))[0]
    units = layer.units
    return {direction: np.abs(hidden[:, :, i * units:(i + 1) * units]).mean(axis=-1)
            for i, direction in enumerate(layer.directions)}


def explain(recognizer: Recognizer, image: np.ndarray, *,
            activations: bool = False) -> Explanation:
    """Read one line image with `recognizer` and say where each character was read."""
    line, columns = recognizer.prepare(image, columns=True)
    if not (line.size and np.ptp(line) > 0):
        (result,) = recognizer.recognize_prepared([line])  # a blank line: nothing read
        frames = max(1, -(-line.shape[1] // recognizer.width_multiple))
        return Explanation(line, result, [], recognizer.width_multiple,
                           np.ones(frames), np.zeros(frames), image=image, image_spans=[])
    logits, lengths = recognizer.forward([line])
    (result,) = recognizer.decode(logits, lengths)
    width = line.shape[1]
    spans = [(min(x0, width), min(x1, width)) for x0, x1 in result.char_columns]
    log_probs, lengths = log_probabilities(logits, lengths)
    probs = np.exp(log_probs[0, :int(lengths[0])])
    return Explanation(
        line, result, spans, recognizer.width_multiple, probs[:, 0], probs[:, 1:].max(axis=1),
        first_mdlstm_activations(recognizer.model, line) if activations else None,
        image, None if columns is None else [columns.to_image(*span) for span in spans])
