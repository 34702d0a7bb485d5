"""Hessian-free training of recognisers (`mdrnn train --optimizer hf`).

`HFSteps` takes an epoch's batches one at a time, as the training loop hands them
over, and makes one `mdrnn.optimizers.HessianFree` step per `hf_batches` batches:
gradient and loss on all of them, curvature on the first. At the end of an epoch,
`flush` steps on what is left, so no step spans two epochs and a checkpoint holds
everything a resumed run needs (λ and the last CG solution are the optimiser's
variables).

The training loop's learning rate (1 unless `--learning-rate` and `--schedule` say
otherwise) is the share of each HF step taken: as with first-order methods on
stochastic gradients, steps that shrink as training goes on stop fitting each
step's few lines at the expense of the rest (a diminishing step size, as stochastic
Newton methods use to converge).

With `average` = d > 0, an exponential moving average of the weights over steps
(Polyak averaging: each step moves the average by max(1 − d, 1/n) of the way to the
new weights, n the steps averaged so far) is what validation reads and what is
saved (`averaged`): near a minimum, HF steps fitted to a few lines each scatter the
weights around it, and their average lies closer. The steps themselves go on from
the weights, not from their average; the average is in the checkpoint.

Where a batch's lines lie on a cliff of the loss, or the MDLSTM's cell states have
grown so large that the weights multiplying them (peepholes) meet one in every
batch, a gradient can be tens to 10¹² times its usual size, make the step
alone, and λ climbs. `clip` (`--hf-clip`) scales each variable's part of each batch
gradient down to that many times its median over the last 200 batch gradients
(`mdrnn.batch_gradients.GradientClip`).

`structural` = μ > 0 (`--hf-structural`) adds Martens & Sutskever's structural
damping λμ·J_hᵀJ_h, the Gauss-Newton matrix of a penalty ½‖Δh‖² per line on the
change of the outputs h of every recurrent layer (MDLSTM2D, Keras RNN and
Bidirectional layers) at every position (MDLSTM2D outputs 0 at padding, so padding
adds nothing): it damps a step most along the parameters that move those outputs
most.

The loss is the batch's mean CTC loss; its Gauss-Newton curvature is the softmax's
(diag(y) − y yᵀ) on each valid frame, divided by the lines in the batch (see
`mdrnn.curvature` on why this PSD surrogate).
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from mdrnn.ctc import ctc_loss
from mdrnn.errors import InputError
from mdrnn.layers import MDLSTM2D
from mdrnn.models import output_lengths
from mdrnn.optimizers import HessianFree, softmax_curvature


class HFSteps:
    """One HF step per `batches` training batches.

    Args:
        model: the recogniser (dropout is not applied: HF needs one function).
        strategy: the run's strategy; HF trains on one device.
        batches: training batches per HF step.
        xla: compile the forward pass and the Gauss-Newton products with XLA (the
            CTC loss and its gradient run outside, as in first-order training).
        shards: parts of the curvature batch whose products run side by side.
        average: the decay d of the weights' moving average above (0: none).
        structural: μ of the structural damping above (0: none).
        **options: `HessianFree`'s damping, max_cg, precondition and clip.
    """

    def __init__(self, model, strategy, batches: int, xla: bool = True, shards: int = 1,
                 average: float = 0.0, structural: float = 0.0, **options):
        if strategy.num_replicas_in_sync > 1:
            raise InputError("--optimizer hf trains on one device; drop --devices or "
                             "TF_CONFIG")
        self.model, self.batches = model, batches
        self.learning_rate = 1.0  # the share of each step taken; the training loop sets it
        self._pending: list[dict] = []
        # The products are compiled whole; the loss passes compile the forward pass
        # alone (CTC's kernel runs outside XLA), as first-order training does.
        forward = tf.function(
            lambda image, width: model({"image": image, "width": width}, training=False),
            jit_compile=xla)
        recurrent = [layer.output for layer in model.layers if isinstance(
            layer, (MDLSTM2D, keras.layers.RNN, keras.layers.Bidirectional))]
        self._states = (keras.Model(model.input, [model.output, *recurrent])
                        if structural and recurrent else None)
        self.hf = HessianFree(model.trainable_variables, self._outputs, self._loss,
                              self._curvature, xla=xla, shards=shards, structural=structural,
                              loss_outputs=lambda b: forward(b["image"], b["width"]),
                              **options)
        self.last: dict = {}
        self.average = average
        self._mean = self._averaged = None
        if average:
            self._mean = tf.Variable(tf.zeros_like(self.hf.flat_weights()), trainable=False,
                                     name="weight_average")
            self._averaged = tf.Variable(0, dtype=tf.int64, trainable=False,
                                         name="steps_averaged")

    @property
    def variables(self):
        extra = [self._mean, self._averaged] if self.average else []
        return [*self.hf.variables, *extra]

    @contextlib.contextmanager
    def averaged(self):
        """The model holds the weights' moving average inside (if any), then its own."""
        if not self.average or int(self._averaged.numpy()) == 0:
            yield
            return
        weights = self.hf.flat_weights()
        self.hf.set_flat_weights(self._mean)
        try:
            yield
        finally:
            self.hf.set_flat_weights(weights)

    def _update_average(self) -> None:
        steps = int(self._averaged.numpy())
        share = max(1 - self.average, 1 / (steps + 1))
        self._mean.assign_add(share * (self.hf.flat_weights() - self._mean))
        self._averaged.assign_add(1)

    def _outputs(self, batch):
        inputs = {"image": batch["image"], "width": batch["width"]}
        if self._states is None:
            return self.model(inputs, training=False), []
        logits, *states = self._states(inputs, training=False)
        return logits, states

    def _loss(self, logits, batch):
        frames = output_lengths(self.model, batch["width"])
        losses = ctc_loss(batch["labels"], logits, batch["label_length"], frames, check=False)
        return tf.reduce_mean(losses)

    def _curvature(self, logits, batch, u):
        frames = output_lengths(self.model, batch["width"])
        valid = tf.sequence_mask(frames, tf.shape(logits)[1], logits.dtype)
        return softmax_curvature(logits, u, valid / tf.cast(tf.shape(logits)[0], logits.dtype))

    def __call__(self, batch) -> list[float]:
        """Take a batch; the per-batch losses (before the step) once a step is made."""
        self._pending.append(batch)
        return self.flush() if len(self._pending) >= self.batches else []

    def flush(self) -> list[float]:
        """Step on the batches held, if any; their losses before the step."""
        if not self._pending:
            return []
        batches, self._pending = self._pending, []
        self.last = self.hf.step(batches, batches[0], scale=self.learning_rate)
        if self.average:
            self._update_average()
        return self.last["losses"]
