"""The preprocessing config: how a line image becomes the model's input.

It is stored inside a trained model, so transcription applies exactly the
preprocessing that training used (`mdrnn.pipelines.preprocess` applies it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

POLARITIES = ("auto", "keep", "invert")
BINARISERS = ("none", "otsu", "sauvola")


@dataclass(frozen=True)
class PreprocessConfig:
    """How a line image becomes the model's input; every step can be switched off.

    The defaults suit line images that are already cut out and upright, and stay
    cheap: grayscale, polarity, contrast stretch, crop and scale.

    Args:
        height: output height in pixels; the width follows the aspect ratio.
        polarity: "auto" detects light ink on dark paper and inverts it, "keep"
            takes the image as dark on light, "invert" always inverts.
        contrast: stretch gray levels so that the `contrast_low` percentile
            becomes black and the `contrast_high` percentile white.
        contrast_low: percentile (0-100) mapped to black.
        contrast_high: percentile (0-100) mapped to white.
        median: median filter size (odd, >= 3), or 0 for none.
        binarise: "none", "otsu" (one global threshold) or "sauvola" (local
            thresholds, for uneven backgrounds).
        sauvola_window: Sauvola window size in pixels (odd, >= 3).
        sauvola_k: Sauvola k: larger keeps less faint ink.
        min_component: ink components smaller than this many pixels are removed
            (specks), or 0 for none.
        deskew: estimate the text angle (up to 15 degrees) and rotate it level.
        slant: estimate the slant of vertical strokes (up to 45 degrees) and
            shear them upright.
        crop: crop to the ink, with `crop_margin` times the ink height of paper
            on every side.
        crop_margin: margin as a fraction of the ink height.
        mean_std: standardise the float output to zero mean and unit variance.
        right_to_left: mirror the line, for scripts written right to left, so
            that the first frames see the first symbols of the (logical-order)
            text; stored with the model, so transcription mirrors alike.
    """

    height: int = 64
    polarity: str = "auto"
    contrast: bool = True
    contrast_low: float = 1.0
    contrast_high: float = 99.0
    median: int = 0
    binarise: str = "none"
    sauvola_window: int = 31
    sauvola_k: float = 0.2
    min_component: int = 0
    deskew: bool = False
    slant: bool = False
    crop: bool = True
    crop_margin: float = 0.05
    mean_std: bool = False
    right_to_left: bool = False

    def __post_init__(self):
        def check(ok: bool, name: str, must: str):
            if not ok:
                raise ValueError(f"{name} must be {must}, got {getattr(self, name)!r}")

        for name in ("contrast", "deskew", "slant", "crop", "mean_std", "right_to_left"):
            check(isinstance(getattr(self, name), bool), name, "true or false")
        for name in ("height", "median", "sauvola_window", "min_component"):
            value = getattr(self, name)
            check(isinstance(value, int) and not isinstance(value, bool), name, "an integer")
        for name in ("contrast_low", "contrast_high", "sauvola_k", "crop_margin"):
            value = getattr(self, name)
            check(isinstance(value, (int, float)) and not isinstance(value, bool), name,
                  "a number")
        check(8 <= self.height <= 1024, "height", "between 8 and 1024")
        check(self.polarity in POLARITIES, "polarity", f"one of {POLARITIES}")
        check(0 <= self.contrast_low < self.contrast_high <= 100, "contrast_low",
              "in [0, contrast_high) with contrast_high <= 100")
        check(self.median == 0 or (self.median >= 3 and self.median % 2 == 1), "median",
              "0 or an odd number >= 3")
        check(self.binarise in BINARISERS, "binarise", f"one of {BINARISERS}")
        check(self.sauvola_window >= 3 and self.sauvola_window % 2 == 1, "sauvola_window",
              "an odd number >= 3")
        check(0 < self.sauvola_k < 1, "sauvola_k", "in (0, 1)")
        check(self.min_component >= 0, "min_component", ">= 0")
        check(0 <= self.crop_margin <= 1, "crop_margin", "in [0, 1]")

    def to_dict(self) -> dict:
        """The config as a dict of JSON values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PreprocessConfig:
        """The config from `to_dict()` output; missing keys take their defaults.

        Raises:
            ValueError: unknown keys or invalid values, quoted.
        """
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown preprocessing options: {sorted(unknown)}")
        return cls(**data)
