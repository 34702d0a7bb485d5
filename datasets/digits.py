"""Lines of real handwritten digits, composed from the bundled MNIST images.

Each line is 1-12 digits (by default), every digit cropped to its ink, scaled,
placed with random gaps and a small vertical jitter, and printed as dark ink on
light, slightly noisy paper: uint8 gray, about 30-40 px high at natural size
(the model's preprocessing scales the height).

The splits never share a digit image: "train" draws from images 0..6999, "val"
from 7000..7499 and "test" from 7500..7999 of `data/mnist_digits_8k.npz`, so a
model can be chosen on "val" and reported on digits that played no part at all.
Everything is deterministic for a seed, and line i does not depend on how many
lines are asked for.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from mdrnn.datasets.samples import Sample

DATA_FILE = Path(__file__).parent / "data" / "mnist_digits_8k.npz"
SPLITS = {"train": range(0, 7000), "val": range(7000, 7500), "test": range(7500, 8000)}
DEFAULT_COUNTS = {"train": 10000, "val": 1000, "test": 1000}
# MNIST is anti-aliased: fainter pixels are the halo of the stroke, not ink.
INK_THRESHOLD = 40
MIN_HEIGHT = 28


@functools.cache
def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The bundled digits: images (8000, 28, 28) uint8 white ink on black, labels (8000,)."""
    with np.load(DATA_FILE) as data:
        images, labels = data["images"], data["labels"]
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _split_key(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    return list(SPLITS).index(split)


def plan_lines(split: str, count: int, seed: int = 0, *, min_digits: int = 1,
               max_digits: int = 12) -> list[np.ndarray]:
    """Choose the digit images of each line: indices into `load_digits()`, all from `split`.

    Args:
        split: "train" (images 0..6999), "val" (7000..7499) or "test" (7500..7999).
        count: number of lines.
        seed: random seed; the plan of line i depends only on the seed and i's
            predecessors, so a longer plan extends a shorter one.
        min_digits, max_digits: inclusive range of the number of digits per line.
    """
    if count < 0 or not 1 <= min_digits <= max_digits:
        raise ValueError(f"need count >= 0 and 1 <= min_digits <= max_digits, got {count}, "
                         f"{min_digits}, {max_digits}")
    rng = np.random.default_rng([seed, _split_key(split), 0])
    pool = SPLITS[split]
    plans = []
    for _ in range(count):
        length = int(rng.integers(min_digits, max_digits + 1))
        plans.append(rng.integers(pool.start, pool.stop, size=length))
    return plans


def _crop_to_ink(image: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero((image > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((image > INK_THRESHOLD).any(axis=0))
    if rows.size == 0:
        return image
    return image[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def render_line(digits: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Compose digit images (white ink on black) into one line, dark ink on light paper.

    Args:
        digits: 2-D uint8 images, white ink on black (MNIST style), in reading order.
        rng: the source of every random choice.

    Returns:
        2-D uint8 gray line image, paper near 255.
    """
    line_scale = rng.uniform(0.85, 1.15)
    glyphs, offsets = [], []
    for digit in digits:
        glyph = _crop_to_ink(digit)
        scale = line_scale * rng.uniform(0.9, 1.1)
        aspect = rng.uniform(0.9, 1.1)
        h = max(2, round(glyph.shape[0] * scale))
        w = max(1, round(glyph.shape[1] * scale * aspect))
        glyphs.append(cv2.resize(glyph, (w, h), interpolation=cv2.INTER_LINEAR))
        offsets.append(int(rng.integers(-2, 3)))
    # Digits sit on a common baseline, each shifted up or down by its jitter.
    bottoms = [g.shape[0] + o for g, o in zip(glyphs, offsets, strict=True)]
    top_extent = max(bottoms)
    low_extent = min(bottoms[i] - glyphs[i].shape[0] for i in range(len(glyphs)))
    top, bottom = int(rng.integers(3, 8)), int(rng.integers(3, 8))
    height = top + (top_extent - low_extent) + bottom
    if height < MIN_HEIGHT:
        # A line of small digits still has the height of a line on the page.
        top += (MIN_HEIGHT - height) // 2
        bottom += MIN_HEIGHT - height - (MIN_HEIGHT - height) // 2
        height = MIN_HEIGHT
    gaps = [int(rng.integers(-1, 8)) if rng.random() > 0.1 else int(rng.integers(8, 16))
            for _ in glyphs[1:]]
    left, right = int(rng.integers(2, 10)), int(rng.integers(2, 10))
    width = left + sum(g.shape[1] for g in glyphs) + sum(gaps) + right
    ink = np.zeros((height, width), np.uint8)
    x = left
    for i, glyph in enumerate(glyphs):
        y = top + (top_extent - bottoms[i])
        h, w = glyph.shape
        # Maximum, not sum: touching or slightly overlapping strokes stay one stroke.
        np.maximum(ink[y:y + h, x:x + w], glyph, out=ink[y:y + h, x:x + w])
        x += w + (gaps[i] if i < len(gaps) else 0)
    return _on_paper(ink, rng)


def _on_paper(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    paper = rng.uniform(215, 250)
    darkest = rng.uniform(10, 70)
    h, w = ink.shape
    # Low-frequency unevenness of the paper, then fine grain.
    coarse = rng.normal(0, 1, (max(2, h // 8), max(2, w // 8))).astype(np.float32)
    texture = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC) * rng.uniform(0, 4)
    grain = rng.normal(0, rng.uniform(0, 4), (h, w))
    image = paper + texture - ink.astype(np.float32) / 255.0 * (paper - darkest) + grain
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def digit_lines(split: str = "train", count: int | None = None, seed: int = 0, *,
                min_digits: int = 1, max_digits: int = 12) -> list[Sample]:
    """Generate digit-string line images with their labels.

    Args:
        split: "train", "val" or "test"; they use disjoint digit images.
        count: number of lines; default 10000 for train, 1000 for val and test.
        seed: random seed; the same seed gives the same lines.
        min_digits, max_digits: inclusive range of the number of digits per line.

    Returns:
        Samples with uint8 array sources, text such as "40917" and ids such as
        "digits-train-000123".
    """
    key = _split_key(split)
    count = DEFAULT_COUNTS[split] if count is None else count
    plans = plan_lines(split, count, seed, min_digits=min_digits, max_digits=max_digits)
    images, labels = load_digits()
    samples = []
    for i, plan in enumerate(plans):
        rng = np.random.default_rng([seed, key, 1, i])
        image = render_line([images[j] for j in plan], rng)
        text = "".join(str(int(labels[j])) for j in plan)
        samples.append(Sample(image, text, f"digits-{split}-{i:06d}"))
    return samples
