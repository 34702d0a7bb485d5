"""N-gram language models for CTC decoding: built from transcriptions, stored as ARPA text.

A *character* LM (the default) treats every charset symbol as one LM word, the
space spelled ``<space>``; a *word* LM has the words of the text (split at
spaces). Models are estimated with modified Kneser-Ney smoothing (three discounts
per order) by the VariKN toolkit (the ``varikn`` wheel, BSD licence; ``pip install
"mdrnn[lm]"``), which also prunes n-grams that add little (``prune``: VariKN's
data-cost scale; smaller keeps more). VariKN separates ARPA fields by spaces, which
KenLM (used for decoding, `mdrnn.lm_decoding`) does not read, and its pruning
may drop an n-gram while keeping a longer one that contains it, which KenLM's
hash tables do not expect; so the model is rewritten with tabs, as the ARPA
format has them, and with those n-grams restored at the probabilities the model
gives them (the model is unchanged).

Example:
    >>> arpa = build_arpa(["le chat", "la chatte"], order=4)
    >>> arpa.count(b"ngram ")  # the header: one count per order
    4
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mdrnn.errors import InputError

log = logging.getLogger(__name__)

UNITS = ("char", "word")
SPACE = "<space>"
RESERVED = ("<s>", "</s>", "<unk>", "<UNK>")
EXTRA_HINT = 'install the language model extra: pip install "mdrnn[lm]"'


@contextlib.contextmanager
def quiet_native_output():
    """Silence what C++ code writes to stdout and stderr (VariKN's and KenLM's progress)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def lm_token(symbol: str) -> str:
    """The LM word for a charset symbol: itself, ``<space>`` for a space, and
    ``<U+XXXX>`` codes for symbols that hold whitespace or clash with ARPA's markers."""
    if symbol == " ":
        return SPACE
    if symbol in RESERVED or symbol == SPACE or any(c.isspace() for c in symbol):
        return "<" + "+".join(f"U+{ord(c):04X}" for c in symbol) + ">"
    return symbol


def lm_words(text: str | Sequence[str], unit: str) -> list[str]:
    """A transcription as LM words: one per symbol (char) or per space-separated word."""
    if unit == "word":
        return (text if isinstance(text, str) else " ".join(text)).split()
    return [lm_token(symbol) for symbol in text]


@dataclass(frozen=True)
class Arpa:
    """What a decoder must know of an ARPA file: its order, n-gram counts and unigrams."""

    path: Path
    order: int
    counts: tuple[int, ...]
    vocabulary: frozenset[str]


