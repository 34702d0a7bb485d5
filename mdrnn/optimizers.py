"""Hessian-free optimisation (Martens, ICML 2010; Martens & Sutskever, ICML 2011).

`HessianFree` minimises a mean loss f(θ) of a model's outputs z(θ) by truncated
Newton steps. Each `step`:

1. computes f and its gradient g on the *gradient batches* (a large sample), each
   variable's part of a batch's gradient clipped where it stands far out from its
   recent ones (`clip`);
2. runs conjugate gradient (`conjugate_gradient`) on the damped quadratic model
   q(p) = gᵀp + ½ pᵀ(G + λI + λμ S)p from 0.95 times the previous step's solution,
   with G = Jᵀ H_L J the Gauss-Newton matrix of the *curvature batch* (a mini-batch):
   J the Jacobian of z in θ, H_L the Hessian of the loss in z; S = J_hᵀ J_h is
   structural damping, the Gauss-Newton matrix of a penalty on changes of chosen
   hidden states h (the 2011 paper's recurrent-net damping; μ = 0: none), with
   Martens' diagonal preconditioner if `precondition` > 0 (`diagonal_preconditioner`);
3. backtracks over the iterates CG saved (at iterations 5·1.3ᵏ and its last) to the
   one with the lowest f on the gradient batches;
4. computes the reduction ratio ρ = (f(θ+p) − f(θ)) / (gᵀp + ½ pᵀGp) on the
   curvature batch (undamped G; ρ = −∞ if f rose) and sets λ ← 3/2 λ if ρ < 1/4,
   λ ← 2/3 λ if ρ > 3/4 (Levenberg-Marquardt);
5. takes θ ← θ + αp, α from a backtracking line search from α = `scale` (1, or
   less under a step-size schedule): α ← 0.8 α while f(θ+αp) > f(θ) + 10⁻² α gᵀp,
   at most 60 times, else no step.

G·v is J·v by the double-backward trick (Jᵀu is linear in u, so the gradient in u of
⟨Jᵀu, v⟩ is J·v; unlike `tf.autodiff.ForwardAccumulator`, it goes through while loops
with TensorArrays; through the MDLSTM it is the layer's forward-mode scan,
`forward_mode_jvp`), the loss curvature in output space, and a backward pass for
Jᵀ(H_L J v): compiled, a forward, a forward-mode and a backward pass.

The loss curvatures H_L (PSD; CTC's surrogate) are in `mdrnn.curvature`; the state
(λ, the last CG solution, the step count) is in `variables`, which checkpoints carry.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import tensorflow as tf

from mdrnn.batch_gradients import GradientClip, mean_gradient
from mdrnn.conjugate_gradient import conjugate_gradient, diagonal_preconditioner
from mdrnn.curvature import softmax_curvature, squared_error_curvature
from mdrnn.layers.wavefront import forward_mode_jvp

__all__ = ["HessianFree", "conjugate_gradient", "diagonal_preconditioner",
           "softmax_curvature", "squared_error_curvature"]


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
        xla: compile the Gauss-Newton products with XLA (they hold no loss, only the
            outputs and their curvature, which must then be XLA-compilable).
        shards: compute the products on this many parts of the curvature batch as
            independent calls, which TensorFlow runs side by side (XLA's CPU code
            runs one call on one core); the parts' products are weighted by their
            share of the batch's rows, which is exact for mean losses.
        loss_outputs: batch -> z for the loss and gradient passes (e.g. a forward
            pass compiled with XLA, the loss outside it); default `outputs`.
        precondition: the diagonal preconditioner's exponent ξ (0: none; Martens: 3/4).
        clip: scale each variable's part of a batch gradient down to at most `clip`
            times the median of its norms over the last `clip_window` batch gradients,
            the losses left as they are (`mdrnn.batch_gradients.GradientClip`; 0: never).
    """

    def __init__(self, variables: Sequence[tf.Variable], outputs: Callable, loss: Callable,
                 curvature: Callable, *, damping: float = 1.0, structural: float = 0.0,
                 max_cg: int = 250, min_cg: int = 1, decay: float = 0.95,
                 line_search: bool = True, xla: bool = False, shards: int = 1,
                 loss_outputs: Callable | None = None, precondition: float = 0.0,
                 clip: float = 0.0, clip_window: int = 200):
        # Keras 3 variables wrap a tf.Variable, which forward-mode autodiff needs.
        self.params = [v.value if isinstance(getattr(v, "value", None), tf.Variable) else v
                       for v in variables]
        self._shapes = [v.shape for v in self.params]
        self._sizes = [int(v.shape.num_elements()) for v in self.params]
        dtype = self.params[0].dtype
        self._outputs, self._loss, self._curvature = outputs, loss, curvature
        self._loss_outputs = loss_outputs or (lambda batch: outputs(batch)[0])
        self.shards = shards
        self.structural, self.max_cg, self.min_cg = structural, max_cg, min_cg
        self.decay, self.line_search = decay, line_search
        self.precondition = precondition
        self._clip = GradientClip(self._sizes, clip, clip_window) if clip else None
        self.damping = tf.Variable(damping, dtype=tf.float64, trainable=False, name="damping")
        self.previous = tf.Variable(tf.zeros(sum(self._sizes), dtype), trainable=False,
                                    name="previous_solution")
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        # One trace for every batch shape: tracing the double backward is slow.
        self._gradient = tf.function(self._loss_and_gradient, reduce_retracing=True)
        self._value = tf.function(self._loss_value, reduce_retracing=True)
        self._shard_product = tf.function(self._gauss_newton, reduce_retracing=True,
                                          jit_compile=xla)
        self._product = tf.function(self._sharded_product, reduce_retracing=True)

    @property
    def variables(self) -> list[tf.Variable]:
        """The optimiser's state, for checkpoints: λ, the last CG solution, steps taken
        (and the clip's norms)."""
        clip = self._clip.variables if self._clip else []
        return [self.damping, self.previous, self.iterations, *clip]

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
        return self._loss(self._loss_outputs(batch), batch)

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
        with tf.GradientTape() as outer, forward_mode_jvp():
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

    def _sharded_product(self, batch, vector, damping, structural):
        if self.shards == 1:
            return self._shard_product(batch, vector, damping, structural)
        rows = tf.shape(tf.nest.flatten(batch)[0])[0]
        sizes = [rows // self.shards + tf.cast(i < rows % self.shards, tf.int32)
                 for i in range(self.shards)]
        leaves = [tf.split(t, tf.stack(sizes), num=self.shards)
                  for t in tf.nest.flatten(batch)]
        total = 0
        for i, size in enumerate(sizes):
            part = tf.nest.pack_sequence_as(batch, [pieces[i] for pieces in leaves])
            share = tf.cast(size, vector.dtype) / tf.cast(rows, vector.dtype)
            total += share * self._shard_product(part, vector, damping, structural)
        return total

    def gauss_newton_product(self, batch, vector: tf.Tensor, damping: float = 0.0,
                             structural: float = 0.0) -> tf.Tensor:
        """(G + λI + λμS)·vector on a batch, vector flat in the order of the variables."""
        return self._product(batch, vector, tf.constant(damping, tf.float64),
                             tf.constant(structural, tf.float64))

    def loss_and_gradient(self, batches) -> tuple[list[float], tf.Tensor, float]:
        """Each batch's loss, the flat gradient of their mean and its estimated relative
        error (`mdrnn.batch_gradients.mean_gradient`)."""
        losses, grads = self._batch_gradients(batches)
        return losses, *mean_gradient(grads)

    def _batch_gradients(self, batches) -> tuple[list[float], tuple[tf.Tensor, ...]]:
        values, grads = zip(*(self._gradient(batch) for batch in batches))
        return [float(v) for v in values], grads

    def loss_value(self, batches) -> float:
        """The mean loss on batches; +inf where it is not finite (a step to reject)."""
        value = sum(float(self._value(batch)) for batch in batches) / len(batches)
        return value if math.isfinite(value) else math.inf

    def flat_weights(self) -> tf.Tensor:
        """The variables' values as one flat vector (a copy)."""
        return self._flat(self.params)

    def set_flat_weights(self, flat) -> None:
        """Set the variables from a flat vector in their order."""
        for variable, value in zip(self.params, self._split(flat), strict=True):
            variable.assign(value)

    def _at(self, flat, batches) -> float:
        """f(θ + flat) on batches; θ is put back exactly (θ + p − p would not be, in
        floating point, when p is large)."""
        theta = self.flat_weights()
        self.set_flat_weights(theta + flat)
        try:
            return self.loss_value(batches)
        finally:
            self.set_flat_weights(theta)

    def step(self, gradient_batches: Sequence, curvature_batch, scale: float = 1.0) -> dict:
        """One HF step: gradient on `gradient_batches`, curvature on `curvature_batch`.

        `scale` (1, or less) is the share of the step taken: the line search starts from
        α = scale instead of 1 (a step-size schedule; λ still adapts to the whole step).

        Returns:
            loss (before the step, and `losses` per gradient batch), new_loss, rho,
            damping (the new λ), cg (iterations run), chosen (the iteration
            backtracked to), rate (α), gradient_noise (the gradient's estimated
            relative error, from the spread of the gradient batches' gradients).
        """
        losses, grads = self._batch_gradients(gradient_batches)
        if self._clip:
            grads = self._clip(grads)
        grad, noise = mean_gradient(grads)
        loss = sum(losses) / len(losses)
        damping = float(self.damping.numpy())
        if not (math.isfinite(loss) and bool(tf.reduce_all(tf.math.is_finite(grad)))):
            self.iterations.assign_add(1)  # no step on a batch without a gradient
            return {"loss": loss, "losses": losses, "new_loss": loss, "rho": math.nan,
                    "damping": damping, "cg": 0, "chosen": 0, "rate": 0.0,
                    "gradient_noise": math.nan}

        def apply(v):
            return self.gauss_newton_product(curvature_batch, v, damping, self.structural)

        preconditioner = None
        if self.precondition > 0:
            rows = [int(tf.nest.flatten(b)[0].shape[0]) for b in gradient_batches]
            preconditioner = diagonal_preconditioner(grads, rows, damping, self.precondition)
        x0 = tf.cast(self.decay, grad.dtype) * self.previous
        iterates = conjugate_gradient(apply, -grad, x0, self.max_cg, self.min_cg,
                                      preconditioner=preconditioner)
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
        rate = float(scale)
        if rate <= 0:  # the end of a schedule: no step
            rate, new_loss = 0.0, loss
        elif rate != 1.0:
            new_loss = self._at(rate * p, gradient_batches)
        if self.line_search and rate > 0:
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
                "rate": rate, "gradient_noise": noise}
