"""ALTO v4 output: one document per transcribed input, as eScriptorium and kraken import it.

The layout follows what eScriptorium exports and what kraken's ALTO parser reads:
pixel units, the image's file name in `sourceImageInformation`, one `TextBlock`
holding the lines in reading order, and per `TextLine` its box, its outline as
`Shape/Polygon`, its `BASELINE` (a polyline, x y pairs) and a `String` per word
with its box, its `WC` (the mean of its characters' confidences) and a `Glyph` per
character (box and `GC`), `SP` between words, as kraken writes them. Where the
characters' columns are not known (deskewed or deslanted lines), one `String`
holds the line's text with the line's confidence.
Documents validate against the ALTO 4.2 schema.
"""

from __future__ import annotations

import datetime

import numpy as np
from lxml import etree

import mdrnn
from mdrnn.pipelines.recognizer import confidence_text
from mdrnn.pipelines.transcribe import line_words

ALTO_NAMESPACE = "http://www.loc.gov/standards/alto/ns-v4#"
ALTO_SCHEMA = "http://www.loc.gov/standards/alto/v4/alto-4-2.xsd"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _points(points, width: int, height: int) -> str:
    points = np.clip(np.asarray(points, dtype=np.int64), 0, [width, height])
    return " ".join(f"{x} {y}" for x, y in points)


def _box(element, bbox) -> None:
    x0, y0, x1, y1 = (int(v) for v in bbox)
    element.set("HPOS", str(x0))
    element.set("VPOS", str(y0))
    element.set("WIDTH", str(max(x1 - x0, 0)))
    element.set("HEIGHT", str(max(y1 - y0, 0)))


def alto_xml(transcription, image_filename: str,
             created: datetime.datetime | None = None) -> bytes:
    """A transcription as an ALTO 4.2 document (UTF-8 bytes).

    Args:
        transcription: a `mdrnn.pipelines.transcribe.Transcription`.
        image_filename: the value of sourceImageInformation/fileName.
        created: the processing time stamp; default now (UTC).
    """
    ns = ALTO_NAMESPACE
    created = created or datetime.datetime.now(datetime.timezone.utc)
    root = etree.Element(f"{{{ns}}}alto", nsmap={None: ns, "xsi": _XSI})
    root.set(f"{{{_XSI}}}schemaLocation", f"{ns} {ALTO_SCHEMA}")
    description = etree.SubElement(root, f"{{{ns}}}Description")
    etree.SubElement(description, f"{{{ns}}}MeasurementUnit").text = "pixel"
    source = etree.SubElement(description, f"{{{ns}}}sourceImageInformation")
    etree.SubElement(source, f"{{{ns}}}fileName").text = image_filename
    processing = etree.SubElement(description, f"{{{ns}}}Processing", ID="mdrnn")
    etree.SubElement(processing, f"{{{ns}}}processingCategory").text = "contentGeneration"
    etree.SubElement(processing, f"{{{ns}}}processingDateTime").text = (
        created.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    software = etree.SubElement(processing, f"{{{ns}}}processingSoftware")
    etree.SubElement(software, f"{{{ns}}}softwareName").text = "mdrnn"
    etree.SubElement(software, f"{{{ns}}}softwareVersion").text = mdrnn.__version__

    width, height = transcription.width, transcription.height
    layout = etree.SubElement(root, f"{{{ns}}}Layout")
    page = etree.SubElement(layout, f"{{{ns}}}Page", ID="page_1", PHYSICAL_IMG_NR="1",
                            WIDTH=str(width), HEIGHT=str(height))
    space = etree.SubElement(page, f"{{{ns}}}PrintSpace")
    _box(space, (0, 0, width, height))
    lines = transcription.lines
    if not lines:
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    block = etree.SubElement(space, f"{{{ns}}}TextBlock", ID="block_1")
    _box(block, (min(line.bbox[0] for line in lines), min(line.bbox[1] for line in lines),
                 max(line.bbox[2] for line in lines), max(line.bbox[3] for line in lines)))
    for number, line in enumerate(lines, 1):
        element = etree.SubElement(block, f"{{{ns}}}TextLine", ID=f"line_{number}")
        _box(element, line.bbox)
        if line.baseline is not None:
            element.set("BASELINE", _points(line.baseline, width, height))
        shape = etree.SubElement(element, f"{{{ns}}}Shape")
        etree.SubElement(shape, f"{{{ns}}}Polygon", POINTS=_points(line.polygon, width, height))
        words = line_words(line)
        if words is None or not words:
            string = etree.SubElement(element, f"{{{ns}}}String",
                                      ID=f"line_{number}_string", CONTENT=line.result.text)
            _box(string, line.bbox)
            if line.result.confidence is not None:
                string.set("WC", confidence_text(line.result.confidence, 4))
            continue
        _words(element, words, f"line_{number}", line.bbox)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _words(element, words, line_id: str, bbox) -> None:
    """A String per word with its box, WC and a Glyph per character, SP between."""
    ns = ALTO_NAMESPACE
    _, y0, _, y1 = bbox
    for index, word in enumerate(words, 1):
        if index > 1:
            gap = etree.SubElement(element, f"{{{ns}}}SP")
            left = words[index - 2].span[1]
            _box(gap, (left, y0, max(left, word.span[0]), y1))
        string = etree.SubElement(element, f"{{{ns}}}String", ID=f"{line_id}_w{index}",
                                  CONTENT=word.text)
        _box(string, (word.span[0], y0, word.span[1], y1))
        string.set("WC", confidence_text(word.confidence, 4))
        # A Glyph holds one character: a word with a longer symbol gets none.
        if all(len(symbol) == 1 for symbol, _, _ in word.glyphs):
            for position, (symbol, (x0, x1), confidence) in enumerate(word.glyphs, 1):
                glyph = etree.SubElement(string, f"{{{ns}}}Glyph",
                                         ID=f"{line_id}_w{index}_g{position}", CONTENT=symbol)
                _box(glyph, (x0, y0, x1, y1))
                glyph.set("GC", confidence_text(confidence, 4))
