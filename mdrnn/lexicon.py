"""Lexicon-constrained CTC decoding: the best word of a list, or lines of listed words.

Words are scored exactly, by one forward pass over a prefix trie of the list;
lines run the prefix beam search of `mdrnn.decoding` restricted to sequences of
listed words. Confidences follow `mdrnn.decoding`: a word's posterior among the
entries, and a line's exact ``p(text | x)``.
"""

from __future__ import annotations

import logging
from numbers import Integral
from pathlib import Path

import numpy as np

from mdrnn.datasets.samples import read_text
from mdrnn.decoding import BLANK, beam_results, labels_or_text, log_probabilities
from mdrnn.errors import InputError

log = logging.getLogger(__name__)


class Lexicon:
    """A word list prepared for CTC decoding: label ids per entry and their prefix trie.

    Args:
        entries: words as strings or symbol-token sequences (encoded with
            `charset`), or as sequences of label ids 1..K. Repeated entries
            are kept once.
        charset: object with ``encode(text) -> ids``; needed for text entries.

    Attributes:
        entries: the entries as tuples of label ids, in the given order.
    """

    def __init__(self, entries, charset=None):
        unique: dict[tuple[int, ...], None] = {}
        for index, entry in enumerate(entries):
            if not isinstance(entry, str) and all(isinstance(i, Integral) for i in entry):
                ids = tuple(int(i) for i in entry)
            elif charset is None:
                raise ValueError(f"lexicon entry {index} ({entry!r}) is text: pass a charset")
            else:
                ids = tuple(int(i) for i in charset.encode(entry))
            if not ids or min(ids) < 1:
                raise InputError(f"lexicon entry {index} ({entry!r}) is empty or holds the blank")
            unique.setdefault(ids)
        if not unique:
            raise InputError("the lexicon has no entries")
        self.entries = tuple(unique)
        # The prefix trie: node 0 is the root (empty prefix); entries sharing a
        # prefix share its nodes, and so its work in the forward algorithm.
        parent, char, index = [-1], [BLANK], {}
        self.end_node = np.zeros(len(self.entries), np.int64)
        for word, ids in enumerate(self.entries):
            node = 0
            for c in ids:
                if (node, c) not in index:
                    index[node, c] = len(parent)
                    parent.append(node)
                    char.append(c)
                node = index[node, c]
            self.end_node[word] = node
        self.parent, self.char = np.array(parent), np.array(char)

    def line_automaton(self, separator: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
        """Automaton of lines ``word (separator word)*`` or empty: transitions (S, C), final (S,).

        States are the trie nodes (0, the root, is the start and the empty line),
        then one "after a separator" state that continues like the root but may
        not end a line. A transition of -1 is not allowed.
        """
        nodes = len(self.char)
        transitions = np.full((nodes + 1, classes), -1, np.int64)
        transitions[self.parent[1:], self.char[1:]] = np.arange(1, nodes)
        transitions[nodes] = transitions[0]
        transitions[self.end_node, separator] = nodes
        final = np.zeros(nodes + 1, bool)
        final[self.end_node] = True
        final[0] = True
        return transitions, final

    def _check_classes(self, classes: int) -> None:
        if self.char.max() >= classes:
            raise ValueError(f"the lexicon uses id {self.char.max()}, the logits have "
                             f"only {classes} classes")


def word_log_likelihoods(logits, lengths, lexicon: Lexicon) -> np.ndarray:
    """Exact CTC log-likelihood of every lexicon entry for every sample.

    The forward algorithm runs over the lexicon's prefix trie, so entries that
    share a prefix share its work, and in probabilities rescaled per step
    rather than in log space, which is faster.

    Args:
        logits: (B, T, K+1) unnormalised scores, class 0 the blank.
        lengths: (B,) true output lengths.
        lexicon: the entries to score.

    Returns:
        float64 (B, N): ``log p(entry | x)``; ``-inf`` for entries that cannot fit
        (or that are over ~1e300 times less likely than the sample's whole trie).
    """
    log_probs, lengths = log_probabilities(logits, lengths)
    lexicon._check_classes(log_probs.shape[2])
    probs = np.exp(log_probs)
    parent, char = lexicon.parent[1:], lexicon.char[1:]
    # A character equal to its parent's is entered only from the parent's blank.
    repeat = np.flatnonzero(char == lexicon.char[parent])
    batch, nodes = len(lengths), len(lexicon.char)
    # Per node: mass of the paths that read exactly its prefix and end in a blank /
    # in the node's character. Buffers are reused: the loop is memory-bound.
    on_blank = np.zeros((batch, nodes))
    on_blank[:, 0] = 1.0
    on_char, total = np.zeros((batch, nodes)), np.empty((batch, nodes))
    into, frame_char = np.empty((batch, nodes - 1)), np.empty((batch, nodes - 1))
    log_scale = np.zeros(batch)
    for t in range(int(lengths.max(initial=0))):
        frame = probs[:, t]
        np.add(on_blank, on_char, out=total)
        np.take(total, parent, axis=1, out=into)
        # max(0, .): the subtraction may round just below zero
        into[:, repeat] = np.maximum(into[:, repeat] - on_char[:, parent[repeat]], 0.0)
        np.multiply(total, frame[:, :1], out=on_blank)
        on_char[:, 1:] += into
        np.take(frame, char, axis=1, out=frame_char)
        on_char[:, 1:] *= frame_char
        # One scale per sample keeps the values near 1 without changing the
        # ratios between entries.
        scale = on_blank.sum(axis=1) + on_char.sum(axis=1)
        scale = np.where(scale > 0, scale, 1.0)
        on_blank /= scale[:, None]
        on_char /= scale[:, None]
        log_scale += np.log(scale)
    end = lexicon.end_node
    with np.errstate(divide="ignore"):
        return np.log(on_blank[:, end] + on_char[:, end]) + log_scale[:, None]


def lexicon_decode_word(logits, lengths, lexicon: Lexicon, charset=None) -> list[tuple]:
    """Pick, per sample, the lexicon entry with the highest exact CTC likelihood.

    Args:
        logits: (B, T, K+1) unnormalised scores, class 0 the blank.
        lengths: (B,) true output lengths.
        lexicon: the candidate words (e.g. the IFN/ENIT town names).
        charset: optional object with ``decode(ids) -> str``.

    Returns:
        One ``(text, confidence)`` per sample, confidence the entry's posterior
        among all entries; ``(empty text, 0.0)`` where no entry fits the output.
    """
    scores = word_log_likelihoods(logits, lengths, lexicon)
    results = []
    for row in scores:
        best = int(row.argmax())
        if not np.isfinite(row[best]):
            results.append((labels_or_text((), charset), 0.0))
            continue
        posterior = 1.0 / np.exp(row - row[best]).sum()
        results.append((labels_or_text(lexicon.entries[best], charset), float(posterior)))
    return results


def lexicon_decode_line(logits, lengths, lexicon: Lexicon, separator: int, charset=None, *,
                        beam_width: int = 16) -> list[tuple]:
    """Prefix beam search restricted to lexicon words joined by a separator.

    Lines read ``word (separator word)*`` or are empty. A line whose beam ends
    inside a word is cut back to its last complete word.

    Args:
        logits: (B, T, K+1) unnormalised scores, class 0 the blank.
        lengths: (B,) true output lengths.
        lexicon: the allowed words; none may contain the separator.
        separator: label id between words (e.g. the id of the space).
        charset: optional object with ``decode(ids) -> str``.
        beam_width: prefixes kept per step.

    Returns:
        One ``(text, confidence)`` per sample; confidence is the exact ``p(text | x)``.
    """
    if beam_width < 1:
        raise ValueError(f"beam_width must be at least 1, got {beam_width}")
    log_probs, lengths = log_probabilities(logits, lengths)
    classes = log_probs.shape[2]
    lexicon._check_classes(classes)
    if not 0 < separator < classes:
        raise ValueError(f"separator must be a label id in 1..{classes - 1}, got {separator}")
    with_separator = [i for i, ids in enumerate(lexicon.entries) if separator in ids]
    if with_separator:
        raise InputError(f"lexicon entry {with_separator[0]} ({lexicon.entries[with_separator[0]]})"
                         f" contains the separator id {separator}")
    transitions, final = lexicon.line_automaton(separator, classes)
    return beam_results(log_probs, lengths, beam_width, charset, transitions, final)


def read_lexicon(path: str | Path, charset, *, split_words: bool = False) -> Lexicon:
    """Read a word list (UTF-8, one entry per line) for the lexicon decoder.

    Runs of whitespace inside an entry become one space. For a token charset
    (a non-empty separator, e.g. IFN/ENIT shape labels) an entry is written as
    the recogniser prints it: its symbols joined by the separator. Entries that
    hold symbols the model cannot emit could never be chosen: they are left out
    with a warning.

    Args:
        path: the word list.
        charset: the model's charset.
        split_words: split entries at spaces into words (line mode joins words
            with spaces, so an entry may not contain one).

    Raises:
        InputError: the file is missing or unreadable, or no entry is usable.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such lexicon file")
    entries, unusable = {}, []
    for line in read_text(path).splitlines():
        words = line.split() if split_words else [" ".join(line.split())]
        for word in filter(None, words):
            entry = tuple(word.split(charset.separator)) if charset.separator else word
            if charset.unknown_symbols(entry):
                unusable.append(word)
            else:
                entries.setdefault(entry)
    if unusable:
        log.warning("%s: %d entries use symbols the model cannot emit and are left out "
                    "(first: %r)", path, len(unusable), unusable[0])
    if not entries:
        raise InputError(f"{path}: no usable lexicon entries")
    return Lexicon(list(entries), charset)
