"""Text skew and slant: estimation from an ink mask, and the warps that undo them.

Both estimates search for the angle at which the projection profile of the ink
is sharpest (largest sum of squared bin counts): text lines collapse into few
rows when the projection runs along them (skew), near-vertical strokes collapse
into few columns when the shear matches their slant.

Conventions (image coordinates, y down): a skew angle is positive when the text
rises to the right (counter-clockwise as displayed); a slant angle is positive
when vertical strokes lean to the right (italic), measured from the vertical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

_MAX_POINTS = 20_000
_COARSE_POINTS = 5_000
_MIN_POINTS = 16


def estimate_skew(ink: np.ndarray, max_angle: float = 10.0) -> float:
    """Estimate the angle of the text lines in an ink mask, in degrees.

    Args:
        ink: 2-D boolean mask, True on ink.
        max_angle: the search covers [-max_angle, max_angle].

    Returns:
        The angle, positive when the text rises to the right; 0.0 when the mask
        holds too little ink to tell.
    """
    points = _ink_points(ink)
    if points is None:
        return 0.0
    xs, ys = points

    def energies(angles: np.ndarray, step: int = 1) -> np.ndarray:
        t = np.deg2rad(angles)[:, None]
        # Distance across the text direction (cos a, -sin a): constant along a line.
        return _profile_energy(xs[::step] * np.sin(t) + ys[::step] * np.cos(t))

    return _search(energies, len(xs), max_angle, coarse=1.0, fine=0.05)


def estimate_slant(ink: np.ndarray, max_angle: float = 45.0) -> float:
    """Estimate the slant of near-vertical strokes in an ink mask, in degrees.

    Args:
        ink: 2-D boolean mask, True on ink.
        max_angle: the search covers [-max_angle, max_angle] from the vertical.

    Returns:
        The angle from the vertical, positive when strokes lean to the right;
        0.0 when the mask holds too little ink to tell.
    """
    points = _ink_points(ink, vertical_edges=True)
    if points is None:
        return 0.0
    xs, ys = points

    def energies(angles: np.ndarray, step: int = 1) -> np.ndarray:
        s = np.tan(np.deg2rad(angles))[:, None]
        # A stroke leaning right by s has x = x0 - s * y: x + s * y is constant on it.
        return _profile_energy(xs[::step] + s * ys[::step])

    return _search(energies, len(xs), max_angle, coarse=2.0, fine=0.25)


def rotate(image: np.ndarray, angle: float, fill: int = 255,
           interpolation: int = cv2.INTER_LINEAR) -> tuple[np.ndarray, np.ndarray]:
    """Rotate an image counter-clockwise (as displayed) on a canvas that holds all of it.

    Args:
        image: 2-D array.
        angle: degrees, counter-clockwise; `rotate(image, -estimate_skew(...))` deskews.
        fill: value of the canvas outside the image (255: white paper).
        interpolation: an OpenCV interpolation flag (INTER_NEAREST for masks).

    Returns:
        The rotated image and the 2x3 affine matrix from input to output coordinates.
    """
    matrix, size = rotation(image.shape[:2], angle)
    out = cv2.warpAffine(image, matrix, size, flags=interpolation,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    return out, matrix


def rotation(shape: tuple[int, int], angle: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The affine matrix and output (width, height) with which `rotate` turns an image.

    Args:
        shape: (height, width) of the image.
        angle: degrees, counter-clockwise.
    """
    h, w = shape
    t = math.radians(angle)
    cos, sin = abs(math.cos(t)), abs(math.sin(t))
    # The epsilon keeps rounding error (cos 90 = 6e-17) from adding a column.
    out_w = int(math.ceil(w * cos + h * sin - 1e-6))
    out_h = int(math.ceil(w * sin + h * cos - 1e-6))
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
    matrix[0, 2] += (out_w - w) / 2.0
    matrix[1, 2] += (out_h - h) / 2.0
    return matrix, (out_w, out_h)


