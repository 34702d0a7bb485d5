"""Batch preprocessing of image files for `mdrnn preprocess`.

Inputs are files, folders (searched recursively for images) and glob patterns.
Every output is written to a temporary name in its final folder and renamed
into place, so an interrupted run leaves no half-written file; a run started
again skips the inputs whose outputs are complete (the PNG of a line image, the
JSON of a page, written after its line images).

Layout under the output folder, for an input with output name NAME (its path
relative to the input folder given, without suffix):

- line images: NAME.png, the normalised line (8-bit, dark ink on light paper);
- pages (`--pages`): NAME/NAME_l001.png ... one normalised image per line in
  reading order, and NAME.json with the page size and each line's image,
  bounding box and polygon in page pixel coordinates.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

import cv2
import numpy as np

from mdrnn.errors import InputError
from mdrnn.pipelines.atomic import atomic_write
from mdrnn.pipelines.imageio import load_image
from mdrnn.pipelines.preprocess import PreprocessConfig, normalise_line
from mdrnn.pipelines.segment import SegmentConfig, segment_page

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pbm", ".pgm",
                            ".ppm", ".pnm", ".webp", ".gif"})


@dataclass(frozen=True)
class Job:
    """One input file and the name of its outputs.

    Args:
        source: the input image.
        name: output path relative to the output folder, without suffix.
    """

    source: Path
    name: PurePath


@dataclass(frozen=True)
class JobResult:
    """What became of one job.

    Args:
        job: the job.
        status: "done", "skipped" (outputs complete from an earlier run) or "failed".
        message: for a failure, one line naming the file and the reason.
        lines: line images written.
    """

    job: Job
    status: str
    message: str = ""
    lines: int = 0


def collect_jobs(inputs: Sequence[str]) -> list[Job]:
    """Expand files, folders and glob patterns into jobs, in the order given.

    A folder contributes its image files (by suffix, recursively), named by
    their path inside it; a pattern contributes the image files it matches,
    named by their path below the pattern's fixed folders. A file given by name
    is taken whatever its suffix, named by its stem. A path that does not exist
    becomes a job that fails with "no such file". Repeated files are dropped;
    outputs that would share a name get the input's suffix, then a number.

    Args:
        inputs: paths and patterns as typed.
    """
    found: list[tuple[Path, PurePath]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            found += [(p, p.relative_to(path).with_suffix("")) for p in files]
        elif path.exists() or not any(ch in item for ch in "*?["):
            found.append((path, PurePath(path.stem)))
        else:
            root = _glob_root(item)
            matches = [Path(p) for p in sorted(glob.glob(item, recursive=True))]
            images = [p for p in matches if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
            found += [(p, p.relative_to(root).with_suffix("")) for p in images] or [
                (path, PurePath(path.stem))]
    seen, unique = set(), []
    for source, name in found:
        key = os.path.abspath(source)
        if key not in seen:
            seen.add(key)
            unique.append((source, name))
    return _distinct_names(unique)


def _glob_root(pattern: str) -> Path:
    """The folders of a pattern before its first wildcard: `a/b/*/c*.png` -> `a/b`."""
    fixed = []
    for part in Path(pattern).parts[:-1]:
        if any(ch in part for ch in "*?["):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _distinct_names(found: list[tuple[Path, PurePath]]) -> list[Job]:
    """Jobs with distinct output names: shared names get the suffix, then a number."""
    counts = Counter(name for _, name in found)
    renamed = [(s, n if counts[n] == 1 else n.with_name(f"{n.name}_{s.suffix.lstrip('.')}"))
               for s, n in found]
    taken: Counter = Counter()
    jobs = []
    for source, name in renamed:
        taken[name] += 1
        if taken[name] > 1:
            name = name.with_name(f"{name.name}_{taken[name]}")
        jobs.append(Job(source, name))
    return jobs


def run_job(job: Job, out: Path, config: PreprocessConfig,
            segment: SegmentConfig | None = None, overwrite: bool = False) -> JobResult:
    """Preprocess one input into `out`; a bad input becomes a failed result, not an error.

    Args:
        job: the input and its output name.
        out: output folder.
        config: line preprocessing.
        segment: segment pages with these settings, or None for line images.
        overwrite: redo inputs whose outputs exist.
    """
    final = out / (str(job.name) + (".json" if segment else ".png"))
    if final.exists() and not overwrite:
        return JobResult(job, "skipped")
    try:
        image = load_image(job.source)
        if segment is None:
            write_png(final, normalise_line(image, config))
            return JobResult(job, "done", lines=1)
        return JobResult(job, "done", lines=_write_page(job, out, image, config, segment))
    except InputError as exc:
        return JobResult(job, "failed", str(exc))
    except (cv2.error, MemoryError, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return JobResult(job, "failed", f"{job.source}: {reason}")


def _write_page(job: Job, out: Path, image: np.ndarray, config: PreprocessConfig,
                segment: SegmentConfig) -> int:
    """Segment a page and write its line images, then its JSON."""
    folder = out / job.name
    if folder.is_dir():
        stale = re.compile(re.escape(job.name.name) + r"_l\d+\.png")
        for path in folder.iterdir():
            if stale.fullmatch(path.name):
                path.unlink()  # lines of an earlier run, perhaps more of them
    records = []
    for index, line in enumerate(segment_page(image, segment), start=1):
        path = folder / f"{job.name.name}_l{index:03d}.png"
        write_png(path, normalise_line(line.image, config))
        records.append({"image": path.relative_to(out).as_posix(), **line.to_dict()})
    page = {"source": str(job.source), "width": int(image.shape[1]),
            "height": int(image.shape[0]), "preprocess": config.to_dict(), "lines": records}
    atomic_write(out / (str(job.name) + ".json"),
                 (json.dumps(page, indent=1) + "\n").encode("utf-8"))
    return len(records)


def write_png(path: Path, image: np.ndarray) -> None:
    """Write an image as PNG, atomically."""
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"cannot encode {path.name} as PNG")
    atomic_write(path, data.tobytes())
