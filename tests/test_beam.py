"""`mdrnn beam-transcribe` on Beam's in-process runner writes what `mdrnn transcribe` writes."""

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from test_cli_transcribe import TEXTS
from tiny import write_line_folder

from mdrnn.pipelines.cli import main
from mdrnn.pipelines.folder_lock import LOCK_NAME
from mdrnn.pipelines.writers import FORMATS, JSONL_NAME

pytest.importorskip("apache_beam")

from mdrnn.pipelines.beam_job import FAILURES_NAME  # noqa: E402

# The moment of writing, the only thing allowed to differ between two runs, but for
# confidences: the two jobs batch a page's lines differently, and the padding moves
# the last digit of a written confidence now and then (PAGE's conf, ALTO's WC).
STAMPS = re.compile(rb"<(processingDateTime|Created|LastChange)>[^<]*</\1>")
CONFIDENCES = re.compile(rb'\b(conf|WC)="([^"]*)"')


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def outputs(folder: Path) -> dict[str, bytes]:
    """The files of a job's folder (not the lock, not Beam's failure records), with
    their contents less the time stamps."""
    return {p.relative_to(folder).as_posix(): STAMPS.sub(b"", p.read_bytes())
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in (LOCK_NAME, FAILURES_NAME)}


def assert_same_outputs(written: dict[str, bytes], expected: dict[str, bytes]) -> None:
    """The same files with the same contents, confidences equal to within 1e-5."""
    assert sorted(written) == sorted(expected)
    for name, content in written.items():
        assert CONFIDENCES.sub(rb'\1=""', content) == CONFIDENCES.sub(
            rb'\1=""', expected[name]), name
        values = [[float(m.group(2)) for m in CONFIDENCES.finditer(c)]
                  for c in (content, expected[name])]
        np.testing.assert_allclose(*values, rtol=0, atol=1e-5, err_msg=name)


@pytest.fixture
def inputs(tmp_path):
    """Line images in a folder with a subfolder, a corrupt and an empty file."""
    folder = write_line_folder(tmp_path / "lines", TEXTS, seed=9)
    write_line_folder(folder / "more", ["c ab", "ba"], seed=3)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (folder / "more" / "empty.jpg").write_bytes(b"")
    return folder


def failure_records(folder: Path, output_format: str) -> list[dict]:
    path = folder / (JSONL_NAME if output_format == "jsonl" else FAILURES_NAME)
    records = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    return [r for r in records if "error" in r]


@pytest.mark.parametrize("output_format", FORMATS)
def test_line_folders_give_what_transcribe_gives(model_file, inputs, tmp_path, output_format):
    expected = run("transcribe", model_file, inputs, "-o", tmp_path / "t", "-f", output_format)
    result = run("beam-transcribe", model_file, inputs, "-o", tmp_path / "b", "-f",
                 output_format)
    assert expected.exit_code == result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "2 of 8 inputs failed:" in result.stderr
    assert f"{inputs / 'broken.png'}: " in result.stderr
    assert f"{inputs / 'more' / 'empty.jpg'}: empty file" in result.stderr
    written = outputs(tmp_path / "b")
    assert_same_outputs(written, outputs(tmp_path / "t"))
    if output_format != "jsonl":
        suffix = ".txt" if output_format == "txt" else ".xml"
        assert sorted(written) == sorted([f"l{i}{suffix}" for i in range(4)]
                                         + [f"more/l{i}{suffix}" for i in range(2)])
    # The failed inputs are error records, in input order.
    assert [(r["source"], r["error"].split(": ")[-1]) for r in failure_records(
        tmp_path / "b", output_format)] == [(str(inputs / "broken.png"),
                                             "malformed or truncated image header"),
                                            (str(inputs / "more" / "empty.jpg"), "empty file")]


@pytest.mark.parametrize("output_format", ["page", "jsonl"])
def test_page_scans_give_what_transcribe_gives(model_file, tmp_path, output_format):
    from test_transcribe import _page

    from mdrnn.datasets.digits import digit_lines

    scans = tmp_path / "scans"
    scans.mkdir()
    for number, seed in enumerate((2, 5)):
        lines = [s.source for s in digit_lines("val", 3, seed=seed, min_digits=5,
                                               max_digits=8)]
        cv2.imwrite(str(scans / f"p{number}.png"), _page(lines))
    cv2.imwrite(str(scans / "blank.png"), np.full((400, 300), 255, np.uint8))
    (scans / "torn.png").write_bytes(cv2.imencode(".png", _page(lines))[1].tobytes()[:300])
    expected = run("transcribe", model_file, scans, "--pages", "-o", tmp_path / "t", "-f",
                   output_format)
    result = run("beam-transcribe", model_file, scans, "--pages", "-o", tmp_path / "b", "-f",
                 output_format)
    assert expected.exit_code == result.exit_code == 1, result.output
    written = outputs(tmp_path / "b")
    assert_same_outputs(written, outputs(tmp_path / "t"))
    if output_format == "page":
        assert sorted(written) == ["blank.xml", "p0.xml", "p1.xml"]
        assert written["p1.xml"].count(b"<TextLine ") == 3
    assert [r["source"] for r in failure_records(tmp_path / "b", output_format)] == [
        str(scans / "torn.png")]


def test_reruns_skip_done_inputs_and_retry_failed_ones(model_file, inputs, tmp_path):
    out = tmp_path / "b"
    first = run("beam-transcribe", model_file, inputs, "-o", out, "-f", "jsonl")
    assert "6 transcribed, 0 already done, 2 failed" in first.stderr
    (inputs / "broken.png").unlink()
    cv2.imwrite(str(inputs / "broken.png"), cv2.imread(str(inputs / "l0.png")))
    second = run("beam-transcribe", model_file, inputs, "-o", out, "-f", "jsonl")
    assert "1 transcribed, 6 already done, 1 failed" in second.stderr, second.output
    records = [json.loads(line) for line in (out / JSONL_NAME).read_text().splitlines()]
    sources = [r["source"] for r in records]
    # Each input once: the old error records were dropped, the retried ones appended.
    assert sorted(sources) == sorted(set(sources)) and len(sources) == 8
    assert [r for r in records if "error" in r] == [
        {"source": str(inputs / "more" / "empty.jpg"),
         "error": f"{inputs / 'more' / 'empty.jpg'}: empty file"}]
    third = run("beam-transcribe", model_file, inputs, "-o", out, "-f", "txt")
    assert third.exit_code == 1 and "7 transcribed" in third.stderr


def test_beam_options_follow_the_inputs(model_file, inputs, tmp_path):
    result = run("beam-transcribe", model_file, inputs, "-o", tmp_path / "b",
                 "--runner=NoSuchRunner")
    assert result.exit_code == 2 and "NoSuchRunner" in result.output
    assert "Traceback" not in result.output
    result = run("beam-transcribe", model_file, "--runner=FnApiRunner", "-o", tmp_path / "b")
    assert result.exit_code == 2 and "give the INPUTS before" in result.output
