"""Text blocks of a page: a mask of line cores cut into blocks in reading order.

Part of `mdrnn.pipelines.line_finder.find_lines`: recursive XY cuts, columns first.
"""

from __future__ import annotations

import numpy as np

Box = tuple[int, int, int, int]


def xy_cut(mask: np.ndarray, c: int) -> list[Box]:
    """Blocks (x0, y0, x1, y1) of a mask of line cores in reading order, by recursive XY cuts.

    A region splits into columns at an empty vertical gap of at least 1.5 c when
    both sides are at least 4 c (about three lines) high; columns are tried first,
    so that the lines of neighbouring columns never fall into one band. Otherwise
    the region splits into bands at its widest empty horizontal gaps of at least
    0.5 c.
    """
    blocks: list[Box] = []

    def cut(x0: int, y0: int, x1: int, y1: int) -> None:
        region = mask[y0:y1, x0:x1]
        rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
        if rows.size == 0:
            return
        y0, y1, x0, x1 = y0 + rows[0], y0 + rows[-1] + 1, x0 + cols[0], x0 + cols[-1] + 1
        region = mask[y0:y1, x0:x1]
        if y1 - y0 >= 4 * c:
            for start, end in sorted(_gaps(region.any(axis=0), 1.5 * c), key=lambda g: g[0] - g[1]):
                # Both sides must be 4 c high at least (about three lines); else the
                # gap is one between words, which in two or three lines that slope
                # or reach past each other can line up.
                if min(_extent(region[:, :start]), _extent(region[:, end:])) >= 4 * c:
                    cut(x0, y0, x0 + start, y1)
                    cut(x0 + end, y0, x1, y1)
                    return
        gaps = _gaps(region.any(axis=1), 0.5 * c)
        if gaps:
            widest = max(end - start for start, end in gaps)
            bounds = [0] + [b for g in gaps if g[1] - g[0] >= 0.8 * widest for b in g] + [y1 - y0]
            for i in range(0, len(bounds), 2):
                cut(x0, y0 + bounds[i], x1, y0 + bounds[i + 1])
            return
        blocks.append((int(x0), int(y0), int(x1), int(y1)))

    cut(0, 0, mask.shape[1], mask.shape[0])
    return blocks


def block_at(blocks: list[Box], x: float, y: float) -> int:
    """Index of the block containing the point (x, y), or -1."""
    for index, (x0, y0, x1, y1) in enumerate(blocks):
        if x0 <= x < x1 and y0 <= y < y1:
            return index
    return -1


def _extent(mask: np.ndarray) -> int:
    """Number of rows from the first to the last occupied row of a 2-D mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


def _gaps(occupied: np.ndarray, min_length: float) -> list[tuple[int, int]]:
    """Runs [start, end) of False in a 1-D bool array, at least min_length long."""
    padded = np.concatenate([[True], occupied, [True]]).astype(np.int8)
    starts = np.flatnonzero(np.diff(padded) == -1)
    ends = np.flatnonzero(np.diff(padded) == 1)
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True) if e - s >= min_length]
