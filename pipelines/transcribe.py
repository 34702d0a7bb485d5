"""Batch transcription jobs: many image files in, one result per file out to a writer.

`transcribe_files` streams through the input files, reads them (and, for page
scans, finds their lines with `segment_page`), preprocesses the lines and
recognises them with a `Recognizer` in windows of a few batches, sorted by
width within each window; it hands each file's result to a writer in input
order. Memory holds one window of lines, never the whole job. A file that
cannot be read is reported with its reason and the job goes on.

Its two steps are public for other engines (`mdrnn.pipelines.beam_job` runs the
same job on Apache Beam): `load_input` reads and prepares one input, `assemble`
makes its transcription from its lines' results. The recogniser itself lives in
`mdrnn.pipelines.recognizer`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mdrnn.datasets.imageio import load_image
from mdrnn.errors import InputError
from mdrnn.pipelines.geometry import ColumnMap, estimate_baseline
from mdrnn.pipelines.inputs import InputFile
from mdrnn.pipelines.recognizer import WINDOW_BATCHES, LineResult, Recognizer
from mdrnn.pipelines.segment import segment_page

__all__ = ["JobReport", "LoadedInput", "TranscribedLine", "Transcription", "Word", "assemble",
           "line_words", "load_input", "transcribe_files"]


@dataclass(frozen=True, eq=False)
class TranscribedLine:
    """A recognised line and where it lies in its input image.

    Args:
        result: the text and confidences.
        polygon: (N, 2) int (x, y) corners in the input image.
        bbox: (x0, y0, x1, y1), ends exclusive.
        baseline: (M, 2) int (x, y) points of the baseline in the input image, left to
            right, or None where no ink was found.
        char_spans: per symbol of the text, the columns [x0, x1) of the input image
            it was read from (`LineResult.char_columns` mapped back through the
            preprocessing); None where preprocessing does not keep columns (deskew,
            slant).
    """

    result: LineResult
    polygon: np.ndarray
    bbox: tuple[int, int, int, int]
    baseline: np.ndarray | None = None
    char_spans: tuple[tuple[int, int], ...] | None = None

    def to_dict(self) -> dict:
        """Text, confidences and coordinates as JSON values."""
        baseline = None if self.baseline is None else np.asarray(self.baseline).tolist()
        out = {**self.result.to_dict(), "bbox": [int(v) for v in self.bbox],
               "polygon": np.asarray(self.polygon).astype(int).tolist(), "baseline": baseline}
        if self.char_spans is not None:
            out["char_spans"] = [list(span) for span in self.char_spans]
        return out


@dataclass(frozen=True)
class Word:
    """A word of a line (the symbols between spaces) and where it was read.

    Args:
        text: its symbols, NFC.
        span: the input image's columns [x0, x1) from its first symbol's to its last's.
        confidence: the mean of its symbols' confidences.
        glyphs: per symbol, (symbol, (x0, x1), confidence).
    """

    text: str
    span: tuple[int, int]
    confidence: float
    glyphs: tuple[tuple[str, tuple[int, int], float], ...]


def line_words(line: TranscribedLine) -> list[Word] | None:
    """The words of a line with their columns; None where the symbols' columns are
    not known, or where the text is not its symbols joined (token charsets)."""
    result = line.result
    symbols, spans = result.symbols, line.char_spans
    if spans is None or result.char_confidences is None or \
            unicodedata.normalize("NFC", "".join(symbols)) != result.text:
        return None
    words, current = [], []
    for glyph in (*zip(symbols, spans, result.char_confidences, strict=True), (" ", None, 0)):
        if glyph[0] != " ":
            current.append(glyph)
        elif current:
            words.append(Word(unicodedata.normalize("NFC", "".join(g[0] for g in current)),
                              (current[0][1][0], current[-1][1][1]),
                              float(np.mean([g[2] for g in current])), tuple(current)))
            current = []
    return words


@dataclass(frozen=True, eq=False)
class Transcription:
    """What was read in one input file: one line for a line image, a page's lines in reading order.

    Args:
        item: the input file and its output name.
        width: image width in pixels.
        height: image height in pixels.
        lines: the recognised lines.
        is_page: whether the input was segmented as a page.
    """

    item: InputFile
    width: int
    height: int
    lines: tuple[TranscribedLine, ...]
    is_page: bool

    @property
    def text(self) -> str:
        """The lines' texts joined by newlines."""
        return "\n".join(line.result.text for line in self.lines)

    @property
    def confidence(self) -> float | None:
        """The mean of the lines' confidences; None for a page without lines."""
        if not self.lines:
            return None
        return float(np.mean([line.result.confidence for line in self.lines]))


