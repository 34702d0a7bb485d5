"""Telling printed lines from handwritten ones, so that `--pages` can skip them.

Forms and archive sheets carry printed text beside the handwriting (instructions,
consent paragraphs, letterheads) that a handwriting recogniser should not read and
that ground truth of the handwriting leaves out. Small printed type looks unlike
handwriting of the same page in three ways at once, measured on the connected
components of the line's ink (Otsu threshold) against the median height H of the
page's found lines:

- its letters are small: the median component is under 0.25 H high;
- it is dense: over 4.5 components per H of line width (a letter each; cursive
  writing joins the letters of a word, hand-printed letters are about H wide);
- its letters are alike: their heights vary by under 0.4 of their median (a
  handwritten line mixes letters, ascenders and specks of the paper).

On the Copiste pages, where the thresholds were set on the 34 val pages, the rule
drops 21 lines of the val pages, none of them a line of the ground truth, and 90
lines of the 264 train pages, one of them a line of the ground truth (a reference
number written small in a corner); benchmarks/RESULTS.md has the figures.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

MAX_LETTER_HEIGHT = 0.25
MIN_LETTERS_PER_HEIGHT = 4.5
MAX_HEIGHT_SPREAD = 0.4
_MIN_AREA = 4  # components of fewer pixels are specks of the paper


def looks_printed(image: np.ndarray, line_height: float) -> bool:
    """Whether a line image (uint8, dark ink on light) holds small printed type.

    Args:
        image: the line as `segment_page` cuts it.
        line_height: the page's median line height in pixels (H above).
    """
    if image.size == 0 or line_height <= 0:
        return False
    _, ink = cv2.threshold(image, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    heights = stats[1:][stats[1:, cv2.CC_STAT_AREA] >= _MIN_AREA, cv2.CC_STAT_HEIGHT]
    if len(heights) == 0:
        return False
    letter = float(np.median(heights))
    return (letter < MAX_LETTER_HEIGHT * line_height
            and len(heights) > MIN_LETTERS_PER_HEIGHT * image.shape[1] / line_height
            and float(np.std(heights)) < MAX_HEIGHT_SPREAD * letter)


def handwritten(lines: Sequence) -> list:
    """The lines (anything with an `image`, such as `segment.Line`) whose images do
    not look printed, in their order."""
    if not lines:
        return []
    height = float(np.median([line.image.shape[0] for line in lines]))
    return [line for line in lines if not looks_printed(line.image, height)]
