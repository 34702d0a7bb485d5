"""Loss curvatures H_L for Gauss-Newton products (`mdrnn.optimizers.HessianFree`).

The losses here are *matching* losses whose H_L is positive semi-definite: softmax
cross-entropy (`softmax_curvature`: H = diag(y) − y yᵀ per output position) and
squared error (`squared_error_curvature`: H = I). CTC is not a matching loss and
its Hessian in z is not PSD; its Gauss-Newton surrogate here is the softmax's: per
frame, diag(y) − y yᵀ, the Hessian of the cross-entropy against the CTC state
posteriors of the current parameters (posteriors held fixed). It is PSD, and its
gradient at the current parameters is CTC's own.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["softmax_curvature", "squared_error_curvature"]


def softmax_curvature(logits: tf.Tensor, u: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """H u for softmax cross-entropy in the logits: (diag(y) − y yᵀ) u at each position,
    times `weights` (one per position, broadcast over the classes: the loss's own
    scaling, 0 on padding)."""
    y = tf.nn.softmax(logits)
    weights = tf.cast(weights, u.dtype)[..., None]
    return weights * (y * u - y * tf.reduce_sum(y * u, -1, keepdims=True))


def squared_error_curvature(outputs: tf.Tensor, u: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """H u for ½ Σ (z − t)²: u, times `weights` (one per position)."""
    return tf.cast(weights, u.dtype)[..., None] * u
