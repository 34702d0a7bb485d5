"""Synthetic handwriting: text lines rendered with handwriting fonts, then distorted.

The fonts (Caveat, Dancing Script, Indie Flower, Kalam; SIL Open Font License)
and Pillow come with the optional extra: ``pip install mdrnn[synth]``. This
module imports them only when called, so the rest of the package never needs them.

Every line goes through: stroke width change (dilate/erode), elastic warp,
slant (shear) and rotation, crop to the ink with a margin, paper background with
texture, ink darkness, blur and noise. Line i is the same for the same seed,
whatever the number of lines asked for.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mdrnn.datasets.samples import Sample, clean_text, read_text
from mdrnn.errors import InputError

log = logging.getLogger(__name__)

FONT_NAMES = ("caveat", "dancing-script", "indie-flower", "kalam")
INSTALL_HINT = "pip install mdrnn[synth]"


def handwriting_fonts() -> dict[str, Path]:
    """The installed handwriting fonts by name; InputError says how to install them."""
    try:
        import fontpkg
        import PIL.ImageFont  # noqa: F401 - checked here, used by render_text
    except ImportError as error:
        missing = error.name or error
        raise InputError(f"synthetic handwriting needs the optional extra ({missing} is "
                         f"missing): {INSTALL_HINT}") from None
    fonts = {}
    for name in FONT_NAMES:
        try:
            fonts[name] = Path(fontpkg.path(name))
        except fontpkg.FontpkgError:
            continue
    if not fonts:
        raise InputError(f"no handwriting font is installed: {INSTALL_HINT}")
    return fonts


@dataclass(frozen=True)
class Distortions:
    """Ranges of the random changes applied to each rendered line.

    Args:
        size: range of font sizes in pixels (lines come out about 1.2x as high).
        slant: largest horizontal shear (x shift per row).
        rotation: largest rotation in degrees.
        elastic: largest elastic displacement in pixels.
        elastic_sigma: smoothness of the elastic field in pixels.
        stroke: largest change of stroke width in pixels (dilate or erode).
        blur: largest Gaussian blur sigma in pixels.
        noise: largest std of Gaussian noise in gray levels.
        background: textured paper of varying brightness instead of plain white.
    """

    size: tuple[int, int] = (30, 44)
    slant: float = 0.35
    rotation: float = 2.0
    elastic: float = 2.0
    elastic_sigma: float = 6.0
    stroke: int = 1
    blur: float = 0.8
    noise: float = 6.0
    background: bool = True


DEFAULT_DISTORTIONS = Distortions()


@functools.lru_cache(maxsize=64)
def _font(path: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(path, size)


@functools.lru_cache(maxsize=4096)
def _has_glyph(path: str, char: str) -> bool:
    # Pillow draws a missing glyph as the font's .notdef box: compare with the
    # box drawn for a code point that no font maps.
    font = _font(path, 32)
    missing = font.getmask("\U0010fffd")
    mask = font.getmask(char)
    return (mask.size, bytes(mask)) != (missing.size, bytes(missing))


def covers(font_path: str | Path, text: str) -> bool:
    """Whether the font has a glyph for every non-space character of `text`."""
    return all(_has_glyph(str(font_path), c) for c in set(text) if not c.isspace())


def _draw(text: str, font_path: str, size: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageDraw

    font = _font(font_path, size)
    try:
        axes = font.get_variation_axes()
        weight = [rng.uniform(axes[0]["minimum"], axes[0]["maximum"])] if axes else None
    except OSError:  # not a variable font
        weight = None
    if weight:
        font.set_variation_by_axes(weight)
    x0, y0, x1, y1 = font.getbbox(text)
    pad = size
    canvas = Image.new("L", (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - x0, pad - y0), text, fill=255, font=font)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def _elastic(mask: np.ndarray, amount: float, sigma: float,
             rng: np.random.Generator) -> np.ndarray:
    h, w = mask.shape
    fields = []
    for _ in range(2):
        field = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma)
        # Smoothing shrinks the field; rescale so `amount` is the largest displacement.
        fields.append(field * (amount / max(float(np.abs(field).max()), 1e-6)))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(mask, xs + fields[0], ys + fields[1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _slant_rotate(mask: np.ndarray, shear: float, degrees: float) -> np.ndarray:
    h, w = mask.shape
    angle = np.radians(degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = rotation @ np.array([[1.0, -shear], [0.0, 1.0]])
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], float) @ linear.T
    low, high = corners.min(axis=0), corners.max(axis=0)
    matrix = np.hstack([linear, -low[:, None]])
    size = (int(np.ceil(high[0] - low[0])), int(np.ceil(high[1] - low[1])))
    return cv2.warpAffine(mask, matrix, size, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def render_text(text: str, font_path: str | Path, rng: np.random.Generator,
                distortions: Distortions = DEFAULT_DISTORTIONS) -> np.ndarray:
    """Render one line of handwriting-like text.

    Args:
        text: the line, in logical order.
        font_path: a TrueType font file.
        rng: the source of every random choice.
        distortions: the ranges of the random changes.

    Returns:
        2-D uint8 gray image, dark ink on light paper.
    """
    d = distortions
    mask = _draw(text, str(font_path), int(rng.integers(d.size[0], d.size[1] + 1)), rng)
    radius = int(rng.integers(-d.stroke, d.stroke + 1)) if d.stroke else 0
    if radius:
        kernel = np.ones((abs(radius) + 1, abs(radius) + 1), np.uint8)
        changed = (cv2.dilate if radius > 0 else cv2.erode)(mask, kernel)
        # Thin fonts lose whole strokes when eroded; keep those as drawn.
        if radius > 0 or changed.sum() > 0.6 * mask.sum():
            mask = changed
    if d.elastic > 0:
        mask = _elastic(mask, rng.uniform(0, d.elastic), d.elastic_sigma, rng)
    mask = _slant_rotate(mask, rng.uniform(-d.slant, d.slant),
                         rng.uniform(-d.rotation, d.rotation))
    rows = np.flatnonzero((mask > 0.2).any(axis=1))
    cols = np.flatnonzero((mask > 0.2).any(axis=0))
    if rows.size:
        top, bottom, left, right = (int(m) for m in rng.integers(2, 9, size=4))
        mask = np.pad(mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1],
                      ((top, bottom), (left, right)))
    h, w = mask.shape
    paper = np.full((h, w), rng.uniform(215, 252), np.float32)
    if d.background:
        coarse = rng.normal(0, 1, (max(2, h // 12), max(2, w // 12))).astype(np.float32)
        paper += cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC) * rng.uniform(0, 8)
    ink = rng.uniform(0, 90)
    image = paper - np.clip(mask, 0, 1) * (paper - ink)
    sigma = rng.uniform(0, d.blur)
    if sigma > 0.2:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    image += rng.normal(0, rng.uniform(0, d.noise), image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def read_texts(path: str | Path) -> list[str]:
    """Read a word list or text corpus: its non-empty lines, cleaned like transcriptions."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    texts = [t for t in (clean_text(line) for line in read_text(path).splitlines()) if t]
    if not texts:
        raise InputError(f"{path}: no text")
    return texts


