"""The preprocessing job of `mdrnn preprocess`: image files and transcribed lines to PNG.

Inputs are expanded as for transcription (`mdrnn.pipelines.inputs`): files,
folders (searched recursively for images), glob patterns and list files.
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
- transcribed lines of a data source (`alto:PATH`, `page:PATH`): PAGE/LINE.png and
  PAGE/LINE.gt.txt per line (the sample id as a path), a line folder to train on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

import cv2
import numpy as np

from mdrnn.datasets.charset import TOKEN_SEPARATOR
from mdrnn.datasets.formats import open_source
from mdrnn.datasets.imageio import load_image
from mdrnn.datasets.samples import Sample
from mdrnn.errors import InputError
from mdrnn.pipelines.atomic import atomic_write
from mdrnn.pipelines.inputs import InputFile, check_unique_names, expand_inputs
from mdrnn.pipelines.preprocess import normalise_line
from mdrnn.pipelines.preprocess_config import PreprocessConfig
from mdrnn.pipelines.segment import SegmentConfig, segment_page


@dataclass(frozen=True)
class JobResult:
    """What became of one job.

    Args:
        job: the input file and its output name.
        status: "done", "skipped" (outputs complete from an earlier run) or "failed".
        message: for a failure, one line naming the file and the reason.
        lines: line images written.
    """

    job: InputFile
    status: str
    message: str = ""
    lines: int = 0


def run_job(job: InputFile, out: Path, config: PreprocessConfig,
            segment: SegmentConfig | None = None, overwrite: bool = False) -> JobResult:
    """Preprocess one input into `out`; a bad input becomes a failed result, not an error.

    Args:
        job: the input file and its output name (see `mdrnn.pipelines.inputs`).
        out: output folder.
        config: line preprocessing.
        segment: segment pages with these settings, or None for line images.
        overwrite: redo inputs whose outputs exist.
    """
    final = out / (job.name + (".json" if segment else ".png"))
    if final.exists() and not overwrite:
        return JobResult(job, "skipped")
    try:
        image = load_image(job.path)
        if segment is None:
            write_png(final, normalise_line(image, config))
            return JobResult(job, "done", lines=1)
        return JobResult(job, "done", lines=_write_page(job, out, image, config, segment))
    except InputError as exc:
        return JobResult(job, "failed", str(exc))
    except (cv2.error, MemoryError, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return JobResult(job, "failed", f"{job.path}: {reason}")


def _write_page(job: InputFile, out: Path, image: np.ndarray, config: PreprocessConfig,
                segment: SegmentConfig) -> int:
    """Segment a page and write its line images, then its JSON."""
    folder = out / job.name
    if folder.is_dir():
        stale = re.compile(re.escape(PurePath(job.name).name) + r"_l\d+\.png")
        for path in folder.iterdir():
            if stale.fullmatch(path.name):
                path.unlink()  # lines of an earlier run, perhaps more of them
    records = []
    for index, line in enumerate(segment_page(image, segment), start=1):
        path = folder / f"{PurePath(job.name).name}_l{index:03d}.png"
        write_png(path, normalise_line(line.image, config))
        records.append({"image": path.relative_to(out).as_posix(), **line.to_dict()})
    page = {"source": str(job.path), "width": int(image.shape[1]),
            "height": int(image.shape[0]), "preprocess": config.to_dict(), "lines": records}
    atomic_write(out / (job.name + ".json"),
                 (json.dumps(page, indent=1) + "\n").encode("utf-8"))
    return len(records)


def write_png(path: Path, image: np.ndarray) -> None:
    """Write an image as PNG, atomically."""
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"cannot encode {path.name} as PNG")
    atomic_write(path, data.tobytes())


def _safe_name(sample_id: str) -> str:
    # Ids come from files (XML ids, file stems): never let one leave the output folder.
    parts = [re.sub(r"[^\w.-]", "_", part) for part in sample_id.split("/")]
    return "/".join("_" if part in ("", ".", "..") else part for part in parts)


def write_samples(samples, out: Path, config: PreprocessConfig,
                  overwrite: bool = False) -> list[JobResult]:
    """Preprocess transcribed lines into a line folder: ID.png and ID.gt.txt per sample.

    The transcription is written after the image, so a line whose .gt.txt exists is
    complete and is skipped by a re-run unless `overwrite`.
    """
    results = []
    for sample in samples:
        name = _safe_name(sample.id)
        job = InputFile(Path(sample.name), name)
        text = sample.text if isinstance(sample.text, str) else TOKEN_SEPARATOR.join(sample.text)
        gt = out / (name + ".gt.txt")
        if gt.exists() and not overwrite:
            results.append(JobResult(job, "skipped"))
            continue
        try:
            write_png(out / (name + ".png"), normalise_line(sample.load(), config))
            atomic_write(gt, (text + "\n").encode("utf-8"))
            results.append(JobResult(job, "done", lines=1))
        except InputError as exc:
            results.append(JobResult(job, "failed", str(exc)))
        except (cv2.error, MemoryError, OSError, ValueError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            results.append(JobResult(job, "failed", f"{sample.name}: {reason}"))
    return results


def plan_inputs(inputs: Sequence[str]) -> tuple[list[InputFile], list[Sample]]:
    """Split INPUTS into image files to preprocess and transcribed lines of data
    sources (``alto:PATH``, ``page:PATH``; a path that exists is a file even if it
    looks like one).

    Raises:
        InputError: an input that matches nothing, two outputs of one name, or an
            unreadable source.
    """
    sources = [i for i in inputs if i.split(":", 1)[0] in ("alto", "page")
               and not Path(i).exists()]
    files = [i for i in inputs if i not in sources]
    jobs = expand_inputs(files) if files else []
    check_unique_names(jobs)
    return jobs, [s for source in sources for s in open_source(source)]


def preprocess_files(jobs: Sequence[InputFile], samples: Sequence[Sample], out: Path,
                     config: PreprocessConfig, *, pages: bool = False,
                     overwrite: bool = False,
                     progress: Callable[[int], None] | None = None) -> list[JobResult]:
    """Preprocess the lines of `samples` and the image files of `jobs` (line images,
    or page scans whose lines are found first with `pages`) into `out`; one result
    per sample and per job, failures included (the job goes on)."""
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # failures are reported
    results = write_samples(samples, out, config, overwrite)
    segment = SegmentConfig() if pages else None
    for job in jobs:
        results.append(run_job(job, out, config, segment, overwrite))
        if progress is not None:
            progress(1)
    return results
