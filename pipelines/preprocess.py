"""OpenCV line preprocessing: pure functions on NumPy arrays.

`normalise_line`, given a `PreprocessConfig` (`mdrnn.pipelines.preprocess_config`),
runs the enabled steps in this order on a uint8 grayscale image that stays dark
ink on light paper throughout:

    grayscale -> polarity -> contrast stretch -> median -> binarise ->
    remove specks -> deskew -> slant correction -> crop to ink -> scale to height

and `preprocess_line` turns the result into the model's float input (paper 0,
ink 1), optionally standardised to zero mean and unit variance per line.

Padding: batches are padded with 0, which is paper as long as `mean_std` is off
(the default). With `mean_std` on, 0 is the line's mean level instead; the MDLSTM
models mask padded positions, so they see no difference, but a model without a
mask would see padding as grey.
"""

from __future__ import annotations

import cv2
import numpy as np

from mdrnn.datasets.imageio import to_gray
from mdrnn.pipelines.geometry import ColumnMap, estimate_skew, estimate_slant, rotate, shear
from mdrnn.pipelines.preprocess_config import PreprocessConfig

__all__ = [
    "is_inverted", "fix_polarity",
    "stretch_contrast", "ink_mask", "binarise_otsu", "binarise_sauvola", "median_filter",
    "remove_specks", "deskew", "deslant", "crop_to_ink", "scale_to_height", "ink_intensity",
    "standardise", "normalise_line", "preprocess_line",
]

MIN_CONTRAST = 40
"""Grey levels between the 0.1st and 99.9th percentile below which an image holds no ink."""

MAX_ASPECT = 200.0
"""Widest line accepted, as width / height; flatter images are padded above and below."""

MAX_LINE_SKEW = 15.0
"""Largest text angle, in degrees, that the deskew step searches for."""

MAX_LINE_SLANT = 45.0
"""Largest stroke slant from the vertical, in degrees, that slant correction searches for."""

def _percentiles(gray: np.ndarray, *qs: float) -> list[int]:
    """Gray levels at the given percentiles (0-100) of a uint8 image, from its histogram."""
    cdf = np.cumsum(cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel())
    return [int(np.searchsorted(cdf, q / 100.0 * (cdf[-1] - 1) + 1)) for q in qs]


def _has_contrast(gray: np.ndarray) -> bool:
    if gray.size == 0:
        return False
    low, high = _percentiles(gray, 0.1, 99.9)
    return high - low >= MIN_CONTRAST


def is_inverted(gray: np.ndarray) -> bool:
    """Whether a uint8 image shows light ink on dark paper.

    Paper covers most of a text image, so the median level is paper's: the image
    is inverted when the median is darker than the middle of its range.
    """
    if not _has_contrast(gray):
        return False
    low, median, high = _percentiles(gray, 0.1, 50, 99.9)
    return median < (low + high) / 2


def fix_polarity(gray: np.ndarray, mode: str = "auto") -> np.ndarray:
    """Return the image as dark ink on light paper.

    Args:
        gray: uint8 image.
        mode: "auto" inverts when `is_inverted`, "keep" never, "invert" always.
    """
    if mode == "invert" or (mode == "auto" and is_inverted(gray)):
        return cv2.bitwise_not(gray)
    return gray


