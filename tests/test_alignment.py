import itertools

import numpy as np
import pytest

from mdrnn.alignment import align_texts, aligned_confidences, best_alignment
from mdrnn.decoding import greedy_decode, log_probabilities


def collapse(path):
    out = []
    for i, c in enumerate(path):
        if c and (i == 0 or c != path[i - 1]):
            out.append(c)
    return tuple(out)


def brute_force(log_probs, length, text):
    """The best path reading `text` and the character index each frame reads."""
    best, best_path = -np.inf, None
    classes = log_probs.shape[1]
    for path in itertools.product(range(classes), repeat=length):
        if collapse(path) != tuple(text):
            continue
        score = sum(log_probs[t, c] for t, c in enumerate(path))
        if score > best:
            best, best_path = score, path
    if best_path is None:
        return None
    index, aligned = -1, []
    for t, c in enumerate(best_path):
        if c and (t == 0 or c != best_path[t - 1]):
            index += 1
        aligned.append(index if c else -1)
    return aligned


@pytest.mark.parametrize("seed", range(6))
def test_the_alignment_is_the_best_path_of_the_text(seed):
    rng = np.random.default_rng(seed)
    frames, classes = 6, 3
    logits = rng.normal(0, 2, (4, frames, classes))
    lengths = np.array([6, 5, 6, 3])
    texts = [(1, 2, 1), (2, 2), (1,), (1, 1)]
    log_probs, lengths = log_probabilities(logits, lengths)
    labels = np.zeros((4, 3), np.int64)
    for i, text in enumerate(texts):
        labels[i, :len(text)] = text
    aligned = best_alignment(log_probs, lengths, labels, [len(t) for t in texts])
    for i, text in enumerate(texts):
        expected = brute_force(log_probs[i], int(lengths[i]), text)
        assert aligned[i, :lengths[i]].tolist() == expected
        assert (aligned[i, lengths[i]:] == -1).all()


def test_a_text_too_long_for_its_frames_has_no_alignment():
    logits = np.zeros((2, 3, 3))
    log_probs, lengths = log_probabilities(logits, [3, 3])
    # (1, 1) needs a blank between its two 1s: 3 frames; (1, 1, 1) would need 5.
    aligned = best_alignment(log_probs, lengths, np.array([[1, 1, 0], [1, 1, 1]]), [2, 3])
    assert aligned[0].tolist() == [0, -1, 1]
    assert (aligned[1] == -1).all()
    assert aligned_confidences(logits[1:], [3], [(1, 1, 1)])[0].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="2 texts for 1 samples"):
        aligned_confidences(logits[1:], [3], [(1,), (1,)])


def test_confidences_of_the_greedy_text_are_its_peaks_on_a_clear_path():
    rng = np.random.default_rng(0)
    path = [1, 1, 0, 2, 0, 0, 1, 3, 3, 0]
    logits = rng.normal(0, 0.5, (1, len(path), 4))
    logits[0, np.arange(len(path)), path] += 6.0
    ids, _, peaks = greedy_decode(logits, [len(path)], per_char=True)[0]
    confidences = aligned_confidences(logits, [len(path)], [ids])[0]
    assert tuple(ids) == (1, 2, 1, 3)
    np.testing.assert_allclose(confidences, peaks)
    assert aligned_confidences(logits, [len(path)], [()])[0].shape == (0,)


def test_align_texts_gives_each_characters_frames_and_peak():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (2, 6, 3))
    texts = [(1, 2, 1), (2,)]
    log_probs, lengths = log_probabilities(logits, [6, 4])
    for i, ((peaks, frames), text) in enumerate(zip(align_texts(logits, [6, 4], texts),
                                                    texts, strict=True)):
        aligned = np.array(brute_force(log_probs[i], int(lengths[i]), text))
        for k, label in enumerate(text):
            mine = np.flatnonzero(aligned == k)
            assert frames[k].tolist() == [mine[0], mine[-1] + 1]
            assert peaks[k] == pytest.approx(np.exp(log_probs[i, mine, label]).max())
