"""Rows of core pieces: which pieces of a block make one text line.

Part of `mdrnn.pipelines.line_finder.find_lines`. A piece is a connected part of
the page's line cores (x-height bands); each has its own least-squares line
through its core pixels. Handwritten lines slope and curve, each at an angle of
its own, so a row is followed from piece to piece along its slope rather than
taken as a horizontal band.
"""

from __future__ import annotations

import numpy as np

Piece = tuple[int, int, int, int, int]  # core label, x0, y0, x1, y1


def piece_moments(core_piece: np.ndarray, count: int) -> np.ndarray:
    """(count, 5) sums of 1, x, y, x², xy over each piece's core pixels."""
    ys, xs = np.nonzero(core_piece >= 0)
    index = core_piece[ys, xs]
    xs, ys = xs.astype(np.float64), ys.astype(np.float64)
    return np.stack([np.bincount(index, weights=w, minlength=count)
                     for w in (np.ones_like(xs), xs, ys, xs * xs, xs * ys)], axis=1)


def line_slope(moment: np.ndarray, c: int) -> float:
    """The least-squares slope dy/dx of the core pixels summed in `moment`, at most
    ±0.25 (14°); 0 for pixels too short to tell (a standard deviation of their
    columns under c: pieces less than about 3.5 c wide)."""
    n, sx, sy, sxx, sxy = moment
    spread = sxx / n - (sx / n) ** 2
    if spread < c * c:
        return 0.0
    return float(np.clip((sxy / n - sx * sy / n ** 2) / spread, -0.25, 0.25))


def _pitch(pieces: list[Piece], centre: np.ndarray, c: int) -> float:
    """The median line pitch of a block: from each core piece down to the nearest
    piece below it that shares some of its columns (2 c when too few pieces say)."""
    gaps = []
    for i, (_, x0, _, x1, _) in enumerate(pieces):
        below = [centre[j, 1] - centre[i, 1] for j, (_, u0, _, u1, _) in enumerate(pieces)
                 if u0 < x1 and u1 > x0 and centre[j, 1] - centre[i, 1] > 0.3 * c]
        if below:
            gaps.append(min(below))
    return float(np.median(gaps)) if len(gaps) >= 3 else 2.0 * c


def group_rows(pieces: list[Piece], ids: list[int], moments: np.ndarray,
                c: int) -> list[list[int]]:
    """Group the core pieces of one block into rows (lines) that may slope or curve.

    Widest pieces first, so that long pieces fix where the rows are, a piece joins
    the row whose line passes nearest it: from the row's member horizontally
    nearest the piece, that member's own line (the least-squares line of its core
    pixels) to its end facing the piece, then the slope of all the row's core
    pixels across the gap, against the piece's own line at its facing end. It must
    pass within the smaller of 1.1 c and 0.6 of the block's line pitch. Lines
    written each at an angle of their own stay whole, where flat bands split them.

    Returns:
        The `ids` of the pieces of each row.
    """
    centre = moments[:, 1:3] / np.maximum(moments[:, :1], 1)  # (x, y) per piece id
    slopes = {i: line_slope(moments[i], c) for i in ids}
    tolerance = min(1.1 * c, 0.6 * _pitch(pieces, centre[ids], c))
    rows: list[dict] = []  # members (positions in pieces), summed moments, slope
    for j in sorted(range(len(pieces)), key=lambda j: pieces[j][1] - pieces[j][3]):
        _, x0, _, x1, _ = pieces[j]
        x, y = centre[ids[j]]
        best, best_distance = None, tolerance
        for row in rows:
            near = min(row["members"], key=lambda m: max(0, x0 - pieces[m][3],
                                                         pieces[m][1] - x1))
            mx, my = centre[ids[near]]
            end = min(max(x, pieces[near][1]), pieces[near][3])  # near's end facing j
            facing = min(max(mx, x0), x1)  # j's end facing near
            expected = (my + slopes[ids[near]] * (end - mx)
                        + row["slope"] * (facing - end))
            distance = abs(expected - (y + slopes[ids[j]] * (facing - x)))
            if distance <= best_distance:
                best, best_distance = row, distance
        if best is None:
            rows.append({"members": [j], "moment": moments[ids[j]].copy(),
                         "slope": slopes[ids[j]]})
        else:
            best["members"].append(j)
            best["moment"] += moments[ids[j]]
            best["slope"] = line_slope(best["moment"], c)
    return [[ids[j] for j in row["members"]] for row in rows]
