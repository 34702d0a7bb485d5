"""Line finding on real pages: `--pages` against the Copiste val pages' ALTO lines.

For each page of the data (ALTO files with their images), the lines `segment_page`
finds are matched one to one to the ground-truth TextLines by the IoU of their boxes
(>= 0.5), giving precision and recall; then the page is read twice with the model
(greedy): its found lines, and its ground-truth lines; each page's text (lines
joined by newlines) is compared with the truth's, giving the page CER of `--pages`
and of the same model on the true lines. The found lines are joined twice: in
their reading order, and in the truth's (each placed at the true line its box
overlaps most, lines overlapping none last), since the ground truth's own order is
not always the page's (a reference written in the top right corner comes last on
some pages and first on others) and one line out of place costs twice its length.
The `imp_` pages (a pre-printed form whose printed paragraph has no ground truth)
are reported apart.

    python benchmarks/segment_copiste.py [MODEL] [--data ../shared/data/copiste/val]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "copiste" / "val"


def box(points: np.ndarray) -> np.ndarray:
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def in_truth_order(found: list[np.ndarray], boxes: list[np.ndarray]) -> list[int]:
    """The indices of the found boxes, each at the true box it overlaps most."""
    def overlap(a, b):
        (x0, y0), (x1, y1) = np.maximum(a[0], b[0]), np.minimum(a[2], b[2])
        return max(0, x1 - x0) * max(0, y1 - y0)

    keys = []
    for index, box_ in enumerate(found):
        areas = [overlap(box_, true) for true in boxes]
        keys.append((int(np.argmax(areas)) if max(areas, default=0) > 0 else len(boxes), index))
    return [index for _, index in sorted(keys)]


def truth(xml: Path):
    """The page image, the boxes of its TextLines, and its transcribed lines (samples
    cut by their polygons, as `alto:` reads them), in document order."""
    from lxml import etree

    from mdrnn.datasets.alto import _image_path, line_points, read_alto_file
    from mdrnn.datasets.imageio import load_image
    from mdrnn.datasets.page import parse_xml

    root = parse_xml(xml)
    ns = etree.QName(root).namespace
    boxes = [box(line_points(line, ns, xml, line.get("ID", "")))
             for line in root.iter(f"{{{ns}}}TextLine")]
    return load_image(_image_path(xml, root, ns)), boxes, read_alto_file(xml)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="fr-copiste")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()

    from rapidfuzz.distance import Levenshtein

    from mdrnn.pipelines.recognizer import Recognizer
    from mdrnn.pipelines.segment import segment_page
    from mdrnn.pipelines.segment_eval import match_lines
    from mdrnn.zoo import resolve_model

    recognizer = Recognizer.load(resolve_model(args.model))
    groups = {"imp_ pages": [], "other pages": []}
    seconds = 0.0
    for xml in sorted(args.data.glob("*.xml")):
        image, boxes, samples = truth(xml)
        start = time.perf_counter()
        found = segment_page(image)
        seconds += time.perf_counter() - start
        found_boxes = [box(line.polygon) for line in found]
        match = match_lines(found_boxes, boxes)
        read = recognizer.recognize([line.image for line in found])
        moved = [read[i].text for i in in_truth_order(found_boxes, boxes)]
        on_truth = recognizer.recognize([sample.load() for sample in samples])
        reference = "\n".join(sample.text for sample in samples)
        groups["imp_ pages" if xml.name.startswith("imp_") else "other pages"].append({
            "page": xml.stem, "found": match.found, "true": match.true,
            "matched": len(match.pairs),
            "errors": Levenshtein.distance(reference, "\n".join(r.text for r in read)),
            "moved_errors": Levenshtein.distance(reference, "\n".join(moved)),
            "truth_errors": Levenshtein.distance(reference, "\n".join(r.text for r in on_truth)),
            "chars": len(reference)})
    pages = sum(len(rows) for rows in groups.values())
    print(f"# {time.strftime('%Y-%m-%d')}  {args.model} on {args.data}  {pages} pages, "
          f"segmentation {pages / seconds:.2f} pages/s")
    print("| pages | lines found / true | precision | recall | page CER, --pages (reading "
          "order; truth's order) | page CER, true lines |\n|---|--:|--:|--:|--:|--:|")
    for name, rows in groups.items():
        if not rows:
            continue
        found, true, matched = (sum(r[k] for r in rows) for k in ("found", "true", "matched"))
        chars = sum(r["chars"] for r in rows)
        print(f"| {name} ({len(rows)}) | {found} / {true} | {matched / max(found, 1):.3f} | "
              f"{matched / max(true, 1):.3f} | "
              f"{100 * sum(r['errors'] for r in rows) / chars:.2f}%; "
              f"{100 * sum(r['moved_errors'] for r in rows) / chars:.2f}% | "
              f"{100 * sum(r['truth_errors'] for r in rows) / chars:.2f}% |")
    for rows in groups.values():
        for r in rows:
            print(f"#   {r['page']}: {r['matched']} of {r['true']} true lines found "
                  f"({r['found']} found)")


if __name__ == "__main__":
    main()
