"""The best CTC alignment of a known text, and each character's confidence along it.

A decoder that searches over prefixes (beam search, language models, lexicons)
returns a text but not which frames read each character. The best alignment (the
Viterbi path through the CTC states of the text) gives them: each frame reads one
character of the text or a blank. A character's confidence is its peak probability
over the frames aligned to it, which is what the greedy decoder reports for the
frames of its best path (`mdrnn.decoding`).
"""

from __future__ import annotations

import numpy as np

from mdrnn.decoding import log_probabilities


def best_alignment(log_probs, lengths, labels, label_length) -> np.ndarray:
    """The character each frame reads on the text's most probable path.

    Args:
        log_probs: (B, T, C) from `mdrnn.decoding.log_probabilities` (padding frames
            a certain blank).
        lengths: (B,) frames per sample.
        labels: (B, L) label ids (1..C-1), padded.
        label_length: (B,) labels per sample.

    Returns:
        (B, T) int: the index in the text of the character frame t reads, -1 for a
        blank or a padding frame; all -1 for a text no path can produce (longer
        than its frames allow).
    """
    labels = np.asarray(labels, np.int64)
    label_length = np.asarray(label_length, np.int64)
    batch, frames, _ = log_probs.shape
    cap = labels.shape[1]
    # The states of `mdrnn.decoding._forward`: 0 is "nothing read yet", odd states are
    # blanks, state 2i + 2 reads character i.
    states = 2 * cap + 2
    emit = np.zeros((batch, states), np.int64)
    emit[:, 2::2] = labels
    skip = np.zeros((batch, states), bool)
    skip[:, 2::2] = True
    skip[:, 4::2] = labels[:, 1:] != labels[:, :-1]
    beyond = np.arange(states)[None, :] > 2 * label_length[:, None] + 1
    score = np.full((batch, states), -np.inf)
    score[:, 0] = 0.0
    back = np.zeros((batch, frames, states), np.int8)
    none = np.full((batch, 2), -np.inf)
    for t in range(frames):
        candidates = np.stack([score, np.concatenate([none[:, :1], score[:, :-1]], 1),
                               np.where(skip, np.concatenate([none, score[:, :-2]], 1),
                                        -np.inf)], axis=-1)
        choice = candidates.argmax(axis=-1)
        score = (np.take_along_axis(candidates, choice[..., None], -1)[..., 0]
                 + np.take_along_axis(log_probs[:, t], emit, axis=1))
        score[:, 0] = -np.inf
        score[beyond] = -np.inf
        back[:, t] = choice
    ends = 2 * label_length[:, None] + np.array([[0, 1]])
    end_scores = np.take_along_axis(score, ends, axis=1)
    state = np.take_along_axis(ends, end_scores.argmax(axis=1)[:, None], 1)[:, 0]
    feasible = np.isfinite(end_scores.max(axis=1)) if frames else label_length == 0
    aligned = np.full((batch, frames), -1, np.int64)
    rows = np.arange(batch)
    for t in range(frames - 1, -1, -1):
        reads = (state >= 2) & (state % 2 == 0)
        aligned[:, t] = np.where(reads, state // 2 - 1, -1)
        state = state - back[rows, t, state]
    aligned[~feasible] = -1
    aligned[np.arange(frames)[None, :] >= np.asarray(lengths)[:, None]] = -1
    return aligned


def align_texts(logits, lengths, texts) -> list[tuple[np.ndarray, np.ndarray]]:
    """Where each character of each text is read, and how surely.

    Args:
        logits: (B, T, C) network outputs, class 0 the blank.
        lengths: (B,) frames per sample.
        texts: B sequences of label ids (the decoded texts).

    Returns:
        per text, (confidences, frames): each character's peak probability over the
        frames its best alignment gives it, float (k,); and those frames, int (k, 2)
        as [first, end) (zeros, and empty spans, for a text no path can produce).
    """
    log_probs, lengths = log_probabilities(logits, lengths)
    batch, frames, _ = log_probs.shape
    if len(texts) != batch:
        raise ValueError(f"{len(texts)} texts for {batch} samples")
    label_length = np.array([len(t) for t in texts], np.int64)
    labels = np.zeros((batch, max(1, int(label_length.max(initial=0)))), np.int64)
    for i, text in enumerate(texts):
        labels[i, :len(text)] = text
    aligned = best_alignment(log_probs, lengths, labels, label_length)
    peaks = np.full(labels.shape, -np.inf)
    first = np.full(labels.shape, frames, np.int64)
    end = np.zeros(labels.shape, np.int64)
    b, t = np.nonzero(aligned >= 0)
    k = aligned[b, t]
    np.maximum.at(peaks, (b, k), log_probs[b, t, labels[b, k]])
    np.minimum.at(first, (b, k), t)
    np.maximum.at(end, (b, k), t + 1)
    first = np.minimum(first, end)  # a character without frames: the empty span [0, 0)
    return [(np.exp(peaks[i, :n]), np.stack([first[i, :n], end[i, :n]], axis=1))
            for i, n in enumerate(label_length)]


def aligned_confidences(logits, lengths, texts) -> list[np.ndarray]:
    """Each character's peak probability over the frames its best alignment gives it
    (`align_texts` without the frames)."""
    return [confidences for confidences, _ in align_texts(logits, lengths, texts)]
