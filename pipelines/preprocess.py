"""OpenCV line preprocessing: pure functions on NumPy arrays and one config.

The config is stored inside a trained model, so transcription applies exactly the
preprocessing that training used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mdrnn.errors import InputError


@dataclass(frozen=True)
class PreprocessConfig:
    """How a line image becomes the model's input.

    Args:
        height: output height in pixels; the width follows the aspect ratio.
    """

    height: int = 64

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PreprocessConfig:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown preprocessing options: {sorted(unknown)}")
        return cls(**data)


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as a 2-D uint8 grayscale array; InputError names the file."""
    path = Path(path)
    data = np.fromfile(path, dtype=np.uint8) if path.is_file() else None
    if data is None:
        raise InputError(f"{path}: no such file")
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if image is None:
        raise InputError(f"{path}: not a readable image")
    return image


def preprocess_line(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """Turn a grayscale line image (dark ink on light) into the model's input.

    Returns float32 (config.height, W) with paper near 0 and ink near 1.
    """
    h, w = image.shape[:2]
    new_w = max(1, round(w * config.height / h))
    resized = cv2.resize(image, (new_w, config.height), interpolation=cv2.INTER_AREA)
    return 1.0 - resized.astype(np.float32) / 255.0
