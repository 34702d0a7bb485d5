"""Output writers: atomic files, text, PAGE XML 2019 and ALTO 4.2 (validated), JSON lines."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from lxml import etree

from mdrnn.datasets.alto import read_alto
from mdrnn.datasets.page import read_page
from mdrnn.pipelines.atomic import atomic_write
from mdrnn.pipelines.inputs import InputFile
from mdrnn.pipelines.recognizer import LineResult
from mdrnn.pipelines.transcribe import TranscribedLine, Transcription
from mdrnn.pipelines.writers import (
    PAGE_NAMESPACE,
    JsonlWriter,
    PageWriter,
    TextWriter,
    open_writer,
)

SCHEMA = Path(__file__).parent / "data" / "page-2019.xsd"
NS = {"p": PAGE_NAMESPACE}


@pytest.fixture(scope="module")
def schema():
    return etree.XMLSchema(etree.parse(str(SCHEMA)))


def line_transcription(path, text="ab c", confidence=0.75, size=(120, 30)):
    width, height = size
    box = np.array([[0, 0], [width, 0], [width, height], [0, height]])
    result = LineResult(text, confidence, tuple(text), tuple([0.5] * len(text)))
    return Transcription(InputFile(Path(path), Path(path).stem), width, height,
                         (TranscribedLine(result, box, (0, 0, width, height)),), False)


def page_transcription(path, texts=("first line", "second"), size=(400, 300)):
    lines = []
    for i, text in enumerate(texts):
        y0 = 40 + 80 * i
        polygon = np.array([[20, y0], [380, y0], [380, y0 + 50], [20, y0 + 50]])
        baseline = np.array([[25, y0 + 40], [370, y0 + 40]])
        lines.append(TranscribedLine(LineResult(text, 0.5 + 0.1 * i, tuple(text)), polygon,
                                     (20, y0, 380, y0 + 50), baseline))
    return Transcription(InputFile(Path(path), Path(path).stem), *size, tuple(lines), True)


def test_atomic_write_replaces_whole_files_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "new" / "deeper" / "out.txt"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_text_writer_and_skipping(tmp_path):
    writer = TextWriter(tmp_path / "out")
    item = page_transcription(tmp_path / "sub" / "p.png").item
    item = InputFile(item.path, "sub/p")
    assert not writer.is_done(item)
    transcription = page_transcription(item.path)
    writer.write(Transcription(item, transcription.width, transcription.height,
                               transcription.lines, True))
    assert (tmp_path / "out" / "sub" / "p.txt").read_text("utf-8") == "first line\nsecond\n"
    assert writer.is_done(item)
    assert not TextWriter(tmp_path / "out", overwrite=True).is_done(item)


def test_page_xml_of_a_line_image_validates(tmp_path, schema):
    writer = PageWriter(tmp_path / "out")
    transcription = line_transcription(tmp_path / "lines" / "l1.png")
    writer.write(transcription)
    doc = etree.parse(str(tmp_path / "out" / "l1.xml"))
    schema.assertValid(doc)
    page = doc.find("p:Page", NS)
    assert (page.get("imageFilename"), page.get("imageWidth"), page.get("imageHeight")) == (
        "../lines/l1.png", "120", "30")
    (line,) = doc.findall(".//p:TextLine", NS)
    assert line.find("p:Coords", NS).get("points") == "0,0 120,0 120,30 0,30"
    assert line.find("p:TextEquiv", NS).get("conf") == "0.750000"
    assert line.findtext("p:TextEquiv/p:Unicode", namespaces=NS) == "ab c"


def test_page_xml_of_pages_validates_and_reads_back(tmp_path, schema):
    image = tmp_path / "scans" / "p1.png"
    image.parent.mkdir()
    cv2.imwrite(str(image), np.full((300, 400), 255, np.uint8))
    writer = open_writer("page", tmp_path / "out")
    writer.write(page_transcription(image))
    writer.write(page_transcription(tmp_path / "scans" / "empty.png", texts=()))
    doc = etree.parse(str(tmp_path / "out" / "p1.xml"))
    schema.assertValid(doc)
    schema.assertValid(etree.parse(str(tmp_path / "out" / "empty.xml")))
    region = doc.find(".//p:TextRegion", NS)
    assert region.find("p:Coords", NS).get("points") == "20,40 380,40 380,170 20,170"
    assert region.findtext("p:TextEquiv/p:Unicode", namespaces=NS) == "first line\nsecond"
    assert [e.get("conf") for e in doc.findall(".//p:TextLine/p:TextEquiv", NS)] == [
        "0.500000", "0.600000"]
    samples = read_page(tmp_path / "out" / "p1.xml")
    assert [s.text for s in samples] == ["first line", "second"]
    assert [s.source.shape for s in samples] == [(51, 361), (51, 361)]


def test_jsonl_records(tmp_path):
    with open_writer("jsonl", tmp_path) as writer:
        writer.write(line_transcription("lines/a.png", "ab", 0.25))
        writer.write(page_transcription("pages/p.png"))
        writer.write_failure(InputFile(Path("bad.png"), "bad"), "bad.png: truncated")
    records = [json.loads(r) for r in (tmp_path / "transcriptions.jsonl").read_text().splitlines()]
    assert records[0] == {"source": "lines/a.png", "text": "ab", "confidence": 0.25,
                          "char_confidences": [0.5, 0.5]}
    assert records[1]["text"] == "first line\nsecond"
    assert records[1]["confidence"] == pytest.approx(0.55)
    assert records[1]["lines"][1] == {"text": "second", "confidence": 0.6,
                                      "bbox": [20, 120, 380, 170],
                                      "polygon": [[20, 120], [380, 120], [380, 170], [20, 170]],
                                      "baseline": [[25, 160], [370, 160]]}
    assert records[2] == {"source": "bad.png", "error": "bad.png: truncated"}


def test_jsonl_resumes_after_torn_tail_and_retries_failures(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "t.jsonl"
    good = json.dumps({"source": "a.png", "text": "x", "confidence": 0.5})
    failed = json.dumps({"source": "b.png", "error": "b.png: truncated"})
    path.write_text(f"{good}\n{failed}\n{good[:-1]}\n{{\"source\": \"c.png\", \"te", "utf-8")
    writer = JsonlWriter(path)
    item = InputFile(Path("a.png"), "a")
    assert writer.is_done(item) and writer.is_done(InputFile(tmp_path / "a.png", "a"))
    assert not writer.is_done(InputFile(Path("b.png"), "b"))
    assert not writer.is_done(InputFile(Path("c.png"), "c"))
    assert path.read_text("utf-8") == good + "\n"
    writer.write(line_transcription("b.png", "y"))
    writer.close()
    assert [json.loads(r)["source"] for r in path.read_text().splitlines()] == ["a.png", "b.png"]
    with JsonlWriter(path, overwrite=True) as fresh:
        assert not fresh.is_done(item)
    assert path.read_bytes() == b""


def test_alto_of_pages_validates_and_reads_back(tmp_path, shared_data):
    schema = etree.XMLSchema(etree.parse(str(shared_data / "alto-4.2" / "alto-4-2.xsd")))
    image = tmp_path / "p1.png"
    page = np.full((300, 400), 255, np.uint8)
    page[60:80, 30:300] = 0
    cv2.imwrite(str(image), page)
    with open_writer("alto", tmp_path) as writer:
        writer.write(page_transcription(image))
        writer.write(page_transcription(tmp_path / "empty.png", texts=()))
        writer.write(line_transcription(tmp_path / "l1.png", text="a <b> & \"c\""))
    ns = {"a": "http://www.loc.gov/standards/alto/ns-v4#"}
    for name in ("p1", "empty", "l1"):
        schema.assertValid(etree.parse(str(tmp_path / f"{name}.xml")))
    doc = etree.parse(str(tmp_path / "p1.xml"))
    assert doc.findtext(".//a:sourceImageInformation/a:fileName", namespaces=ns) == "p1.png"
    lines = doc.findall(".//a:TextLine", ns)
    assert [line.get("BASELINE") for line in lines] == ["25 80 370 80", "25 160 370 160"]
    assert [(line.get("HPOS"), line.get("VPOS"), line.get("WIDTH"), line.get("HEIGHT"))
            for line in lines] == [("20", "40", "360", "50"), ("20", "120", "360", "50")]
    assert lines[0].find("a:Shape/a:Polygon", ns).get("POINTS") == "20 40 380 40 380 90 20 90"
    assert [line.find("a:String", ns).get("WC") for line in lines] == ["0.5000", "0.6000"]
    samples = read_alto(tmp_path / "p1.xml")
    assert [s.text for s in samples] == ["first line", "second"]
    assert np.array_equal(samples[0].source, page[40:91, 20:381])
    line = etree.parse(str(tmp_path / "l1.xml")).find(".//a:String", ns)
    assert line.get("CONTENT") == 'a <b> & "c"'


def test_tiny_confidences_keep_their_digits():
    from mdrnn.pipelines.recognizer import confidence_text

    assert confidence_text(0.5, 4) == "0.5000" and confidence_text(0, 6) == "0.000000"
    assert confidence_text(1.23456e-8, 4) == "1.235e-08" and confidence_text(1.5, 4) == "1.0000"
    assert LineResult("x", 2.5e-9).to_dict()["confidence"] == pytest.approx(2.5e-9)


def spanned_transcription(path, text="ab c", size=(120, 30)):
    """A line image whose symbols were read from known columns."""
    width, height = size
    box = np.array([[0, 0], [width, 0], [width, height], [0, height]])
    spans = tuple((10 + 25 * i, 35 + 25 * i) for i in range(len(text)))
    result = LineResult(text, 0.5, tuple(text), (0.9, 0.8, 0.2, 0.6))
    line = TranscribedLine(result, box, (0, 0, width, height), np.array([[2, 25], [118, 25]]),
                           spans)
    return Transcription(InputFile(Path(path), Path(path).stem), width, height, (line,), False)


def test_words_and_glyphs_in_alto_and_page(tmp_path, schema, shared_data):
    alto_schema = etree.XMLSchema(etree.parse(str(shared_data / "alto-4.2" / "alto-4-2.xsd")))
    (tmp_path / "alto").mkdir()
    cv2.imwrite(str(tmp_path / "alto" / "l.png"), np.full((30, 120), 255, np.uint8))
    with open_writer("alto", tmp_path / "alto") as writer:
        writer.write(spanned_transcription(tmp_path / "alto" / "l.png"))
    doc = etree.parse(str(tmp_path / "alto" / "l.xml"))
    alto_schema.assertValid(doc)
    ns = {"a": "http://www.loc.gov/standards/alto/ns-v4#"}
    strings = doc.findall(".//a:TextLine/a:String", ns)
    assert [(s.get("CONTENT"), s.get("HPOS"), s.get("WIDTH"), s.get("WC")) for s in strings] == [
        ("ab", "10", "50", "0.8500"), ("c", "85", "25", "0.6000")]
    space = doc.find(".//a:TextLine/a:SP", ns)
    assert (space.get("HPOS"), space.get("WIDTH")) == ("60", "25")
    glyphs = strings[0].findall("a:Glyph", ns)
    assert [(g.get("CONTENT"), g.get("HPOS"), g.get("WIDTH"), g.get("GC")) for g in glyphs] == [
        ("a", "10", "25", "0.9000"), ("b", "35", "25", "0.8000")]
    assert [s.text for s in read_alto(tmp_path / "alto" / "l.xml")] == ["ab c"]

    with open_writer("page", tmp_path / "page") as writer:
        writer.write(spanned_transcription(tmp_path / "l.png"))
    doc = etree.parse(str(tmp_path / "page" / "l.xml"))
    schema.assertValid(doc)
    line = doc.find(".//p:TextLine", NS)
    assert line.find("p:Baseline", NS).get("points") == "2,25 118,25"
    words = line.findall("p:Word", NS)
    assert [w.findtext("p:TextEquiv/p:Unicode", namespaces=NS) for w in words] == ["ab", "c"]
    assert words[0].find("p:Coords", NS).get("points") == "10,0 60,0 60,30 10,30"
    assert [g.find("p:TextEquiv", NS).get("conf") for g in words[0].findall("p:Glyph", NS)] \
        == ["0.900000", "0.800000"]
    assert line.findtext("p:TextEquiv/p:Unicode", namespaces=NS) == "ab c"

    with open_writer("jsonl", tmp_path / "jsonl") as writer:
        writer.write(spanned_transcription(tmp_path / "l.png"))
    record = json.loads((tmp_path / "jsonl" / "transcriptions.jsonl").read_text())
    assert record["char_spans"] == [[10, 35], [35, 60], [60, 85], [85, 110]]
