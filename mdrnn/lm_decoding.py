"""CTC beam search with an n-gram language model: the settings, the decoders, the stored LM.

Two decoders do it. A character LM is decoded by default with the exact prefix
beam search of `mdrnn.decoding` over the LM compiled to an automaton
(`mdrnn.lm_automaton`: no extra needed once the model is built, and as accurate
and fast as flashlight-text's on the Copiste lines, benchmarks/RESULTS.md). A word
LM needs flashlight-text, or any LM with ``engine="flashlight"``.

flashlight-text (the decoder of wav2letter, torchaudio and PyLaia; a wheel with
KenLM inside, ``pip install "mdrnn[lm]"``) runs a CTC beam search in C++ that adds
``weight * log10 p_LM`` whenever a symbol is emitted and the end-of-line score at
the end; blanks and repeated frames score no LM term. A character LM is queried
for every symbol (``LexiconFreeDecoder``); a word LM for every completed word,
words being restricted to the LM's vocabulary (``LexiconDecoder`` over a trie of
the words' spellings). ``bonus`` is added for every word: for a character LM, for
each frame that reads a space (flashlight's silence score). An LM makes every
character cost its log-probability, so it tilts the search toward fewer
characters: ``blank_penalty``, subtracted from the blank's log-probability at
every frame (as icefall's decoders do), tilts it back.

The text is the best hypothesis's symbols; its confidence, as for the plain beam
search, is the exact ``p(text | x)`` from the network alone (`mdrnn.decoding`).
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mdrnn.decoding import BLANK, labelling_probability
from mdrnn.errors import InputError
from mdrnn.lm import EXTRA_HINT, SPACE, UNITS, lm_token, quiet_native_output, read_arpa

# flashlight's pruning: symbols tried per frame and the score margin below the best
# hypothesis beyond which hypotheses are dropped (chosen for speed: with all 137
# symbols of the Copiste model and a margin of 30, a first trial read 11 lines/s).
TOKENS_PER_STEP = 16
THRESHOLD = 15.0
MAX_WEIGHT = 10.0
ENGINES = ("auto", "prefix", "flashlight")
KENLM_MAX_ORDER = 6  # as flashlight-text's wheel is compiled


@dataclass(frozen=True)
class LanguageModel:
    """An n-gram LM file and how decoding weighs it.

    Args:
        path: the ARPA file.
        unit: "char" or "word", as the model was built (`mdrnn.lm.build_arpa`).
        weight: the LM's log-probability scale, 0..10.
        bonus: added per word (see the module docstring).
        blank_penalty: subtracted from the blank's log-probability per frame.
    """

    path: Path
    unit: str = "char"
    weight: float = 1.0
    bonus: float = 0.0
    blank_penalty: float = 0.0

    def __post_init__(self):
        if self.unit not in UNITS:
            raise ValueError(f"LM unit must be one of {UNITS}, got {self.unit!r}")
        if not 0 <= self.weight <= MAX_WEIGHT:
            raise ValueError(f"LM weight must lie in 0..{MAX_WEIGHT:g}, got {self.weight!r}")
        for name in ("bonus", "blank_penalty"):
            if not -MAX_WEIGHT <= getattr(self, name) <= MAX_WEIGHT:
                raise ValueError(f"{name.replace('_', ' ')} must lie in -{MAX_WEIGHT:g}.."
                                 f"{MAX_WEIGHT:g}, got {getattr(self, name)!r}")


def lm_decoder(lm: LanguageModel, symbols: tuple[str, ...], *, beam_width: int = 16,
               engine: str = "auto"):
    """A decoder with ``decode(logits, lengths) -> [(ids, p(text | x))]`` for the LM.

    Args:
        engine: "prefix" (`mdrnn.lm_automaton.PrefixLMDecoder`, character LMs),
            "flashlight" (`FlashlightDecoder`), or "auto": prefix for a character
            LM, flashlight for a word LM.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "prefix" or (engine == "auto" and lm.unit == "char"):
        from mdrnn.lm_automaton import PrefixLMDecoder

        return PrefixLMDecoder(lm, symbols, beam_width=beam_width)
    return FlashlightDecoder(lm, symbols, beam_width=beam_width)


def require_flashlight():
    """The flashlight-text decoder and dictionary modules; InputError when missing."""
    try:
        from flashlight.lib.text import decoder, dictionary
        from flashlight.lib.text.decoder.kenlm import KenLM
    except ImportError:
        raise InputError(f"decoding with a language model needs flashlight-text: "
                         f"{EXTRA_HINT}") from None
    return decoder, dictionary, KenLM


def attach_lm(model, arpa: bytes, lm: LanguageModel) -> None:
    """Store an LM (ARPA text) and its decoding settings in a recogniser's metadata,
    so that saving the model keeps them and `embedded_lm` gives them back."""
    meta = model.get_layer("metadata")
    meta.lm_arpa = gzip.compress(arpa, mtime=0)
    meta.language_model = {"unit": lm.unit, "weight": lm.weight, "bonus": lm.bonus,
                           "blank_penalty": lm.blank_penalty}


