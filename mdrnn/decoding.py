"""CTC decoders over NumPy logits: greedy and prefix beam search (lexicons: `mdrnn.lexicon`).

Every decoder takes logits (B, T, K+1), class 0 the blank, each sample's true
output length (B,) and optionally a charset (anything with ``decode(ids) -> str``),
and returns one ``(text, confidence)`` per sample: ``charset.decode(ids)``, or
without a charset the tuple of label ids. Confidences lie in [0, 1]:

- greedy, beam search and lexicon lines: the exact ``p(text | x)``, summed over all
  of the text's alignments by the forward algorithm (not only the best path, or
  those the beam kept): the probability that the whole line is right, so it falls
  as lines get longer. Of the line confidences tried on the 1,000 digit test lines
  of the demo model it ranks wrong lines below right ones best (AUROC 0.90; the
  product of the characters' peaks 0.89, their minimum 0.88, the geometric mean of
  the best path's frame probabilities 0.69: benchmarks/RESULTS.md). Greedy also
  gives one confidence per character: the peak probability over the frames of its
  run.
- lexicon words: the chosen entry's posterior among the entries (a softmax over
  their exact log-likelihoods), i.e. given that the image shows a listed word.

Frames at and beyond a sample's length become a certain blank, which leaves every
labelling's probability unchanged: a padded batch is decoded in lockstep, and
padding never changes a result.
"""

from __future__ import annotations

import numpy as np

from mdrnn.datasets.charset import BLANK


