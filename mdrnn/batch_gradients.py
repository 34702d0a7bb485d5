"""The gradients of a Hessian-free step's batches: their mean with its estimated noise,
and the clipping of a batch whose gradient stands far out from the others'."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import tensorflow as tf


def mean_gradient(grads: Sequence[tf.Tensor]) -> tuple[tf.Tensor, float]:
    """The batches' mean gradient ḡ (batches weigh alike) and its estimated relative
    error, the standard error of the mean over its norm:
    sqrt(Σ‖gᵢ − ḡ‖² / (k(k − 1))) / ‖ḡ‖ (NaN for one batch)."""
    k = len(grads)
    grad = tf.add_n(list(grads)) / k
    norm = float(tf.norm(tf.cast(grad, tf.float64)))
    noise = math.nan
    if k > 1 and norm > 0:
        spread = sum(float(tf.reduce_sum(tf.square(tf.cast(g - grad, tf.float64))))
                     for g in grads)
        noise = math.sqrt(spread / (k * (k - 1))) / norm
    return grad, noise


def clip_outliers(grads: Sequence[tf.Tensor], ratio: float) -> tuple[tf.Tensor, ...]:
    """Each batch's gradient scaled down to at most `ratio` times the median of the
    batches' gradient norms; the others as they are.

    A batch whose lines lie on a cliff of the loss (an exploding gradient) can have a
    gradient up to 150 times the median of its step's (`benchmarks/RESULTS.md`). Left
    as it is, it makes the mean gradient alone: CG's solution is then dominated by it
    and large, and that solution, 0.95 of it the next step's warm start, points uphill
    for the next gradient, so ρ falls below 1/4 and λ climbs. Relative to the step's
    own batches, the clip leaves ordinary steps alone, unlike a fixed threshold. An
    infinite norm gives a non-finite gradient, which `HessianFree.step` refuses.
    """
    norms = [float(tf.norm(g)) for g in grads]
    limit = ratio * statistics.median(norms)
    return tuple(g if n <= limit else g * (limit / n)
                 for g, n in zip(grads, norms, strict=True))