def shear(image: np.ndarray, angle: float, fill: int = 255) -> np.ndarray:
    """Shear an image horizontally so that vertical strokes lean right by `angle` degrees.

    The canvas widens to hold all of the image; `shear(image, -estimate_slant(...))`
    makes slanted strokes upright.

    Args:
        image: 2-D array.
        angle: degrees from the vertical, positive leaning right.
        fill: value of the canvas outside the image (255: white paper).
    """
    h, w = image.shape[:2]
    s = math.tan(math.radians(angle))
    if h == 0 or abs(s) * h < 0.5:
        return image.copy()
    extra = int(math.ceil(abs(s) * (h - 1)))
    # x' = x - s * y, shifted so that the leftmost column of the result is 0.
    matrix = np.array([[1.0, -s, s * (h - 1) if s > 0 else 0.0], [0.0, 1.0, 0.0]])
    return cv2.warpAffine(image, matrix, (w + extra, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=fill)


def _ink_points(ink: np.ndarray, vertical_edges: bool = False):
    """Centred float coordinates of (a bounded, evenly spaced subset of) the ink pixels."""
    if vertical_edges:
        # Left and right edges of strokes: where ink starts or ends along a row. They
        # follow the stroke direction and leave out the bulk of horizontal strokes.
        padded = np.pad(ink, ((0, 0), (1, 0)))
        ink = padded[:, 1:] != padded[:, :-1]
    ys, xs = np.nonzero(ink)
    if len(xs) < _MIN_POINTS:
        return None
    step = -(-len(xs) // _MAX_POINTS)
    xs, ys = xs[::step].astype(np.float64), ys[::step].astype(np.float64)
    return xs - xs.mean(), ys - ys.mean()


def _profile_energy(positions: np.ndarray) -> np.ndarray:
    """Sum of squared histogram counts (unit bins) of each row of `positions` (K, N).

    Each point is shared linearly between its two nearest bins, which makes the
    energy a smooth function of the angle. Integer pixel coordinates would fall
    exactly on bins at angle 0 only, and lean every estimate towards 0; a fixed
    dither of each point (the same at every angle) removes that preference.
    """
    k, n = positions.shape
    shifted = positions + np.random.default_rng(0).random(n)
    low = np.floor(shifted)
    frac = (shifted - low).ravel()
    bins = low.astype(np.int64)
    bins -= bins.min()
    width = int(bins.max()) + 2
    index = (bins + np.arange(k)[:, None] * width).ravel()
    counts = np.bincount(index, weights=1.0 - frac, minlength=k * width)
    counts += np.bincount(index + 1, weights=frac, minlength=k * width)
    counts = counts.reshape(k, width)
    return (counts * counts).sum(axis=1)


def _search(energies, points: int, max_angle: float, coarse: float, fine: float) -> float:
    """Angle in [-max_angle, max_angle] of largest energy: a coarse grid, then halving steps.

    The coarse grid looks at up to _COARSE_POINTS of the points, which is enough
    to find the peak's neighbourhood. Each halving step then compares the best
    angle with its neighbours half a step away, with all points, down to `fine`;
    a parabola through the last three places the peak.
    """
    grid = np.arange(-max_angle, max_angle + coarse / 2, coarse)
    values = energies(grid, -(-points // _COARSE_POINTS))
    if values.max() - values.min() <= 1e-9 * values.max():
        return 0.0  # flat: nothing to align (a dot, a blob)
    best = float(grid[int(np.argmax(values))])
    value = float(energies(np.array([best]))[0])
    step = coarse
    while True:
        step /= 2
        around = np.clip([best - step, best + step], -max_angle, max_angle)
        left, right = energies(around)
        if step <= fine:
            curvature = left - 2 * value + right
            if curvature < 0:
                best += step * 0.5 * (left - right) / curvature
            return float(np.clip(best, -max_angle, max_angle))
        if max(left, right) > value:
            best, value = (float(around[0]), left) if left > right else (float(around[1]), right)


def estimate_baseline(gray: np.ndarray) -> tuple[int, int, int] | None:
    """Where a line image's text sits: (baseline row, first ink column, end column).

    The baseline is the lowest row of the line's core, the band of rows holding at
    least half the ink of the fullest row: ascenders and descenders stay out of it.

    Args:
        gray: 2-D uint8 line image, dark ink on light paper.

    Returns:
        Row and column bounds (end exclusive) in the image's pixels; None without ink.
    """
    if gray.size == 0 or int(gray.max()) - int(gray.min()) < 32:
        return None
    _, ink = cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    rows = ink.sum(axis=1)
    core = np.flatnonzero(rows >= 0.5 * rows.max())
    columns = np.flatnonzero(ink.any(axis=0))
    return int(core[-1]) + 1, int(columns[0]), int(columns[-1]) + 1


@dataclass(frozen=True)
class ColumnMap:
    """How the columns of a preprocessed line map onto those of its image (`image_width`
    wide): x_image = offset + scale * x (x counted from the right with `right_to_left`)."""

    offset: int
    scale: float
    width: int
    image_width: int
    right_to_left: bool = False

    def to_image(self, x0: int, x1: int) -> tuple[int, int]:
        """The image columns [a, b) of the line's columns [x0, x1), both clipped (the
        crop's margin may reach beyond the image)."""
        x0, x1 = min(max(x0, 0), self.width), min(max(x1, 0), self.width)
        if self.right_to_left:
            x0, x1 = self.width - x1, self.width - x0
        a = int(np.floor(self.offset + self.scale * x0))
        b = int(np.ceil(self.offset + self.scale * x1))
        return min(max(a, 0), self.image_width), min(max(b, 0), self.image_width)
