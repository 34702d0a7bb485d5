"""The clipping of a Hessian-free step's outlying batch gradients, and its setting."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from test_optimizers import softmax_classifier

from mdrnn.batch_gradients import GradientClip, mean_gradient
from mdrnn.pipelines.train_config import TrainConfig

SIZES = [30, 20]  # two variables


def gradients(norms, seed=0):
    """Batch gradients whose parts in the two variables have the given norms."""
    rng = np.random.default_rng(seed)
    grads = []
    for row in np.atleast_2d(norms):
        parts = [rng.normal(size=size) for size in SIZES]
        grads.append(tf.constant(np.concatenate(
            [n * p / np.linalg.norm(p) for n, p in zip(row, parts)])))
    return grads


def part_norms(grad):
    return [float(tf.norm(p)) for p in tf.split(grad, SIZES)]


def test_a_part_far_above_its_median_is_scaled_down_the_others_left_as_they_are():
    grads = gradients([[1, 5], [2, 5], [3, 5], [100, 5]])
    clipped = GradientClip(SIZES, 4.0)(grads)
    for g, c in zip(grads[:3], clipped[:3]):
        np.testing.assert_array_equal(g.numpy(), c.numpy())  # within 4 x median 2.5
    assert part_norms(clipped[3]) == pytest.approx([10.0, 5.0], rel=1e-12)
    first, second = tf.split(clipped[3], SIZES)
    np.testing.assert_allclose(first.numpy(), tf.split(grads[3], SIZES)[0].numpy() / 10,
                               rtol=1e-12)
    np.testing.assert_array_equal(second.numpy(), tf.split(grads[3], SIZES)[1].numpy())


def test_a_step_steep_in_every_batch_is_clipped_against_the_steps_before():
    clip = GradientClip(SIZES, 4.0, window=12)
    for seed in (1, 2):
        quiet = gradients([[1, 1]] * 4, seed)
        assert all(c is g for c, g in zip(clip(quiet), quiet))
    steep = clip(gradients([[100, 1]] * 4, 3))  # median of 12 rows: 1
    for g in steep:
        assert part_norms(g) == pytest.approx([4.0, 1.0], rel=1e-12)
    # The window holds 12 batch gradients: once 8 of them are steep, the median is too.
    kept = gradients([[100, 1]] * 4, 4)
    assert all(c is g for c, g in zip(clip(kept), kept))


def test_a_non_finite_batch_gradient_stays_as_it_is_and_is_not_recorded():
    grads = gradients([[1, 1], [2, 1], [3, 1], [30, 1]])
    grads[1] = tf.tensor_scatter_nd_update(grads[1], [[0]], [np.inf])
    clip = GradientClip(SIZES, 4.0)
    clipped = clip(grads)
    assert clipped[1] is grads[1]
    assert int(clip.seen.numpy()) == 3
    assert part_norms(clipped[3])[0] == pytest.approx(12.0, rel=1e-12)  # 4 x median(1, 3, 30)


def test_a_variable_whose_median_is_zero_is_not_clipped():
    grads = gradients([[0, 1], [0, 1], [5, 1]])
    assert all(c is g for c, g in zip(GradientClip(SIZES, 4.0)(grads), grads))


def test_the_clips_state_resumes_exactly():
    clip = GradientClip(SIZES, 2.0)
    clip(gradients([[1, 1], [2, 3], [5, 1]], 1))
    resumed = GradientClip(SIZES, 2.0)
    for saved, fresh in zip(clip.variables, resumed.variables, strict=True):
        fresh.assign(saved.numpy())
    grads = gradients([[9, 1], [1, 8], [2, 2]], 2)
    clipped = clip(grads)
    for a, b in zip(clipped, resumed(grads), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert part_norms(clipped[0]) == pytest.approx([4.0, 1.0])  # 2 x median(1, 2, 5, 9, 1, 2)


def test_a_step_averages_the_clipped_gradients():
    """One batch's inputs scaled up 30-fold: its gradient stands out (by far less, the
    tanh saturating) and the step's gradient noise is that of the clipped gradients,
    not of the raw ones; the clip's state is in the optimiser's variables."""
    hf, (x, labels), model = softmax_classifier(clip=1.2)
    rng = np.random.default_rng(0)  # the same weights whatever ran before
    for weight in model.weights:
        weight.assign(rng.normal(0, 0.5, weight.shape))
    batches = [(x[i::4] * (30.0 if i == 3 else 1.0), labels[i::4]) for i in range(4)]
    raw = [hf._gradient(b)[1] for b in batches]
    norms = [float(tf.norm(g)) for g in raw]
    assert max(norms) > 1.5 * np.median(norms)
    expected = mean_gradient(GradientClip(hf._sizes, 1.2)(raw))[1]
    assert expected != pytest.approx(mean_gradient(raw)[1], rel=0.02)
    assert hf.step(batches, batches[0])["gradient_noise"] == pytest.approx(expected, rel=1e-5)
    assert len(hf.variables) == 5 and int(hf.variables[-1].numpy()) == 4


def test_the_clip_setting_is_checked_and_older_runs_resume_without_it():
    assert TrainConfig().hf_clip == 0.0
    stored = dataclasses.asdict(TrainConfig(optimizer="hf", hf_clip=4.0))
    assert TrainConfig.from_dict(stored).hf_clip == 4.0
    del stored["hf_clip"]  # a checkpoint written before the setting existed
    assert TrainConfig.from_dict(stored).hf_clip == 0.0
    with pytest.raises(ValueError, match="hf_clip"):
        TrainConfig(hf_clip=0.5)
