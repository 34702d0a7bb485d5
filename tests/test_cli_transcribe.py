"""`mdrnn transcribe` and `mdrnn evaluate` through click's CliRunner, and in a fresh process."""

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from lxml import etree
from tiny import line_images, write_line_folder

from mdrnn.lm import UNITS
from mdrnn.pipelines.cli import main
from mdrnn.pipelines.folder_lock import LOCK_NAME
from mdrnn.pipelines.recognizer import DECODERS, LEXICON_MODES, Recognizer
from mdrnn.pipelines.writers import FORMATS, JSONL_NAME

SCHEMA = Path(__file__).parent / "data" / "page-2019.xsd"
TEXTS = ["ab ab", "bab", "c", "ba ba ab"]


@pytest.fixture(scope="module")
def expected(model_file):
    """Texts of the line images, recognised in this process, by file stem."""
    images = line_images(len(TEXTS), seed=9)
    results = Recognizer.load(model_file).recognize(images)
    return {f"l{i}": r.text for i, r in enumerate(results)}


@pytest.fixture
def lines(tmp_path):
    return write_line_folder(tmp_path / "lines", TEXTS, seed=9)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _outputs(folder: Path) -> list[str]:
    """The files a job wrote, without the folder's lock file."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.name != LOCK_NAME)


def test_cli_choices_match_the_library():
    transcribe = main.commands["transcribe"]
    choices = {p.name: tuple(p.type.choices) for p in transcribe.params
               if hasattr(p.type, "choices")}
    assert choices == {"output_format": FORMATS, "decoder": DECODERS,
                       "lexicon_mode": LEXICON_MODES, "lm_unit": UNITS}


def test_txt_output(model_file, lines, expected, tmp_path):
    result = run("transcribe", model_file, lines, "--out", tmp_path / "out", "--batch-size", 3)
    assert result.exit_code == 0, result.output
    assert "4 transcribed, 0 already done, 0 failed" in result.stderr
    assert "Transcribing" in result.stderr
    assert _outputs(tmp_path / "out") == [f"l{i}.txt" for i in range(4)]
    for stem, text in expected.items():
        assert (tmp_path / "out" / f"{stem}.txt").read_text("utf-8") == (
            text + "\n" if text else "")


def test_jsonl_output(model_file, lines, expected, tmp_path):
    result = run("-q", "transcribe", model_file, lines / "l0.png", f"{lines}/l[123].png",
                 "--out", tmp_path / "out", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert "Transcribing" not in result.stderr
    records = [json.loads(r) for r in (tmp_path / "out" / JSONL_NAME).read_text().splitlines()]
    assert [Path(r["source"]).stem for r in records] == ["l0", "l1", "l2", "l3"]
    for record in records:
        assert record["text"] == expected[Path(record["source"]).stem]
        assert 0 <= record["confidence"] <= 1
        assert len(record["char_confidences"]) == len(record["text"])


def test_page_output_validates(model_file, lines, expected, tmp_path):
    result = run("transcribe", model_file, lines, "--out", tmp_path / "out", "-f", "page")
    assert result.exit_code == 0, result.output
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    ns = {"p": "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"}
    for stem, text in expected.items():
        doc = etree.parse(str(tmp_path / "out" / f"{stem}.xml"))
        schema.assertValid(doc)
        assert doc.findtext(".//p:TextLine/p:TextEquiv/p:Unicode", namespaces=ns) == text


def test_pages_option_segments_scans(model_file, tmp_path):
    from test_transcribe import _page

    from mdrnn.datasets.digits import digit_lines

    scans = tmp_path / "scans"
    scans.mkdir()
    lines = [s.source for s in digit_lines("val", 2, seed=2, min_digits=6, max_digits=8)]
    cv2.imwrite(str(scans / "p.png"), _page(lines))
    result = run("transcribe", model_file, scans, "--pages", "--out", tmp_path / "out", "-f",
                 "page")
    assert result.exit_code == 0, result.output
    doc = etree.parse(str(tmp_path / "out" / "p.xml"))
    etree.XMLSchema(etree.parse(str(SCHEMA))).assertValid(doc)
    assert len(doc.findall(".//{*}TextLine")) == 2


def test_bad_inputs_are_listed_and_the_rest_transcribed(model_file, lines, tmp_path):
    (lines / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (lines / "empty.jpg").write_bytes(b"")
    result = run("transcribe", model_file, lines, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "2 of 6 inputs failed:" in result.stderr
    assert f"{lines / 'broken.png'}: " in result.stderr
    assert f"{lines / 'empty.jpg'}: empty file" in result.stderr
    assert _outputs(tmp_path / "out") == [f"l{i}.txt" for i in range(4)]


def test_rerun_skips_done_inputs_unless_overwrite(model_file, lines, expected, tmp_path):
    out = tmp_path / "out"
    assert run("transcribe", model_file, lines, "--out", out).exit_code == 0
    (out / "l0.txt").write_text("kept", encoding="utf-8")
    (out / "l1.txt").unlink()
    again = run("transcribe", model_file, lines, "--out", out)
    assert "1 transcribed, 3 already done" in again.stderr
    assert (out / "l0.txt").read_text("utf-8") == "kept"
    assert (out / "l1.txt").read_text("utf-8").strip() == expected["l1"]
    forced = run("transcribe", model_file, lines, "--out", out, "--overwrite")
    assert "4 transcribed, 0 already done" in forced.stderr
    assert (out / "l0.txt").read_text("utf-8").strip() == expected["l0"]


def test_jsonl_rerun_retries_failures_without_duplicates(model_file, lines, tmp_path):
    good = (lines / "l0.png").read_bytes()
    (lines / "l0.png").write_bytes(good[:40])
    out = tmp_path / "out"
    first = run("transcribe", model_file, lines, "--out", out, "-f", "jsonl")
    assert first.exit_code == 1
    (lines / "l0.png").write_bytes(good)
    second = run("transcribe", model_file, lines, "--out", out, "-f", "jsonl")
    assert second.exit_code == 0 and "1 transcribed, 3 already done" in second.stderr
    records = [json.loads(r) for r in (out / JSONL_NAME).read_text().splitlines()]
    assert sorted(Path(r["source"]).name for r in records) == [f"l{i}.png" for i in range(4)]
    assert not any("error" in r for r in records)


@pytest.mark.parametrize("args, message", [
    (["transcribe", "{model}missing", "{lines}", "--out", "o"],
     "missing: no such model file, nor a shipped model (shipped: "),
    (["transcribe", "{model}", "{lines}/nothing.png", "--out", "o"], "no such file or folder"),
    (["transcribe", "{model}", "{lines}", "--out", "o", "--format", "csv"], "'csv' is not one"),
    (["transcribe", "{model}", "{lines}"], "Missing option '-o' / '--out'"),
    (["transcribe", "{model}", "{lines}", "--out", "o", "--decoder", "lexicon"],
     "--decoder lexicon needs --lexicon FILE"),
    (["transcribe", "{model}", "{lines}", "--out", "o", "--lexicon", "{lines}/l0.gt.txt"],
     "--lexicon goes with --decoder lexicon"),
    (["evaluate", "{model}", "{lines}/nowhere"], "no such file or folder"),
])
def test_user_mistakes_are_one_line_errors(model_file, lines, tmp_path, monkeypatch, args,
                                           message):
    monkeypatch.chdir(tmp_path)
    args = [a.format(model=model_file, lines=lines) for a in args]
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (1, 2)
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_a_file_that_is_not_a_model_is_an_error(lines, tmp_path):
    fake = tmp_path / "fake.keras"
    fake.write_text("hello", encoding="utf-8")
    result = run("transcribe", fake, lines, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith(
        f"Error: {fake}: not a .keras model (not a zip archive")


def test_lexicon_decoder(model_file, lines, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("ab\nba\nc\n", encoding="utf-8")
    result = run("transcribe", model_file, lines, "--out", tmp_path / "out", "--decoder",
                 "lexicon", "--lexicon", words)
    assert result.exit_code == 0, result.output
    texts = [(tmp_path / "out" / f"l{i}.txt").read_text("utf-8").strip() for i in range(4)]
    assert set(texts) <= {"ab", "ba", "c"}


def test_fresh_process_gives_the_same_transcription(model_file, lines, expected, tmp_path):
    command = [sys.executable, "-c", "from mdrnn.pipelines.cli import main; main()", "-q",
               "transcribe", str(model_file), str(lines), "--out", str(tmp_path / "out"),
               "-f", "jsonl", "--decoder", "beam"]
    # Run outside the checkout, as a user would: from its root, `python -c` would
    # import the source folder `mdrnn/` rather than the installed package.
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = [json.loads(r) for r in (tmp_path / "out" / JSONL_NAME).read_text().splitlines()]
    images = [cv2.imread(r["source"], cv2.IMREAD_GRAYSCALE) for r in records]
    in_process = Recognizer.load(model_file, decoder="beam").recognize(images)
    assert [r["text"] for r in records] == [r.text for r in in_process]
    assert [r["confidence"] for r in records] == pytest.approx(
        [r.confidence for r in in_process], abs=1e-6)


def test_evaluate_prints_rates_and_writes_results(model_file, lines, expected, tmp_path):
    output = tmp_path / "results.tsv"
    result = run("evaluate", model_file, lines, "--output", output)
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()] == [
        "CER", "WER", "line", "most"]
    rows = [line.split("\t") for line in output.read_text("utf-8").splitlines()]
    assert rows[0] == ["id", "reference", "hypothesis", "char_errors", "word_errors",
                       "confidence"]
    assert [(r[0], r[1], r[2]) for r in rows[1:]] == [
        (f"l{i}.png", TEXTS[i], expected[f"l{i}"]) for i in range(4)]
    chars = sum(len(t) for t in TEXTS)
    errors = sum(int(r[3]) for r in rows[1:])
    assert f"({errors} errors / {chars} characters)" in result.stdout


def test_evaluate_lists_unreadable_samples(model_file, lines):
    (lines / "l2.png").write_bytes(b"GIF89a")
    result = run("evaluate", model_file, lines)
    assert result.exit_code == 1
    assert "1 of 4 samples failed:" in result.stderr and "l2.png" in result.stderr
    assert "of 3 lines)" in result.stdout


def test_failures_are_reported_on_one_line_and_bad_model_files_named(tmp_path, model_file):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "good.png"), line_images(1)[0])
    (folder / "bad\nname.png").write_bytes(b"not an image")
    result = run("transcribe", model_file, folder, "--out", tmp_path / "out")
    assert result.exit_code == 1
    failures = [line for line in result.output.splitlines() if "bad" in line]
    assert failures and all("bad\\nname.png" in line for line in failures)
    (tmp_path / "fake.keras").write_text("not a zip")
    result = run("transcribe", tmp_path / "fake.keras", folder, "--out", tmp_path / "o2")
    assert result.exit_code == 1
    assert "fake.keras: not a .keras model (not a zip archive" in result.output


def test_sigterm_stops_a_job_like_ctrl_c_and_a_rerun_finishes_it(model_file, tmp_path):
    import signal
    import time

    from tiny import line_images

    lines = tmp_path / "many"
    lines.mkdir()
    for i, image in enumerate(line_images(600, seed=4)):
        cv2.imwrite(str(lines / f"l{i:03d}.png"), image)
    out = tmp_path / "out"
    command = [sys.executable, "-c", "from mdrnn.pipelines.cli import main; main()",
               "transcribe", str(model_file), str(lines), "--out", str(out), "--batch-size", "4"]
    job = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(out.glob("*.txt"))) and time.monotonic() < deadline:
        time.sleep(0.05)
    job.send_signal(signal.SIGTERM)
    _, stderr = job.communicate(timeout=60)
    assert job.returncode == 1 and "Aborted!" in stderr
    written = sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME)
    assert 0 < len(written) < 600 and all(not n.startswith(".") for n in written)
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(list(out.glob("*.txt"))) == 600
    assert f"{600 - len(written)} transcribed, {len(written)} already done" in done.stderr


def test_one_job_per_output_folder_and_stale_temporaries_removed(model_file, lines, tmp_path):
    import fcntl
    import os

    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".l0.omste84t.txt"
    stale.write_text("half")
    handle = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(handle, fcntl.LOCK_EX)  # another job is running
    try:
        result = run("transcribe", model_file, lines, "--out", out)
        assert result.exit_code == 1
        assert "another mdrnn job is writing into this folder" in result.output
        assert stale.exists()  # not ours to touch while the other job runs
    finally:
        os.close(handle)
    result = run("transcribe", model_file, lines, "--out", out)
    assert result.exit_code == 0, result.output
    assert not stale.exists() and len(_outputs(out)) == 4


def test_blank_and_tiny_images_read_as_empty_lines(model_file, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "blank.png"), np.full((20, 90), 255, np.uint8))
    cv2.imwrite(str(folder / "dot.png"), np.zeros((1, 1), np.uint8))
    cv2.imwrite(str(folder / "line.png"), line_images(1, seed=2)[0])
    result = run("transcribe", model_file, folder, "--out", tmp_path / "out", "-f", "jsonl")
    assert result.exit_code == 0, result.output
    records = {Path(r["source"]).stem: r for r in map(
        json.loads, (tmp_path / "out" / JSONL_NAME).read_text().splitlines())}
    for name in ("blank", "dot"):
        assert records[name]["text"] == "" and records[name]["no_ink"] is True
    assert "no_ink" not in records["line"]


def test_bad_paths_are_reported_and_the_job_goes_on(model_file, lines, tmp_path):
    (lines / "folder.png").mkdir()
    (lines / "gone.png").symlink_to(tmp_path / "nowhere.png")
    result = run("transcribe", model_file, lines, tmp_path / "missing.png", "--out",
                 tmp_path / "out")
    assert result.exit_code == 1
    assert len(_outputs(tmp_path / "out")) == 4  # the good lines are transcribed
    for name, why in (("missing.png", "no such file or folder"), ("folder.png", "a folder"),
                      ("gone.png", "a broken link")):
        assert re.search(rf"failed: .*{name}: {why}", result.output), name
    assert "3 of 7 inputs failed" in result.output
