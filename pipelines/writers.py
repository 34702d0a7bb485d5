"""Transcription outputs: plain text, JSON lines, PAGE XML 2019 and ALTO 4.2, written crash-safely.

- ``txt``: ``<out>/<name>.txt`` per input, its text (a page's lines, one per line).
- ``page``: ``<out>/<name>.xml`` per input, PAGE XML 2019-07-15: one TextRegion
  holding the lines (for a line image, one line covering the image) with their
  Coords, Baseline, Words and Glyphs (boxes and confidences, where the characters'
  columns are known) and TextEquiv (conf, Unicode). `imageFilename` is the image's path
  relative to the XML file, so `mdrnn.datasets.page.read_page` finds it.
- ``alto``: ``<out>/<name>.xml`` per input, ALTO 4.2 (`mdrnn.pipelines.alto`): the
  lines in reading order with box, polygon, baseline, and words and glyphs with their
  boxes and confidences (WC, GC).
- ``jsonl``: ``<out>/transcriptions.jsonl``, one record per input: ``source``,
  ``text``, ``confidence``, ``char_confidences`` (one per symbol) and,
  ``char_spans`` (each symbol's image columns) and, for pages, ``lines`` with each
  line's text, confidences, ``char_spans``, ``bbox``, ``polygon`` and ``baseline``;
  a failed input gets ``{"source", "error"}``.

Per-input files are written to a temporary name in the same folder, flushed to
disk and renamed, so a file that exists is complete and a re-run skips it.

The JSON-lines file is appended to, one record per write, flushed after each,
so a finished input survives any later crash. A hard kill in the middle of a
write can leave a torn last line; resuming handles that: it reads the existing
file, keeps the complete records without an ``error`` (their sources count as
done, matched by absolute path from the working directory), and if anything is
dropped (a torn tail, error records, so that failed inputs are retried) writes
the kept records to a new file that replaces the old one, before appending.
``overwrite`` starts from an empty file instead.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import numpy as np
from lxml import etree

import mdrnn
from mdrnn.pipelines.alto import alto_xml
from mdrnn.pipelines.atomic import atomic_path, atomic_write
from mdrnn.pipelines.recognizer import confidence_text
from mdrnn.pipelines.transcribe import line_words

FORMATS = ("txt", "jsonl", "page", "alto")
JSONL_NAME = "transcriptions.jsonl"
PAGE_NAMESPACE = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"


class _FileWriter:
    """Writers of one output file per input; done means the file exists."""

    suffix = ""

    def __init__(self, out_dir: str | Path, *, overwrite: bool = False):
        self.out_dir, self.overwrite = Path(out_dir), overwrite

    def output_path(self, item) -> Path:
        """Where an input's output goes: `<out>/<name><suffix>`."""
        return self.out_dir / (item.name + self.suffix)

    def is_done(self, item) -> bool:
        return not self.overwrite and self.output_path(item).is_file()

    def write_failure(self, item, reason: str) -> None:
        """Nothing is written for a failed input: no file means not done."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class TextWriter(_FileWriter):
    """`<out>/<name>.txt`: the text, a page's lines one per line, ending in a newline."""

    suffix = ".txt"

    def write(self, transcription) -> None:
        text = transcription.text
        atomic_write(self.output_path(transcription.item),
                     (text + "\n" if text else "").encode("utf-8"))


def _points(polygon, width: int, height: int) -> str:
    # PAGE points run from 0,0 to imageWidth,imageHeight (pixel corners).
    points = np.clip(np.asarray(polygon, dtype=np.int64), 0, [width, height])
    return " ".join(f"{x},{y}" for x, y in points)


def _text_equiv(parent, text: str, confidence: float | None) -> None:
    equiv = etree.SubElement(parent, f"{{{PAGE_NAMESPACE}}}TextEquiv")
    if confidence is not None:
        equiv.set("conf", confidence_text(confidence, 6))
    etree.SubElement(equiv, f"{{{PAGE_NAMESPACE}}}Unicode").text = text


def _box_points(x0: int, x1: int, bbox, size) -> str:
    _, y0, _, y1 = bbox
    return _points([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], *size)


def _word(line_element, word, word_id: str, bbox, size) -> None:
    """A Word with its box, a Glyph per character and their confidences."""
    ns = PAGE_NAMESPACE
    element = etree.SubElement(line_element, f"{{{ns}}}Word", id=word_id)
    etree.SubElement(element, f"{{{ns}}}Coords", points=_box_points(*word.span, bbox, size))
    for position, (symbol, span, confidence) in enumerate(word.glyphs, 1):
        glyph = etree.SubElement(element, f"{{{ns}}}Glyph", id=f"{word_id}_g{position}")
        etree.SubElement(glyph, f"{{{ns}}}Coords", points=_box_points(*span, bbox, size))
        _text_equiv(glyph, symbol, confidence)
    _text_equiv(element, word.text, word.confidence)


