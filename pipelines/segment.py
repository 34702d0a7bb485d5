"""Page segmentation: a page scan in, its text lines out, in reading order.

The contract, which a learned segmenter can take over by providing a function
of the same signature:

    segment_page(image, config=None) -> list[Line]

- `image`: the page as a NumPy array (gray, BGR or BGRA; uint8, uint16 or bool),
  either polarity.
- The result lists the text lines in reading order: columns left to right, and
  top to bottom within a column; an empty list when the page has no text.
- `Line.polygon`: (N, 2) int32 array of (x, y) corners in page pixel coordinates,
  clockwise from the top left of the text as read (here the rectangle around the
  line's ink, at the line's own slope); `Line.bbox`: (x0, y0, x1, y1)
  with exclusive ends, the bounding box of the polygon clipped to the page;
  `Line.image`: the line cut out as 2-D uint8, dark ink on light paper, turned
  upright (each line by its own slope) and the ink of neighbouring lines painted
  out; `Line.to_page`: the affine map from that image's pixels to the page's.

The classical method here: binarise (Sauvola or Otsu), drop specks, rules and
scan edges, estimate the character height from the components, estimate and
undo the page skew, then find the lines (`mdrnn.pipelines.line_finder.find_lines`:
line cores, columns by XY cuts, touching lines cut apart) on a copy of the page
scaled so that letters are 12 to 24 pixels high; last, lines of small printed
type are left out (`mdrnn.pipelines.print_lines`). Every size is relative to the
character height, so any resolution works.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mdrnn.datasets.imageio import to_gray
from mdrnn.pipelines.geometry import estimate_skew, rotate
from mdrnn.pipelines.line_finder import find_lines
from mdrnn.pipelines.preprocess import (
    binarise_sauvola,
    fix_polarity,
    ink_mask,
    stretch_contrast,
)
from mdrnn.pipelines.print_lines import handwritten

_BINARISERS = ("otsu", "sauvola")
_MIN_PAGE_SIDE = 8
_MIN_CHAR_HEIGHT = 5  # pixels; smaller "letters" are specks (no text is legible so small)
_ANALYSIS_HEIGHT = 12  # pixels of a letter (at least) where lines are found


@dataclass(frozen=True, eq=False)
class Line:
    """One text line found on a page (see the module docstring for the contract).

    Args:
        polygon: (N, 2) int32 (x, y) corners in page coordinates.
        bbox: (x0, y0, x1, y1) in page coordinates, ends exclusive.
        image: uint8 line image, dark ink on light, upright.
        to_page: 2x3 affine map from image pixel coordinates (x, y) to the page's.
    """

    polygon: np.ndarray
    bbox: tuple[int, int, int, int]
    image: np.ndarray
    to_page: np.ndarray

    def to_dict(self) -> dict:
        """Coordinates as JSON values (without the image)."""
        return {"bbox": list(self.bbox), "polygon": self.polygon.tolist()}


@dataclass(frozen=True)
class SegmentConfig:
    """Settings of the classical segmenter.

    Args:
        polarity: "auto", "keep" or "invert" (see `fix_polarity`).
        binarise: "sauvola" (local thresholds: uneven lighting, photographs) or
            "otsu" (one global threshold: clean scans).
        sauvola_window: odd Sauvola window in pixels, about the height of a line.
        sauvola_k: Sauvola sensitivity; larger keeps less faint ink.
        max_skew: largest page skew searched for, in degrees; 0 skips deskewing.
        skip_print: leave out lines of small printed type (`print_lines`): forms'
            instructions and consent paragraphs beside the handwriting.
    """

    polarity: str = "auto"
    binarise: str = "sauvola"
    sauvola_window: int = 51
    sauvola_k: float = 0.2
    max_skew: float = 8.0
    skip_print: bool = True

    def __post_init__(self):
        if self.polarity not in ("auto", "keep", "invert"):
            raise ValueError(f"polarity must be auto, keep or invert, got {self.polarity!r}")
        if self.binarise not in _BINARISERS:
            raise ValueError(f"binarise must be one of {_BINARISERS}, got {self.binarise!r}")
        if not (isinstance(self.sauvola_window, int) and self.sauvola_window >= 3
                and self.sauvola_window % 2 == 1):
            raise ValueError(f"sauvola_window must be an odd integer >= 3, "
                             f"got {self.sauvola_window!r}")
        if not 0 < self.sauvola_k < 1:
            raise ValueError(f"sauvola_k must be in (0, 1), got {self.sauvola_k!r}")
        if not 0 <= self.max_skew <= 45:
            raise ValueError(f"max_skew must be in [0, 45], got {self.max_skew!r}")


def segment_page(image: np.ndarray, config: SegmentConfig | None = None) -> list[Line]:
    """Find the text lines of a page scan, in reading order.

    Args:
        image: the page (see the module docstring).
        config: segmenter settings; None for the defaults.

    Returns:
        The lines; an empty list for a page without text.
    """
    config = config or SegmentConfig()
    gray = fix_polarity(to_gray(image), config.polarity)
    if min(gray.shape) < _MIN_PAGE_SIDE:
        return []
    contrasted = stretch_contrast(gray)
    if config.binarise == "sauvola":
        ink = binarise_sauvola(contrasted, config.sauvola_window, config.sauvola_k) == 0
    else:
        ink = ink_mask(contrasted)
    # The letters that touch no rule tell the character height the rules are long
    # against; then the rules go, and the letters on them come back as text.
    _, rough_height = _text_components(ink)
    ink, char_height = _text_components(_remove_rules(ink, rough_height))
    if char_height == 0:
        return []
    # Lines are found where letters are 1 to 2 times _ANALYSIS_HEIGHT pixels
    # high: a 300-dpi page is looked at in half size, a quarter of the work.
    factor = max(1, char_height // _ANALYSIS_HEIGHT)
    if factor > 1:
        size = (ink.shape[1] // factor, ink.shape[0] // factor)
        # Area averaging keeps every block that holds any ink.
        ink = cv2.resize(ink.view(np.uint8) * np.uint8(255), size,
                         interpolation=cv2.INTER_AREA) > 0
    angle = estimate_skew(ink, config.max_skew) if config.max_skew > 0 else 0.0
    if abs(angle) < 0.02:
        angle = 0.0
    upright, small_matrix = rotate(ink.view(np.uint8), -angle, fill=0,
                                   interpolation=cv2.INTER_NEAREST)
    boxes, owner, slopes = find_lines(upright, max(1, round(char_height / factor)))
    # From the small upright frame to the page.
    to_page = _affine(cv2.invertAffineTransform(small_matrix))
    to_page = np.diag([factor, factor, 1.0]) @ to_page
    height, width = gray.shape
    # Each line's ink in page coordinates (small pixels' centres), line by line.
    ys, xs = np.nonzero(owner >= 0)
    index = owner[ys, xs]
    order = np.argsort(index, kind="stable")
    points = np.column_stack([xs[order] + 0.5, ys[order] + 0.5, np.ones(len(order))])
    points = (points @ to_page.T)[:, :2]
    bounds = np.searchsorted(index[order], np.arange(len(boxes) + 1))
    owner16 = (owner + 1).astype(np.uint16)  # 0: no line; fits: a page has < 65535 lines
    margin = 0.1 * char_height + factor / 2
    lines = []
    for number in range(len(boxes)):
        ink = points[bounds[number]:bounds[number + 1]]
        # The line's own frame: turned to the slope of its cores, around its ink.
        cos, sin = to_page[:2, :2] @ [1.0, slopes[number]]
        cos, sin = np.array([cos, sin]) / np.hypot(cos, sin)
        turn = np.array([[cos, sin], [-sin, cos]])  # page -> line frame
        along = ink @ turn.T
        (u0, v0), (u1, v1) = along.min(axis=0) - margin, along.max(axis=0) + margin
        corners = np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]]) @ turn
        polygon = np.rint(np.column_stack([corners[:, 0].clip(0, width),
                                           corners[:, 1].clip(0, height)])).astype(np.int32)
        bbox = (int(polygon[:, 0].min()), int(polygon[:, 1].min()),
                int(polygon[:, 0].max()), int(polygon[:, 1].max()))
        to_crop = np.hstack([turn, -np.array([[u0], [v0]])])  # page -> crop
        size = (max(1, int(np.ceil(u1 - u0))), max(1, int(np.ceil(v1 - v0))))
        crop = cv2.warpAffine(gray, to_crop, size, flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=255)
        # Paint out neighbouring lines' ascenders and descenders, with the
        # anti-aliased rim around their binarised strokes.
        owners = cv2.warpAffine(owner16, (_affine(to_crop) @ to_page)[:2], size,
                                flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                                borderValue=0)
        others = ((owners > 0) & (owners != number + 1)).view(np.uint8)
        if others.any():
            others = cv2.dilate(others, np.ones((3, 3), np.uint8))
            crop[(others > 0) & (owners != number + 1)] = 255
        lines.append(Line(polygon, bbox, crop, cv2.invertAffineTransform(to_crop)))
    return handwritten(lines) if config.skip_print else lines


def _affine(matrix: np.ndarray) -> np.ndarray:
    """A 2x3 affine matrix as 3x3."""
    return np.vstack([matrix, [0.0, 0.0, 1.0]])


def _remove_rules(ink: np.ndarray, char_height: int) -> np.ndarray:
    """The ink without the straight rules of ruled paper and margins.

    Handwriting touches the rules, so a rule and the letters on it are one component,
    too wide to be text: the rule's pixels are taken out first. They are the ink of
    straight runs longer than 6 character heights (a twentieth of the page when no
    letter gave the height), found by an opening with a long thin kernel on the ink
    thickened across the run, so that a slightly skewed rule, a staircase of short
    runs, still counts as one. Where a stroke crosses a rule (ink just above and just
    below it), its pixels are put back, so that the letters on a rule stay whole.
    """
    out = ink.copy()
    mask = ink.view(np.uint8)
    lengths = ((6 * char_height,) * 2 if char_height else
               (ink.shape[1] // 20, ink.shape[0] // 20))
    for length, across in ((max(8, lengths[0]), (3, 1)), (max(8, lengths[1]), (1, 3))):
        thick = cv2.dilate(mask, np.ones(across, np.uint8))
        kernel = np.ones((1, length) if across == (3, 1) else (length, 1), np.uint8)
        rules = (cv2.morphologyEx(thick, cv2.MORPH_OPEN, kernel) > 0) & ink
        kept = (ink & ~rules).view(np.uint8)
        # A closing across the rule bridges the gap its removal left in a stroke.
        bridge = np.ones((7, 1) if across == (3, 1) else (1, 7), np.uint8)
        crossing = cv2.morphologyEx(kept, cv2.MORPH_CLOSE, bridge) > 0
        out &= ~rules | crossing
    return out


def _text_components(ink: np.ndarray) -> tuple[np.ndarray, int]:
    """Drop specks and components that cannot be text; estimate the character height.

    Returns:
        The cleaned mask, and the character height in pixels (0: no text).
    """
    page_h, page_w = ink.shape
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink.view(np.uint8),
                                                               connectivity=8)
    x, y, w, h, area = (stats[1:, i] for i in range(5))
    plausible = (h >= _MIN_CHAR_HEIGHT) & (h < page_h / 4) & (w < page_w / 2)
    if not plausible.any():
        return np.zeros_like(ink), 0
    # Area-weighted median: letters outweigh specks, however many specks there are.
    order = np.argsort(h[plausible])
    weights = np.cumsum(area[plausible][order])
    char_height = int(h[plausible][order][np.searchsorted(weights, weights[-1] / 2)])
    touches_border = (x == 0) | (y == 0) | (x + w == page_w) | (y + h == page_h)
    # Not text: specks, rules and frames (long and thin), scan edges and shadows
    # (at the border, larger than a few letters), pictures (taller than 8 letters).
    thin = ((w > 4 * char_height) & (h < 0.6 * char_height)) | (
        (h > 4 * char_height) & (w < 0.6 * char_height))
    keep = ((area >= max(4.0, (0.2 * char_height) ** 2)) & (h <= 8 * char_height)
            & (w < 0.9 * page_w) & ~thin
            & ~(touches_border & ((w > 4 * char_height) | (h > 4 * char_height))))
    if not keep.any():
        return np.zeros_like(ink), 0
    return np.concatenate([[False], keep])[labels], max(char_height, 1)
