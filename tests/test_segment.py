"""Page segmentation on synthetic pages with known lines: detection, order, contract."""

import cv2
import numpy as np
import pytest

from mdrnn.pipelines.geometry import estimate_skew
from mdrnn.pipelines.preprocess import ink_mask
from mdrnn.pipelines.segment import Line, SegmentConfig, segment_page
from mdrnn.pipelines.segment_eval import match_lines, render_page

A4_150DPI = (1240, 1754)


def page_set():
    """Eight A4 pages at 150 dpi: one and two columns, skew up to 5 degrees, noise,
    tight lines whose ascenders and descenders touch, one page inverted."""
    rng = np.random.default_rng(2024)
    pages = []
    for index in range(8):
        pages.append(render_page(rng, A4_150DPI, columns=1 + index % 2,
                                 skew=float(rng.uniform(-5, 5)), tight=index % 3 == 0,
                                 noise=True, inverted=index == 5))
    return pages


def line_height(page):
    """Median height of the true lines (the length of their left edge)."""
    return float(np.median([np.linalg.norm(box[3] - box[0]) for box in page.lines]))


@pytest.fixture(scope="module")
def results():
    return [(page, segment_page(page.image)) for page in page_set()]


def test_line_detection_precision_and_recall(results):
    matched = found = true = 0
    for page, lines in results:
        match = match_lines([line.polygon for line in lines], page.lines, min_iou=0.5)
        matched, found, true = matched + len(match.pairs), found + match.found, true + match.true
        assert match.recall >= 0.9 and match.precision >= 0.9, page.skew
    precision, recall = matched / found, matched / true
    print(f"\nline detection at IoU >= 0.5 over {len(results)} pages, {true} lines: "
          f"precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= 0.95 and recall >= 0.95


def test_the_page_set_is_hard(results):
    """Skews of several degrees both ways, and lines that really touch."""
    skews = [page.skew for page, _ in results]
    assert min(skews) < -2 and max(skews) > 2
    touching = 0
    for page, _ in results[::3]:  # the tight pages
        count, _, stats, _ = cv2.connectedComponentsWithStats(ink_mask(page.image).view(np.uint8))
        # A component taller than 1.3 lines spans two lines: they touch.
        touching += int((stats[1:, cv2.CC_STAT_HEIGHT] > 1.3 * line_height(page)).sum())
    assert touching >= 10


def test_lines_come_in_reading_order(results):
    for page, lines in results:
        match = match_lines([line.polygon for line in lines], page.lines)
        truth_order = [true for _, true in sorted(match.pairs)]
        assert truth_order == sorted(truth_order)


def test_line_contract(results):
    page, lines = results[1]
    height, width = page.image.shape
    for line in lines:
        assert isinstance(line, Line)
        assert line.polygon.dtype == np.int32 and line.polygon.shape == (4, 2)
        x0, y0, x1, y1 = line.bbox
        assert all(isinstance(v, int) for v in line.bbox)
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        assert (x0, y0) == tuple(line.polygon.min(axis=0))
        assert (x1, y1) == tuple(line.polygon.max(axis=0))
        assert line.image.dtype == np.uint8 and line.image.ndim == 2
        assert np.median(line.image) > 128  # dark ink on light paper
        assert line.to_dict() == {"bbox": list(line.bbox), "polygon": line.polygon.tolist()}


def test_line_images_are_upright_and_hold_one_line(results):
    checked = 0
    for index, (page, lines) in enumerate(results):
        if abs(page.skew) < 2 or index % 3 == 0:  # skewed pages with normal spacing
            continue
        for line in lines:
            if line.image.shape[1] > 300:
                assert abs(estimate_skew(ink_mask(line.image))) <= 0.5
            # Two lines, even touching, would be well over two line heights high.
            assert line.image.shape[0] < 2 * line_height(page)
            checked += 1
    assert checked > 30


def test_columns_are_read_left_then_right():
    rng = np.random.default_rng(7)
    page = render_page(rng, A4_150DPI, columns=2, skew=0.0, noise=False)
    lines = segment_page(page.image)
    centres = [(line.bbox[0] + line.bbox[2]) / 2 for line in lines]
    left = [c < A4_150DPI[0] / 2 for c in centres]
    assert left == sorted(left, reverse=True) and 0 < sum(left) < len(left)
    tops = [line.bbox[1] for line in lines]
    split = sum(left)
    assert tops[:split] == sorted(tops[:split]) and tops[split:] == sorted(tops[split:])


@pytest.mark.parametrize("image", [
    np.full((1754, 1240), 255, np.uint8),
    np.zeros((1, 1), np.uint8),
    np.full((5, 3000), 255, np.uint8),
], ids=["white page", "1x1", "sliver"])
def test_pages_without_text_give_no_lines(image):
    assert segment_page(image) == []


def test_specks_and_a_scan_edge_are_not_lines():
    rng = np.random.default_rng(3)
    page = np.clip(rng.normal(235, 6, (1000, 700)), 0, 255).astype(np.uint8)
    for _ in range(300):
        cv2.circle(page, (int(rng.integers(0, 700)), int(rng.integers(0, 1000))), 1, 40, -1)
    page[:, :15] = 30  # the dark edge of a scan
    assert segment_page(page) == []


def test_segment_config_is_checked():
    with pytest.raises(ValueError, match="'fast'"):
        SegmentConfig(binarise="fast")
    with pytest.raises(ValueError, match="20"):
        SegmentConfig(sauvola_window=20)
    otsu = segment_page(render_page(np.random.default_rng(4), A4_150DPI, noise=False).image,
                        SegmentConfig(binarise="otsu", max_skew=0))
    assert len(otsu) > 10


def test_match_lines_scores():
    box = np.array([[0, 0], [100, 0], [100, 20], [0, 20]], np.float64)
    shifted = box + [0, 12]  # overlaps 8 of 20 rows: IoU 8 / 32 < 0.5
    match = match_lines([box, shifted, box + [0, 200]], [box, box + [0, 203]])
    assert match.pairs == [(0, 0), (2, 1)]
    assert match.precision == pytest.approx(2 / 3) and match.recall == 1.0
    assert match_lines([], []).precision == 1.0 and match_lines([], [box]).recall == 0.0


def test_lines_written_on_ruled_paper_are_found():
    """Each line's letters sit on a rule across the page, and a margin rule crosses
    every line: without the rules taken out, a line and its rule are one component
    too wide to be text, and the line is lost."""
    rng = np.random.default_rng(7)
    page = render_page(rng, A4_150DPI, columns=1, skew=0.0, tight=False, noise=False)
    ruled = page.image.copy()
    for box in page.lines:
        top, bottom = box[:, 1].min(), box[:, 1].max()
        base = int(round(bottom - 0.3 * (bottom - top)))  # about where letters sit
        cv2.line(ruled, (0, base), (ruled.shape[1] - 1, base), 60, 2)
    cv2.line(ruled, (60, 0), (60, ruled.shape[0] - 1), 60, 2)
    found = segment_page(ruled)
    match = match_lines([line.polygon for line in found], page.lines)
    assert match.recall >= 0.95 and match.precision >= 0.95


def test_lines_each_at_an_angle_of_their_own_stay_whole():
    """Handwriting drifts: each line on its own slope (here ±4°, alternating), which
    no deskew of the whole page straightens. A line is followed along its slope
    from word to word (flat bands would cut each line into pieces), cut out at its
    own slope, upright, and its polygon is turned with it."""
    rng = np.random.default_rng(3)
    page = np.full((1100, 1240), 255, np.uint8)
    truth = []
    for k in range(8):
        strip = np.full((90, 1100), 255, np.uint8)
        x = 10
        while x < 950:
            word = "".join(rng.choice(list("abcdefghilmnoprstuv"), int(rng.integers(3, 8))))
            cv2.putText(strip, word, (x, 60), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.3, 0, 2,
                        cv2.LINE_AA)
            x += cv2.getTextSize(word, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.3, 2)[0][0] + 22
        angle = 4.0 if k % 2 else -4.0
        matrix = cv2.getRotationMatrix2D((550, 45), angle, 1.0)
        ys, xs = np.nonzero(strip < 128)
        corners = np.array([[xs.min(), ys.min(), 1], [xs.max(), ys.min(), 1],
                            [xs.max(), ys.max(), 1], [xs.min(), ys.max(), 1]], np.float64)
        strip = cv2.warpAffine(strip, matrix, (1100, 90 + 80), borderValue=255)
        top = 40 + 125 * k
        region = page[top:top + strip.shape[0], 70:70 + strip.shape[1]]
        np.minimum(region, strip[:region.shape[0]], out=region)
        truth.append(corners @ matrix.T + [70, top])  # the turned rectangle of its ink
    lines = segment_page(page)
    match = match_lines([line.polygon for line in lines], truth, min_iou=0.5)
    assert (match.found, len(match.pairs)) == (8, 8)
    for k, line in enumerate(lines):
        assert abs(estimate_skew(ink_mask(line.image))) <= 0.5
        assert line.image.shape[0] < 110  # one line (a line and a half at most)
        # The crop's rows run along the line on the page (rotated counter-clockwise
        # by a positive angle, a line rises: y falls as x grows).
        height, width = line.image.shape
        (x0, x1), (y0, y1) = line.to_page @ [[0, width], [height / 2] * 2, [1, 1]]
        slope = -np.tan(np.radians(4.0 if k % 2 else -4.0))
        assert abs((y1 - y0) / (x1 - x0) - slope) < np.tan(np.radians(1.0))


def _print_and_handwriting_page():
    """Two lines of small printed type (a form's instructions) above six lines of
    letters three times their size, each letter apart as in hand-printed writing:
    the truth boxes of both kinds."""
    rng = np.random.default_rng(5)
    page = np.full((1000, 1240), 255, np.uint8)
    printed, written = [], []
    for k, top in enumerate((40, 62)):
        text = "I have read the conditions of participation and agree to them; " * 2
        cv2.putText(page, text[:110 - 9 * k], (60, top), cv2.FONT_HERSHEY_SIMPLEX, 0.42, 0, 1,
                    cv2.LINE_AA)
        printed.append(np.array([[60, top - 10], [1180, top - 10], [1180, top + 3],
                                 [60, top + 3]]))
    for k in range(6):
        base, x = 190 + 120 * k, 60
        while x < 1000:
            word = "".join(rng.choice(list("abcdefghilmnoprstuv"), int(rng.integers(3, 8))))
            cv2.putText(page, word, (x, base), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.3, 0, 2,
                        cv2.LINE_AA)
            x += cv2.getTextSize(word, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.3, 2)[0][0] + 22
        written.append(np.array([[60, base - 40], [x - 22, base - 40], [x - 22, base + 15],
                                 [60, base + 15]]))
    return page, printed, written


def test_lines_of_small_print_are_left_out():
    """A handwriting recogniser should not read a form's printed instructions: lines
    of small, dense, even type are dropped; the lines of letters at the page's own
    size stay, though their letters stand apart as printed ones do."""
    page, printed, written = _print_and_handwriting_page()
    lines = segment_page(page)
    assert match_lines([line.polygon for line in lines], written).recall == 1.0
    assert len(lines) == len(written)
    kept = segment_page(page, SegmentConfig(skip_print=False))
    assert len(kept) > len(lines)  # the print is found as lines when asked for
    assert match_lines([line.polygon for line in kept], written).recall == 1.0


def test_a_real_page_loses_its_printed_consent_and_keeps_its_handwriting(shared_data):
    """Copiste val page wikitexte_0280: two printed lines of consent above 18
    handwritten lines (all in its ALTO); the print is not in the ground truth."""
    from lxml import etree

    from mdrnn.datasets.alto import line_points
    from mdrnn.datasets.imageio import load_image
    from mdrnn.datasets.page import parse_xml

    xml = shared_data / "copiste" / "val" / "wikitexte_0280.xml"
    root = parse_xml(xml)
    ns = etree.QName(root).namespace
    truth = [line_points(line, ns, xml, line.get("ID", ""))
             for line in root.iter(f"{{{ns}}}TextLine")]
    image = load_image(xml.with_suffix(".jpg"))
    lines = segment_page(image)
    match = match_lines([line.polygon for line in lines], truth)
    assert (len(truth), match.found, len(match.pairs)) == (18, 18, 18)
    with_print = segment_page(image, SegmentConfig(skip_print=False))
    assert len(with_print) == 19 and with_print[0].bbox[1] < lines[0].bbox[1]
