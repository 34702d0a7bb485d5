"""Learning-rate schedules: values worked out by hand, and their checks."""

import math

import pytest

from mdrnn.pipelines.schedule import learning_rate, run_progress
from mdrnn.pipelines.train_config import TrainConfig


def rows(*cers):
    return [{"val_cer": c} for c in cers]


def test_constant_keeps_the_base_rate():
    assert learning_rate("constant", 0.01, 0.7, rows(0.5, 0.6, 0.7, 0.8)) == 0.01


def test_cosine_falls_from_the_base_rate_along_half_a_cosine():
    rates = [learning_rate("cosine", 0.004, run_progress(e, 4), []) for e in range(1, 5)]
    # 0.5 (1 + cos(pi k / 4)) for k = 0..3
    assert rates == pytest.approx([0.004, 0.002 * (1 + math.sqrt(0.5)), 0.002,
                                   0.002 * (1 - math.sqrt(0.5))])
    assert rates[-1] > 0


def test_progress_is_the_larger_share_of_epochs_or_of_the_time_limit():
    assert run_progress(3, 10) == pytest.approx(0.2)
    assert run_progress(3, 10, seconds=150, time_limit=600) == pytest.approx(0.25)
    assert run_progress(3, 10, seconds=60, time_limit=600) == pytest.approx(0.2)
    assert run_progress(3, 1000, seconds=900, time_limit=600) == 1.0
    assert learning_rate("cosine", 1.0, 0.5, []) == pytest.approx(0.5)


def test_plateau_cuts_after_patience_epochs_without_a_better_cer():
    # Epoch CERs: best at 1 and 2, then 3, 4 are no better (cut before epoch 5),
    # 5 is no better, 6 is a new best, 7, 8 are no better (second cut before 9).
    history = rows(0.5, 0.4, 0.45, 0.4, 0.41, 0.3, 0.3, 0.35)
    rates = [learning_rate("plateau", 1.0, 0.0, history[:e - 1], factor=0.5, patience=2)
             for e in range(1, 10)]
    assert rates == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25]


def test_plateau_counts_again_after_a_cut():
    # No improvement after epoch 1: cuts before epochs 4 and 6 with patience 2.
    history = rows(0.2, 0.3, 0.3, 0.3, 0.3)
    rates = [learning_rate("plateau", 1.0, 0.0, history[:e - 1], factor=0.1, patience=2)
             for e in range(1, 7)]
    assert rates == pytest.approx([1.0, 1.0, 1.0, 0.1, 0.1, 0.01])


@pytest.mark.parametrize("kwargs, message", [
    ({"schedule": "linear"}, "'linear'"),
    ({"schedule": "plateau", "lr_factor": 1.5}, "1.5"),
    ({"schedule": "plateau", "lr_patience": 0}, "0"),
])
def test_bad_settings_are_refused_quoting_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)
