"""Conjugate gradient as Martens' Hessian-free optimiser runs it (`conjgrad_1.m`):
relative-progress stopping and iterates saved for backtracking."""

from __future__ import annotations

import math
from collections.abc import Callable

import tensorflow as tf


def conjugate_gradient(apply: Callable, b: tf.Tensor, x0: tf.Tensor, max_iterations: int,
                       min_iterations: int = 1, tolerance: float = 5e-4
                       ) -> list[tuple[int, tf.Tensor]]:
    """Minimise φ(x) = ½ xᵀAx − bᵀx from x0 by conjugate gradient, Martens' way.

    Stops at `max_iterations`, or when φ < 0 made relatively little progress over
    the last k = max(10, ⌈0.1 i⌉) iterations: (φᵢ − φᵢ₋ₖ)/φᵢ < k·tolerance; also
    if pᵀAp ≤ 0 (no positive curvature).

    Returns:
        (iteration, x) at iterations ⌈5·1.3ʲ⌉ and at the last one, in order.
    """
    x = x0
    r = apply(x0) - b
    p, rr = -r, tf.reduce_sum(r * r)
    values, saved, next_save, i = [], [], 5.0, 0
    for i in range(1, max_iterations + 1):
        ap = apply(p)
        curvature = float(tf.reduce_sum(p * ap))
        if curvature <= 0 or not math.isfinite(curvature):
            i -= 1
            break
        alpha = rr / curvature
        x, r = x + alpha * p, r + alpha * ap
        rr_new = tf.reduce_sum(r * r)
        p, rr = -r + (rr_new / rr) * p, rr_new
        values.append(float(0.5 * tf.reduce_sum((r - b) * x)))
        if i == math.ceil(next_save):
            saved.append((i, x))
            next_save *= 1.3
        gap = max(math.ceil(0.1 * i), 10)
        if i > gap and i >= min_iterations:
            before, now = values[i - gap - 1], values[-1]
            if before < 0 and (now - before) / now < tolerance * gap:
                break
    if not saved or saved[-1][0] != i:
        saved.append((i, x))
    return saved
