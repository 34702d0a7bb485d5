"""`mdrnn preprocess` through click's CliRunner: exit codes, files written, failures."""

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from mdrnn.datasets.imageio import load_image
from mdrnn.pipelines import atomic
from mdrnn.pipelines.cli import main
from mdrnn.pipelines.folder_lock import LOCK_NAME
from mdrnn.pipelines.preprocess import normalise_line
from mdrnn.pipelines.preprocess_config import PreprocessConfig
from mdrnn.pipelines.segment_eval import render_page


def line_image(text="minimum 1234", inverted=False):
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 2)
    image = np.full((h + base + 20, w + 20), 255, np.uint8)
    cv2.putText(image, text, (10, 10 + h), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 0, 2, cv2.LINE_AA)
    return 255 - image if inverted else image


@pytest.fixture
def inputs(tmp_path):
    """A folder of line images, one in a subfolder, and two bad files among them."""
    folder = tmp_path / "lines"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "a.png"), line_image())
    cv2.imwrite(str(folder / "b.jpg"), cv2.cvtColor(line_image("hello"), cv2.COLOR_GRAY2BGR))
    cv2.imwrite(str(folder / "sub" / "c.tif"), line_image("inverted", inverted=True))
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("not an image\n")
    (folder / "readme.txt").write_text("not an input: no image suffix\n")
    return folder


def run(*args):
    return CliRunner().invoke(main, ["preprocess", *map(str, args)])


def written(out):
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                  if p.is_file() and p.name != LOCK_NAME)


def test_lines_are_written_and_bad_files_reported(inputs, tmp_path):
    out = tmp_path / "out"
    result = run(inputs, "--out", out)
    assert result.exit_code == 1
    assert written(out) == ["a.png", "b.png", "sub/c.png"]
    for source, name in (("a.png", "a.png"), ("b.jpg", "b.png"), ("sub/c.tif", "sub/c.png")):
        image = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
        assert image.dtype == np.uint8 and image.ndim == 2 and image.shape[0] == 64
        # Exactly the library's result; the inverted c.tif comes out dark on light.
        expected = normalise_line(load_image(inputs / source), PreprocessConfig())
        np.testing.assert_array_equal(image, expected)
        assert image[0, 0] == 255 and image.min() < 30
    errors = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert len(errors) == 2
    assert any("empty.png" in e and "empty file" in e for e in errors)
    assert any("notes.png" in e and "not a supported image" in e for e in errors)
    assert "Traceback" not in result.output
    assert f"3 preprocessed (3 lines), 0 already done, 2 failed; output in {out}" in result.stderr


def test_second_run_skips_finished_work_and_overwrite_redoes_it(inputs, tmp_path):
    out = tmp_path / "out"
    for bad in ("empty.png", "notes.png"):
        (inputs / bad).unlink()
    assert run(inputs, "-o", out).exit_code == 0
    stamp = (out / "a.png").stat().st_mtime_ns
    again = run(inputs, "-o", out)
    assert again.exit_code == 0 and "0 preprocessed (0 lines), 3 already done" in again.stderr
    assert (out / "a.png").stat().st_mtime_ns == stamp
    redo = run(inputs, "-o", out, "--overwrite", "--height", "32")
    assert redo.exit_code == 0 and "3 preprocessed" in redo.stderr
    assert cv2.imread(str(out / "a.png"), cv2.IMREAD_UNCHANGED).shape[0] == 32


def test_glob_files_and_options(inputs, tmp_path):
    out = tmp_path / "out"
    result = run(f"{inputs}/*.png", inputs / "sub" / "c.tif", "-o", out, "--height", "40",
                 "--binarise", "otsu", "--denoise", "3", "--deskew", "--slant", "--polarity",
                 "auto")
    assert result.exit_code == 1  # the two bad .png files match the pattern
    assert written(out) == ["a.png", "c.png"]
    assert cv2.imread(str(out / "a.png"), cv2.IMREAD_UNCHANGED).shape[0] == 40


def test_missing_input_is_a_usage_error(tmp_path):
    result = run(tmp_path / "nothing.png", "-o", tmp_path / "out")
    assert result.exit_code == 2 and "nothing.png: no such file" in result.stderr
    assert not (tmp_path / "out").exists()


def test_config_file_and_options_over_it(inputs, tmp_path):
    config = tmp_path / "pre.json"
    config.write_text(json.dumps({"height": 48, "crop": False}))
    out = tmp_path / "out"
    assert run(inputs / "a.png", "-o", out, "--config", config).exit_code == 0
    uncropped = cv2.imread(str(out / "a.png"), cv2.IMREAD_UNCHANGED)
    assert uncropped.shape[0] == 48
    assert run(inputs / "a.png", "-o", out, "--config", config, "--crop", "--overwrite",
               "--height", "30").exit_code == 0
    cropped = cv2.imread(str(out / "a.png"), cv2.IMREAD_UNCHANGED)
    assert cropped.shape[0] == 30 and cropped.shape[1] / 30 > uncropped.shape[1] / 48


