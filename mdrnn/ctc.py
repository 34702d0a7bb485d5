"""CTC loss over logits (blank = 0) and the frame-count checks that guard it.

Conventions: blank is class 0 and characters are 1..K; models output logits of
shape (B, T, K+1). Labels are dense int32 (B, L) padded with 0, and every call
takes each sample's true label length and output length, never padded ones.

Which TensorFlow formulation `ctc_loss` uses, and why (figures in
benchmarks/ctc_speed.py): `tf.nn.ctc_loss` with a `SparseTensor` of labels runs
the fused CTC kernel, more than 10x faster than the dense formulation
(`tf.nn.ctc_loss` with dense labels, which `keras.ops.ctc_loss` also uses) on
CPU, eagerly and in `tf.function`. The fused kernel has no XLA lowering, so a
function compiled with ``jit_compile=True`` cannot contain it; the dense
formulation does compile, and runs several times faster compiled than not, but
still slower than the sparse kernel. The training step therefore compiles the
model's forward pass and computes the loss outside the compiled function with
the sparse kernel; ``xla=True`` selects the dense formulation for callers that
must trace the loss inside a compiled function.

Too-short outputs. A label needs ``required_frames`` output frames: one per
character plus one blank between each pair of equal neighbours. The input
pipeline drops samples that cannot fit (`required_frames_tf` works inside
`tf.data`), so inside a training step the check is a cheap safety net: eagerly,
`ctc_loss` raises `InputError` naming the sample; in a `tf.function` it adds an
assertion that fails with `InvalidArgumentError` listing the batch indices;
under XLA assertions are dropped, and an unfittable sample would silently get a
finite but meaningless loss from the dense formulation (the sparse kernel
returns ``inf``), which is why the pipeline must drop such samples first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from mdrnn.datasets.charset import BLANK
from mdrnn.errors import InputError


def required_frames(labels, label_length) -> np.ndarray:
    """Count the output frames each label needs: its length plus its repeated neighbours.

    CTC must emit a blank between two equal adjacent characters ("aa" needs
    "a", blank, "a"), so such a pair costs one extra frame.

    Args:
        labels: int array (B, L), padded with 0 beyond each label's length.
        label_length: int array (B,), each label's true length.

    Returns:
        int64 array (B,): the minimum output length that can carry each label.
    """
    labels = np.asarray(labels)
    label_length = np.asarray(label_length).astype(np.int64)
    if labels.ndim != 2 or label_length.shape != labels.shape[:1]:
        raise ValueError(f"labels must be (B, L) and label_length (B,), "
                         f"got {labels.shape} and {label_length.shape}")
    positions = np.arange(labels.shape[1])
    # A pair (i-1, i) counts only when both lie inside the label.
    inside = positions[None, 1:] < label_length[:, None]
    repeats = ((labels[:, 1:] == labels[:, :-1]) & inside).sum(axis=1)
    return label_length + repeats


def required_frames_tf(labels, label_length) -> tf.Tensor:
    """Count the output frames each label needs, with TensorFlow ops (graph- and XLA-safe).

    The same count as `required_frames`, for use inside `tf.data` or `tf.function`.

    Args:
        labels: int tensor (B, L), padded with 0 beyond each label's length.
        label_length: int tensor (B,), each label's true length.

    Returns:
        int32 tensor (B,): the minimum output length that can carry each label.
    """
    labels = tf.convert_to_tensor(labels)
    label_length = tf.cast(label_length, tf.int32)
    inside = tf.sequence_mask(label_length, tf.shape(labels)[1])[:, 1:]
    repeats = tf.logical_and(tf.equal(labels[:, 1:], labels[:, :-1]), inside)
    return label_length + tf.reduce_sum(tf.cast(repeats, tf.int32), axis=1)


def _sample_name(index: int, sample_ids: Sequence | None) -> str:
    if sample_ids is None:
        return f"sample {index}"
    sample_id = sample_ids[index]
    # bytes come from tf.string tensors; str() also unwraps numpy scalars for the repr
    if isinstance(sample_id, bytes):
        sample_id = sample_id.decode("utf-8", "replace")
    sample_id = str(sample_id)
    return f"sample {sample_id!r} (batch index {index})"


def check_lengths(labels, label_length, logit_length, sample_ids: Sequence | None = None, *,
                  num_outputs: int | None = None, max_frames: int | None = None) -> None:
    """Raise InputError for the first sample whose label cannot be fitted by CTC.

    Checks, per sample: the label length lies in 0..L, the label holds no blank
    (and, with `num_outputs`, no id beyond K) within its length, the output
    length lies in 0..`max_frames`, and the output has at least
    `required_frames` frames.

    Args:
        labels: int array (B, L), padded with 0.
        label_length: int array (B,).
        logit_length: int array (B,), each sample's number of output frames.
        sample_ids: optional names (file names, keys), one per sample, used in
            the message; batch indices are used otherwise.
        num_outputs: K + 1, to check that label ids are in 1..K.
        max_frames: the padded output length T, to check `logit_length` against.

    Raises:
        InputError: one line naming the first bad sample, and how many more
            samples of the batch are bad.
    """
    labels = np.asarray(labels)
    label_length = np.asarray(label_length).astype(np.int64)
    logit_length = np.asarray(logit_length).astype(np.int64)
    if labels.ndim != 2 or label_length.shape != labels.shape[:1] or (
            logit_length.shape != labels.shape[:1]):
        raise ValueError(f"labels must be (B, L), label_length and logit_length (B,), got "
                         f"{labels.shape}, {label_length.shape} and {logit_length.shape}")
    if hasattr(sample_ids, "numpy"):  # a tf.string tensor
        sample_ids = sample_ids.numpy()
    if sample_ids is not None and len(sample_ids) != labels.shape[0]:
        raise ValueError(f"got {len(sample_ids)} sample ids for a batch of {labels.shape[0]}")
    length_cap = labels.shape[1]
    problems: dict[int, str] = {}

    def flag(bad: np.ndarray, describe) -> None:
        for index in np.flatnonzero(bad):
            problems.setdefault(int(index), describe(int(index)))

    flag((label_length < 0) | (label_length > length_cap),
         lambda i: f"label length {label_length[i]} is outside 0..{length_cap}")
    inside = np.arange(length_cap)[None, :] < label_length[:, None]
    flag(((labels == BLANK) & inside).any(axis=1),
         lambda i: "label contains the blank id 0 within its length")
    if num_outputs is not None:
        flag((((labels >= num_outputs) | (labels < 0)) & inside).any(axis=1),
             lambda i: f"label has ids outside 1..{num_outputs - 1}")
    flag(logit_length < 0, lambda i: f"output length {logit_length[i]} is negative")
    if max_frames is not None:
        flag(logit_length > max_frames,
             lambda i: f"output length {logit_length[i]} exceeds the {max_frames} frames given")
    # setdefault in `flag` keeps an earlier, more basic problem for the same sample.
    needed = required_frames(labels, label_length)
    flag(needed > logit_length,
         lambda i: (f"output too short for its label: {label_length[i]} characters and "
                    f"{needed[i] - label_length[i]} repeated pairs need {needed[i]} frames, "
                    f"the output has {logit_length[i]}"))
    if problems:
        first = min(problems)
        more = len(problems) - 1
        tail = f" ({more} more bad sample{'s' * (more > 1)} in this batch)" if more else ""
        raise InputError(f"{_sample_name(first, sample_ids)}: {problems[first]}{tail}")


def _sparse_loss(labels, logits, label_length, logit_length) -> tf.Tensor:
    """Per-sample loss by the fused CTC kernel, which refuses empty labels.

    A sample with an empty label gets a one-character stand-in for the kernel
    (and at least one frame), and in its place the exact loss of the empty
    labelling, ``-sum_t log p_t(blank)``.
    """
    empty = tf.equal(label_length, 0)
    # (B, L) -> (B, L+1): room for the stand-in even when L == 0
    labels = tf.pad(labels, [[0, 0], [0, 1]])
    first = tf.equal(tf.range(tf.shape(labels)[1]), 0)
    labels = tf.where(tf.logical_and(empty[:, None], first[None, :]), 1, labels)
    kernel_length = tf.maximum(label_length, 1)
    # (B, L+1) dense + lengths -> indices (N, 2) of the characters inside the labels
    indices = tf.where(tf.sequence_mask(kernel_length, tf.shape(labels)[1]))
    sparse = tf.SparseTensor(indices, tf.gather_nd(labels, indices),
                             tf.shape(labels, out_type=tf.int64))
    kernel = tf.nn.ctc_loss(sparse, logits, None, tf.where(empty, tf.maximum(logit_length, 1),
                                                           logit_length),
                            logits_time_major=False, blank_index=BLANK)
    log_blank = logits[..., BLANK] - tf.reduce_logsumexp(logits, axis=-1)  # (B, T)
    inside = tf.sequence_mask(logit_length, tf.shape(logits)[1])
    blank_only = -tf.reduce_sum(tf.where(inside, log_blank, 0.0), axis=1)
    return tf.where(empty, blank_only, kernel)


def _graph_check(labels, label_length, logit_length, sample_ids) -> tf.Operation:
    """An assertion (for traced code) that every output is long enough for its label."""
    fits = required_frames_tf(labels, label_length) <= logit_length
    bad = tf.where(tf.logical_not(fits))[:, 0]
    data = ["ctc_loss: output too short for its label at batch indices", bad]
    if sample_ids is not None:
        data += ["sample ids", tf.gather(tf.convert_to_tensor(sample_ids), bad)]
    return tf.debugging.Assert(tf.reduce_all(fits), data, summarize=20)


def ctc_loss(labels, logits, label_length, logit_length, *, sample_ids: Sequence | None = None,
             check: bool = True, xla: bool = False) -> tf.Tensor:
    """Per-sample CTC negative log-likelihood of dense padded labels given logits.

    Differentiable with respect to `logits` (use it under `tf.GradientTape`).
    Logits of any float type are computed in float32.

    Args:
        labels: int (B, L) label ids 1..K, padded with 0.
        logits: float (B, T, K+1) unnormalised scores, class 0 the blank.
        label_length: int (B,) true label lengths.
        logit_length: int (B,) true output lengths; frames beyond them are ignored.
        sample_ids: optional names, one per sample, for error messages.
        check: check the lengths first (see the module docstring for what
            this does eagerly, in `tf.function` and under XLA).
        xla: use the dense formulation, which XLA can compile, for a call
            traced inside a ``jit_compile=True`` function; slower otherwise.

    Returns:
        float32 tensor (B,): ``-log p(label | logits)`` per sample.

    Raises:
        InputError: eagerly with `check`, for a label that cannot be fitted,
            naming the sample.
    """
    logits = tf.convert_to_tensor(logits)
    if logits.dtype != tf.float32:
        logits = tf.cast(logits, tf.float32)
    labels = tf.cast(labels, tf.int32)
    label_length = tf.cast(label_length, tf.int32)
    logit_length = tf.cast(logit_length, tf.int32)
    assertions = []
    if check and tf.executing_eagerly():
        check_lengths(labels.numpy(), label_length.numpy(), logit_length.numpy(), sample_ids,
                      num_outputs=logits.shape[-1], max_frames=logits.shape[1])
    elif check and not xla:
        assertions.append(_graph_check(labels, label_length, logit_length, sample_ids))
    with tf.control_dependencies(assertions):
        if xla:
            return tf.nn.ctc_loss(labels, logits, label_length, logit_length,
                                  logits_time_major=False, blank_index=BLANK)
        return _sparse_loss(labels, logits, label_length, logit_length)
