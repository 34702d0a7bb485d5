"""Reading image files as 2-D uint8 grayscale arrays with bounded memory.

The image size is read from the file header before anything is decoded, so a
file that claims 20000 x 20000 pixels is refused without allocating its pixels.
Formats: PNG, JPEG, TIFF (incl. BigTIFF, 1-bit, multi-page: the first page),
BMP, PBM/PGM/PPM, WebP and GIF; 8 or 16 bits; gray, colour, with or without
alpha. EXIF orientation is applied as OpenCV's decoders apply it.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from mdrnn.datasets.image_headers import png_complete, read_header
from mdrnn.errors import InputError

MAX_PIXELS = 70_000_000
"""Largest image accepted by default (A3 at 600 dpi is 7016 x 9921 = 69.6 Mpx); the
environment variable MDRNN_MAX_PIXELS sets another limit for every command."""


def _max_pixels() -> int:
    value = os.environ.get("MDRNN_MAX_PIXELS", "")
    if not value:
        return MAX_PIXELS
    if not value.isdigit() or int(value) < 1:
        raise InputError(f"MDRNN_MAX_PIXELS={value!r}: must be a positive whole number")
    return int(value)


def load_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as a 2-D uint8 grayscale array.

    Alpha is composited onto white, 16-bit data is scaled to 8 bits by its
    significant bit depth, and EXIF orientation is applied.

    Args:
        path: the image file.
        max_pixels: images with more pixels are refused before decoding; default
            MDRNN_MAX_PIXELS, or `MAX_PIXELS`.

    Raises:
        InputError: naming the file, for any file that cannot be read.
    """
    path = Path(path)
    max_pixels = max_pixels or _max_pixels()
    header = read_header(path)
    pixels = header.width * header.height
    if pixels > max_pixels:
        raise InputError(f"{path}: image of {header.width}x{header.height} pixels is above "
                         f"the limit of {max_pixels:,} pixels")
    size = path.stat().st_size
    # 8 bytes per pixel covers 16-bit RGBA uncompressed; more is not one image.
    if size > 8 * max_pixels + (16 << 20):
        raise InputError(f"{path}: file of {size:,} bytes is larger than an image within "
                         f"the limit of {max_pixels:,} pixels can be")
    if header.format == "png" and not png_complete(path):
        raise InputError(f"{path}: truncated PNG (no IEND chunk)")
    data = np.fromfile(path, dtype=np.uint8)
    flags = cv2.IMREAD_UNCHANGED if header.alpha else cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH
    try:
        image = cv2.imdecode(data, flags)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise InputError(f"{path}: not a readable {header.format} image (corrupt or truncated)")
    image = to_gray(image)
    return _orient(image, header.orientation) if header.alpha else image


def to_gray(image: np.ndarray) -> np.ndarray:
    """Convert any image array to 2-D uint8 grayscale.

    Accepts (H, W), (H, W, 1), BGR (H, W, 3), BGRA (H, W, 4) and gray+alpha
    (H, W, 2) arrays of bool, uint8 or uint16. Alpha is composited onto white;
    16-bit values are scaled by their significant bit depth, so 12-bit data in
    a 16-bit container keeps its contrast.

    Args:
        image: the image.

    Raises:
        ValueError: an unsupported shape or dtype, quoted.
    """
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"image dtype must be bool, uint8 or uint16, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] in (2, 4):
        image = _composite_on_white(image)
    elif image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif image.ndim != 2:
        raise ValueError(f"image must be (H, W) or (H, W, 1-4), got shape {image.shape}")
    if image.dtype == np.uint16:
        bits = max(8, int(image.max()).bit_length())
        image = cv2.convertScaleAbs(image, alpha=255.0 / ((1 << bits) - 1))
    return np.ascontiguousarray(image)


def _composite_on_white(image: np.ndarray) -> np.ndarray:
    """Gray of a (H, W, 2) or (H, W, 4) image with alpha, over a white background."""
    alpha = image[:, :, -1]
    gray = image[:, :, 0] if image.shape[2] == 2 else cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    if not alpha.any():
        # An all-zero alpha channel is an unused one (common in 32-bit BMPs), not
        # an invisible image.
        return gray
    full = float(np.iinfo(image.dtype).max)
    a = alpha.astype(np.float32) / full
    out = gray.astype(np.float32) * a + full * (1.0 - a)
    return np.rint(out).astype(image.dtype)


def _orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1 to 8) to an image."""
    if orientation in (5, 6, 7, 8):
        image = cv2.transpose(image)
        orientation = {5: 1, 6: 2, 7: 3, 8: 4}[orientation]
    flip = {2: 1, 3: -1, 4: 0}.get(orientation)
    return image if flip is None else cv2.flip(image, flip)


