"""Hessian-free training of recognisers (`mdrnn train --optimizer hf`).

`HFSteps` takes an epoch's batches one at a time, as the training loop hands them
over, and makes one `mdrnn.optimizers.HessianFree` step per `hf_batches` batches:
gradient and loss on all of them, curvature on the first. At the end of an epoch,
`flush` steps on what is left, so no step spans two epochs and a checkpoint holds
everything a resumed run needs (λ and the last CG solution are the optimiser's
variables).

The loss is the batch's mean CTC loss; its Gauss-Newton curvature is the softmax's
(diag(y) − y yᵀ) on each valid frame, divided by the lines in the batch (see
`mdrnn.optimizers` on why this PSD surrogate).
"""

from __future__ import annotations

import tensorflow as tf

from mdrnn.ctc import ctc_loss
from mdrnn.errors import InputError
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
        **options: `HessianFree`'s damping and max_cg (no structural damping here).
    """

    def __init__(self, model, strategy, batches: int, xla: bool = True, shards: int = 1,
                 **options):
        if strategy.num_replicas_in_sync > 1:
            raise InputError("--optimizer hf trains on one device; drop --devices or "
                             "TF_CONFIG")
        self.model, self.batches = model, batches
        self.learning_rate = None  # set by the training loop, unused
        self._pending: list[dict] = []
        # The products are compiled whole; the loss passes compile the forward pass
        # alone (CTC's kernel runs outside XLA), as first-order training does.
        forward = tf.function(
            lambda image, width: model({"image": image, "width": width}, training=False),
            jit_compile=xla)
        self.hf = HessianFree(model.trainable_variables, self._outputs, self._loss,
                              self._curvature, xla=xla, shards=shards,
                              loss_outputs=lambda b: forward(b["image"], b["width"]),
                              **options)
        self.last: dict = {}

    @property
    def variables(self):
        return self.hf.variables

    def _outputs(self, batch):
        return self.model({"image": batch["image"], "width": batch["width"]},
                          training=False), []

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
        self.last = self.hf.step(batches, batches[0])
        return self.last["losses"]