def synthetic_lines(texts: Sequence[str], count: int | None = None, seed: int = 0, *,
                    words_per_line: tuple[int, int] | None = None,
                    fonts: Sequence[str] | None = None,
                    distortions: Distortions = DEFAULT_DISTORTIONS) -> list[Sample]:
    """Render lines of text as synthetic handwriting samples.

    Args:
        texts: lines of a corpus, or the entries of a word list.
        count: number of lines; by default one per text (needed with
            `words_per_line`).
        seed: random seed; the same seed gives the same lines.
        words_per_line: when given, (min, max) words per line, drawn at random
            from all words of `texts`; otherwise each line is one of the texts.
        fonts: names among `FONT_NAMES` to use; default all installed.
        distortions: the ranges of the random changes.

    Returns:
        Samples with uint8 array sources and ids such as "synth-000042". A line
        for which no font has every glyph is skipped, with a warning.
    """
    installed = handwriting_fonts()
    chosen = list(fonts or installed)
    unknown = [f for f in chosen if f not in installed]
    if unknown:
        raise InputError(f"fonts not installed: {unknown} (installed: {sorted(installed)})")
    paths = [str(installed[f]) for f in chosen]
    texts = [t for t in (clean_text(t) for t in texts) if t]
    if not texts:
        raise InputError("no text to render")
    words = [w for t in texts for w in t.split()]
    if words_per_line is not None and (count is None or not 1 <= words_per_line[0]
                                       <= words_per_line[1]):
        raise ValueError(f"words_per_line needs a count and 1 <= min <= max, got "
                         f"{count}, {words_per_line}")
    count = len(texts) if count is None else count
    order = np.random.default_rng([seed, 0]).permutation(len(texts))
    samples, skipped = [], []
    for i in range(count):
        rng = np.random.default_rng([seed, 1, i])
        if words_per_line is None:
            text = texts[order[i % len(texts)]]
        else:
            n = int(rng.integers(words_per_line[0], words_per_line[1] + 1))
            text = " ".join(words[j] for j in rng.integers(0, len(words), size=n))
        usable = [p for p in paths if covers(p, text)]
        if not usable:
            skipped.append(text)
            continue
        image = render_text(text, usable[int(rng.integers(len(usable)))], rng, distortions)
        samples.append(Sample(image, text, f"synth-{i:06d}"))
    if skipped:
        log.warning("%d of %d lines skipped: no font has every glyph (e.g. %r)",
                    len(skipped), count, skipped[0])
    if not samples:
        raise InputError("no line could be rendered: the fonts lack glyphs for the text")
    return samples
