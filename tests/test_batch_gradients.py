"""The clipping of a Hessian-free step's outlying batch gradient, and its setting."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from test_optimizers import softmax_classifier

from mdrnn.batch_gradients import clip_outliers, mean_gradient
from mdrnn.pipelines.train_config import TrainConfig


def gradients(norms, seed=0):
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(len(norms), 50))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return [tf.constant(n * d) for n, d in zip(norms, directions)]


def test_a_batch_gradient_far_above_the_median_is_scaled_down_to_the_limit():
    grads = gradients([1.0, 2.0, 3.0, 100.0])
    clipped = clip_outliers(grads, 4.0)
    for g, c in zip(grads[:3], clipped[:3]):
        np.testing.assert_array_equal(g.numpy(), c.numpy())  # within 4 x median 2.5
    assert float(tf.norm(clipped[3])) == pytest.approx(10.0, rel=1e-12)
    np.testing.assert_allclose(clipped[3].numpy(), grads[3].numpy() / 10, rtol=1e-12)


def test_batch_gradients_within_the_limit_are_left_as_they_are():
    grads = gradients([5.0, 7.0, 19.0, 9.0])  # 19 < 4 x 8
    for g, c in zip(grads, clip_outliers(grads, 4.0)):
        np.testing.assert_array_equal(g.numpy(), c.numpy())
    assert float(tf.norm(clip_outliers(grads, 2.0)[2])) == pytest.approx(16.0)


def test_a_non_finite_batch_gradient_stays_non_finite():
    grads = gradients([1.0, 2.0, 3.0])
    grads[1] = tf.tensor_scatter_nd_update(grads[1], [[0]], [np.inf])
    clipped = clip_outliers(grads, 4.0)
    assert not np.isfinite(clipped[1].numpy()).all()


def test_a_step_averages_the_clipped_gradients():
    """One batch's inputs scaled up 30-fold: its gradient stands out (by far less, the
    tanh saturating) and the step's gradient noise is that of the clipped gradients,
    not of the raw ones."""
    hf, (x, labels), model = softmax_classifier(clip=1.2)
    rng = np.random.default_rng(0)  # the same weights whatever ran before
    for weight in model.weights:
        weight.assign(rng.normal(0, 0.5, weight.shape))
    batches = [(x[i::4] * (30.0 if i == 3 else 1.0), labels[i::4]) for i in range(4)]
    raw = [hf._gradient(b)[1] for b in batches]
    norms = [float(tf.norm(g)) for g in raw]
    assert max(norms) > 1.5 * np.median(norms)
    expected = mean_gradient(clip_outliers(raw, 1.2))[1]
    assert expected != pytest.approx(mean_gradient(raw)[1], rel=0.02)
    assert hf.step(batches, batches[0])["gradient_noise"] == pytest.approx(expected, rel=1e-5)


def test_the_clip_setting_is_checked_and_older_runs_resume_without_it():
    assert TrainConfig().hf_clip == 0.0
    stored = dataclasses.asdict(TrainConfig(optimizer="hf", hf_clip=4.0))
    assert TrainConfig.from_dict(stored).hf_clip == 4.0
    del stored["hf_clip"]  # a checkpoint written before the setting existed
    assert TrainConfig.from_dict(stored).hf_clip == 0.0
    with pytest.raises(ValueError, match="hf_clip"):
        TrainConfig(hf_clip=0.5)
