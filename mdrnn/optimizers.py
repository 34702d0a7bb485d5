"""Hessian-free optimisation (Martens, ICML 2010; Martens & Sutskever, ICML 2011).

`HessianFree` minimises a mean loss f(θ) of a model's outputs z(θ) by truncated
Newton steps. Each `step`:

1. computes f and its gradient g on the *gradient batches* (a large sample);
2. runs conjugate gradient (`conjugate_gradient`) on the damped quadratic model
   q(p) = gᵀp + ½ pᵀ(G + λI + λμ S)p from 0.95 times the previous step's solution,
   with G = Jᵀ H_L J the Gauss-Newton matrix of the *curvature batch* (a mini-batch):
   J the Jacobian of z in θ, H_L the Hessian of the loss in z; S = J_hᵀ J_h is
   structural damping, the Gauss-Newton matrix of a penalty on changes of chosen
   hidden states h (the 2011 paper's recurrent-net damping; μ = 0: none);
3. backtracks over the iterates CG saved (at iterations 5·1.3ᵏ and its last) to the
   one with the lowest f on the gradient batches;
4. computes the reduction ratio ρ = (f(θ+p) − f(θ)) / (gᵀp + ½ pᵀGp) on the
   curvature batch (undamped G; ρ = −∞ if f rose) and sets λ ← 3/2 λ if ρ < 1/4,
   λ ← 2/3 λ if ρ > 3/4 (Levenberg-Marquardt);
5. takes θ ← θ + αp, α from a backtracking line search (α ← 0.8 α while
   f(θ+αp) > f(θ) + 10⁻² α gᵀp, at most 60 times, else no step).

G·v takes one forward pass and three backward ones: J·v by the double-backward
trick (Jᵀu is linear in u, so the gradient in u of ⟨Jᵀu, v⟩ is J·v; this goes
through `tf.custom_gradient` functions whose backward is made of differentiable
ops, as the MDLSTM's is, and through while loops with TensorArrays, where
`tf.autodiff.ForwardAccumulator` fails), the loss curvature applied in output
space, and one more backward pass for Jᵀ(H_L J v).

The losses here are *matching* losses whose H_L is positive semi-definite: softmax
cross-entropy (`softmax_curvature`: H = diag(y) − y yᵀ per output position) and
squared error (`squared_error_curvature`: H = I). CTC is not a matching loss and
its Hessian in z is not PSD; its Gauss-Newton surrogate here is the softmax's: per
frame, diag(y) − y yᵀ, the Hessian of the cross-entropy against the CTC state
posteriors of the current parameters (posteriors held fixed). It is PSD, and its
gradient at the current parameters is CTC's own.

The optimiser's state (λ, the last CG solution, the step count) is in
`variables`, so checkpoints that save an optimiser's variables carry it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import tensorflow as tf

__all__ = ["HessianFree", "conjugate_gradient", "softmax_curvature",
           "squared_error_curvature"]


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


class HessianFree:
    """Hessian-free optimiser of a model's variables (see the module docstring).

    Args:
        variables: the trainable variables (`model.trainable_variables`).
        outputs: batch -> (z, hidden): the outputs the loss reads and a list of
            hidden-state tensors for structural damping (empty for none); a pure
            function of the variables (no dropout).
        loss: (z, batch) -> scalar mean loss of the batch.
        curvature: (z, batch, u) -> H_L u with the loss's scaling, e.g.
            ``lambda z, batch, u: softmax_curvature(z, u, weights)``.
        damping: the initial λ.
        structural: μ; the structural penalty is ½ Σ‖Δh‖² / (batch size).
        max_cg: CG iterations per step at most (Martens: 250).
        min_cg: at least.
        decay: CG starts from `decay` times the previous solution.
        line_search: take the backtracking line search (else α = 1).
    """

    def __init__(self, variables: Sequence[tf.Variable], outputs: Callable, loss: Callable,
                 curvature: Callable, *, damping: float = 1.0, structural: float = 0.0,
                 max_cg: int = 250, min_cg: int = 1, decay: float = 0.95,
                 line_search: bool = True):
        # Keras 3 variables wrap a tf.Variable, which forward-mode autodiff needs.
        self.params = [v.value if isinstance(getattr(v, "value", None), tf.Variable) else v
                       for v in variables]
        self._shapes = [v.shape for v in self.params]
        self._sizes = [int(v.shape.num_elements()) for v in self.params]
        dtype = self.params[0].dtype
        self._outputs, self._loss, self._curvature = outputs, loss, curvature
        self.structural, self.max_cg, self.min_cg = structural, max_cg, min_cg
        self.decay, self.line_search = decay, line_search
        self.damping = tf.Variable(damping, dtype=tf.float64, trainable=False, name="damping")
        self.previous = tf.Variable(tf.zeros(sum(self._sizes), dtype), trainable=False,
                                    name="previous_solution")
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        # One trace for every batch shape: tracing the double backward is slow.
        self._gradient = tf.function(self._loss_and_gradient, reduce_retracing=True)
        self._value = tf.function(self._loss_value, reduce_retracing=True)
        self._product = tf.function(self._gauss_newton, reduce_retracing=True)

    @property
    def variables(self) -> list[tf.Variable]:
        """The optimiser's state, for checkpoints: λ, the last CG solution, steps taken."""
        return [self.damping, self.previous, self.iterations]

    # Flat vectors <-> the variables' shapes.
    def _split(self, flat):
        return [tf.reshape(part, shape)
                for part, shape in zip(tf.split(flat, self._sizes), self._shapes, strict=True)]

    @staticmethod
    def _flat(tensors):
        return tf.concat([tf.reshape(t, [-1]) for t in tensors], 0)

    def _move(self, flat) -> None:
        for variable, delta in zip(self.params, self._split(flat), strict=True):
            variable.assign_add(delta)

    def _loss_value(self, batch):
        z, _ = self._outputs(batch)
        return self._loss(z, batch)

    def _loss_and_gradient(self, batch):
        with tf.GradientTape() as tape:
            value = self._loss_value(batch)
        grads = tape.gradient(value, self.params,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return value, self._flat(grads)

    def _gauss_newton(self, batch, vector, damping, structural):
        """(G + damping·I + damping·structural·S) vector on `batch`."""
        zero = tf.UnconnectedGradients.ZERO
        with tf.GradientTape(persistent=True) as tape:
            z, hidden = self._outputs(batch)
        targets = [z, *hidden]
        # J v by the double-backward trick: Jᵀu is linear in u, so the gradient of
        # <Jᵀu, v> in u is J v (at any u; zeros here).
        probes = [tf.zeros_like(t) for t in targets]
        with tf.GradientTape() as outer:
            outer.watch(probes)
            pulled = tape.gradient(targets, self.params, output_gradients=probes,
                                   unconnected_gradients=zero)
            paired = tf.add_n([tf.reduce_sum(a * b) for a, b in
                               zip(pulled, self._split(vector), strict=True)])
        directions = outer.gradient(paired, probes, unconnected_gradients=zero)
        cotangents = [self._curvature(z, batch, directions[0])]
        if hidden:
            rows = tf.cast(tf.shape(z)[0], tf.float64)
            cotangents += [d * tf.cast(damping * structural / rows, d.dtype)
                           for d in directions[1:]]
        products = tape.gradient(targets, self.params,
                                 output_gradients=[tf.stop_gradient(c) for c in cotangents],
                                 unconnected_gradients=zero)
        del tape
        return self._flat(products) + tf.cast(damping, vector.dtype) * vector

    def gauss_newton_product(self, batch, vector: tf.Tensor, damping: float = 0.0,
                             structural: float = 0.0) -> tf.Tensor:
        """(G + λI + λμS)·vector on a batch, vector flat in the order of the variables."""
        return self._product(batch, vector, tf.constant(damping, tf.float64),
                             tf.constant(structural, tf.float64))

    def loss_and_gradient(self, batches) -> tuple[list[float], tf.Tensor]:
        """Each batch's loss, and the flat gradient of their mean (batches weigh alike)."""
        values, grads = zip(*(self._gradient(batch) for batch in batches))
        return [float(v) for v in values], tf.add_n(grads) / len(batches)

    def loss_value(self, batches) -> float:
        return sum(float(self._value(batch)) for batch in batches) / len(batches)

    def _at(self, flat, batches) -> float:
        """f(θ + flat) on batches, θ left as it was."""
        self._move(flat)
        try:
            return self.loss_value(batches)
        finally:
            self._move(-flat)

    def step(self, gradient_batches: Sequence, curvature_batch) -> dict:
        """One HF step: gradient on `gradient_batches`, curvature on `curvature_batch`.

        Returns:
            loss (before the step, and `losses` per gradient batch), new_loss, rho,
            damping (the new λ), cg (iterations run), chosen (the iteration
            backtracked to), rate (α).
        """
        losses, grad = self.loss_and_gradient(gradient_batches)
        loss = sum(losses) / len(losses)
        damping = float(self.damping.numpy())

        def apply(v):
            return self.gauss_newton_product(curvature_batch, v, damping, self.structural)

        x0 = tf.cast(self.decay, grad.dtype) * self.previous
        iterates = conjugate_gradient(apply, -grad, x0, self.max_cg, self.min_cg)
        self.previous.assign(iterates[-1][1])
        # CG backtracking: from the last iterate back while f keeps falling.
        chosen = len(iterates) - 1
        new_loss = self._at(iterates[chosen][1], gradient_batches)
        while chosen > 0:
            earlier = self._at(iterates[chosen - 1][1], gradient_batches)
            if earlier >= new_loss:
                break
            chosen, new_loss = chosen - 1, earlier
        p = iterates[chosen][1]
        # The reduction ratio on the curvature batch, with the undamped model.
        before = self.loss_value([curvature_batch])
        after = self._at(p, [curvature_batch])
        slope = float(tf.reduce_sum(grad * p))
        model = slope + 0.5 * float(tf.reduce_sum(p * self.gauss_newton_product(
            curvature_batch, p)))
        rho = -math.inf if after > before or model >= 0 else (after - before) / model
        if rho < 0.25 or math.isnan(rho):
            damping *= 1.5
        elif rho > 0.75:
            damping *= 2 / 3
        self.damping.assign(damping)
        rate = 1.0
        if self.line_search:
            for _ in range(60):
                if new_loss <= loss + 1e-2 * rate * slope:
                    break
                rate *= 0.8
                new_loss = self._at(rate * p, gradient_batches)
            else:
                rate, new_loss = 0.0, loss
        if rate > 0:
            self._move(rate * p)
        self.iterations.assign_add(1)
        return {"loss": loss, "losses": losses, "new_loss": new_loss, "rho": rho,
                "damping": damping, "cg": iterates[-1][0], "chosen": iterates[chosen][0],
                "rate": rate}
