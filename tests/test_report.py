"""`mdrnn evaluate --report`: the HTML page, its parts, and that a browser renders it."""

import base64
import shutil
import subprocess

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from lxml import html as lxml_html

from mdrnn.datasets.charset import TOKEN_SEPARATOR
from mdrnn.pipelines.cli import main
from mdrnn.pipelines.evaluate import LineEvaluation
from mdrnn.pipelines.report import calibration, marked_difference


def test_marked_difference_marks_what_was_missed_and_added():
    truth, read = marked_difference("a <b> c", "a <x> cd")
    assert truth == "a &lt;<del>b</del>&gt; c"
    assert read == "a &lt;<ins>x</ins>&gt; c<ins>d</ins>"
    assert marked_difference(("t1", "t2"), ("t1",)) == (f"t1{TOKEN_SEPARATOR}<del>t2</del>", "t1")


def test_calibration_groups_lines_by_rising_confidence():
    lines = [LineEvaluation(str(i), "ab", "ab" if i % 2 else "a", 0 if i % 2 else 1, 0,
                            i / 10) for i in range(10)]
    rows = calibration(lines)
    assert [row["lines"] for row in rows] == [2] * 5
    assert [row["low"] for row in rows] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    assert [row["mean"] for row in rows] == pytest.approx([0.05, 0.25, 0.45, 0.65, 0.85])
    assert all(row["line_accuracy"] == 0.5 for row in rows)


def test_evaluate_writes_a_self_contained_report(model_file, tmp_path):
    from tiny import write_line_folder

    texts = ["ab c", "a <b> & c", "bb", "c a"]
    folder = write_line_folder(tmp_path / "lines", texts, seed=3)
    report = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["evaluate", str(model_file), str(folder),
                                       "--report", str(report)])
    assert result.exit_code == 0, result.output
    page = lxml_html.fromstring(report.read_bytes())
    cells = page.xpath("//table[1]//td/text()")
    assert cells[0] == "4" and cells[1].endswith("%")
    # The worst lines: each with its embedded image and its truth, escaped.
    images = page.xpath("//img/@src")
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    picture = cv2.imdecode(np.frombuffer(base64.b64decode(images[0].split(",")[1]), np.uint8),
                           cv2.IMREAD_GRAYSCALE)
    assert picture.shape[0] == 48
    truths = ["".join(row.xpath(".//td//text()")) for row in page.xpath("//tr[th='truth'][td]")]
    assert set(truths) <= set(texts) and truths, truths
    assert not page.xpath("//script | //link | //*[@src and not(starts-with(@src, 'data:'))]")


@pytest.mark.skipif(not shutil.which("chromium"), reason="no chromium to render with")
def test_the_report_renders_in_a_browser(model_file, tmp_path):
    from tiny import write_line_folder

    folder = write_line_folder(tmp_path / "lines", ["ab c", "a b", "cc"], seed=4)
    report = tmp_path / "report.html"
    CliRunner().invoke(main, ["evaluate", str(model_file), str(folder), "--report", str(report)])
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
         "--window-size=1200,900", f"--screenshot={shot}", report.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Uncaught" not in done.stderr and "CONSOLE" not in done.stderr
    image = cv2.imread(str(shot))
    assert image.shape[:2] == (900, 1200)
    assert (image < 100).any() and image.std() > 10  # text drawn on the page, not blank
