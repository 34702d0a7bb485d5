"""Text lines in an upright page mask: line cores, blocks, and the ink of each line.

`find_lines` is the line-finding half of `segment_page`, after binarisation and
deskewing. All sizes are multiples of the character height c estimated from the
page, so any resolution works.

Lines are found by their cores. Smearing ink horizontally by c joins the letters
and words of a line; an opening with the same kernel then removes everything
narrower than c, which includes the ascenders and descenders by which lines
touch, and leaves each line's x-height band (plus clusters of neighbouring
ascenders or descenders, merged back later). Where lines touch so closely that
their cores join, the joint core is cut at the valleys of its row profile.
Cores split into blocks by recursive XY cuts (columns first), into lines by
following each line's slope from piece to piece (`mdrnn.pipelines.line_rows`),
and every ink component then goes to the line whose core it covers; a component
that covers the cores of two lines (touching lines) is split between them row by
row.
"""

from __future__ import annotations

from collections import Counter

import cv2
import numpy as np

from mdrnn.pipelines.blocks import Box, block_at, xy_cut
from mdrnn.pipelines.line_rows import Piece, group_rows, line_slope, piece_moments


def find_lines(ink: np.ndarray, c: int) -> tuple[list[Box], np.ndarray, list[float]]:
    """Find the text lines of an upright ink mask, in reading order.

    Args:
        ink: 2-D uint8 mask, nonzero on ink (specks already removed).
        c: character height in pixels.

    Returns:
        The line boxes (x0, y0, x1, y1, ends exclusive) in reading order, an
        int32 map holding the index of the line each ink pixel belongs to (-1
        for pixels of no line), and each line's slope dy/dx (its cores'
        least-squares line; 0 for lines too short to tell).
    """
    kernel = np.ones((1, max(3, int(round(c)))), np.uint8)
    cores = cv2.morphologyEx(cv2.morphologyEx(ink, cv2.MORPH_CLOSE, kernel),
                             cv2.MORPH_OPEN, kernel)
    _, core_labels, core_stats, _ = cv2.connectedComponentsWithStats(cores, connectivity=8)
    pieces = _core_pieces(core_labels, core_stats[1:], c)
    if not pieces:
        return [], np.full(ink.shape, -1, np.int32), []
    core_piece = np.full(ink.shape, -1, np.int32)
    for index, (label, x0, y0, x1, y1) in enumerate(pieces):
        region = core_piece[y0:y1, x0:x1]
        region[core_labels[y0:y1, x0:x1] == label] = index
    del core_labels
    moments = piece_moments(core_piece, len(pieces))

    # Which components cover which pieces; appendages join their piece, noise goes.
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(ink, connectivity=8)
    n = len(pieces)
    covered = (core_piece >= 0) & (labels > 0)
    pairs = np.unique(labels[covered].astype(np.int64) * n + core_piece[covered])
    del core_piece, covered
    # A line has two letters of ink at least (a core is two letters wide): 0.3 c^2.
    root = _merge_appendages(pairs // n, pairs % n, stats[:, cv2.CC_STAT_AREA],
                             stats[:, cv2.CC_STAT_HEIGHT] >= 0.4 * c, 0.3 * c * c, n)

    # Rows (lines) of the remaining pieces, block by block in reading order.
    blocks = xy_cut(cores > 0, c)
    row_of = np.full(n + 1, -1, np.int64)  # index n (a dropped piece, -1) stays -1
    bands, row_block, row_slopes = [], [], []
    corners = np.array(pieces, np.float64)[:, 1:]
    cx, cy = (corners[:, 0] + corners[:, 2]) / 2, (corners[:, 1] + corners[:, 3]) / 2
    live = root == np.arange(n)
    for block, (bx0, by0, bx1, by1) in enumerate(blocks):
        inside = np.flatnonzero(live & (bx0 <= cx) & (cx < bx1) & (by0 <= cy) & (cy < by1))
        inside = inside.tolist()
        for members in group_rows([pieces[i] for i in inside], inside, moments, c):
            row_of[members] = len(bands)
            row_slopes.append(line_slope(moments[members].sum(axis=0), c))
            bands.append([min(pieces[i][1] for i in members), min(pieces[i][2] for i in members),
                          max(pieces[i][3] for i in members), max(pieces[i][4] for i in members)])
            row_block.append(block)
    if not bands:
        return [], np.full(ink.shape, -1, np.int32), []
    rows = len(bands)
    row = row_of[root[pairs % n]]
    pairs = np.unique((pairs // n * rows + row)[row >= 0])
    owner_of, splits = _assign(labels, stats, centroids, pairs // rows, pairs % rows,
                               np.array(bands, np.int64), np.array(row_block), blocks, c)

    # Line boxes from the ink each line owns, then reading order: block, top to bottom.
    line_box = np.array([[np.iinfo(np.int64).max] * 2 + [-1] * 2] * rows, np.int64)
    whole = np.flatnonzero(owner_of >= 0)
    stat_box = np.stack([stats[whole, 0], stats[whole, 1], stats[whole, 0] + stats[whole, 2],
                         stats[whole, 1] + stats[whole, 3]], axis=1)
    for parts in [(owner_of[whole], stat_box)] + [_split_boxes(s) for s in splits]:
        lines, boxes = parts
        for corner, merge in ((0, np.minimum), (1, np.minimum), (2, np.maximum),
                              (3, np.maximum)):
            merge.at(line_box[:, corner], lines, boxes[:, corner])
    # A line holds two letters at least, or one wide component (a cursive word);
    # a lone blob is a speck or a stain.
    letters = np.bincount(owner_of[whole][stats[whole, cv2.CC_STAT_HEIGHT] >= 0.4 * c],
                          minlength=rows)
    for _, _, _, nearest in splits:
        letters[np.unique(nearest)] += 1
    widest = np.zeros(rows, np.int64)
    np.maximum.at(widest, owner_of[whole], stats[whole, cv2.CC_STAT_WIDTH])
    found = np.flatnonzero((line_box[:, 2] >= 0) & ((letters >= 2) | (widest >= 1.5 * c)))
    order = sorted(found, key=lambda i: (row_block[i], line_box[i, 1] + line_box[i, 3]))
    relabel = np.full(rows + 1, -1, np.int32)  # index -1 (no line) stays -1
    relabel[order] = np.arange(len(order), dtype=np.int32)
    owner = relabel[owner_of][labels]
    for x, y, member, nearest in splits:
        region = owner[y:y + member.shape[0], x:x + member.shape[1]]
        region[member] = relabel[np.broadcast_to(nearest[:, None], member.shape)[member]]
    return ([tuple(int(v) for v in line_box[i]) for i in order], owner,
            [row_slopes[i] for i in order])


def _core_pieces(labels: np.ndarray, stats: np.ndarray, c: int) -> list[Piece]:
    """Core components as pieces; cores of lines that touch are cut apart.

    A single line's core (x-height band, perhaps with clusters of ascenders or
    descenders) is at most about 1.6 c high; where two lines touch, their cores
    join. Every core higher than 1.2 c is cut at the valleys of its row profile
    that `_valley_cuts` accepts, which leaves single lines whole.
    """
    pieces = []
    for index, (x, y, w, h, _) in enumerate(stats):
        label = index + 1
        cuts: list[int] = []
        if h > 1.2 * c:
            member = labels[y:y + h, x:x + w] == label
            cuts = _valley_cuts(member.sum(axis=1).astype(np.float64), c)
        if not cuts:
            pieces.append((label, int(x), int(y), int(x + w), int(y + h)))
            continue
        for top, bottom in zip([0, *cuts], [*cuts, h], strict=True):
            cols = np.flatnonzero(member[top:bottom].any(axis=0))
            if cols.size:
                pieces.append((label, int(x + cols[0]), int(y + top), int(x + cols[-1] + 1),
                               int(y + bottom)))
    return pieces


def _valley_cuts(profile: np.ndarray, c: int) -> list[int]:
    """Rows at which to cut a core of touching lines.

    A cut needs a deep valley in the row profile (core pixels per row) with a
    word-wide peak on either side, the peaks a line pitch apart: an x-height band
    with a cluster of ascenders or descenders attached is not cut.
    """
    n, reach = len(profile), max(2, int(1.5 * c))
    inner = np.arange(1, n - 1)
    minima = inner[(profile[inner] <= profile[inner - 1]) & (profile[inner] < profile[inner + 1])]
    rows = np.arange(n, dtype=np.float64)
    cuts: list[int] = []
    for i in minima[np.argsort(profile[minima], kind="stable")]:
        above, below = slice(max(0, i - reach), i), slice(i + 1, i + 1 + reach)
        peak = min(profile[above].max(), profile[below].max())
        # Centres of mass of either side: two x-height bands lie a line pitch apart.
        apart = (np.average(rows[below], weights=profile[below])
                 - np.average(rows[above], weights=profile[above]))
        if (profile[i] <= 0.35 * peak and peak >= 1.5 * c and apart >= 0.9 * c
                and all(abs(i - cut) >= 0.6 * c for cut in cuts)):
            cuts.append(int(i))
    return sorted(cuts)


def _merge_appendages(component: np.ndarray, row: np.ndarray, area: np.ndarray,
                      letter_sized: np.ndarray, min_own: float, count: int) -> np.ndarray:
    """Map each row to the row it belongs to (-1: none): appendages join their line.

    A row whose cores are covered almost only by components that also cover
    another row's core (letters whose ascenders or descenders formed the row,
    with their bodies in the x-height band of their line) is an appendage; a
    line is mostly ink of its own, even where it touches its neighbours. Ink is
    weighed by area, and only letter-sized components count as a row's own, so
    that the dots of i and j caught in a cluster do not make it a line. A row
    with less than `min_own` pixels of its own that shares nothing is no line.
    """
    per_component = np.bincount(component)
    alone = per_component[component] == 1
    letter = alone & letter_sized[component]
    own = np.bincount(row[letter], weights=area[component[letter]], minlength=count)
    total = np.bincount(row, weights=area[component], minlength=count)
    parent = np.arange(count)

    def find(r: int) -> int:
        while parent[r] != r:
            r = parent[r]
        return r

    rows_of: dict[int, list[int]] = {}  # shared component -> the rows it covers
    for k, r in zip(component[~alone].tolist(), row[~alone].tolist(), strict=True):
        rows_of.setdefault(k, []).append(r)
    components_of: dict[int, list[int]] = {}
    for k, rows in rows_of.items():
        for r in rows:
            components_of.setdefault(r, []).append(k)
    dropped = []
    weak = (own <= 0.2 * total) | (own < min_own)
    for r in sorted(np.flatnonzero(weak).tolist(), key=lambda r: total[r]):
        others = Counter(o for k in components_of.get(r, []) for o in rows_of[k] if o != r)
        if others:
            target = find(others.most_common(1)[0][0])
            if target != find(r):
                parent[find(r)] = target
        elif own[r] < min_own:
            dropped.append(r)  # bits of strokes or specks: their ink joins a line or none
    root = np.array([find(r) for r in range(count)], np.int64)
    root[dropped] = -1
    return root


def _assign(labels, stats, centroids, component, row, band, row_block, blocks, c):
    """Owner row of each ink component, and the row-by-row splits of touching ones.

    A component belongs to the rows whose cores it covers and to those whose
    core band it reaches deep into (40 % of the band's height): one such row
    owns it whole; between several, each pixel row goes to the row whose band
    centre is nearest. A component with no such row (a dot, an accent,
    punctuation) joins the nearest row of its block within 0.6 c, if any.

    Returns:
        owner_of: (count,) row index of each wholly owned component, else -1.
        splits: (x, y, member mask, row per mask row) of each split component.
    """
    count, n = len(stats), len(band)
    x0, y0 = stats[1:, 0, None], stats[1:, 1, None]
    x1, y1 = x0 + stats[1:, 2, None], y0 + stats[1:, 3, None]
    reach = np.minimum(y1, band[:, 3]) - np.maximum(y0, band[:, 1])
    deep = (reach >= 0.4 * (band[:, 3] - band[:, 1])) & (x0 < band[:, 2]) & (x1 > band[:, 0])
    deep_component, deep_row = np.nonzero(deep)
    pairs = np.unique(np.concatenate([component * n + row, (deep_component + 1) * n + deep_row]))
    component, row = pairs // n, pairs % n
    owner_of = np.full(count, -1, np.int64)
    per_component = np.bincount(component, minlength=count)
    single = per_component[component] == 1
    owner_of[component[single]] = row[single]
    centre = (band[:, 1] + band[:, 3]) / 2.0

    splits = []
    multi_component, multi_row = component[~single], row[~single]
    for k in np.unique(multi_component):
        candidates = multi_row[multi_component == k]
        x, y, w, h, _ = stats[k]
        member = labels[y:y + h, x:x + w] == k
        heights = np.arange(y, y + h, dtype=np.float64)[:, None]
        splits.append((int(x), int(y), member,
                       candidates[np.argmin(np.abs(heights - centre[candidates]), axis=1)]))

    far = np.iinfo(np.int64).max
    for k in np.flatnonzero(per_component == 0)[1:]:
        x, y, w, h, _ = stats[k]
        near = ((row_block == block_at(blocks, *centroids[k]))
                & (band[:, 0] < x + w + c) & (band[:, 2] > x - c))
        distance = np.where(near, np.maximum.reduce([band[:, 1] - (y + h), y - band[:, 3],
                                                     np.zeros(n, np.int64)]), far)
        best = int(np.argmin(distance))
        if distance[best] <= 0.6 * c:
            owner_of[k] = best
    return owner_of, splits


def _split_boxes(split) -> tuple[np.ndarray, np.ndarray]:
    """(rows, boxes) of the parts of one split component."""
    x, y, member, nearest = split
    lines, boxes = [], []
    for line in np.unique(nearest):
        part = member & (nearest == line)[:, None]
        ys, xs = np.nonzero(part)
        if ys.size:
            lines.append(line)
            boxes.append((x + xs.min(), y + ys.min(), x + xs.max() + 1, y + ys.max() + 1))
    return np.array(lines, np.int64), np.array(boxes, np.int64).reshape(-1, 4)