def page_xml(transcription, image_filename: str, created: datetime.datetime | None = None
             ) -> bytes:
    """A transcription as a PAGE XML 2019-07-15 document (UTF-8 bytes).

    Args:
        transcription: a `mdrnn.pipelines.transcribe.Transcription`.
        image_filename: the value of Page/@imageFilename.
        created: the Metadata timestamps; default now (UTC).
    """
    ns = PAGE_NAMESPACE
    created = created or datetime.datetime.now(datetime.timezone.utc)
    stamp = created.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    root = etree.Element(f"{{{ns}}}PcGts", nsmap={None: ns, "xsi": _XSI})
    root.set(f"{{{_XSI}}}schemaLocation", f"{ns} {ns}/pagecontent.xsd")
    meta = etree.SubElement(root, f"{{{ns}}}Metadata")
    etree.SubElement(meta, f"{{{ns}}}Creator").text = f"mdrnn {mdrnn.__version__}"
    etree.SubElement(meta, f"{{{ns}}}Created").text = stamp
    etree.SubElement(meta, f"{{{ns}}}LastChange").text = stamp
    width, height = transcription.width, transcription.height
    page = etree.SubElement(root, f"{{{ns}}}Page", imageFilename=image_filename,
                            imageWidth=str(width), imageHeight=str(height))
    lines = transcription.lines
    if lines:
        region = etree.SubElement(page, f"{{{ns}}}TextRegion", id="r1", type="paragraph")
        x0, y0 = (min(line.bbox[i] for line in lines) for i in (0, 1))
        x1, y1 = (max(line.bbox[i] for line in lines) for i in (2, 3))
        etree.SubElement(region, f"{{{ns}}}Coords",
                         points=_points([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], width, height))
        for number, line in enumerate(lines, 1):
            element = etree.SubElement(region, f"{{{ns}}}TextLine", id=f"r1_l{number}")
            etree.SubElement(element, f"{{{ns}}}Coords",
                             points=_points(line.polygon, width, height))
            if line.baseline is not None:
                etree.SubElement(element, f"{{{ns}}}Baseline",
                                 points=_points(line.baseline, width, height))
            for index, word in enumerate(line_words(line) or (), 1):
                _word(element, word, f"r1_l{number}_w{index}", line.bbox, (width, height))
            _text_equiv(element, line.result.text, line.result.confidence)
        _text_equiv(region, transcription.text, transcription.confidence)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


class PageWriter(_FileWriter):
    """`<out>/<name>.xml`: PAGE XML 2019 (see `page_xml`)."""

    suffix = ".xml"

    def write(self, transcription) -> None:
        path = self.output_path(transcription.item)
        image = Path(os.path.abspath(transcription.item.path))
        try:
            filename = Path(os.path.relpath(image, os.path.abspath(path.parent))).as_posix()
        except ValueError:  # another drive on Windows: no relative path exists
            filename = image.as_posix()
        atomic_write(path, page_xml(transcription, filename))


class AltoWriter(_FileWriter):
    """`<out>/<name>.xml`: ALTO 4.2 (see `mdrnn.pipelines.alto.alto_xml`).

    The image is named by its file name alone, as eScriptorium exports it: put the
    XML files beside their images to import them (eScriptorium, kraken, `alto:`).
    """

    suffix = ".xml"

    def write(self, transcription) -> None:
        atomic_write(self.output_path(transcription.item),
                     alto_xml(transcription, Path(transcription.item.path).name))


def _record(transcription) -> dict:
    record = {"source": str(transcription.item.path)}
    if transcription.is_page:
        confidence = transcription.confidence
        record.update(text=transcription.text,
                      confidence=None if confidence is None else float(
                          confidence_text(confidence, 6)),
                      lines=[line.to_dict() for line in transcription.lines])
    else:
        line = transcription.lines[0]
        record.update(line.result.to_dict())
        if line.char_spans is not None:
            record["char_spans"] = [list(span) for span in line.char_spans]
    return record


class JsonlWriter:
    """One JSON record per input in one file, resumable (see the module docstring).

    Args:
        path: the .jsonl file.
        overwrite: start from an empty file rather than resume.
    """

    def __init__(self, path: str | Path, *, overwrite: bool = False):
        self.path = Path(path)
        self._done: set[str] = set()
        if overwrite or not self.path.exists():
            atomic_write(self.path, b"")
        else:
            self._resume()
        self._file = self.path.open("ab")

    def _resume(self) -> None:
        keep, dropped = [], 0
        with self.path.open("rb") as f:
            for raw in f:
                record = None
                if raw.endswith(b"\n"):
                    try:
                        record = json.loads(raw)
                    except ValueError:
                        pass
                ok = (isinstance(record, dict) and isinstance(record.get("source"), str)
                      and "error" not in record
                      and os.path.abspath(record["source"]) not in self._done)
                if ok:
                    self._done.add(os.path.abspath(record["source"]))
                dropped += not ok
                keep.append(ok)
        if dropped:
            # Second pass, streamed: the file may be larger than memory should hold.
            with atomic_path(self.path) as temporary, temporary.open("wb") as out, \
                    self.path.open("rb") as f:
                out.writelines(raw for raw, ok in zip(f, keep) if ok)

    def is_done(self, item) -> bool:
        return os.path.abspath(item.path) in self._done

    def _append(self, record: dict) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        self._file.flush()

    def write(self, transcription) -> None:
        self._append(_record(transcription))
        self._done.add(os.path.abspath(transcription.item.path))

    def write_failure(self, item, reason: str) -> None:
        self._append({"source": str(item.path), "error": reason})

    def close(self) -> None:
        if not self._file.closed:
            os.fsync(self._file.fileno())
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_writer(output_format: str, out_dir: str | Path, *, overwrite: bool = False):
    """The writer of a format ("txt", "jsonl", "page" or "alto") into an output folder."""
    if output_format == "txt":
        return TextWriter(out_dir, overwrite=overwrite)
    if output_format == "page":
        return PageWriter(out_dir, overwrite=overwrite)
    if output_format == "alto":
        return AltoWriter(out_dir, overwrite=overwrite)
    if output_format == "jsonl":
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        return JsonlWriter(Path(out_dir) / JSONL_NAME, overwrite=overwrite)
    raise ValueError(f"output format must be one of {FORMATS}, got {output_format!r}")