def log_probabilities(logits, lengths) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes; return padding-frozen log-probabilities (B, T, C) float64 and
    lengths (B,): frames at and beyond a length are a certain blank."""
    logits = np.asarray(logits)
    if logits.ndim != 3 or logits.shape[2] < 2:
        raise ValueError(f"logits must be (B, T, K+1) with K >= 1, got shape {logits.shape}")
    batch, frames, _ = logits.shape
    lengths = np.asarray(lengths).astype(np.int64)
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape ({batch},), got {lengths.shape}")
    if ((lengths < 0) | (lengths > frames)).any():
        raise ValueError(f"lengths must lie in 0..{frames}, got {lengths.tolist()}")
    if not np.isfinite(logits).all():
        raise ValueError("logits contain NaN or infinite values")
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    padding = np.arange(frames)[None, :] >= lengths[:, None]
    log_probs[padding] = -np.inf
    log_probs[padding, BLANK] = 0.0
    return log_probs, lengths


def labels_or_text(ids, charset):
    """``charset.decode(ids)``, or the ids as a tuple without a charset."""
    ids = tuple(int(i) for i in ids)
    return charset.decode(ids) if charset is not None else ids


def greedy_decode(logits, lengths, charset=None, *, per_char: bool = False) -> list[tuple]:
    """Best-path decoding: the most probable class per frame, repeats collapsed, blanks dropped.

    Args:
        logits: (B, T, K+1) unnormalised scores, class 0 the blank.
        lengths: (B,) true output lengths.
        charset: optional object with ``decode(ids) -> str``.
        per_char: also return each emitted character's confidence.

    Returns:
        One ``(text, confidence)`` per sample, or ``(text, confidence,
        char_confidences)`` with `per_char`, char_confidences a float array
        with one value per emitted character.
    """
    log_probs, lengths = log_probabilities(logits, lengths)
    best = log_probs.argmax(axis=-1)  # (B, T)
    best_lp = np.take_along_axis(log_probs, best[..., None], axis=-1)[..., 0]
    decoded = []
    for path, path_lp, n in zip(best, best_lp, lengths):
        path, path_lp = path[:n], path_lp[:n]
        # A run is a maximal stretch of equal classes; each non-blank run is one character.
        starts = np.flatnonzero(np.diff(path, prepend=-1))
        emitted = path[starts] != BLANK
        peaks = np.maximum.reduceat(path_lp, starts)[emitted] if n else np.zeros(0)
        decoded.append((path[starts][emitted], np.exp(peaks)))
    labels = np.zeros((len(decoded), max(1, max(len(ids) for ids, _ in decoded))), np.int64)
    for row, (ids, _) in zip(labels, decoded):
        row[:len(ids)] = ids
    confidence = _forward(np.exp(log_probs), lengths, labels,
                          np.array([len(ids) for ids, _ in decoded], np.int64))
    results = []
    for (ids, peaks), p in zip(decoded, confidence):
        item = (labels_or_text(ids, charset), float(p))
        results.append(item + (peaks,) if per_char else item)
    return results


def _forward(probs, lengths, labels, label_length) -> np.ndarray:
    """Exact p(label | x) per sample (B,) by the CTC forward algorithm, scaled per step."""
    batch, length_cap = labels.shape
    # States: 0 is "nothing read yet", then blank, l1, blank, l2, ..., blank: odd
    # states are blanks and state 2i holds character i-1.
    emit = np.zeros((batch, 2 * length_cap + 2), np.int64)
    emit[:, 2::2] = labels
    # A character may be entered from two states back (skipping a blank) unless it
    # repeats the previous character.
    skip = np.zeros(emit.shape)
    skip[:, 2::2] = 1.0
    skip[:, 4::2] = labels[:, 1:] != labels[:, :-1]
    alpha = np.zeros(emit.shape)
    alpha[:, 0] = 1.0
    log_scale = np.zeros(batch)
    for t in range(int(lengths.max(initial=0))):
        step = alpha.copy()
        step[:, 1:] += alpha[:, :-1]
        step[:, 2:] += alpha[:, :-2] * skip[:, 2:]
        alpha = step * np.take_along_axis(probs[:, t], emit, axis=1)
        alpha[:, 0] = 0.0
        # Scaling by the total keeps values near 1; a labelling too improbable to
        # survive it has p < 1e-300, which is 0 at float64 precision anyway.
        scale = alpha.sum(axis=1)
        scale = np.where(scale > 0, scale, 1.0)
        alpha /= scale[:, None]
        log_scale += np.log(scale)
    end = 2 * label_length[:, None] + np.array([[0, 1]])  # last character (or start), last blank
    probability = np.take_along_axis(alpha, end, axis=1).sum(axis=1) * np.exp(log_scale)
    return np.minimum(probability, 1.0)  # rounding may overshoot 1 by an ulp


def labelling_probability(logits, lengths, labels, label_length) -> np.ndarray:
    """Exact probability of given labellings, summed over all of their CTC alignments.

    Args:
        logits: (B, T, K+1) unnormalised scores, class 0 the blank.
        lengths: (B,) true output lengths.
        labels: (B, L) label ids 1..K, padded with 0.
        label_length: (B,) true label lengths.

    Returns:
        float64 (B,): ``p(label | x)`` in [0, 1]; 0 where the label cannot fit.
    """
    log_probs, lengths = log_probabilities(logits, lengths)
    labels = np.asarray(labels, dtype=np.int64).reshape(len(lengths), -1)
    return _forward(np.exp(log_probs), lengths, labels, np.asarray(label_length, np.int64))


class _Prefixes:
    """Labelling prefixes as nodes of one tree shared by a batch, so each prefix has one id.

    Node 0 is the empty prefix; `state` is each prefix's automaton state, when
    there is an automaton.
    """

    def __init__(self, classes: int, transitions: np.ndarray | None):
        self.parent = np.full(1024, -2, np.int64)  # -2: no parent, equal to no node id
        self.char = np.zeros(1024, np.int64)
        self.state = np.zeros(1024, np.int64)
        self.classes, self.transitions = classes, transitions
        self.ids: dict[int, int] = {}

    def extend(self, nodes: np.ndarray, chars: np.ndarray) -> np.ndarray:
        """Ids of the prefixes ``nodes[i] + chars[i]``, created where new."""
        count = len(self.ids) + 1
        if count + len(nodes) > len(self.parent):
            extra = max(len(self.parent), len(nodes))
            self.parent = np.concatenate([self.parent, np.full(extra, -2, np.int64)])
            self.char = np.concatenate([self.char, np.zeros(extra, np.int64)])
            self.state = np.concatenate([self.state, np.zeros(extra, np.int64)])
        ids = np.empty(len(nodes), np.int64)
        for i, key in enumerate((nodes * self.classes + chars).tolist()):
            ids[i] = self.ids.setdefault(key, len(self.ids) + 1)
        self.parent[ids], self.char[ids] = nodes, chars
        if self.transitions is not None:
            self.state[ids] = self.transitions[self.state[nodes], chars]
        return ids

    def labelling(self, node: int, final: np.ndarray | None) -> tuple[int, ...]:
        """The ids of a prefix, cut back to its longest prefix in a `final` state."""
        while final is not None and node > 0 and not final[self.state[node]]:
            node = int(self.parent[node])
        ids = []
        while node > 0:
            ids.append(int(self.char[node]))
            node = int(self.parent[node])
        return tuple(reversed(ids))


def prefix_beam_search(log_probs, lengths, width, transitions=None, final=None,
                       lm_scores=None, end_scores=None) -> list[tuple]:
    """CTC prefix beam search over a batch in lockstep, in log space.

    Optionally constrained by a deterministic automaton over characters:
    `transitions` (S, C) gives the next state (-1: not allowed) from each state,
    state 0 is the start, and only prefixes ending in a `final` state may be
    returned (otherwise the best prefix cut back to its last final state). A
    weighted automaton (an n-gram LM) adds `lm_scores[state, c]` when a prefix grows
    by c and `end_scores[state]` to the finished prefixes.

    Returns:
        The best labelling per sample, as a tuple of ids.
    """
    batch, _, classes = log_probs.shape
    rows = np.arange(batch)[:, None]
    tree = _Prefixes(classes, transitions)
    node = np.full((batch, width), -1, np.int64)  # -1: an empty slot
    node[:, 0] = 0
    lp_blank = np.where(node == 0, 0.0, -np.inf)  # paths ending in a blank
    lp_char = np.full((batch, width), -np.inf)  # paths ending in the prefix's last character
    for t in range(int(lengths.max(initial=0))):
        frame = log_probs[:, t]  # (B, C)
        valid = node >= 0
        safe = np.where(valid, node, 0)
        last = tree.char[safe]
        total = np.logaddexp(lp_blank, lp_char)
        stay_blank = total + frame[:, :1]
        stay_char = lp_char + np.take_along_axis(frame, last, axis=1)
        # (B, W, K): each prefix extended by each character. Repeating the last
        # character starts a new one only after a blank.
        grow = total[:, :, None] + frame[:, None, 1:]
        rb, rw = np.nonzero(last > 0)
        rc = last[rb, rw]
        grow[rb, rw, rc - 1] = lp_blank[rb, rw] + frame[rb, rc]
        if lm_scores is not None:
            grow += lm_scores[tree.state[safe]][:, :, 1:]
        if transitions is not None:
            grow[transitions[tree.state[safe]][:, :, 1:] < 0] = -np.inf
        # An extension that equals a prefix already in the beam adds to its paths.
        parent_of = np.where(valid, tree.parent[safe], -3)
        same = parent_of[:, :, None] == node[:, None, :]  # (B, W child, W parent)
        mb, mchild = np.nonzero(same.any(axis=2))
        mparent = same[mb, mchild].argmax(axis=1)
        mc = last[mb, mchild] - 1
        stay_char[mb, mchild] = np.logaddexp(stay_char[mb, mchild], grow[mb, mparent, mc])
        grow[mb, mparent, mc] = -np.inf
        # Candidates: the W prefixes kept as they are, then the W * K extensions.
        scores = np.concatenate([np.logaddexp(stay_blank, stay_char), grow.reshape(batch, -1)], 1)
        top = np.argpartition(scores, -width, axis=1)[:, -width:]
        top_scores = np.take_along_axis(scores, top, axis=1)
        grown = top >= width
        source = np.where(grown, (top - width) // (classes - 1), top)
        new_node = node[rows, source]
        gb, gw = np.nonzero(grown & np.isfinite(top_scores))
        new_node[gb, gw] = tree.extend(new_node[gb, gw], (top[gb, gw] - width) % (classes - 1) + 1)
        dead = ~np.isfinite(top_scores)
        node = np.where(dead, -1, new_node)
        lp_blank = np.where(grown | dead, -np.inf, np.take_along_axis(stay_blank, source, 1))
        lp_char = np.where(dead, -np.inf,
                           np.where(grown, top_scores, np.take_along_axis(stay_char, source, 1)))
    total = np.where(node >= 0, np.logaddexp(lp_blank, lp_char), -np.inf)
    if end_scores is not None:
        total = total + end_scores[tree.state[np.maximum(node, 0)]]
    if final is not None:
        ending = np.where(final[tree.state[np.maximum(node, 0)]], total, -np.inf)
        # Prefer an entry that may end here; with none, the best is cut back.
        total = np.where(np.isfinite(ending).any(axis=1, keepdims=True), ending, total)
    best = node[np.arange(batch), total.argmax(axis=1)]
    return [tree.labelling(int(n), final) for n in best]


def beam_results(log_probs, lengths, width, charset, *automaton) -> list[tuple]:
    """Beam-search each sample; pair its text with the exact p(text | x)."""
    best = prefix_beam_search(log_probs, lengths, width, *automaton)
    label_length = np.array([len(ids) for ids in best], np.int64)
    labels = np.zeros((len(best), int(label_length.max(initial=0))), np.int64)
    for row, ids in zip(labels, best):
        row[:len(ids)] = ids
    confidences = _forward(np.exp(log_probs), lengths, labels, label_length)
    return [(labels_or_text(ids, charset), float(conf)) for ids, conf in zip(best, confidences)]


def beam_search_decode(logits, lengths, charset=None, *, beam_width: int = 16) -> list[tuple]:
    """CTC prefix beam search: the labelling whose summed path probability is highest in the beam.

    Args:
        logits: (B, T, K+1) unnormalised scores, class 0 the blank.
        lengths: (B,) true output lengths.
        charset: optional object with ``decode(ids) -> str``.
        beam_width: prefixes kept per step.

    Returns:
        One ``(text, confidence)`` per sample; confidence is the exact ``p(text | x)``.
    """
    if beam_width < 1:
        raise ValueError(f"beam_width must be at least 1, got {beam_width}")
    log_probs, lengths = log_probabilities(logits, lengths)
    return beam_results(log_probs, lengths, beam_width, charset)
