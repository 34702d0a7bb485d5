"""Training augmentation of line images: a random affine warp, blur, contrast and noise.

`Augmentation.draw` picks one `Warp` per line from a seeded generator, so an epoch's
distortions are part of its plan (`mdrnn.datasets.line_dataset.LineDataset.plan`) and a
resumed run redraws exactly the same; `Augmentation.apply` carries a warp out.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

NOISE_BANK_SIZE = 1 << 22


@dataclass(frozen=True, eq=False)
class Warp:
    """One sample's drawn augmentation: an affine map and photometric changes."""

    matrix: np.ndarray  # (2, 3) source -> destination pixel coordinates
    width: int          # output width; the height does not change
    contrast: float
    blur_sigma: float   # 0: no blur
    noise: float        # std of Gaussian pixel noise
    seed: int           # for the noise


@functools.cache
def _noise_bank() -> np.ndarray:
    return np.random.default_rng(0).standard_normal(NOISE_BANK_SIZE, dtype=np.float32)


def _gaussian_noise(shape: tuple[int, int], seed: int) -> np.ndarray:
    # Drawing fresh normals took most of the augmentation time (0.3 ms per 64x400
    # line); a window at a random offset of one fixed bank is as good for
    # augmentation and 20x cheaper.
    size = shape[0] * shape[1]
    if size > NOISE_BANK_SIZE // 2:
        return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    start = seed % (NOISE_BANK_SIZE - size)
    return _noise_bank()[start:start + size].reshape(shape)


@dataclass(frozen=True)
class Augmentation:
    """Random training distortions of a preprocessed line (paper 0, ink 1).

    Args:
        shear: largest horizontal shear (x shift per row, over the height).
        rotation: largest rotation in degrees; reduced for long lines so that
            neither end moves by more than 10% of the height.
        scale_x: range of horizontal scale factors.
        scale_y: range of vertical scale factors (at most 1, so no ink is cut).
        contrast: range of factors on ink intensity.
        blur: probability of a Gaussian blur with sigma in `blur_sigma`.
        blur_sigma: range of blur sigmas in pixels.
        noise: largest std of added Gaussian noise.
    """

    shear: float = 0.3
    rotation: float = 1.0
    scale_x: tuple[float, float] = (0.85, 1.15)
    scale_y: tuple[float, float] = (0.85, 1.0)
    contrast: tuple[float, float] = (0.7, 1.1)
    blur: float = 0.3
    blur_sigma: tuple[float, float] = (0.3, 1.0)
    noise: float = 0.05

    def __post_init__(self):
        if not (0 < self.scale_x[0] <= self.scale_x[1] and 0 < self.scale_y[0]
                <= self.scale_y[1] <= 1 and self.shear >= 0 and self.rotation >= 0
                and 0 <= self.blur <= 1 and self.noise >= 0):
            raise ValueError(f"invalid augmentation ranges: {self}")

    def draw(self, rng: np.random.Generator, height: int, width: int, *, min_width: int = 1,
             max_width: int | None = None) -> Warp:
        """Draw one sample's distortion; its output width lies in [min_width, max_width].

        Args:
            rng: source of the random choices.
            height, width: size of the preprocessed line.
            min_width: narrowest allowed output (so the CTC output stays long enough).
            max_width: widest allowed output (the largest bucket).
        """
        max_width = max_width or 10 * width
        shear = rng.uniform(-self.shear, self.shear)
        limit = math.degrees(math.atan(0.1 * height / max(width / 2, 1)))
        angle = math.radians(rng.uniform(-1, 1) * min(self.rotation, limit))
        sx, sy = rng.uniform(*self.scale_x), rng.uniform(*self.scale_y)
        contrast = rng.uniform(*self.contrast)
        blur_sigma = rng.uniform(*self.blur_sigma) if rng.random() < self.blur else 0.0
        noise, seed = rng.uniform(0, self.noise), int(rng.integers(2**31))
        extra = height * (abs(shear) + abs(math.sin(angle)))
        sx = min(max(sx, min_width / width), (max_width - extra - 1) / width)
        if sx * width < min_width:
            shear, angle, sx, extra = 0.0, 0.0, 1.0, 0.0  # no room: geometry unchanged
        cos, sin = math.cos(angle), math.sin(angle)
        # About the centre: scale, then shear x by y, then rotate.
        linear = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1, shear], [0, 1]]) \
            @ np.diag([sx, sy])
        corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], float) \
            - [width / 2, height / 2]
        xs = corners @ linear[0]
        out_width = min(max(math.ceil(xs.max() - xs.min()), min_width), max_width)
        offset = np.array([out_width / 2, height / 2]) - linear @ [width / 2, height / 2]
        return Warp(np.hstack([linear, offset[:, None]]), out_width, contrast, blur_sigma,
                    noise, seed)

    @staticmethod
    def apply(image: np.ndarray, warp: Warp) -> np.ndarray:
        """Distort a float32 (H, W) line as `warp` says; returns (H, warp.width) float32."""
        out = cv2.warpAffine(image, warp.matrix, (warp.width, image.shape[0]),
                             flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=0.0)
        if warp.blur_sigma > 0:
            out = cv2.GaussianBlur(out, (0, 0), warp.blur_sigma)
        out *= warp.contrast
        if warp.noise > 0:
            out += _gaussian_noise(out.shape, warp.seed) * np.float32(warp.noise)
        return out


DEFAULT_AUGMENTATION = Augmentation()
