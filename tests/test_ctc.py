"""CTC loss and length checks, against sums over every alignment worked out in NumPy."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from mdrnn.ctc import check_lengths, ctc_loss, required_frames, required_frames_tf
from mdrnn.errors import InputError


def collapse(path):
    """CTC's many-to-one map: merge repeats, then drop blanks (0)."""
    return tuple(c for i, c in enumerate(path) if c != 0 and (i == 0 or path[i - 1] != c))


def brute_force_nll(logits, label):
    """-log p(label | x) by enumerating every path of a tiny (T, C) output."""
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    frames, classes = probs.shape
    total = sum(np.prod(probs[np.arange(frames), path])
                for path in itertools.product(range(classes), repeat=frames)
                if collapse(path) == tuple(label))
    return -np.log(total)


@pytest.fixture
def batch():
    """Samples of different label and output lengths in one padded batch."""
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(4, 6, 3)).astype(np.float32)
    # "aba", "bb", "a", and an empty label
    labels = np.array([[1, 2, 1], [2, 2, 0], [1, 0, 0], [0, 0, 0]], np.int32)
    label_length = np.array([3, 2, 1, 0], np.int32)
    logit_length = np.array([6, 4, 2, 3], np.int32)
    return labels, logits, label_length, logit_length


def test_loss_equals_brute_force_sum_over_alignments(batch):
    labels, logits, label_length, logit_length = batch
    loss = ctc_loss(labels, logits, label_length, logit_length)
    expected = [brute_force_nll(logits[b, :logit_length[b]].astype(np.float64),
                                labels[b, :label_length[b]]) for b in range(4)]
    assert loss.dtype == tf.float32 and loss.shape == (4,)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)


def test_padding_beyond_lengths_does_not_change_the_loss(batch):
    labels, logits, label_length, logit_length = batch
    reference = ctc_loss(labels, logits, label_length, logit_length).numpy()
    noisy_logits, noisy_labels = logits.copy(), labels.copy()
    for b in range(4):
        noisy_logits[b, logit_length[b]:] = 50.0 * np.arange(3)  # confidently "b"
        noisy_labels[b, label_length[b]:] = 2
    padded = ctc_loss(noisy_labels, noisy_logits, label_length, logit_length).numpy()
    np.testing.assert_allclose(padded, reference, rtol=1e-6)


def test_dense_path_compiles_under_xla_and_matches_the_sparse_path(batch):
    labels, logits, label_length, logit_length = batch
    compiled = tf.function(lambda *args: ctc_loss(*args, xla=True), jit_compile=True)
    dense = compiled(labels, logits, label_length, logit_length).numpy()
    sparse = ctc_loss(labels, logits, label_length, logit_length).numpy()
    np.testing.assert_allclose(dense, sparse, rtol=1e-5)


def test_float16_logits_give_a_float32_loss(batch):
    labels, logits, label_length, logit_length = batch
    half = logits.astype(np.float16)
    loss = ctc_loss(labels, half, label_length, logit_length)
    assert loss.dtype == tf.float32
    reference = ctc_loss(labels, half.astype(np.float32), label_length, logit_length)
    np.testing.assert_allclose(loss.numpy(), reference.numpy(), rtol=1e-6)


def test_gradients_are_finite_sum_to_zero_per_frame_and_vanish_on_padding(batch):
    labels, logits, label_length, logit_length = batch
    variable = tf.Variable(logits)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(ctc_loss(labels, variable, label_length, logit_length))
    grad = tape.gradient(loss, variable).numpy()
    assert np.isfinite(grad).all()
    # d(-log p)/d logits = softmax - state occupancy: both sum to 1 over classes.
    valid = np.arange(6)[None, :] < logit_length[:, None]
    np.testing.assert_allclose(grad.sum(axis=2)[valid], 0.0, atol=1e-5)
    assert np.abs(grad[valid]).max() > 0.01
    assert np.all(grad[~valid] == 0.0)


def test_tight_fit_is_accepted_and_too_short_raises_naming_the_sample():
    labels = np.array([[1, 1, 2], [2, 1, 0]], np.int32)  # "aab" needs 4 frames, "ba" 2
    logits = np.zeros((2, 4, 3), np.float32)
    loss = ctc_loss(labels, logits, [3, 2], [4, 2], sample_ids=["a.png", "b.png"])
    assert np.isfinite(loss.numpy()).all()
    with pytest.raises(InputError, match=r"'a\.png'.*need 4 frames, the output has 3"):
        ctc_loss(labels, logits, [3, 2], [3, 2], sample_ids=["a.png", "b.png"])
    with pytest.raises(InputError, match=r"sample 1: .*the output has 1$"):
        ctc_loss(labels, logits, [3, 2], [4, 1])


def test_too_short_in_a_traced_function_fails_an_assertion():
    fn = tf.function(ctc_loss)
    labels = tf.constant([[1, 1]])
    logits = tf.zeros((1, 3, 3))
    assert np.isfinite(fn(labels, logits, tf.constant([2]), tf.constant([3])).numpy()).all()
    with pytest.raises(tf.errors.InvalidArgumentError, match="output too short.*lines/7.png"):
        fn(labels, logits, tf.constant([2]), tf.constant([2]),
           sample_ids=tf.constant(["lines/7.png"]))


def test_required_frames_counts_repeats_inside_the_label_only():
    labels = np.array([[1, 1, 2, 2, 2], [1, 2, 3, 0, 0], [3, 3, 3, 0, 0], [0, 0, 0, 0, 0]])
    label_length = np.array([5, 3, 1, 0])
    expected = [5 + 3, 3, 1, 0]
    assert required_frames(labels, label_length).tolist() == expected
    assert required_frames_tf(labels, label_length).numpy().tolist() == expected


@pytest.mark.parametrize("labels, label_length, logit_length, kwargs, message", [
    ([[1, 0, 2]], [3], [5], {}, "blank id 0 within its length"),
    ([[1, 5]], [2], [5], {"num_outputs": 5}, r"ids outside 1\.\.4"),
    ([[1, 2]], [3], [5], {}, r"label length 3 is outside 0\.\.2"),
    ([[1, 2]], [2], [6], {"max_frames": 5}, "output length 6 exceeds the 5 frames"),
    ([[1, 2]], [2], [-1], {}, "output length -1 is negative"),
])
def test_check_lengths_names_each_kind_of_bad_sample(labels, label_length, logit_length,
                                                      kwargs, message):
    with pytest.raises(InputError, match=f"^sample 'x' \\(batch index 0\\): .*{message}"):
        check_lengths(np.array(labels), label_length, logit_length, ["x"], **kwargs)


def test_check_lengths_counts_the_other_bad_samples():
    labels = np.array([[1], [1], [1], [1]])
    with pytest.raises(InputError, match=r"^sample 1: .*\(2 more bad samples in this batch\)$"):
        check_lengths(labels, [1, 1, 1, 1], [1, 0, 0, 0])
