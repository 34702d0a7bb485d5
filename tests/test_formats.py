"""Readers: folders with .gt.txt, TSV lists, IAM, IFN/ENIT, PAGE XML, and open_source."""

import shutil

import cv2
import numpy as np
import pytest

from mdrnn.datasets.charset import Charset
from mdrnn.datasets.corpora import read_iam, read_ifnenit, shape_label
from mdrnn.datasets.formats import open_source, read_folder, read_list
from mdrnn.datasets.page import crop_polygon, read_page
from mdrnn.datasets.samples import Sample
from mdrnn.errors import InputError


def write_image(path, width=30, height=12, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((height, width), 255, np.uint8)
    image[3:9, 4:width - 4] = value
    assert cv2.imwrite(str(path), image)
    return image


def test_sample_checks_its_fields():
    sample = Sample(np.zeros((4, 5), np.uint8), ["saB", "yaM"], "s1")
    assert sample.text == ("saB", "yaM") and sample.name == "s1"
    assert Sample("a/b.png", "x", "b").name == "a/b.png"
    with pytest.raises(ValueError, match="2-D uint8"):
        Sample(np.zeros((4, 5), np.float32), "x", "s2")
    with pytest.raises(TypeError, match="text"):
        Sample("a.png", 5, "s3")
    with pytest.raises(ValueError, match="id"):
        Sample("a.png", "x", "")


def test_folder_pairs_images_with_gt_txt(tmp_path):
    for name in ("b.png", "a.jpg", "c.tif", "d.bmp", "e.bin.png"):
        write_image(tmp_path / name)
    (tmp_path / "a.gt.txt").write_text("\ufeff  Hello\t wo\u0308rld \n", encoding="utf-8")
    (tmp_path / "b.gt.txt").write_text("two", encoding="utf-8")
    (tmp_path / "c.gt.txt").write_text("three", encoding="utf-8")
    (tmp_path / "d.gt.txt").write_text("four", encoding="utf-8")
    (tmp_path / "e.gt.txt").write_text("five", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not an image", encoding="utf-8")
    samples = read_folder(tmp_path)
    assert [s.id for s in samples] == ["a.jpg", "b.png", "c.tif", "d.bmp", "e.bin.png"]
    assert [s.text for s in samples] == ["Hello w\u00f6rld", "two", "three", "four", "five"]
    assert samples[2].load().shape == (12, 30)


def test_folder_missing_transcription_names_the_image_and_counts(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        write_image(tmp_path / name)
    (tmp_path / "a.gt.txt").write_text("ok", encoding="utf-8")
    with pytest.raises(InputError, match=r"b\.png: no <stem>\.gt\.txt.*\(and 1 more\)"):
        read_folder(tmp_path)


@pytest.mark.parametrize("content, message", [
    (b"caf\xe9", r"a\.gt\.txt: not UTF-8 text \(byte 0xe9 at offset 3\)"),
    (b" \n\t", r"a\.gt\.txt: empty transcription"),
])
def test_folder_bad_transcription_names_the_file(tmp_path, content, message):
    write_image(tmp_path / "a.png")
    (tmp_path / "a.gt.txt").write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_folder(tmp_path)


def test_folder_without_images(tmp_path):
    with pytest.raises(InputError, match="no line images"):
        read_folder(tmp_path)
    with pytest.raises(InputError, match="no such folder"):
        read_folder(tmp_path / "absent")


def test_list_resolves_paths_against_the_list_file(tmp_path, monkeypatch):
    write_image(tmp_path / "data" / "img" / "1.png")
    write_image(tmp_path / "data" / "img" / "2.png")
    listing = tmp_path / "data" / "train.tsv"
    listing.write_text("img/1.png\tfirst  line\n\nimg/2.png\ttab\tinside\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    samples = read_list("data/train.tsv")
    assert [(s.id, s.text) for s in samples] == [("img/1.png", "first line"),
                                                 ("img/2.png", "tab inside")]
    assert samples[1].load().shape == (12, 30)


@pytest.mark.parametrize("content, message", [
    ("img/1.png first\n", r"train\.tsv:1: expected 'image<TAB>text'$"),
    ("#--- lines.txt\n", r"train\.tsv:1: .*use iam:PATH"),
    ("img/1.png\t \n", r"train\.tsv:1: empty transcription"),
    ("img/1.png\ta\nimg/1.png\tb\n", r"train\.tsv:2: img/1\.png is listed again"),
    ("img/1.png\ta\nimg/9.png\tb\nimg/8.png\tc\n", r"train\.tsv:2: image .*9\.png: not found "
                                                   r"\(and 1 more\)"),
])
def test_list_errors_name_file_and_line(tmp_path, content, message):
    write_image(tmp_path / "img" / "1.png")
    (tmp_path / "train.tsv").write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_list(tmp_path / "train.tsv")


IAM_LINES = """#--- lines.txt ---------------------------------------------------------------#
#
# format: a01-000u-00 ok 154 19 408 746 1663 91 A|MOVE|to|stop|Mr.|Gaitskell|from
a01-000u-00 ok 154 19 408 746 1663 91 A|MOVE|to|stop|Mr.|Gaitskell|from
a01-000u-01 err 156 19 395 932 1850 105 nominating|any|more|Labour|life|Peers
b02-001-03 ok 170 11 350 1012 1700 80 "|Oh|,|yes|"|.
"""
IAM_WORDS = """# format: a01-000u-00-00 ok 154 1 408 768 27 51 AT A
a01-000u-00-00 ok 154 408 768 27 51 AT A
a01-000u-00-01 er 154 507 766 213 48 NN MOVE
"""


def test_iam_lines_layout_separator_and_ok_flag(tmp_path):
    (tmp_path / "ascii").mkdir()
    (tmp_path / "ascii" / "lines.txt").write_text(IAM_LINES, encoding="utf-8")
    for line_id in ("a01-000u-00", "a01-000u-01", "b02-001-03"):
        writer, form = line_id.split("-")[0], "-".join(line_id.split("-")[:2])
        write_image(tmp_path / "lines" / writer / form / f"{line_id}.png")
    samples = read_iam(tmp_path)
    assert [s.id for s in samples] == ["a01-000u-00", "a01-000u-01", "b02-001-03"]
    assert samples[0].text == "A MOVE to stop Mr. Gaitskell from"
    assert samples[2].text == '" Oh , yes " .'
    assert str(samples[0].source).endswith("lines/a01/a01-000u/a01-000u-00.png")
    assert [s.id for s in read_iam(tmp_path / "ascii" / "lines.txt", ok_only=True)] == [
        "a01-000u-00", "b02-001-03"]
    assert [s.id for s in open_source(f"iam-ok:{tmp_path}")] == ["a01-000u-00", "b02-001-03"]


def test_iam_words_and_missing_images(tmp_path):
    (tmp_path / "words.txt").write_text(IAM_WORDS, encoding="utf-8")
    write_image(tmp_path / "words" / "a01" / "a01-000u" / "a01-000u-00-00.png")
    with pytest.raises(InputError, match=r"a01-000u-00-01\.png: image listed in .*not found"):
        read_iam(tmp_path / "words.txt")
    samples = read_iam(tmp_path / "words.txt", ok_only=True)
    assert [(s.id, s.text) for s in samples] == [("a01-000u-00-00", "A")]
    (tmp_path / "words.txt").write_text("a01-000u-00-00 fine 154 408\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"words\.txt:1: not an IAM"):
        read_iam(tmp_path / "words.txt")


def test_shape_label_matches_rnnlib_reduction():
    assert shape_label("yaMllL") == "yaM"
    assert shape_label("llLyaM") == "yaM"
    assert shape_label("yaB1") == "yaB"
    assert shape_label("zaA1") == "zaA"
    assert shape_label("0A") == "0A"
    assert shape_label("khMlaB") == "khMlaB"


def test_ifnenit_samples_parse_and_map_through_the_lookup(shared_data):
    folder = shared_data / "ifnenit_samples"
    lookup = (folder / "latin_arabic_character_lookup.txt").read_text(encoding="utf-8")
    labels = {line.split("*")[1].strip() for line in lookup.splitlines() if "*" in line}
    assert len(labels) == 120
    samples = read_ifnenit(folder)
    assert len(samples) == len(list(folder.glob("*.tru"))) == 20
    for sample in samples:
        assert sample.text and set(sample.text) <= labels, sample.id
        raw = (folder / f"{sample.id}.tru").read_bytes().decode("cp1256")
        width, height = (int(v) for v in raw.split("X_Y:")[1].split()[:2])
        assert sample.load().shape == (height, width)
    first = next(s for s in samples if s.id == "af10_051")
    assert first.text == ("saB", "yaM", "aaE", "daA", "teA")
    charset = Charset.from_texts(s.text for s in samples)
    assert set(charset.symbols) <= labels
    assert charset.decode(charset.encode(first.text)) == "saB|yaM|aaE|daA|teA"


def test_ifnenit_aw1_words_are_unicode_in_logical_order(shared_data):
    words = {s.id: s.text for s in open_source(f"ifnenit-aw1:{shared_data / 'ifnenit_samples'}")}
    assert words["af10_051"] == "\u0635\u064a\u0651\u0627\u062f\u0629"
    # Two words ("." in the file), shadda (U+0651) after the letter it doubles.
    assert words["aj15_065"] == ("\u0633\u064a\u062f\u064a \u0627\u0644\u0638\u0651"
                                 "\u0627\u0647\u0631")
    assert all("." not in w for w in words.values())


def test_ifnenit_distribution_layout_and_errors(tmp_path, shared_data):
    source = shared_data / "ifnenit_samples"
    (tmp_path / "set_a" / "tru").mkdir(parents=True)
    (tmp_path / "set_a" / "tif").mkdir()
    shutil.copy(source / "af10_051.tru", tmp_path / "set_a" / "tru")
    shutil.copy(source / "af10_051.tif", tmp_path / "set_a" / "tif")
    (sample,) = read_ifnenit(tmp_path)
    assert sample.source == tmp_path / "set_a" / "tif" / "af10_051.tif"
    (tmp_path / "set_a" / "tru" / "zz.tru").write_bytes(b"COM: no label\n")
    with pytest.raises(InputError, match=r"zz\.tru: no LBL"):
        read_ifnenit(tmp_path)


def test_crop_polygon_masks_outside_white():
    page = np.arange(100, dtype=np.uint8).reshape(10, 10)
    crop = crop_polygon(page, np.array([[2, 1], [7, 1], [2, 6]]))
    assert crop.shape == (6, 6)
    assert crop[0, 0] == page[1, 2] and crop[5, 0] == page[6, 2]
    assert crop[5, 5] == 255  # beyond the hypotenuse
    assert crop_polygon(page, np.array([[3, 3], [3, 3], [3, 3]])) is None


PAGE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/{version}">
  <Page imageFilename="{image}" imageWidth="40" imageHeight="30">
    <TextRegion id="r1">
      <Coords points="0,0 39,0 39,29 0,29"/>
      <TextLine id="l1">
        <Coords points="2,2 20,2 20,8 2,8"/>
        <TextEquiv index="2"><Unicode>second choice</Unicode></TextEquiv>
        <TextEquiv index="1"><Unicode>first  choice</Unicode></TextEquiv>
      </TextLine>
      <TextLine id="l2">
        <Coords points="5,10 30,10 30,20"/>
        <Word id="w1"><TextEquiv><Unicode>word only</Unicode></TextEquiv></Word>
      </TextLine>
      <TextLine id="l3">
        <Coords points="1,20 35,20 35,28 1,28"/>
        <TextEquiv><Unicode>Caf\u00e9</Unicode></TextEquiv>
      </TextLine>
    </TextRegion>
  </Page>
</PcGts>
"""


@pytest.mark.parametrize("version", ["2013-07-15", "2019-07-15"])
def test_page_lines_are_cropped_from_the_page(tmp_path, version):
    page = (np.arange(30 * 40) % 200).astype(np.uint8).reshape(30, 40)
    (tmp_path / "img").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "p1.png"), page)
    (tmp_path / "p1.xml").write_text(PAGE_XML.format(version=version, image="img/p1.png"),
                                     encoding="utf-8")
    samples = read_page(tmp_path)
    assert [(s.id, s.text) for s in samples] == [("p1/l1", "first choice"), ("p1/l3", "Café")]
    assert np.array_equal(samples[0].source, page[2:9, 2:21])
    assert np.array_equal(samples[1].source, page[20:29, 1:36])
    assert [s.id for s in open_source(str(tmp_path / "p1.xml"))] == ["p1/l1", "p1/l3"]


def test_page_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<PcGts><Page", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.xml: not readable XML"):
        read_page(bad)
    bad.write_text("<html><body/></html>", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.xml: not PAGE XML"):
        read_page(bad)
    bad.write_text(PAGE_XML.format(version="2019-07-15", image="missing.png"), encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.xml: page image missing\.png not found"):
        read_page(bad)


@pytest.mark.parametrize("image", ["/etc/passwd", "../../secret.png", "a/../../../x.png"])
def test_page_images_must_stay_inside_the_data(tmp_path, image):
    data = tmp_path / "deep" / "data"
    data.mkdir(parents=True)
    write_image(tmp_path / "secret.png")
    (data / "p.xml").write_text(PAGE_XML.format(version="2019-07-15", image=image),
                                encoding="utf-8")
    with pytest.raises(InputError, match=r"p\.xml: page image .* lies outside the XML's folder"):
        read_page(data / "p.xml")


def test_page_images_may_sit_in_the_workspace_folder_above(tmp_path):
    write_image(tmp_path / "img" / "p.png", width=40, height=30)
    (tmp_path / "page").mkdir()
    (tmp_path / "page" / "p.xml").write_text(
        PAGE_XML.format(version="2019-07-15", image="img/p.png"), encoding="utf-8")
    assert [s.id for s in read_page(tmp_path / "page" / "p.xml")] == ["p/l1", "p/l3"]


@pytest.mark.parametrize("name", ["../../../../etc/passwd", "/etc/passwd", "img/../../x.png"])
def test_list_images_must_stay_inside_the_list_folder(tmp_path, name):
    (tmp_path / "data").mkdir()
    write_image(tmp_path / "x.png")
    (tmp_path / "data" / "train.tsv").write_text(f"{name}\ttext\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"train\.tsv:1: image .* lies outside the list's folder"):
        read_list(tmp_path / "data" / "train.tsv")


@pytest.fixture
def outside_allowed():
    from mdrnn.datasets.samples import allow_outside

    allow_outside()
    yield
    allow_outside(False)


def test_allow_outside_lets_data_files_name_images_anywhere(tmp_path, outside_allowed):
    (tmp_path / "data").mkdir()
    write_image(tmp_path / "x.png", width=40, height=30)
    (tmp_path / "data" / "train.tsv").write_text("../x.png\ttext\n", encoding="utf-8")
    assert [s.source for s in read_list(tmp_path / "data" / "train.tsv")] == [tmp_path / "x.png"]
    (tmp_path / "data" / "p.xml").write_text(
        PAGE_XML.format(version="2019-07-15", image=str(tmp_path / "x.png")), encoding="utf-8")
    assert [s.id for s in read_page(tmp_path / "data" / "p.xml")] == ["p/l1", "p/l3"]


def test_the_cli_option_allows_outside_for_its_job_only(tmp_path):
    pytest.importorskip("varikn")
    from click.testing import CliRunner

    from mdrnn.datasets.samples import outside_allowed
    from mdrnn.pipelines.cli import main

    (tmp_path / "data").mkdir()
    write_image(tmp_path / "x.png", width=40, height=30)
    (tmp_path / "data" / "train.tsv").write_text("../x.png\tsome text\n", encoding="utf-8")
    command = ["lm", "build", str(tmp_path / "data" / "train.tsv"), "--order", "2", "-o"]
    refused = CliRunner().invoke(main, command + [str(tmp_path / "refused.arpa")])
    assert refused.exit_code != 0 and "lies outside the list's folder" in refused.output
    assert not (tmp_path / "refused.arpa").exists()
    allowed = CliRunner().invoke(main, command + [str(tmp_path / "lm.arpa"), "--allow-outside"])
    assert allowed.exit_code == 0, allowed.output
    assert (tmp_path / "lm.arpa").read_text("utf-8").startswith("\\data\\")
    assert not outside_allowed()


def test_open_source_dispatch(tmp_path):
    write_image(tmp_path / "lines" / "a.png")
    (tmp_path / "lines" / "a.gt.txt").write_text("alpha", encoding="utf-8")
    (tmp_path / "list.tsv").write_text("lines/a.png\talpha\n", encoding="utf-8")
    assert [s.text for s in open_source(str(tmp_path / "lines"))] == ["alpha"]
    assert [s.id for s in open_source(str(tmp_path / "list.tsv"))] == ["lines/a.png"]
    assert [s.id for s in open_source(f"list:{tmp_path / 'list.tsv'}")] == ["lines/a.png"]
    digits = open_source("digits:val:3", seed=5)
    assert [s.id for s in digits] == ["digits-val-000000", "digits-val-000001",
                                      "digits-val-000002"]
    assert all(s.text.isdigit() for s in digits)


def test_open_source_path_with_a_colon_is_a_path(tmp_path):
    folder = tmp_path / "page:scans"
    write_image(folder / "a.png")
    (folder / "a.gt.txt").write_text("x", encoding="utf-8")
    assert [s.id for s in open_source(str(folder))] == ["a.png"]


@pytest.mark.parametrize("spec, message", [
    ("", "empty data source"),
    ("nowhere/at/all", "no such file or folder"),
    ("foo:bar", "unknown source type 'foo'"),
    ("iam:/no/such/iam", "no such file or folder /no/such/iam"),
    ("page:", "a path must follow 'page:'"),
    ("digits:dev", r"expected digits\[:train\|val\|test\[:COUNT\]\]"),
    ("digits:val:many", r"expected digits"),
])
def test_open_source_rejects_bad_specs(spec, message):
    with pytest.raises(InputError, match=message):
        open_source(spec)


def test_open_source_rejects_files_it_cannot_read(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"PK")
    with pytest.raises(InputError, match="not a data source"):
        open_source(str(tmp_path / "model.keras"))