@dataclass
class JobReport:
    """Counts of a transcription job and its failures, (input path, reason) in input order."""

    total: int
    done: int = 0
    skipped: int = 0
    failures: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class LoadedInput:
    """One input read and cut into prepared lines, or the reason it could not be.

    Args:
        item: the input file.
        size: its (width, height).
        geometry: per line, (polygon, bbox, baseline, ColumnMap, crop width).
        lines: the prepared lines (`Recognizer.prepare`).
        error: a one-line reason naming the file, or None.
    """

    item: InputFile
    size: tuple[int, int] = (0, 0)
    geometry: list[tuple] = field(default_factory=list)
    lines: list[np.ndarray] = field(default_factory=list)
    error: str | None = None


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _baseline(crop: np.ndarray, to_page: np.ndarray) -> np.ndarray | None:
    """A straight baseline in input coordinates, from a line crop and the 2x3 affine
    map of its pixels to the input's (sloped where the crop was cut at a slope)."""
    found = estimate_baseline(crop)
    if found is None:
        return None
    row, start, end = found
    ends = np.array([[start, row, 1.0], [end, row, 1.0]]) @ np.asarray(to_page).T
    return np.rint(ends).astype(np.int32)


def _char_spans(result: LineResult, columns: ColumnMap | None, crop_width: int,
                bbox: tuple) -> tuple[tuple[int, int], ...] | None:
    """The input-image columns of each symbol, from its columns in the prepared line of
    a crop `crop_width` wide that fills `bbox`."""
    if columns is None or result.char_columns is None:
        return None
    x0, _, x1, _ = bbox
    scale = (x1 - x0) / max(crop_width, 1)
    spans = []
    for a, b in (columns.to_image(*c) for c in result.char_columns):
        spans.append((min(max(x0 + round(a * scale), x0), x1),
                      min(max(x0 + round(b * scale), x0), x1)))
    return tuple(spans)


def load_input(item: InputFile, prepare: Callable, pages: bool) -> LoadedInput:
    """Read, segment (pages) and preprocess one input; errors become its `error`.

    `prepare` is `Recognizer.prepare` or any callable of the same signature.
    """
    try:
        image = load_image(item.path)
        height, width = image.shape
        if pages:
            found = segment_page(image)
            geometry = [(line.polygon, line.bbox, _baseline(line.image, line.to_page))
                        for line in found]
            crops = [line.image for line in found]
        else:
            box = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.int32)
            bbox = (0, 0, width, height)
            whole = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
            geometry, crops = [(box, bbox, _baseline(image, whole))], [image]
        del image
        prepared = [prepare(c, columns=True) for c in crops]
        geometry = [(*where, columns, crop.shape[1])
                    for where, (_, columns), crop in zip(geometry, prepared, crops, strict=True)]
        return LoadedInput(item, (width, height), geometry, [line for line, _ in prepared])
    except InputError as error:
        return LoadedInput(item, error=str(error))
    except (ValueError, cv2.error) as error:
        return LoadedInput(item, error=f"{item.path}: {_one_line(error)}")


def assemble(loaded: LoadedInput, results: Sequence[LineResult], pages: bool) -> Transcription:
    """The transcription of a loaded input from its lines' results, in line order."""
    lines = tuple(TranscribedLine(result, polygon, bbox, baseline,
                                  _char_spans(result, columns, crop_width, bbox))
                  for (polygon, bbox, baseline, columns, crop_width), result
                  in zip(loaded.geometry, results, strict=True))
    return Transcription(loaded.item, *loaded.size, lines, pages)


def transcribe_files(recognizer: Recognizer, files: Sequence[InputFile], writer, *,
                     pages: bool = False, window: int | None = None,
                     progress: Callable[[int], None] | None = None,
                     on_failure: Callable[[Path, str], None] | None = None) -> JobReport:
    """Transcribe image files and write each result, skipping inputs the writer has done.

    Args:
        recognizer: the model and decoder.
        files: the inputs (see `mdrnn.pipelines.inputs.expand_inputs`).
        writer: a writer from `mdrnn.pipelines.writers.open_writer`; its
            ``is_done(item)`` decides what is skipped.
        pages: inputs are page scans, segmented into lines by `segment_page`;
            otherwise each input is one line image.
        window: lines recognised together (sorted by width within it); default
            `WINDOW_BATCHES` batches. Memory grows with it, not with the job.
        progress: called with the number of inputs finished, as they finish.
        on_failure: called with (path, reason) for each input that fails.

    Returns:
        The counts and the failures.
    """
    window = window or WINDOW_BATCHES * recognizer.batch_size
    report = JobReport(len(files))
    pending: list[LoadedInput] = []
    pending_lines = 0

    def flush():
        nonlocal pending_lines
        lines = [line for loaded in pending for line in loaded.lines]
        results = iter(recognizer.recognize_prepared(lines))
        for loaded in pending:
            if loaded.error is not None:
                writer.write_failure(loaded.item, loaded.error)
                report.failures.append((loaded.item.path, loaded.error))
                continue
            writer.write(assemble(loaded, [next(results) for _ in loaded.lines], pages))
            report.done += 1
        if progress is not None and pending:
            progress(len(pending))
        pending.clear()
        pending_lines = 0

    for item in files:
        if writer.is_done(item):
            report.skipped += 1
            if progress is not None:
                progress(1)
            continue
        loaded = load_input(item, recognizer.prepare, pages)
        if loaded.error is not None and on_failure is not None:
            on_failure(item.path, loaded.error)
        pending.append(loaded)
        pending_lines += len(loaded.lines)
        # Inputs without lines (failures, empty pages) count too, so that their
        # records are not held back to the end of a job.
        if max(pending_lines, len(pending)) >= window:
            flush()
    flush()
    return report