@contextlib.contextmanager
def embedded_lm(model):
    """Yield the LM stored in a recogniser, as a `LanguageModel` over a temporary ARPA
    file that lasts for the block, or None when the model has none."""
    meta = model.get_layer("metadata")
    settings, data = getattr(meta, "language_model", None), getattr(meta, "lm_arpa", None)
    if not settings or data is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="mdrnn-lm-") as tmp:
        path = Path(tmp, "lm.arpa")
        path.write_bytes(gzip.decompress(data))
        yield LanguageModel(path, settings["unit"], settings["weight"], settings["bonus"],
                            settings.get("blank_penalty", 0.0))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax as contiguous float32, what the decoder reads."""
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return np.ascontiguousarray(out, dtype=np.float32)


class FlashlightDecoder:
    """Decode CTC logits with a language model.

    Args:
        lm: the language model and its weights.
        symbols: the charset's K symbols in id order (symbol i is class i + 1).
        beam_width: hypotheses kept per frame.

    Raises:
        InputError: flashlight-text is missing, or the LM file is unreadable,
            malformed, or does not cover the symbols (a character LM must know
            every symbol; a word LM needs the space and at least one word).
    """

    def __init__(self, lm: LanguageModel, symbols: tuple[str, ...], *, beam_width: int = 16):
        decoder, dictionary, self._kenlm_class = require_flashlight()
        arpa = read_arpa(lm.path)
        if arpa.order > KENLM_MAX_ORDER:
            raise InputError(f"{lm.path}: a {arpa.order}-gram model; flashlight-text's KenLM "
                             f"reads orders up to {KENLM_MAX_ORDER} (the prefix decoder reads "
                             f"any)")
        self.lm, self.symbols = lm, symbols
        tokens = ["<blank>"] + [lm_token(s) for s in symbols]
        space = tokens.index(SPACE) if SPACE in tokens else -1
        options = dict(beam_size=beam_width, beam_size_token=min(TOKENS_PER_STEP, len(tokens)),
                       beam_threshold=THRESHOLD, lm_weight=lm.weight, sil_score=lm.bonus,
                       log_add=False, criterion_type=decoder.CriterionType.CTC)
        if lm.unit == "char":
            missing = [s for s, t in zip(symbols, tokens[1:]) if t not in arpa.vocabulary]
            if missing:
                raise InputError(f"{lm.path}: the character LM lacks {len(missing)} of the "
                                 f"model's symbols: {''.join(missing[:20])!r}")
            self._kenlm = self._load_kenlm(dictionary.Dictionary(tokens))
            self._decoder = decoder.LexiconFreeDecoder(
                decoder.LexiconFreeDecoderOptions(**options), self._kenlm, space, BLANK, [])
        else:
            if space < 0:
                raise InputError(f"{lm.path}: a word LM needs a model that reads spaces")
            self._decoder, self._kenlm = self._word_decoder(arpa, tokens, space, options,
                                                            decoder, dictionary)

    def _load_kenlm(self, tokens):
        try:
            with quiet_native_output():
                return self._kenlm_class(str(self.lm.path), tokens)
        except RuntimeError as error:
            reason = " ".join(str(error).split())[:200]
            raise InputError(f"{self.lm.path}: KenLM cannot read it ({reason})") from None

    def _word_decoder(self, arpa, tokens, space, options, decoder, dictionary):
        ids = {s: i + 1 for i, s in enumerate(self.symbols)}
        words = sorted(w for w in arpa.vocabulary if w not in ("<s>", "</s>", "<unk>", "<UNK>")
                       and all(c in ids for c in w))
        if not words:
            raise InputError(f"{self.lm.path}: no word of the LM can be spelled with the "
                             f"model's symbols")
        word_dict = dictionary.Dictionary(words + ["<unk>"])
        kenlm = self._load_kenlm(word_dict)
        trie = decoder.Trie(len(tokens), space)
        start = kenlm.start(False)
        for index, word in enumerate(words):
            trie.insert([ids[c] for c in word], index, kenlm.score(start, index)[1])
        trie.smear(decoder.SmearingMode.MAX)
        options = {**options, "word_score": self.lm.bonus, "unk_score": float("-inf"),
                   "sil_score": 0.0}
        word_decoder = decoder.LexiconDecoder(decoder.LexiconDecoderOptions(**options), trie,
                                              kenlm, space, BLANK, len(words), [], False)
        return word_decoder, kenlm

    def best_labels(self, log_probs: np.ndarray) -> tuple[int, ...]:
        """The best labelling of one line's (T, K+1) float32 log-probabilities."""
        frames = log_probs.shape[0]
        if frames == 0:
            return ()
        result = self._decoder.decode(log_probs.ctypes.data, frames, log_probs.shape[1])[0]
        # The hypothesis holds one token per frame between a start and an end state.
        path = list(result.tokens)[1:frames + 1]
        labels = [k for k, _ in itertools.groupby(path) if k != BLANK]
        # The search starts from a silence state; a word LM may end on one.
        return tuple(labels)

    def decode(self, logits, lengths) -> list[tuple[tuple[int, ...], float]]:
        """One ``(label ids, p(text | x))`` per line of a padded batch (B, T, K+1)."""
        logits, lengths = np.asarray(logits), np.asarray(lengths).astype(np.int64)
        best = []
        for row, n in zip(logits, lengths):
            log_probs = log_softmax(row[:n])
            log_probs[:, BLANK] -= self.lm.blank_penalty
            best.append(self.best_labels(log_probs))
        cap = max((len(ids) for ids in best), default=0)
        labels = np.zeros((len(best), max(cap, 1)), np.int64)
        for row, ids in zip(labels, best):
            row[:len(ids)] = ids
        confidence = labelling_probability(logits, lengths, labels, [len(ids) for ids in best])
        return [(ids, float(p)) for ids, p in zip(best, confidence)]
