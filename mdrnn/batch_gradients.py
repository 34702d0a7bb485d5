"""The gradients of a Hessian-free step's batches: their mean with its estimated noise,
and the clipping of gradients that stand far out from the recent ones."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
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


class GradientClip:
    """Clips a step's batch gradients variable by variable, against the recent past.

    Each batch gradient's part in each variable (a weight tensor) is scaled down to at
    most `ratio` times the median norm of that variable's parts over the last `window`
    batch gradients, this step's included; parts within the limit are left as they
    are. Where the median is 0 nothing is clipped.

    A batch whose lines lie on a cliff of the loss can have a gradient up to 150 times
    the median of its step's, and in an MDLSTM whose cell states have grown to 10¹⁵ or
    more the gradient of the weights that multiply them (peepholes) can reach 10⁷-10¹³
    in every batch at once, the other weights' staying under 10 (`benchmarks/RESULTS.md`).
    Left as they are, such gradients make the step alone and λ climbs until every
    weight freezes. Clipping each variable against its own past leaves the other
    variables' gradients as they are. A batch whose gradient is not finite is left
    as it is (`HessianFree.step` refuses it) and not recorded.

    The norms seen are a variable (`variables`), so a checkpoint resumes exactly.
    """

    def __init__(self, sizes: Sequence[int], ratio: float, window: int = 200):
        self.sizes, self.ratio = list(sizes), ratio
        self.norms = tf.Variable(tf.zeros([window, len(self.sizes)], tf.float64),
                                 trainable=False, name="clip_norms")
        self.seen = tf.Variable(0, dtype=tf.int64, trainable=False, name="clip_seen")

    @property
    def variables(self) -> list[tf.Variable]:
        return [self.norms, self.seen]

    def __call__(self, grads: Sequence[tf.Tensor]) -> tuple[tf.Tensor, ...]:
        parts = [tf.split(g, self.sizes) for g in grads]
        norms = np.array([[float(tf.norm(p)) for p in ps] for ps in parts])
        finite = np.isfinite(norms).all(axis=1)
        history, seen = self.norms.numpy(), int(self.seen.numpy())
        for row in norms[finite]:
            history[seen % len(history)] = row
            seen += 1
        self.norms.assign(history)
        self.seen.assign(seen)
        if seen == 0:
            return tuple(grads)
        median = np.median(history[:min(seen, len(history))], axis=0)
        limit = np.where(median > 0, self.ratio * median, np.inf)
        clipped = []
        for g, ps, n, ok in zip(grads, parts, norms, finite, strict=True):
            scale = np.minimum(1.0, limit / np.maximum(n, 1e-30))
            clipped.append(g if not ok or (scale == 1).all() else tf.concat(
                [p * tf.cast(x, p.dtype) for p, x in zip(ps, scale, strict=True)], 0))
        return tuple(clipped)
