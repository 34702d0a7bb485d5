"""Character and word error rates, by rapidfuzz's Levenshtein distance."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

from mdrnn.datasets.charset import TOKEN_SEPARATOR


@dataclass(frozen=True)
class ErrorRates:
    """Edit-distance totals over a set of lines; rates are totals over reference sizes."""

    char_errors: int
    chars: int
    word_errors: int
    words: int
    lines_correct: int
    lines: int

    @property
    def cer(self) -> float:
        return self.char_errors / max(self.chars, 1)

    @property
    def wer(self) -> float:
        return self.word_errors / max(self.words, 1)

    @property
    def line_accuracy(self) -> float:
        return self.lines_correct / max(self.lines, 1)

    def as_dict(self) -> dict:
        return {"cer": self.cer, "wer": self.wer, "line_accuracy": self.line_accuracy,
                "chars": self.chars, "words": self.words, "lines": self.lines}


def _symbols(text: str | Sequence[str]) -> Sequence[str]:
    # Shape-label transcriptions (IFN/ENIT) are tuples of tokens: compare token by token.
    return text if isinstance(text, str) else tuple(text)


def _words(text: str | Sequence[str]) -> list[str]:
    return text.split() if isinstance(text, str) else [TOKEN_SEPARATOR.join(text)]


def line_errors(reference: str | Sequence[str], hypothesis: str | Sequence[str]) -> tuple[int, int]:
    """(character errors, word errors) of one line."""
    ref, hyp = _symbols(reference), _symbols(hypothesis)
    return (Levenshtein.distance(ref, hyp),
            Levenshtein.distance(_words(reference), _words(hypothesis)))


def error_rates(references: Iterable, hypotheses: Iterable) -> ErrorRates:
    """CER, WER and line accuracy of hypotheses against references, line by line."""
    totals = [0, 0, 0, 0, 0, 0]
    for ref, hyp in zip(references, hypotheses, strict=True):
        char_errors, word_errors = line_errors(ref, hyp)
        for i, value in enumerate((char_errors, len(_symbols(ref)), word_errors,
                                   len(_words(ref)), char_errors == 0, 1)):
            totals[i] += int(value)
    return ErrorRates(*totals)


def confusions(pairs: Iterable[tuple], top: int = 10) -> list[tuple[str, str, int]]:
    """The most frequent character errors over (reference, hypothesis) pairs.

    Each edit of an optimal alignment counts once: a substitution as (truth, read), a
    deletion as (truth, ""), an insertion as ("", read).

    Returns:
        Up to `top` (truth, read, count), most frequent first, ties in symbol order.
    """
    counts: dict[tuple[str, str], int] = {}
    for reference, hypothesis in pairs:
        ref, hyp = _symbols(reference), _symbols(hypothesis)
        for op in Levenshtein.editops(ref, hyp):
            key = (ref[op.src_pos] if op.tag != "insert" else "",
                   hyp[op.dest_pos] if op.tag != "delete" else "")
            counts[key] = counts.get(key, 0) + 1
    return sorted(((a, b, n) for (a, b), n in counts.items()), key=lambda x: (-x[2], x[:2]))[:top]
