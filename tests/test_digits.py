"""Digit-string lines from the bundled MNIST digits: splits, determinism, appearance."""

import numpy as np
import pytest

from mdrnn.datasets.digits import SPLITS, digit_lines, load_digits, plan_lines, render_line


def test_bundled_digits_load():
    images, labels = load_digits()
    assert images.shape == (8000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (8000,) and set(np.unique(labels)) == set(range(10))
    assert not images.flags.writeable


def test_train_and_val_never_share_a_digit_image():
    train = np.concatenate(plan_lines("train", 3000, seed=0))
    val = np.concatenate(plan_lines("val", 1000, seed=0))
    test = np.concatenate(plan_lines("test", 1000, seed=0))
    assert train.min() >= 0 and train.max() < 7000
    assert val.min() >= 7000 and val.max() < 7500
    assert test.min() >= 7500 and test.max() < 8000
    assert not set(train.tolist()) & set(val.tolist())
    # The pools are used widely, not a handful of images.
    assert len(set(train.tolist())) > 5000 and len(set(val.tolist())) > 450
    assert SPLITS["train"].stop == SPLITS["val"].start
    assert SPLITS["val"].stop == SPLITS["test"].start


def test_labels_are_the_planned_digits():
    _, labels = load_digits()
    plans = plan_lines("val", 20, seed=3)
    samples = digit_lines("val", 20, seed=3)
    assert [s.text for s in samples] == ["".join(str(labels[j]) for j in p) for p in plans]


def test_lengths_follow_the_limits():
    plans = plan_lines("train", 2000, seed=1)
    assert {len(p) for p in plans} == set(range(1, 13))
    short = plan_lines("train", 200, seed=1, min_digits=2, max_digits=4)
    assert {len(p) for p in short} == {2, 3, 4}
    with pytest.raises(ValueError):
        plan_lines("train", 5, min_digits=5, max_digits=4)
    with pytest.raises(ValueError, match="split"):
        plan_lines("dev", 5)


def test_deterministic_for_a_seed_and_independent_of_count():
    a = digit_lines("train", 12, seed=7)
    b = digit_lines("train", 5, seed=7)
    c = digit_lines("train", 5, seed=8)
    for x, y in zip(a[:5], b, strict=True):
        assert x.id == y.id and x.text == y.text
        assert np.array_equal(x.source, y.source)
    assert [s.text for s in b] != [s.text for s in c]
    assert [s.id for s in a[:3]] == ["digits-train-000000", "digits-train-000001",
                                     "digits-train-000002"]


def test_lines_are_dark_ink_on_light_paper_of_line_height():
    samples = digit_lines("train", 200, seed=2)
    heights = np.array([s.source.shape[0] for s in samples])
    assert heights.min() >= 28 and heights.max() <= 45
    for s in samples[:50]:
        image = s.source
        assert image.dtype == np.uint8 and image.ndim == 2
        assert np.median(image) > 190  # mostly paper
        assert image.min() < 110  # some ink
        # Wider lines for more digits: every digit is at least a few pixels wide.
        assert image.shape[1] >= 3 * len(s.text)


def test_render_line_without_ink_is_blank_paper():
    rng = np.random.default_rng(0)
    image = render_line([np.zeros((28, 28), np.uint8)] * 3, rng)
    assert image.min() > 180
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 12:16] = 255  # a "1"
    line = render_line([digit, digit], np.random.default_rng(0))
    dark_columns = np.flatnonzero((line < 128).any(axis=0))
    # Two separate strokes: the dark columns form two runs with paper between them.
    runs = 1 + int(np.sum(np.diff(dark_columns) > 1))
    assert runs == 2
