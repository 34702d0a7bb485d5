"""A tiny untrained recogniser and line images for the transcription and evaluation tests."""

from pathlib import Path

import cv2
import keras
import numpy as np

from mdrnn.datasets.charset import Charset
from mdrnn.models import build_model
from mdrnn.pipelines.preprocess_config import PreprocessConfig

TINY_SPEC = {"type": "mdlstm", "levels": [{"block": [4, 4], "units": 2}]}


def tiny_model(charset: Charset) -> keras.Model:
    """An untrained one-level MDLSTM whose outputs vary with the image.

    Keras' default initialisation makes an untrained model emit nearly the same
    text for every image; normal weights of scale 2 (from a fixed seed) make the
    texts differ, so that tests comparing texts can fail.
    """
    model = build_model(TINY_SPEC, len(charset.symbols), charset=charset.to_config(),
                        preprocessing=PreprocessConfig(height=16).to_dict())
    rng = np.random.default_rng(1)
    for weight in model.weights:
        weight.assign(rng.normal(0.0, 2.0, weight.shape).astype("float32"))
    return model


def line_images(count: int, seed: int = 0) -> list[np.ndarray]:
    """Gray line images of different widths: random strokes, dark on light."""
    rng = np.random.default_rng(seed)
    images = []
    for width in rng.integers(30, 160, count):
        image = np.full((20, int(width)), 255, np.uint8)
        for _ in range(int(width) // 10):
            x0, x1 = rng.integers(0, width, 2)
            y0, y1 = rng.integers(0, 20, 2)
            cv2.line(image, (int(x0), int(y0)), (int(x1), int(y1)), 0, 2)
        images.append(image)
    return images


def write_line_folder(folder: Path, texts: list[str], seed: int) -> Path:
    """A folder of `line_images` as l0.png, l1.png, ... with `texts` in .gt.txt files."""
    folder.mkdir()
    for i, (image, text) in enumerate(zip(line_images(len(texts), seed=seed), texts)):
        cv2.imwrite(str(folder / f"l{i}.png"), image)
        (folder / f"l{i}.gt.txt").write_text(text + "\n", encoding="utf-8")
    return folder