def stretch_contrast(gray: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Map the `low` percentile to 0 and the `high` percentile to 255, linearly.

    An image with less than MIN_CONTRAST grey levels of range (blank paper, noise)
    is returned unchanged rather than having its noise stretched into ink. When the
    two percentiles are closer than that (ink on less than `low` percent of the
    pixels), the 0.1st and 99.9th percentiles are used instead.
    """
    if not _has_contrast(gray):
        return gray
    lo, hi = _percentiles(gray, low, high)
    if hi - lo < MIN_CONTRAST:
        lo, hi = _percentiles(gray, 0.1, 99.9)
    scale = 255.0 / (hi - lo)
    lut = np.clip((np.arange(256) - lo) * scale, 0, 255).round().astype(np.uint8)
    return cv2.LUT(gray, lut)


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Boolean mask of the ink of a dark-on-light uint8 image (Otsu threshold).

    An image without contrast (see MIN_CONTRAST) has no ink.
    """
    if not _has_contrast(gray):
        return np.zeros(gray.shape, bool)
    threshold, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return gray <= threshold


def binarise_otsu(gray: np.ndarray) -> np.ndarray:
    """Binarise with one global Otsu threshold: ink 0, paper 255 (uint8)."""
    return np.where(ink_mask(gray), 0, 255).astype(np.uint8)


def binarise_sauvola(gray: np.ndarray, window: int = 31, k: float = 0.2) -> np.ndarray:
    """Binarise with Sauvola's local threshold: ink 0, paper 255 (uint8).

    The threshold at each pixel is m * (1 + k * (s / 128 - 1)) for the mean m and
    standard deviation s in a window around it, so it follows uneven backgrounds.

    Args:
        gray: uint8 image, dark ink on light paper.
        window: odd window size in pixels, about twice the stroke height of a letter.
        k: sensitivity; larger keeps less faint ink.
    """
    size = (window, window)
    mean = cv2.boxFilter(gray, cv2.CV_32F, size, borderType=cv2.BORDER_REFLECT)
    variance = cv2.sqrBoxFilter(gray, cv2.CV_32F, size, borderType=cv2.BORDER_REFLECT)
    # OpenCV's element-wise arithmetic is several times faster than NumPy's here.
    variance = cv2.max(cv2.subtract(variance, cv2.multiply(mean, mean)), 0.0)
    threshold = cv2.multiply(mean, cv2.sqrt(variance), scale=k / 128.0)
    threshold = cv2.addWeighted(mean, 1.0 - k, threshold, 1.0, 0.0)
    return cv2.compare(gray.astype(np.float32), threshold, cv2.CMP_GE)


def median_filter(gray: np.ndarray, size: int = 3) -> np.ndarray:
    """Median filter with an odd `size` x `size` window (salt-and-pepper noise)."""
    return cv2.medianBlur(gray, size)


def remove_specks(gray: np.ndarray, min_area: int) -> np.ndarray:
    """Paint ink components of fewer than `min_area` pixels (8-connected) as paper."""
    ink = ink_mask(gray)
    if not ink.any():
        return gray
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink.view(np.uint8), connectivity=8)
    small = stats[:, cv2.CC_STAT_AREA] < min_area
    small[0] = False  # label 0 is the background
    if not small.any():
        return gray
    out = gray.copy()
    out[small[labels]] = 255
    return out


def deskew(gray: np.ndarray, max_angle: float = MAX_LINE_SKEW) -> np.ndarray:
    """Rotate the text of a dark-on-light uint8 image level (see `estimate_skew`)."""
    angle = estimate_skew(ink_mask(gray), max_angle)
    return rotate(gray, -angle)[0] if abs(angle) >= 0.05 else gray


def deslant(gray: np.ndarray, max_angle: float = MAX_LINE_SLANT) -> np.ndarray:
    """Shear the strokes of a dark-on-light uint8 image upright (see `estimate_slant`)."""
    angle = estimate_slant(ink_mask(gray), max_angle)
    return shear(gray, -angle) if abs(angle) >= 0.25 else gray


def _ink_box(gray: np.ndarray, margin: float) -> tuple[int, int, int, int] | None:
    """The rows [y0, y1) and columns [x0, x1) of the ink with `margin` times its height
    around it (possibly beyond the image), or None without ink."""
    ink = ink_mask(gray)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return None
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    m = int(round(margin * (y1 - y0)))
    return int(y0 - m), int(y1 + m), int(x0 - m), int(x1 + m)


def crop_to_ink(gray: np.ndarray, margin: float = 0.05) -> np.ndarray:
    """Crop a dark-on-light uint8 image to its ink, keeping a margin of paper.

    Args:
        gray: uint8 image.
        margin: paper kept on every side, as a fraction of the ink height (padded
            with white where the image ends).

    Returns:
        The crop; the image itself when it has no ink.
    """
    return _crop(gray, _ink_box(gray, margin))


