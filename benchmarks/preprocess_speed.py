"""Time line preprocessing and page segmentation; score line detection; print tables.

Line preprocessing: lines per second of `preprocess_line` (one thread of Python;
OpenCV may use more) with the default config and with every step on, for
- real handwritten digit strings (7 MNIST digits, 28 px high), the training data;
- line images cut from synthetic A4 pages at 300 dpi (about 2000 x 70 px), what
  transcription of page scans feeds it;
- the IFN/ENIT word scans in ../shared/data, read from file (when present).

Page segmentation: milliseconds of `segment_page` per synthetic A4 page at 300 dpi
(2480 x 3508): one and two columns, skewed up to 5 degrees both ways, noise, a
dark scan edge, tight lines that touch on every third page, one inverted page;
and the line detection precision and recall at IoU >= 0.5 over those pages and
over a set made the same way at 150 dpi.

    python benchmarks/preprocess_speed.py --pages 8
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from mdrnn.datasets.imageio import load_image
from mdrnn.pipelines.preprocess import preprocess_line
from mdrnn.pipelines.preprocess_config import PreprocessConfig
from mdrnn.pipelines.segment import segment_page
from mdrnn.pipelines.segment_eval import match_lines, render_page

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "datasets" / "data" / "mnist_digits_8k.npz"
IFNENIT = ROOT.parent / "shared" / "data" / "ifnenit_samples"
A4_300DPI, A4_150DPI = (2480, 3508), (1240, 1754)
CONFIGS = {
    "default": PreprocessConfig(),
    "all steps": PreprocessConfig(median=3, binarise="sauvola", min_component=4, deskew=True,
                                  slant=True),
}


def digit_lines(count: int, seed: int = 0) -> list[np.ndarray]:
    """Strings of 7 real handwritten digits, dark on light (as the data layer makes them)."""
    images = np.load(DIGITS)["images"]
    rng = np.random.default_rng(seed)
    return [255 - np.hstack(images[rng.choice(len(images), 7, replace=False)])
            for _ in range(count)]


def lines_per_second(lines, config: PreprocessConfig, load: bool = False) -> float:
    """Median over 3 passes of lines per second; `lines` are arrays or files when `load`."""
    rates = []
    for _ in range(3):
        start = time.perf_counter()
        for line in lines:
            preprocess_line(load_image(line) if load else line, config)
        rates.append(len(lines) / (time.perf_counter() - start))
    return statistics.median(rates)


def page_sets(count: int, seed: int = 1):
    """Pages at 300 dpi (timed and scored) and at 150 dpi (scored), each set mixing one
    and two columns, skew up to 5 degrees both ways, noise, tight lines that touch
    (every third page) and an inverted page (the sixth)."""
    rng = np.random.default_rng(seed)
    return [[render_page(rng, size, columns=1 + i % 2, skew=float(rng.uniform(-5, 5)),
                         tight=i % 3 == 0, inverted=i == 5) for i in range(count)]
            for size in (A4_300DPI, A4_150DPI)]


def score(pages, results) -> tuple[float, float, int]:
    """Precision, recall (IoU >= 0.5) and the number of true lines over a set of pages."""
    matched = found = true = 0
    for page, lines in zip(pages, results, strict=True):
        match = match_lines([line.polygon for line in lines], page.lines)
        matched, found, true = matched + len(match.pairs), found + match.found, true + match.true
    return matched / max(found, 1), matched / max(true, 1), true


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=8, help="pages per set [8]")
    parser.add_argument("--lines", type=int, default=300, help="digit lines timed [300]")
    args = parser.parse_args()

    fine, coarse = page_sets(args.pages)
    segment_page(fine[1].image)  # warm-up: first calls of OpenCV functions
    times, fine_results = [], []
    for page in fine:
        start = time.perf_counter()
        fine_results.append(segment_page(page.image))
        times.append(1000 * (time.perf_counter() - start))
    coarse_results = [segment_page(page.image) for page in coarse]
    cut_lines = [line.image for lines in fine_results[1:3] for line in lines]

    print("# Preprocessing and page segmentation speed")
    print(f"# {datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"nproc={os.cpu_count()}, OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads), "
          f"load average {os.getloadavg()[0]:.1f}")
    print()
    digits = digit_lines(args.lines)
    width = int(np.median([c.shape[1] for c in cut_lines]))
    height = int(np.median([c.shape[0] for c in cut_lines]))
    rows = [(f"MNIST digit strings ({len(digits)}), {digits[0].shape[0]}x{digits[0].shape[1]}",
             digits, False),
            (f"lines cut from 300-dpi pages ({len(cut_lines)}), ~{height}x{width}", cut_lines,
             False)]
    scans = sorted(IFNENIT.glob("*.tif")) if IFNENIT.is_dir() else []
    if scans:
        rows.append((f"IFN/ENIT word scans ({len(scans)}), read from file", scans, True))
    table("line preprocessing, lines/s", ["default", "all steps"],
          [(name, [f"{lines_per_second(lines, c, load):.0f}" for c in CONFIGS.values()])
           for name, lines, load in rows])
    print()
    fine_p, fine_r, fine_n = score(fine, fine_results)
    coarse_p, coarse_r, coarse_n = score(coarse, coarse_results)
    table("page segmentation", ["value"], [
        (f"A4 at 300 dpi (2480x3508), median ms of {len(times)} pages",
         [f"{statistics.median(times):.0f}"]),
        ("A4 at 300 dpi, slowest page, ms", [f"{max(times):.0f}"]),
        (f"300 dpi, {fine_n} lines: precision at IoU >= 0.5", [f"{fine_p:.3f}"]),
        (f"300 dpi, {fine_n} lines: recall at IoU >= 0.5", [f"{fine_r:.3f}"]),
        (f"150 dpi, {coarse_n} lines: precision at IoU >= 0.5", [f"{coarse_p:.3f}"]),
        (f"150 dpi, {coarse_n} lines: recall at IoU >= 0.5", [f"{coarse_r:.3f}"]),
    ])


def table(title: str, columns: list[str], rows: list[tuple[str, list[str]]]) -> None:
    """Print a Markdown table with right-aligned value columns."""
    width = max(len(title), *(len(name) for name, _ in rows))
    sizes = [max(len(c), *(len(v[i]) for _, v in rows)) for i, c in enumerate(columns)]

    def cells(values):
        return " | ".join(f"{v:>{n}}" for v, n in zip(values, sizes, strict=True))

    print(f"| {title:<{width}} | {cells(columns)} |")
    print(f"|{'-' * (width + 2)}|" + "|".join("-" * (n + 1) + ":" for n in sizes) + "|")
    for name, values in rows:
        print(f"| {name:<{width}} | {cells(values)} |")


if __name__ == "__main__":
    main()