def read_arpa(path: str | Path) -> Arpa:
    """Check an ARPA file's structure and read its header and unigrams.

    Raises:
        InputError: naming the file (and line) when it is missing, not UTF-8
            ARPA text, or its sections disagree with its header.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such language model file")
    counts: dict[int, int] = {}
    found: dict[int, int] = {}
    vocabulary = set()
    section = None  # None: before \data\; 0: the header; n: the n-grams
    ended = False
    try:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                line = line.strip()
                if not line:
                    continue
                if section is None:
                    if line == "\\data\\":
                        section = 0
                    continue
                if line == "\\end\\":
                    ended = True
                    break
                if line.startswith("\\") and line.endswith("-grams:"):
                    section = _int(line[1:-7], path, number)
                    found[section] = 0
                elif section == 0:
                    if not line.startswith("ngram ") or "=" not in line:
                        raise InputError(f"{path}: line {number}: expected 'ngram N=COUNT'")
                    n, count = line[6:].split("=", 1)
                    counts[_int(n, path, number)] = _int(count, path, number)
                else:
                    fields = line.split("\t") if "\t" in line else line.split()
                    if len(fields) < 2:
                        raise InputError(f"{path}: line {number}: not an n-gram entry")
                    found[section] += 1
                    if section == 1:
                        vocabulary.add(fields[1].strip())
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise InputError(f"{path}: unreadable language model ({error})") from None
    if section is None or not counts:
        raise InputError(f"{path}: not an ARPA language model (no \\data\\ header)")
    if not ended:
        raise InputError(f"{path}: truncated language model (no \\end\\ line)")
    if found != counts:
        raise InputError(f"{path}: the header announces n-grams {counts}, the file holds "
                         f"{found}")
    order = max(counts)
    return Arpa(path, order, tuple(counts[n] for n in range(1, order + 1)),
                frozenset(vocabulary))


def _int(text: str, path: Path, number: int) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InputError(f"{path}: line {number}: {text.strip()!r} is not a number") from None


def require_varikn():
    """The varikn module; InputError naming the extra when it is not installed."""
    try:
        import varikn
    except ImportError:
        raise InputError(f"building a language model needs VariKN: {EXTRA_HINT}") from None
    return varikn


def build_arpa(texts: Iterable[str | Sequence[str]], *, order: int = 6, unit: str = "char",
               prune: float = 0.01, symbols: Iterable[str] = ()) -> bytes:
    """Estimate a Kneser-Ney n-gram model of transcriptions; return it as ARPA text.

    Args:
        texts: the transcriptions, one line each (str, or a token sequence).
        order: the longest n-gram.
        unit: "char" (each symbol a word, spaces as ``<space>``) or "word".
        prune: VariKN's data-cost scale: n-grams that gain less are left out.
        symbols: (char unit) symbols the model must know, such as a recogniser's
            charset: those the texts lack become unigrams with the probability of
            ``<UNK>``, which is what KenLM gives any unknown word (a model fine-tuned
            on a few lines reads symbols its new texts never show).

    Raises:
        InputError: no usable text, or the ``lm`` extra is not installed.
        ValueError: an option out of range.
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= 20:
        raise ValueError(f"order must be an integer in 1..20, got {order!r}")
    if not prune > 0:
        raise ValueError(f"prune must be positive, got {prune!r}")
    varikn = require_varikn()
    with tempfile.TemporaryDirectory(prefix="mdrnn-lm-") as tmp:
        corpus, lines = Path(tmp, "corpus.txt"), 0
        with open(corpus, "w", encoding="utf-8") as stream:
            for text in texts:
                words = lm_words(text, unit)
                if words:
                    stream.write("<s> " + " ".join(words) + " </s>\n")
                    lines += 1
        if not lines:
            raise InputError("no text to build a language model from")
        raw = Path(tmp, "raw.arpa")
        with quiet_native_output():
            trainer = varikn.VarigramTrainer(True, False)  # modified KN: three discounts
            trainer.set_datacost_scale(prune)
            trainer.set_max_order(order)
            # corpus, hash size, held-out lines, lines used, optimisation set, history
            # reset symbol, small vocabulary, vocabulary file
            trainer.initialize(str(corpus), 1_000_000, 0, 0, "", "<s>", False, "")
            trainer.grow(1)
            trainer.write_file(str(raw), True)
        grams = read_ngrams(raw)
        _complete(grams)
        if unit == "char" and symbols:
            unknown = grams[1].get(("<UNK>",), [min(v[0] for v in grams[1].values())])[0]
            for symbol in symbols:
                grams[1].setdefault((lm_token(symbol),), [unknown, 0.0])
        final = Path(tmp, "lm.arpa")
        _write_arpa(grams, final)
        log.info("%s %d-gram model of %d lines", unit, order, lines)
        return final.read_bytes()


def read_ngrams(path: Path) -> list[dict[tuple[str, ...], list[float]]]:
    """An ARPA file's n-grams, one dict per order (index 0 empty): words -> [log10 p,
    log10 backoff]; fields separated by tabs or spaces."""
    grams: list[dict] = [{}]
    order = 0
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            entry = line.strip()
            if entry.startswith("\\") and entry.endswith("-grams:"):
                order = int(entry[1:entry.index("-")])
                grams += [{} for _ in range(order + 1 - len(grams))]
            elif entry.startswith("\\"):
                order = 0
            elif order and entry:
                fields = entry.split()
                backoff = float(fields[1 + order]) if len(fields) > 1 + order else 0.0
                grams[order][tuple(fields[1:1 + order])] = [float(fields[0]), backoff]
    return grams


def _complete(grams: list[dict]) -> None:
    """Add the lower-order n-grams that VariKN's pruning removed while keeping longer
    ones that contain them (KenLM needs every n-gram's prefix and suffix), each with
    the probability the model gives it by backing off and a backoff weight of 1, so
    that the model's probabilities stay exactly the same."""

    def log_p(words: tuple[str, ...]) -> float:
        n = len(words)
        if words in grams[n]:
            return grams[n][words][0]
        context = grams[n - 1].get(words[:-1])
        return (context[1] if context else 0.0) + log_p(words[1:])

    for n in range(len(grams) - 1, 1, -1):
        for words in list(grams[n]):
            for part in (words[:-1], words[1:]):
                if part not in grams[n - 1]:
                    grams[n - 1][part] = [log_p(part), 0.0]


def _write_arpa(grams: list[dict], path: Path) -> None:
    """Write n-grams as ARPA text with tab-separated fields, as KenLM reads it."""
    with open(path, "w", encoding="utf-8") as out:
        out.write("\\data\\\n")
        for n in range(1, len(grams)):
            out.write(f"ngram {n}={len(grams[n])}\n")
        for n in range(1, len(grams)):
            out.write(f"\n\\{n}-grams:\n")
            for words, (log_p, backoff) in sorted(grams[n].items()):
                tail = f"\t{backoff:.6g}" if n < len(grams) - 1 else ""
                out.write(f"{log_p:.6g}\t{' '.join(words)}{tail}\n")
        out.write("\n\\end\\\n")