@pytest.mark.parametrize("content, message", [
    ("{not json", "pre.json"),
    ('{"height": 48, "colour": true}', "colour"),
    ('{"binarise": "magic"}', "'magic'"),
])
def test_bad_config_file_is_a_usage_error(inputs, tmp_path, content, message):
    config = tmp_path / "pre.json"
    config.write_text(content)
    result = run(inputs / "a.png", "-o", tmp_path / "out", "--config", config)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "out").exists()


def test_pages_write_lines_and_their_coordinates(tmp_path):
    page = render_page(np.random.default_rng(11), (1240, 1754), skew=2.0, noise=False)
    scans = tmp_path / "scans"
    scans.mkdir()
    cv2.imwrite(str(scans / "page1.png"), page.image)
    cv2.imwrite(str(scans / "blank.png"), np.full((800, 600), 255, np.uint8))
    out = tmp_path / "out"
    result = run(scans, "-o", out, "--pages", "--height", "48")
    assert result.exit_code == 0, result.output
    record = json.loads((out / "page1.json").read_text())
    assert (record["width"], record["height"]) == (1240, 1754)
    assert record["preprocess"]["height"] == 48
    assert abs(len(record["lines"]) - len(page.lines)) <= 1
    for line in record["lines"]:
        image = cv2.imread(str(out / line["image"]), cv2.IMREAD_UNCHANGED)
        assert image.shape[0] == 48
        x0, y0, x1, y1 = line["bbox"]
        assert 0 <= x0 < x1 <= 1240 and 0 <= y0 < y1 <= 1754
        assert len(line["polygon"]) == 4
    assert json.loads((out / "blank.json").read_text())["lines"] == []
    pngs = [name for name in written(out) if name.endswith(".png")]
    assert len(pngs) == len(record["lines"])
    assert pngs[0] == "page1/page1_l001.png"
    # Redone with other settings, a page loses the line images of the earlier run.
    cv2.imwrite(str(out / "page1" / "page1_l999.png"), np.zeros((4, 4), np.uint8))
    assert run(scans / "page1.png", "-o", out, "--pages", "--overwrite").exit_code == 0
    assert [name for name in written(out) if name.endswith(".png")] == pngs


def test_a_failed_write_leaves_no_file_behind(inputs, tmp_path, monkeypatch):
    def failing_replace(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    out = tmp_path / "out"
    result = run(inputs / "a.png", inputs / "b.jpg", "-o", out)
    assert result.exit_code == 1
    assert result.stderr.count("No space left on device") == 2
    assert written(out) == []  # neither outputs nor temporary files


def test_outputs_that_would_share_a_name_are_refused(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "x.png"), line_image())
    cv2.imwrite(str(folder / "x.jpg"), line_image("other"))
    out = tmp_path / "out"
    result = run(folder, "-o", out)
    assert result.exit_code == 2 and "would both be written as 'x'" in result.stderr
    assert not out.exists()


def test_quiet_hides_the_progress_bar(inputs, tmp_path):
    loud = run(inputs / "a.png", "-o", tmp_path / "a")
    quiet = CliRunner().invoke(main, ["-q", "preprocess", str(inputs / "a.png"), "-o",
                                      str(tmp_path / "b")])
    assert loud.exit_code == quiet.exit_code == 0
    assert "Preprocessing" in loud.stderr and "Preprocessing" not in quiet.stderr


def test_help_lists_the_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "preprocess" in result.output
    help_text = CliRunner().invoke(main, ["preprocess", "--help"]).output
    for option in ("--out", "--pages", "--height", "--binarise", "--deskew", "--slant"):
        assert option in help_text


def test_transcribed_lines_of_alto_become_a_line_folder(tmp_path, shared_data):
    from mdrnn.datasets.formats import open_source

    page = shared_data / "copiste" / "val" / "wikitexte_0010_2.xml"
    result = run(f"alto:{page}", "--out", tmp_path / "gt", "--height", "32")
    assert result.exit_code == 0, result.output
    truth = {s.id: s.text for s in open_source(f"alto:{page}")}
    written = open_source(str(tmp_path / "gt" / "wikitexte_0010_2"))
    assert {f"wikitexte_0010_2/{s.id[:-4]}": s.text for s in written} == truth
    assert {s.load().shape[0] for s in written} == {32}
    again = run(f"alto:{page}", "--out", tmp_path / "gt")
    assert f"0 preprocessed (0 lines), {len(truth)} already done" in again.output
