"""Measuring a page segmenter: synthetic pages with known lines, and line matching.

`render_page` composes a page from lines of random words in OpenCV's Hershey
fonts, with the true polygon of every line; `match_lines` scores found lines
against true ones by polygon IoU (detection precision and recall). Both work
for any segmenter that keeps the `segment_page` contract.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
         cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
         cv2.FONT_HERSHEY_SCRIPT_COMPLEX)
# Letters weighted towards ascenders and descenders, so that tight lines touch.
_LETTERS = "etaoinshrdlucmfwypvbgkqjxz" + "bdfhklt" + "gjpqy" * 2


@dataclass(frozen=True)
class SyntheticPage:
    """A rendered page and its lines.

    Args:
        image: uint8 page, dark ink on light paper unless rendered inverted.
        lines: (4, 2) float64 corner arrays of each line's ink box in page
            coordinates, in reading order (columns left to right, top to bottom).
        skew: the angle the page was rotated by, in degrees (counter-clockwise).
    """

    image: np.ndarray
    lines: list[np.ndarray]
    skew: float


@dataclass(frozen=True)
class LineMatch:
    """Detection scores of found lines against true lines at one IoU threshold.

    Args:
        pairs: (found index, true index) of each match, one-to-one.
        found: number of lines found.
        true: number of true lines.
    """

    pairs: list[tuple[int, int]]
    found: int
    true: int

    @property
    def precision(self) -> float:
        """Matched share of the found lines (1.0 when none were found)."""
        return len(self.pairs) / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        """Matched share of the true lines (1.0 when there are none)."""
        return len(self.pairs) / self.true if self.true else 1.0


def render_page(rng: np.random.Generator, size: tuple[int, int] = (1240, 1754),
                columns: int = 1, skew: float = 0.0, tight: bool = False,
                noise: bool = True, inverted: bool = False) -> SyntheticPage:
    """Render a page of random text lines with known line boxes.

    Args:
        rng: random source (the page is a function of its state).
        size: (width, height) in pixels; (1240, 1754) is A4 at 150 dpi.
        columns: number of text columns.
        skew: rotate the page by this many degrees (counter-clockwise).
        tight: line spacing below the text height, so that descenders and
            ascenders of neighbouring lines overlap and often touch.
        noise: add specks, Gaussian noise, uneven lighting and a dark scan edge.
        inverted: light ink on dark paper.
    """
    width, height = size
    page = np.full((height, width), 255, np.uint8)
    font = int(rng.choice(FONTS))
    thickness = int(rng.integers(1, 3)) + width // 1600
    # Cap height of about 1.2-1.8 % of the page width (10-15 pt type on A4).
    (_, cap), _ = cv2.getTextSize("H", font, 1.0, thickness)
    scale = width * rng.uniform(0.012, 0.018) / cap
    (_, cap), descent = cv2.getTextSize("Hg", font, scale, thickness)
    pitch = (cap + descent) * (rng.uniform(0.78, 0.88) if tight else rng.uniform(1.2, 1.8))
    margin_x, margin_y = int(width * rng.uniform(0.08, 0.12)), int(height * rng.uniform(0.07, 0.1))
    gap = int(width * rng.uniform(0.05, 0.08))
    column_width = (width - 2 * margin_x - (columns - 1) * gap) // columns
    boxes = []
    for column in range(columns):
        x = margin_x + column * (column_width + gap)
        y = margin_y + cap
        while y + descent < height - margin_y:
            fill = 1.0 if rng.random() > 0.2 else rng.uniform(0.2, 0.9)
            box = _draw_line(page, rng, x, int(y), int(column_width * fill), font, scale,
                             thickness)
            if box is not None:
                boxes.append(box)
            y += pitch * (1.0 if rng.random() > 0.1 else 2.0)  # now and then a blank line
    if noise:
        page = _add_noise(page, rng)
    page, matrix = _rotate_in_place(page, skew)
    lines = [np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64) @ matrix[:, :2].T
             + matrix[:, 2] for x0, y0, x1, y1 in boxes]
    return SyntheticPage(255 - page if inverted else page, lines, skew)


def match_lines(found: Sequence[np.ndarray], true: Sequence[np.ndarray],
                min_iou: float = 0.5) -> LineMatch:
    """Match found line polygons to true ones, one-to-one, greedily by IoU.

    Args:
        found: (N, 2) polygons of the lines found.
        true: (N, 2) polygons of the true lines.
        min_iou: pairs below this intersection over union do not match.
    """
    candidates = []
    for i, a in enumerate(found):
        for j, b in enumerate(true):
            iou = _polygon_iou(np.asarray(a, np.float64), np.asarray(b, np.float64))
            if iou >= min_iou:
                candidates.append((iou, i, j))
    used_found, used_true, pairs = set(), set(), []
    for _, i, j in sorted(candidates, reverse=True):
        if i not in used_found and j not in used_true:
            used_found.add(i)
            used_true.add(j)
            pairs.append((i, j))
    return LineMatch(sorted(pairs), len(found), len(true))


def _draw_line(page, rng, x, baseline, max_width, font, scale, thickness):
    """Draw random words from (x, baseline) up to max_width; return the ink box."""
    words, text = [], ""
    while True:
        word = "".join(rng.choice(list(_LETTERS), int(rng.integers(2, 9))))
        if rng.random() < 0.15:
            word = word.capitalize()
        candidate = " ".join([*words, word])
        if cv2.getTextSize(candidate, font, scale, thickness)[0][0] > max_width:
            break
        words.append(word)
        text = candidate
    if not text:
        return None
    (w, h), descent = cv2.getTextSize(text, font, scale, thickness)
    pad = thickness + 4
    strip = np.full((h + descent + 2 * pad, w + 2 * pad), 255, np.uint8)
    cv2.putText(strip, text, (pad, pad + h), font, scale, 0, thickness, cv2.LINE_AA)
    ink = strip < 128
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    top, left = baseline - h - pad, x - pad
    target = page[top:top + strip.shape[0], left:left + strip.shape[1]]
    np.minimum(target, strip[:target.shape[0], :target.shape[1]], out=target)
    return (left + cols[0], top + rows[0], left + cols[-1] + 1, top + rows[-1] + 1)


def _add_noise(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Specks, Gaussian noise, a lighting gradient and a dark band at one scan edge."""
    height, width = page.shape
    out = page.astype(np.float32)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (xs * math.cos(angle) + ys * math.sin(angle)) / max(width, height)
    out *= 0.75 + 0.25 * (ramp - ramp.min()) / max(1e-6, float(ramp.max() - ramp.min()))
    for _ in range(int(rng.integers(100, 400))):
        cv2.circle(out, (int(rng.integers(0, width)), int(rng.integers(0, height))),
                   int(rng.integers(1, 3)), float(rng.uniform(0, 120)), -1)
    out += rng.normal(0, 6, out.shape).astype(np.float32)
    edge = int(rng.integers(0, 4))
    band = max(2, int(0.01 * min(width, height)))
    region = {0: out[:, :band], 1: out[:, -band:], 2: out[:band], 3: out[-band:]}[edge]
    region *= 0.25
    return np.clip(out, 0, 255).astype(np.uint8)


def _rotate_in_place(page: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate a page about its centre keeping its size; the matrix maps old to new points."""
    height, width = page.shape
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), angle, 1.0)
    out = cv2.warpAffine(page, matrix, (width, height), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    return out, matrix


def _polygon_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two polygons, rasterised on their joint box."""
    low = np.floor(np.minimum(a.min(axis=0), b.min(axis=0)))
    high = np.ceil(np.maximum(a.max(axis=0), b.max(axis=0)))
    if (np.maximum(a.min(axis=0), b.min(axis=0)) >= np.minimum(a.max(axis=0), b.max(axis=0))).any():
        return 0.0
    shape = (int(high[1] - low[1]) + 1, int(high[0] - low[0]) + 1)
    masks = []
    for polygon in (a, b):
        mask = np.zeros(shape, np.uint8)
        cv2.fillPoly(mask, [np.rint(polygon - low).astype(np.int32)], 1)
        masks.append(mask.astype(bool))
    union = np.count_nonzero(masks[0] | masks[1])
    return np.count_nonzero(masks[0] & masks[1]) / union if union else 0.0
