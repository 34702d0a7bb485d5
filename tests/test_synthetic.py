"""Synthetic handwriting from the optional fonts (skipped without `mdrnn[synth]`)."""

import logging
import sys

import numpy as np
import pytest

from mdrnn.datasets import synthetic
from mdrnn.errors import InputError


@pytest.fixture
def fonts():
    pytest.importorskip("PIL")
    pytest.importorskip("fontpkg")
    return synthetic.handwriting_fonts()


def test_missing_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "fontpkg", None)  # makes `import fontpkg` fail
    with pytest.raises(InputError, match=r"pip install mdrnn\[synth\]"):
        synthetic.handwriting_fonts()


def test_all_four_fonts_are_found(fonts):
    assert sorted(fonts) == sorted(synthetic.FONT_NAMES)
    assert all(path.is_file() and path.suffix == ".ttf" for path in fonts.values())


def test_glyph_coverage(fonts):
    path = fonts["caveat"]
    assert synthetic.covers(path, "Hello, wörld 42!")
    assert not synthetic.covers(path, "\u0634\u0643\u0631\u0627")
    assert not synthetic.covers(path, "\u4e2d")


def test_lines_are_deterministic_per_seed(fonts):
    texts = ["the quick brown fox", "jumps over", "the lazy dog"]
    a = synthetic.synthetic_lines(texts, count=4, seed=3)
    b = synthetic.synthetic_lines(texts, count=2, seed=3)
    c = synthetic.synthetic_lines(texts, count=2, seed=4)
    assert [s.id for s in a] == ["synth-000000", "synth-000001", "synth-000002", "synth-000003"]
    assert {s.text for s in a[:3]} == set(texts)  # each text once before any repeats
    for x, y in zip(a[:2], b, strict=True):
        assert x.text == y.text and np.array_equal(x.source, y.source)
    assert not all(np.array_equal(x.source, y.source) for x, y in zip(b, c, strict=True))


def test_lines_look_like_ink_on_paper(fonts):
    for sample in synthetic.synthetic_lines(["Handwriting, 1962"], count=6, seed=0):
        image = sample.source
        assert image.dtype == np.uint8 and image.ndim == 2
        assert 25 <= image.shape[0] <= 110 and image.shape[1] > 2 * image.shape[0]
        assert np.median(image) > 180 and image.min() < 120


def test_plain_rendering_has_clean_paper(fonts):
    plain = synthetic.Distortions(slant=0, rotation=0, elastic=0, stroke=0, blur=0, noise=0,
                                  background=False)
    image = synthetic.render_text("minimum", fonts["kalam"], np.random.default_rng(0), plain)
    # Without noise or texture, most pixels are exactly the one paper level.
    assert np.mean(image == image.max()) > 0.5
    assert image.min() < 100


def test_word_lines_are_drawn_from_the_vocabulary(fonts):
    samples = synthetic.synthetic_lines(["alpha beta", "gamma"], count=10, seed=1,
                                        words_per_line=(2, 3))
    for sample in samples:
        words = sample.text.split(" ")
        assert 2 <= len(words) <= 3 and set(words) <= {"alpha", "beta", "gamma"}


def test_texts_no_font_can_draw_are_skipped(fonts, caplog):
    with caplog.at_level(logging.WARNING):
        samples = synthetic.synthetic_lines(["abc", "\u4e2d\u6587"], count=2, seed=0)
    assert [s.text for s in samples] == ["abc"]
    assert "1 of 2 lines skipped" in caplog.text
    with pytest.raises(InputError, match="glyphs"):
        synthetic.synthetic_lines(["\u4e2d\u6587"], seed=0)
    with pytest.raises(InputError, match="not installed"):
        synthetic.synthetic_lines(["abc"], fonts=["comic-sans"])


def test_read_texts(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("first  line\n\n  second\n", encoding="utf-8")
    assert synthetic.read_texts(corpus) == ["first line", "second"]
    corpus.write_bytes(b"\xff\xfe")
    with pytest.raises(InputError, match="not UTF-8"):
        synthetic.read_texts(corpus)
    corpus.write_text("\n \n", encoding="utf-8")
    with pytest.raises(InputError, match="no text"):
        synthetic.read_texts(corpus)
