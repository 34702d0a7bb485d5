"""PAGE XML (2013, 2019 and other versions): transcribed TextLines cut from page images."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import cv2
import numpy as np
from lxml import etree

from mdrnn.datasets.imageio import load_image
from mdrnn.datasets.samples import Sample, check_unique, clean_text, existing_path, inside
from mdrnn.errors import InputError

log = logging.getLogger(__name__)

PAGE_NAMESPACE_PREFIX = "http://schema.primaresearch.org/PAGE/gts/pagecontent/"


def crop_polygon(image: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """Cut a polygon's bounding box out of a page, paper-white outside the polygon.

    Args:
        image: 2-D uint8 gray page.
        points: (N, 2) integer x, y vertices, N >= 3; clipped to the page.

    Returns:
        The uint8 crop, or None when the polygon covers less than 2x2 pixels.
    """
    h, w = image.shape
    points = np.clip(np.asarray(points, dtype=np.int32), 0, [w - 1, h - 1])
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0) + 1
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [points - [x0, y0]], 1)
    return np.where(mask > 0, image[y0:y1, x0:x1], np.uint8(255))


def _page_image(xml: Path, filename: str | None) -> Path:
    if not filename:
        raise InputError(f"{xml}: the Page element has no imageFilename")
    name = re.sub(r"^file://", "", filename)
    # The path is relative to the XML, or (OCR-D workspaces) to the folder above; it
    # may not lead out of that folder.
    workspace = xml.parent.parent
    candidates = [inside(xml.parent, name, workspace), inside(workspace, name)]
    if not any(candidates):
        raise InputError(f"{xml}: page image {filename} lies outside the XML's folder and "
                         f"the one above; image references must stay inside them")
    candidates.append(xml.parent / Path(name).name)
    found = next((p for p in candidates if p is not None and p.is_file()), None)
    if found is None:
        raise InputError(f"{xml}: page image {filename} not found")
    return found


def _line_text(line: etree._Element, ns: str) -> str:
    equivs = line.findall(f"{{{ns}}}TextEquiv")
    # PAGE orders alternative readings by @index; the lowest is the preferred one.
    equivs.sort(key=lambda e: int(e.get("index", "0")) if e.get("index", "0").isdigit() else 0)
    for equiv in equivs:
        unicode = equiv.find(f"{{{ns}}}Unicode")
        if unicode is not None and unicode.text:
            return clean_text(unicode.text)
    return ""


def parse_xml(xml: Path) -> etree._Element:
    """The root element of an XML file, parsed without entities or network access."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        return etree.parse(str(xml), parser).getroot()
    except (OSError, etree.XMLSyntaxError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"{xml}: not readable XML ({message})") from None


def _read_page_file(xml: Path) -> list[Sample]:
    root = parse_xml(xml)
    ns = etree.QName(root).namespace or ""
    page = root.find(f"{{{ns}}}Page")
    if not ns.startswith(PAGE_NAMESPACE_PREFIX) or page is None:
        raise InputError(f"{xml}: not PAGE XML (root element {root.tag})")
    image = load_image(_page_image(xml, page.get("imageFilename")))
    samples, untranscribed = [], 0
    for number, line in enumerate(root.iter(f"{{{ns}}}TextLine"), 1):
        line_id = line.get("id") or f"line{number}"
        text = _line_text(line, ns)
        if not text:
            untranscribed += 1
            continue
        coords = line.find(f"{{{ns}}}Coords")
        pairs = re.findall(r"(-?[\d.]+),(-?[\d.]+)", coords.get("points", "")
                           if coords is not None else "")
        try:
            points = np.array([[round(float(x)), round(float(y))] for x, y in pairs])
        except ValueError:
            raise InputError(f"{xml}: TextLine {line_id}: bad Coords points") from None
        crop = crop_polygon(image, points) if len(points) >= 3 else None
        if crop is None:
            log.warning("%s: TextLine %s has no usable Coords polygon, skipped", xml, line_id)
            continue
        samples.append(Sample(crop, text, f"{xml.stem}/{line_id}"))
    if untranscribed:
        log.info("%s: %d text lines without a transcription skipped", xml, untranscribed)
    return samples


def read_page(path: str | Path) -> list[Sample]:
    """Read the transcribed text lines of PAGE XML files (2013, 2019 and other PAGE versions).

    Each TextLine with a TextEquiv/Unicode text becomes a Sample whose source is
    the line cut from the page image (`crop_polygon`); lines without text are
    skipped, as partly transcribed pages are common.

    Args:
        path: a PAGE XML file or a folder of `.xml` files; the page image is found
            from `imageFilename`, relative to the XML file's folder or its parent.
    """
    path = Path(path)
    files = sorted(path.glob("*.xml")) if path.is_dir() else [existing_path(path, "file")]
    if not files:
        raise InputError(f"{path}: no .xml files")
    samples = [s for xml in files for s in _read_page_file(xml)]
    if not samples:
        raise InputError(f"{path}: no transcribed text lines")
    return check_unique(samples, path)
