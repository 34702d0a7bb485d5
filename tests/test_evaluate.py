"""Evaluation: per-line edit distances, rates over readable lines, TSV results, token texts."""

import csv

import pytest
from rapidfuzz.distance import Levenshtein
from tiny import line_images, tiny_model, write_line_folder

from mdrnn.datasets.charset import Charset
from mdrnn.datasets.formats import open_source
from mdrnn.datasets.samples import Sample
from mdrnn.pipelines.evaluate import TSV_COLUMNS, evaluate, summary, write_results
from mdrnn.pipelines.recognizer import Recognizer

REFERENCES = ["ab ab", "bab", "c", "ba ba ab", "abc"]


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer(tiny_model(Charset.from_texts(["ab c"])), batch_size=2)


@pytest.fixture
def data_folder(tmp_path):
    return write_line_folder(tmp_path / "data", REFERENCES, seed=7)


def test_per_line_errors_are_edit_distances_of_the_recognised_text(recognizer, data_folder):
    samples = open_source(str(data_folder))
    finished = []
    result = evaluate(recognizer, samples, window=3, progress=finished.append)
    assert sum(finished) == len(REFERENCES) and not result.failures
    hypotheses = [r.text for r in recognizer.recognize([s.load() for s in samples])]
    assert [line.id for line in result.lines] == [s.id for s in samples]
    assert [line.hypothesis for line in result.lines] == hypotheses
    assert [line.reference for line in result.lines] == REFERENCES
    for line in result.lines:
        assert line.char_errors == Levenshtein.distance(line.reference, line.hypothesis)
        assert line.word_errors == Levenshtein.distance(line.reference.split(),
                                                        line.hypothesis.split())
    rates = result.rates
    assert rates.chars == sum(len(r) for r in REFERENCES)
    assert rates.words == sum(len(r.split()) for r in REFERENCES)
    assert rates.char_errors == sum(line.char_errors for line in result.lines) > 0
    assert rates.cer == pytest.approx(rates.char_errors / rates.chars)
    assert rates.lines_correct == sum(h == r for h, r in zip(hypotheses, REFERENCES))


def test_unreadable_samples_are_failures_outside_the_rates(recognizer, data_folder):
    (data_folder / "l1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    samples = open_source(str(data_folder))
    failed = []
    result = evaluate(recognizer, samples, on_failure=lambda name, reason: failed.append(name))
    assert failed == [str(data_folder / "l1.png")]
    assert [name for name, _ in result.failures] == failed
    assert "truncated" in result.failures[0][1]
    assert [line.id for line in result.lines] == ["l0.png", "l2.png", "l3.png", "l4.png"]
    assert result.rates.lines == 4
    assert result.rates.chars == sum(len(r) for i, r in enumerate(REFERENCES) if i != 1)


def test_token_references_are_compared_symbol_by_symbol():
    charset = Charset(["saB", "yaM", "aaE"], separator="|")
    recognizer = Recognizer(tiny_model(charset))
    images = line_images(3, seed=8)
    samples = [Sample(image, ("saB", "yaM", "aaE"), f"w{i}") for i, image in enumerate(images)]
    result = evaluate(recognizer, samples)
    for line, found in zip(result.lines, recognizer.recognize(images)):
        assert line.hypothesis == found.symbols
        assert line.char_errors == Levenshtein.distance(list(line.reference), list(found.symbols))
    assert result.rates.chars == 9 and result.rates.words == 3


def test_results_tsv_and_summary(recognizer, data_folder, tmp_path):
    result = evaluate(recognizer, open_source(str(data_folder)))
    path = tmp_path / "out" / "results.tsv"
    write_results(path, result)
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert tuple(rows[0]) == TSV_COLUMNS
    assert len(rows) == len(REFERENCES) + 1
    for row, line in zip(rows[1:], result.lines):
        assert row[:5] == [line.id, line.reference, line.hypothesis, str(line.char_errors),
                           str(line.word_errors)]
        assert float(row[5]) == pytest.approx(line.confidence, abs=1e-6)
    text = summary(result)
    assert f"{100 * result.rates.cer:6.2f} %" in text.splitlines()[0]
    assert text.splitlines()[2].endswith(
        f"({result.rates.lines_correct} of {len(REFERENCES)} lines)")
    assert result.rates.char_errors > 0   # an untrained model
    assert text.splitlines()[3].startswith("most frequent errors (truth -> read: count): ")


def test_bad_samples_are_reported_and_the_rest_evaluated(model_file, tmp_path):
    import cv2
    from click.testing import CliRunner
    from tiny import line_images

    from mdrnn.pipelines.cli import main

    folder = tmp_path / "data"
    folder.mkdir()
    images = line_images(5, seed=8)
    for i, image in enumerate(images):
        cv2.imwrite(str(folder / f"l{i}.png"), image)
    (folder / "l0.gt.txt").write_text("ab")
    (folder / "l1.gt.txt").write_text("ba")
    (folder / "l2.gt.txt").write_bytes("café".encode("latin-1"))
    (folder / "l3.gt.txt").write_text("   ")
    result = CliRunner().invoke(main, ["evaluate", str(model_file), str(folder)])
    assert result.exit_code == 1
    assert "2 lines" in result.output or "of 2 lines" in result.output
    for reason in ("l2.gt.txt: not UTF-8", "l3.gt.txt: empty transcription",
                   "l4.png: no <stem>.gt.txt"):
        assert reason in result.output, reason
    assert "3 of 5 samples failed" in result.output
    listing = tmp_path / "list.tsv"
    listing.write_text("data/l0.png\tab\nno-tab-here\ndata/l9.png\tc\n")
    result = CliRunner().invoke(main, ["evaluate", str(model_file), str(listing)])
    assert result.exit_code == 1
    assert "list.tsv:2: expected 'image<TAB>text'" in result.output
    assert "list.tsv:3: image" in result.output and "2 of 3 samples failed" in result.output
