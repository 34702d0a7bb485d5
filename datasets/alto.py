"""ALTO XML (v2, v3, v4): transcribed TextLines cut from page images.

ALTO is what eScriptorium and kraken export (and Transkribus and most library
digitisation workflows): `Description/sourceImageInformation/fileName` names the
page image, each `TextLine` has a box (`HPOS`, `VPOS`, `WIDTH`, `HEIGHT`), in v4
usually a `Shape/Polygon`, and its text as `String/@CONTENT` words separated by
`SP` elements (eScriptorium writes the whole line as one `String`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
from lxml import etree

from mdrnn.datasets.imageio import load_image
from mdrnn.datasets.page import crop_polygon, parse_xml
from mdrnn.datasets.samples import Sample, check_unique, clean_text, existing_path, outside_allowed
from mdrnn.errors import InputError

log = logging.getLogger(__name__)

ALTO_NAMESPACES = ("http://www.loc.gov/standards/alto/ns-v2#",
                   "http://www.loc.gov/standards/alto/ns-v3#",
                   "http://www.loc.gov/standards/alto/ns-v4#",
                   "http://www.loc.gov/standards/alto/")


def is_alto(xml: Path) -> bool:
    """Whether an XML file names an ALTO namespace near its start (else: PAGE, say)."""
    with open(xml, "rb") as file:
        return b"loc.gov/standards/alto" in file.read(4096)


def _numbers(text: str, xml: Path, what: str) -> list[float]:
    fields = [f for f in re.split(r"[\s,]+", text.strip()) if f]
    try:
        return [float(f) for f in fields]
    except ValueError:
        raise InputError(f"{xml}: {what}: not a list of numbers ({text[:40]!r})") from None


def _image_path(xml: Path, root: etree._Element, ns: str) -> Path:
    name_element = root.find(f"{{{ns}}}Description/{{{ns}}}sourceImageInformation/"
                             f"{{{ns}}}fileName")
    name = (name_element.text or "").strip() if name_element is not None else ""
    if not name:
        raise InputError(f"{xml}: no sourceImageInformation/fileName naming the page image")
    # Only the file name counts and only beside the XML: exporters write absolute paths
    # of their own machines, and a path never leads a job outside its data folder.
    path = re.sub(r"^file://", "", name).replace("\\", "/")
    image = xml.parent / Path(path).name
    if not image.is_file() and outside_allowed() and (xml.parent / path).is_file():
        return xml.parent / path  # as named, relative to the XML (--allow-outside)
    if not image.is_file():
        raise InputError(f"{xml}: page image {name} not found beside it")
    return image


def line_points(line: etree._Element, ns: str, xml: Path, line_id: str) -> np.ndarray:
    """A TextLine's outline as (N, 2) integer x, y: its polygon, else its box."""
    polygon = line.find(f"{{{ns}}}Shape/{{{ns}}}Polygon")
    if polygon is not None and polygon.get("POINTS", "").strip():
        values = _numbers(polygon.get("POINTS"), xml, f"TextLine {line_id} polygon")
        if len(values) % 2 or len(values) < 6:
            raise InputError(f"{xml}: TextLine {line_id}: broken polygon "
                             f"({len(values)} numbers; need x y pairs, at least 3)")
        return np.rint(np.array(values).reshape(-1, 2)).astype(np.int32)
    box = [line.get(key) for key in ("HPOS", "VPOS", "WIDTH", "HEIGHT")]
    if any(value is None for value in box):
        raise InputError(f"{xml}: TextLine {line_id}: neither a polygon nor HPOS/VPOS/WIDTH/"
                         "HEIGHT")
    x, y, w, h = _numbers(" ".join(box), xml, f"TextLine {line_id} box")
    if w <= 0 or h <= 0:
        raise InputError(f"{xml}: TextLine {line_id}: empty box {w:g}x{h:g}")
    return np.rint(np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])).astype(np.int32)


def line_text(line: etree._Element, ns: str) -> str:
    """A TextLine's text: its String words (a space for each SP or between two Strings),
    a hyphen (HYP) joined to the word before it."""
    parts, last = [], None
    for child in line:
        tag = etree.QName(child).localname
        if tag in ("String", "HYP"):
            if tag == last == "String":
                parts.append(" ")
            parts.append(child.get("CONTENT", ""))
        elif tag == "SP":
            parts.append(" ")
        last = tag
    return clean_text("".join(parts))


def read_alto_file(xml: Path) -> tuple[list[Sample], int]:
    """The transcribed lines of one ALTO file, and how many lines had no text."""
    root = parse_xml(xml)
    ns = etree.QName(root).namespace or ""
    if etree.QName(root).localname != "alto" or not ns.startswith(ALTO_NAMESPACES):
        raise InputError(f"{xml}: not ALTO XML (root element {root.tag})")
    unit = root.findtext(f"{{{ns}}}Description/{{{ns}}}MeasurementUnit", "pixel").strip()
    if unit != "pixel":
        raise InputError(f"{xml}: MeasurementUnit {unit!r} is not supported; export the ALTO "
                         "with pixel coordinates")
    image = load_image(_image_path(xml, root, ns))
    samples, empty = [], 0
    for number, line in enumerate(root.iter(f"{{{ns}}}TextLine"), 1):
        line_id = line.get("ID") or f"line{number}"
        text = line_text(line, ns)
        if not text:
            empty += 1
            continue
        crop = crop_polygon(image, line_points(line, ns, xml, line_id))
        if crop is None:
            raise InputError(f"{xml}: TextLine {line_id}: its outline covers less than 2x2 "
                             "pixels of the page")
        samples.append(Sample(crop, text, f"{xml.stem}/{line_id}"))
    return samples, empty


def read_alto(path: str | Path) -> list[Sample]:
    """Read the transcribed text lines of ALTO XML files (v2, v3, v4).

    Each TextLine with text becomes a Sample: the line cut from the page image by
    its polygon, pixels outside the polygon set to paper white (its box when it
    has no polygon). Lines without text are skipped and counted in the log.

    Args:
        path: an ALTO file or a folder of `.xml` files; each names its page image in
            `sourceImageInformation/fileName`, looked up beside the XML file.

    Raises:
        InputError: a malformed file, a missing image or a broken line outline,
            naming the file and the line.
    """
    path = Path(path)
    files = sorted(path.glob("*.xml")) if path.is_dir() else [existing_path(path, "file")]
    if not files:
        raise InputError(f"{path}: no .xml files")
    samples, empty = [], 0
    for xml in files:
        lines, skipped = read_alto_file(xml)
        samples += lines
        empty += skipped
    if empty:
        log.info("%s: %d text lines without a transcription skipped", path, empty)
    if not samples:
        raise InputError(f"{path}: no transcribed text lines")
    return check_unique(samples, path)
