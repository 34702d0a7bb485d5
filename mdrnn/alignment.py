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
    score = np.full((batch, states), -np.inf, log_probs.dtype)
    score[:, 0] = 0.0
    back = np.zeros((batch, frames, states), np.int8)
    one = np.full_like(score, -np.inf)
    two = np.full_like(score, -np.inf)
    emitted = np.take_along_axis(log_probs, emit[:, None, :], axis=2)  # (B, T, states)
    for t in range(frames):
        # The best of staying, coming from the state before, or skipping a blank.
        one[:, 1:] = score[:, :-1]
        two[:, 2:] = np.where(skip[:, 2:], score[:, :-2], -np.inf)
        stay_or_one = np.maximum(score, one)
        best = np.maximum(stay_or_one, two)
        back[:, t] = np.where(two > stay_or_one, 2, one > score)
        score = best + emitted[:, t]
        score[:, 0] = -np.inf
        score[beyond] = -np.inf
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


def _log_softmax(logits, lengths) -> tuple[np.ndarray, np.ndarray]:
    """`mdrnn.decoding.log_probabilities` in float32, which the best path and the
    peaks need no more than (the exact text probabilities do)."""
    logits = np.asarray(logits, np.float32)
    if logits.ndim != 3 or logits.shape[2] < 2:
        raise ValueError(f"logits must be (B, T, K+1) with K >= 1, got shape {logits.shape}")
    lengths = np.asarray(lengths).astype(np.int64)
    if lengths.shape != (logits.shape[0],) or (lengths > logits.shape[1]).any():
        raise ValueError(f"lengths {lengths.tolist()} do not fit logits {logits.shape}")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    padding = np.arange(logits.shape[1])[None, :] >= lengths[:, None]
    log_probs[padding] = -np.inf
    log_probs[padding, 0] = 0.0
    return log_probs, lengths


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
    log_probs, lengths = _log_softmax(logits, lengths)
    batch, frames, _ = log_probs.shape
    if len(texts) != batch:
        raise ValueError(f"{len(texts)} texts for {batch} samples")
    label_length = np.array([len(t) for t in texts], np.int64)
    labels = np.zeros((batch, max(1, int(label_length.max(initial=0)))), np.int64)
    for i, text in enumerate(texts):
        labels[i, :len(text)] = text
    aligned = best_alignment(log_probs, lengths, labels, label_length)
    out = []
    for i, n in enumerate(label_length):
        # A character's frames are one run of the alignment: where its index starts
        # and where it ends.
        row = aligned[i]
        t = np.flatnonzero(row >= 0)
        k = row[t]
        starts = np.flatnonzero(np.diff(k, prepend=-1) != 0)
        peaks = np.zeros(n)
        spans = np.zeros((n, 2), np.int64)
        if t.size:
            chars = k[starts]
            reads = log_probs[i, t, labels[i, k]]
            peaks[chars] = np.exp(np.maximum.reduceat(reads, starts))
            spans[chars, 0] = t[starts]
            spans[chars, 1] = t[np.r_[starts[1:], t.size] - 1] + 1
        out.append((peaks, spans))
    return out


def aligned_confidences(logits, lengths, texts) -> list[np.ndarray]:
    """Each character's peak probability over the frames its best alignment gives it
    (`align_texts` without the frames)."""
    return [confidences for confidences, _ in align_texts(logits, lengths, texts)]