def _crop(gray: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    if box is None:
        return gray
    y0, y1, x0, x1 = box
    h, w = gray.shape
    crop = gray[max(0, y0):y1, max(0, x0):x1]
    return cv2.copyMakeBorder(crop, max(0, -y0), max(0, y1 - h), max(0, -x0),
                              max(0, x1 - w), cv2.BORDER_CONSTANT, value=255)


def scale_to_height(gray: np.ndarray, height: int) -> np.ndarray:
    """Scale an image to `height` rows keeping its aspect ratio.

    Images wider than MAX_ASPECT times their height are first padded with paper
    above and below, which bounds the output width at MAX_ASPECT * height.
    """
    h, w = gray.shape
    if w > MAX_ASPECT * h:
        extra = int(np.ceil(w / MAX_ASPECT)) - h
        gray = cv2.copyMakeBorder(gray, extra // 2, extra - extra // 2, 0, 0,
                                  cv2.BORDER_CONSTANT, value=255)
        h = gray.shape[0]
    new_w = max(1, int(round(w * height / h)))
    interpolation = cv2.INTER_AREA if height < h else cv2.INTER_LINEAR
    return cv2.resize(gray, (new_w, height), interpolation=interpolation)


def ink_intensity(gray: np.ndarray) -> np.ndarray:
    """float32 image with paper 0 and ink 1 from a dark-on-light uint8 image."""
    return 1.0 - gray.astype(np.float32) * np.float32(1.0 / 255.0)


def standardise(image: np.ndarray) -> np.ndarray:
    """Zero mean and unit variance over the image (float32); a flat image becomes 0."""
    mean, std = float(image.mean()), float(image.std())
    return ((image - mean) / (std if std > 1e-6 else 1.0)).astype(np.float32)


def _normalise(image: np.ndarray, config: PreprocessConfig) -> tuple[np.ndarray, ColumnMap | None]:
    if image.size == 0:
        raise ValueError(f"empty image of shape {image.shape}")
    gray = fix_polarity(to_gray(image), config.polarity)
    if config.contrast:
        gray = stretch_contrast(gray, config.contrast_low, config.contrast_high)
    if config.median:
        gray = median_filter(gray, config.median)
    if config.binarise == "otsu":
        gray = binarise_otsu(gray)
    elif config.binarise == "sauvola":
        gray = binarise_sauvola(gray, config.sauvola_window, config.sauvola_k)
    if config.min_component:
        gray = remove_specks(gray, config.min_component)
    if config.deskew:
        gray = deskew(gray)
    if config.slant:
        gray = deslant(gray)
    offset = 0
    if config.crop:
        box = _ink_box(gray, config.crop_margin)
        gray, offset = _crop(gray, box), box[2] if box is not None else 0
    out = scale_to_height(gray, config.height)
    # Deskewing and deslanting move columns by row: no single map is kept then.
    columns = None if config.deskew or config.slant else ColumnMap(
        offset, gray.shape[1] / out.shape[1], out.shape[1], image.shape[1],
        config.right_to_left)
    return out, columns


def normalise_line(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """Run the enabled image steps: uint8 (config.height, W), dark ink on light paper.

    Args:
        image: a line image (gray, BGR or BGRA; bool, uint8 or uint16).
        config: which steps to run, and their settings.
    """
    return _normalise(image, config)[0]


def preprocess_line(image: np.ndarray, config: PreprocessConfig, *, columns: bool = False):
    """Turn a line image into the model's input.

    Args:
        image: a line image, usually 2-D uint8 grayscale (any polarity with the
            default config; see `to_gray` for the other accepted arrays).
        config: the preprocessing stored with the model.
        columns: also return the line's `ColumnMap` onto the image (None where
            deskewing or deslanting moved columns).

    Returns:
        float32 (config.height, W): paper near 0 and ink near 1, or standardised
        when `config.mean_std`; with `columns`, (that line, its ColumnMap).
    """
    gray, column_map = _normalise(image, config)
    out = ink_intensity(gray)
    if config.right_to_left:
        out = np.ascontiguousarray(out[:, ::-1])
    out = standardise(out) if config.mean_std else out
    return (out, column_map) if columns else out
