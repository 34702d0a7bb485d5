"""A character n-gram LM as a weighted automaton for the exact prefix beam search.

The fallback of `mdrnn.lm_decoding` when flashlight-text is not installed, and
the second implementation it is compared with (benchmarks/lm_decoding.py). A
backoff n-gram model is compiled into a deterministic automaton over the charset:
one state per context the ARPA file holds (its n-grams shorter than the order),
``next[state, c]`` the longest held suffix of ``context + c``, and
``score[state, c] = log10 p(c | context)`` with backoff, as KenLM computes it.
`mdrnn.decoding`'s prefix beam search then adds ``weight * score`` whenever a
prefix grows, and the end-of-line score at the end.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from mdrnn.decoding import BLANK, labelling_probability, log_probabilities, prefix_beam_search
from mdrnn.errors import InputError
from mdrnn.lm import SPACE, lm_token, read_arpa, read_ngrams

UNKNOWN = -99.0  # log10 p of a word the model does not know (ARPA's convention)


def compile_ngrams(grams: list[dict], tokens: list[str]) -> tuple[np.ndarray, ...]:
    """Compile n-grams (`read_ngrams`) over LM words into tables over label ids.

    Args:
        grams: per order, words -> [log10 p, log10 backoff].
        tokens: the LM word of each label id 0..K (id 0, the blank, is never scored).

    Returns:
        next (S, K+1) int32 next states, score (S, K+1) and end (S,) float64
        log10 probabilities (as KenLM scores, so that LM weights mean the same
        with either decoder); state 0 is the start of a line (``<s>``).
    """
    order = len(grams) - 1
    column = {token: i for i, token in enumerate(tokens) if i != BLANK}
    # Shorter contexts first, so that each one's backoff parent is done before it.
    contexts = [()] + sorted((w for n in range(1, order) for w in grams[n]),
                             key=lambda w: (len(w), w))
    state_of = {context: i for i, context in enumerate(contexts)}
    if ("<s>",) in state_of:  # state 0 is where a line starts
        state_of[()], state_of[("<s>",)] = state_of[("<s>",)], 0
    children: dict[tuple, list] = {}
    for n in range(1, order + 1):
        for words, (log_p, _) in grams[n].items():
            children.setdefault(words[:-1], []).append((words[-1], log_p))
    size = (len(contexts), len(tokens))
    score, nxt = np.full(size, UNKNOWN), np.zeros(size, np.int32)
    end = np.full(len(contexts), UNKNOWN)
    for context in contexts:
        index = state_of[context]
        if context:  # back off: the shorter context's values, times this one's backoff
            shorter = context[1:]
            while shorter not in state_of:  # the longest held suffix
                shorter = shorter[1:]
            parent = state_of[shorter]
            backoff = grams[len(context)][context][1]
            score[index], end[index] = score[parent] + backoff, end[parent] + backoff
            nxt[index] = nxt[parent]
        for word, log_p in children.get(context, ()):
            if word == "</s>":
                end[index] = log_p
            elif word in column:
                score[index, column[word]] = log_p
                if context + (word,) in state_of:
                    nxt[index, column[word]] = state_of[context + (word,)]
    return nxt, score, end


@functools.lru_cache(maxsize=4)
def _compiled(path: str, mtime_ns: int, size: int, tokens: tuple[str, ...]):
    """The LM file's unigram vocabulary and automaton, read and compiled once per file
    version and symbol set (tuning builds a decoder for every weight it tries)."""
    arpa = read_arpa(path)
    return (arpa.vocabulary, *compile_ngrams(read_ngrams(Path(path)), list(tokens)))


class PrefixLMDecoder:
    """The exact CTC prefix beam search of `mdrnn.decoding` with a character n-gram LM.

    Same interface as `mdrnn.lm_decoding.FlashlightDecoder`; `lm.bonus` is added
    per space read.

    Raises:
        InputError: the LM file is unreadable or malformed, a word LM, or one that
            does not cover the symbols.
    """

    def __init__(self, lm, symbols: tuple[str, ...], *, beam_width: int = 16):
        if lm.unit != "char":
            raise InputError(f"{lm.path}: word LMs need flashlight-text")
        tokens = ("<blank>", *(lm_token(s) for s in symbols))
        if not Path(lm.path).is_file():
            raise InputError(f"{lm.path}: no such language model file")
        stat = Path(lm.path).stat()
        vocabulary, self.next, score, end = _compiled(str(lm.path), stat.st_mtime_ns,
                                                      stat.st_size, tokens)
        missing = [s for s, t in zip(symbols, tokens[1:]) if t not in vocabulary]
        if missing:
            raise InputError(f"{lm.path}: the character LM lacks {len(missing)} of the "
                             f"model's symbols: {''.join(missing[:20])!r}")
        self.lm, self.beam_width = lm, beam_width
        self.score, self.end = lm.weight * score, lm.weight * end
        if SPACE in tokens:
            self.score[:, tokens.index(SPACE)] += lm.bonus

    def decode(self, logits, lengths) -> list[tuple[tuple[int, ...], float]]:
        """One ``(label ids, p(text | x))`` per line of a padded batch (B, T, K+1)."""
        log_probs, lengths = log_probabilities(logits, lengths)
        frames = np.arange(log_probs.shape[1])[None, :] < lengths[:, None]
        log_probs[..., BLANK] -= np.where(frames, self.lm.blank_penalty, 0.0)
        best = prefix_beam_search(log_probs, lengths, self.beam_width, self.next, None,
                                  self.score, self.end)
        labels = np.zeros((len(best), max(1, max(map(len, best), default=0))), np.int64)
        for row, ids in zip(labels, best):
            row[:len(ids)] = ids
        confidence = labelling_probability(logits, lengths, labels, [len(ids) for ids in best])
        return [(ids, float(p)) for ids, p in zip(best, confidence)]
