"""The shipped models `fr-copiste` (a CRNN) and `fr-copiste-mdlstm`: listed with their
cards, usable by name from the CLI, and reading real pages of writers they never saw at
about their published error rates."""

import cv2
import pytest
from click.testing import CliRunner
from lxml import etree
from rapidfuzz.distance import Levenshtein

from mdrnn.datasets.alto import read_alto
from mdrnn.pipelines.cli import main
from mdrnn.zoo import resolve_model, shipped_models

NAME = "fr-copiste"
NAMES = [NAME, "fr-copiste-mdlstm"]


def test_the_models_are_listed_with_their_cards():
    cards = shipped_models()
    assert list(cards) == NAMES
    for name in NAMES:
        card = cards[name]
        for key in ("description", "training_data", "licence", "attribution", "measured"):
            assert card[key], (name, key)
        assert "CC BY 4.0" in card["licence"] and "BAnQ" in card["attribution"]
        assert resolve_model(name).stat().st_size < 10_000_000
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0 and result.output.startswith(f"{NAME}: ")
    assert f"\n{NAMES[1]}: " in result.output and result.output.count("CC BY 4.0") >= 4


@pytest.fixture
def val_page(shared_data):
    return shared_data / "copiste" / "val" / "wikitexte_0010_2.xml"


@pytest.mark.parametrize("name", NAMES)
def test_evaluate_by_name_on_a_page_of_an_unseen_writer(val_page, name):
    result = CliRunner().invoke(main, ["evaluate", name, f"alto:{val_page}"])
    assert result.exit_code == 0, result.output
    cer = float(next(line for line in result.output.splitlines()
                     if line.startswith("CER")).split()[1])
    # One page (13 lines) of a writer the models never saw, decoded with their LMs:
    # fr-copiste 11.2% (9.4% over all val lines), fr-copiste-mdlstm 13.7% (13.6%); an
    # untrained or broken model reads ~100%.
    assert cer < 35.0, result.output


def test_transcribe_lines_to_alto_by_name(tmp_path, val_page):
    lines = read_alto(val_page)[:3]
    for number, sample in enumerate(lines):
        cv2.imwrite(str(tmp_path / f"line{number}.png"), sample.source)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["transcribe", NAME, str(tmp_path), "--format", "alto",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    ns = {"a": "http://www.loc.gov/standards/alto/ns-v4#"}
    # A String per word (with its Glyphs), as kraken writes them.
    texts = [" ".join(string.get("CONTENT") for string in
                      etree.parse(str(out / f"line{n}.xml")).iterfind(".//a:String", ns))
             for n in range(3)]
    errors = sum(Levenshtein.distance(s.text, t) for s, t in zip(lines, texts))
    assert errors / sum(len(s.text) for s in lines) < 0.3, (texts, [s.text for s in lines])
