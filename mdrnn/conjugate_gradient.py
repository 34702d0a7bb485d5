"""Conjugate gradient as Martens' Hessian-free optimiser runs it (`conjgrad_1.m`):
relative-progress stopping, iterates saved for backtracking and an optional diagonal
preconditioner."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import tensorflow as tf


def conjugate_gradient(apply: Callable, b: tf.Tensor, x0: tf.Tensor, max_iterations: int,
                       min_iterations: int = 1, tolerance: float = 5e-4,
                       preconditioner: tf.Tensor | None = None
                       ) -> list[tuple[int, tf.Tensor]]:
    """Minimise φ(x) = ½ xᵀAx − bᵀx from x0 by conjugate gradient, Martens' way.

    With `preconditioner` (a positive vector m, the diagonal of M ≈ A), the iterates
    are those of CG on M^(-1/2) A M^(-1/2): the same minimiser, reached sooner where
    M captures how A's scale varies across coordinates.

    Stops at `max_iterations`, or when φ < 0 made relatively little progress over
    the last k = max(10, ⌈0.1 i⌉) iterations: (φᵢ − φᵢ₋ₖ)/φᵢ < k·tolerance; also
    if pᵀAp ≤ 0 (no positive curvature).

    Returns:
        (iteration, x) at iterations ⌈5·1.3ʲ⌉ and at the last one, in order.
    """
    def solve(r):  # M⁻¹ r
        return r if preconditioner is None else r / preconditioner

    x = x0
    r = apply(x0) - b
    y = solve(r)
    p, ry = -y, tf.reduce_sum(r * y)
    values, saved, next_save, i = [], [], 5.0, 0
    for i in range(1, max_iterations + 1):
        ap = apply(p)
        curvature = float(tf.reduce_sum(p * ap))
        if curvature <= 0 or not math.isfinite(curvature):
            i -= 1
            break
        alpha = ry / curvature
        x, r = x + alpha * p, r + alpha * ap
        y = solve(r)
        ry_new = tf.reduce_sum(r * y)
        p, ry = -y + (ry_new / ry) * p, ry_new
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


def diagonal_preconditioner(grads: Sequence[tf.Tensor], rows: Sequence[int], damping: float,
                            exponent: float = 0.75) -> tf.Tensor:
    """Martens' (ICML 2010, §4.7) diagonal preconditioner M = (d + λ)^ξ, d the mean over
    training cases of their squared gradients (the empirical Fisher diagonal).

    Martens sums per-case gradients; a backward pass per line would cost too much, so d
    is estimated from the gradients gᵢ of k batch means of about m cases each (m their
    mean size): E[gᵢ²] = μ² + σ²/m, and their spread estimates σ²/m, so
    mean(gᵢ²) + (m − 1)·Σ(gᵢ − ḡ)²/(k − 1) is unbiased for μ² + σ². With one batch the
    spread term is left out (d then underestimates).
    """
    k = len(grads)
    mean = tf.add_n(grads) / k
    d = tf.add_n([tf.square(g) for g in grads]) / k
    if k > 1:
        spread = tf.add_n([tf.square(g - mean) for g in grads]) / (k - 1)
        d += (sum(rows) / k - 1) * spread
    return tf.pow(d + tf.cast(damping, d.dtype), tf.cast(exponent, d.dtype))
