"""ALTO XML reading: v2, v3 and v4 line crops, text assembly, errors, real Copiste pages."""

import cv2
import numpy as np
import pytest

from mdrnn.datasets.alto import read_alto
from mdrnn.datasets.charset import Charset
from mdrnn.datasets.formats import open_source
from mdrnn.errors import InputError

ALTO_XML = """<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v{version}#">
  <Description>
    <MeasurementUnit>pixel</MeasurementUnit>
    <sourceImageInformation><fileName>{image}</fileName></sourceImageInformation>
  </Description>
  <Layout><Page WIDTH="40" HEIGHT="30" ID="p"><PrintSpace>
    <TextBlock ID="b1">
      <TextLine ID="l1" HPOS="2" VPOS="2" WIDTH="19" HEIGHT="7">
        {shape}
        <String CONTENT="first" HPOS="2" VPOS="2" WIDTH="8" HEIGHT="7"/><SP/>
        <String CONTENT="line" HPOS="12" VPOS="2" WIDTH="8" HEIGHT="7"/>
      </TextLine>
      <TextLine ID="l2" HPOS="2" VPOS="11" WIDTH="19" HEIGHT="7"><String CONTENT=" "/></TextLine>
      <TextLine ID="l3" HPOS="1" VPOS="20" WIDTH="34" HEIGHT="8">
        <String CONTENT="Cafe&#x301;"/><String CONTENT="au"/><HYP CONTENT="-"/>
      </TextLine>
    </TextBlock>
  </PrintSpace></Page></Layout>
</alto>
"""
TRIANGLE = '<Shape><Polygon POINTS="2,2 20,2 2,8"/></Shape>'


def write_page(folder, version=4, shape=TRIANGLE, image="p1.png", name="p1.xml"):
    page = (np.arange(30 * 40) % 200).astype(np.uint8).reshape(30, 40)
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "p1.png"), page)
    (folder / name).write_text(ALTO_XML.format(version=version, image=image, shape=shape),
                               encoding="utf-8")
    return page


@pytest.mark.parametrize("version", [2, 3, 4])
def test_alto_lines_are_cut_by_their_box(tmp_path, version):
    page = write_page(tmp_path, version, shape="")
    samples = read_alto(tmp_path)
    # An empty line is skipped; words join with one space for SP or between Strings.
    assert [(s.id, s.text) for s in samples] == [("p1/l1", "first line"),
                                                 ("p1/l3", "Café au-")]
    assert np.array_equal(samples[0].source, page[2:10, 2:22])
    assert np.array_equal(samples[1].source, page[20:29, 1:36])


def test_alto_polygon_whitens_the_outside(tmp_path):
    page = write_page(tmp_path)
    crop = read_alto(tmp_path / "p1.xml")[0].source
    assert crop.shape == (7, 19)
    assert np.array_equal(crop[:, 0], page[2:9, 2])            # the polygon's left edge
    assert crop[6, 18] == 255 and crop[0, 18] == page[2, 20]     # outside / inside
    # Space-separated points (eScriptorium's form) are read alike.
    write_page(tmp_path, shape=TRIANGLE.replace(",", " "))
    assert np.array_equal(read_alto(tmp_path)[0].source, crop)


def test_open_source_tells_alto_from_page(tmp_path):
    write_page(tmp_path)
    assert [s.id for s in open_source(str(tmp_path / "p1.xml"))] == ["p1/l1", "p1/l3"]
    assert [s.id for s in open_source(f"alto:{tmp_path}")] == ["p1/l1", "p1/l3"]


@pytest.mark.parametrize("shape, message", [
    ('<Shape><Polygon POINTS="2 2 20 2 2"/></Shape>', "TextLine l1: broken polygon"),
    ('<Shape><Polygon POINTS="2 2 x 2 2 8"/></Shape>', "TextLine l1 polygon: not a list"),
    ('<Shape><Polygon POINTS="90 90 95 90 95 95"/></Shape>', "TextLine l1: its outline covers"),
])
def test_alto_bad_lines_name_file_and_line(tmp_path, shape, message):
    write_page(tmp_path, shape=shape)
    with pytest.raises(InputError, match=rf"p1\.xml: {message}"):
        read_alto(tmp_path)


def test_alto_file_errors(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<alto><Layout", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.xml: not readable XML"):
        read_alto(bad)
    bad.write_text("<PcGts/>", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.xml: not ALTO XML"):
        read_alto(bad)
    write_page(tmp_path, image="missing.png", name="bad.xml")
    with pytest.raises(InputError, match=r"bad\.xml: page image missing\.png not found"):
        read_alto(bad)
    # A path in fileName never leads outside the XML's folder.
    (tmp_path / "sub").mkdir()
    write_page(tmp_path / "sub", image="../p1.png", name="up.xml")
    (tmp_path / "sub" / "p1.png").unlink()
    with pytest.raises(InputError, match=r"up\.xml: page image \.\./p1\.png not found"):
        read_alto(tmp_path / "sub" / "up.xml")
    mm = ALTO_XML.format(version=4, image="p1.png", shape="").replace(">pixel<", ">mm10<")
    bad.write_text(mm, encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.xml: MeasurementUnit 'mm10'"):
        read_alto(bad)


def test_copiste_val_pages(shared_data):
    folder = shared_data / "copiste" / "val"
    samples = read_alto(folder)
    assert len(samples) == 611                       # as the data's README counts them
    heights = np.array([s.source.shape[0] for s in samples])
    assert 40 <= np.median(heights) <= 80
    first = read_alto(folder / "imp_wikitexte_0051_1.xml")
    assert all(s.id.startswith("imp_wikitexte_0051_1/eSc_line_") for s in first)
    charset = Charset.from_texts([s.text for s in samples])
    assert {"é", "à", "«", "'"} <= set(charset.symbols)
