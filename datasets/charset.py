"""Alphabet <-> label ids for CTC: blank is 0, the K symbols are 1..K.

A *symbol* is what the model emits in one CTC step. Two kinds of text exist:

- a ``str``: normalised to NFC, then every Unicode code point is one symbol.
  NFC composes a letter and its accent where Unicode has a precomposed form
  ("e" + U+0301 becomes "é", one symbol). A combining mark without a precomposed
  form (Arabic shadda or harakat, most marks on Latin letters beyond Latin-1) stays
  a symbol of its own, emitted after its base letter. Code points rather than
  grapheme clusters keep the alphabet small (an Arabic letter with every possible
  mark would otherwise be a class of its own) and follow what kraken and PyLaia do.
  Text is kept in logical (reading) order, as it is stored in files: no bidi
  reordering happens here.
- a sequence of tokens (``tuple``/``list`` of ``str``): every token is one symbol,
  e.g. the IFN/ENIT character-shape labels ``("saB", "yaM", "aaE")``. Decoding such
  a charset joins the symbols with ``separator`` ("|" by default, the IFN/ENIT
  convention), so a whole decoded word stays one whitespace-free "word".
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

from mdrnn.errors import InputError

BLANK = 0
UNKNOWN_POLICIES = ("error", "skip", "replace")
TOKEN_SEPARATOR = "|"

Text = str | Sequence[str]


def _describe(symbol: str) -> str:
    """Show a symbol so that invisible and combining characters are recognisable."""
    if len(symbol) != 1:
        return repr(symbol)
    # A lone combining mark or control character would be invisible or garble the line.
    shown = ascii(symbol) if unicodedata.category(symbol)[0] in "MCZ" else repr(symbol)
    return f"{shown} (U+{ord(symbol):04X} {unicodedata.name(symbol, 'unnamed')})"


class Charset:
    """Maps symbols to label ids 1..K, with id 0 reserved for the CTC blank.

    Args:
        symbols: the K symbols, in id order (the first gets id 1). Each is a
            non-empty NFC string; a multi-character string is a token symbol.
        separator: inserted between symbols by `decode` ("" for ordinary text).
        replacement: a symbol (one of `symbols`) that stands for unknown
            characters under ``encode(..., unknown="replace")``; None disables it.

    Example:
        >>> cs = Charset.from_texts(["abc", "cab"])
        >>> cs.encode("cab"), cs.decode([3, 1, 2]), cs.num_outputs
        ([3, 1, 2], 'cab', 4)
    """

    def __init__(self, symbols: Sequence[str], *, separator: str = "",
                 replacement: str | None = None):
        symbols = tuple(symbols)
        for symbol in symbols:
            if not isinstance(symbol, str) or not symbol:
                raise ValueError(f"charset symbols must be non-empty strings, got {symbol!r}")
            if unicodedata.normalize("NFC", symbol) != symbol:
                raise ValueError(f"charset symbol {symbol!r} is not in NFC normal form")
        if len(set(symbols)) != len(symbols):
            duplicates = sorted({s for s in symbols if symbols.count(s) > 1})
            raise ValueError(f"charset symbols repeat: {duplicates}")
        if not isinstance(separator, str):
            raise ValueError(f"separator must be a string, got {separator!r}")
        if replacement is not None and replacement not in symbols:
            raise ValueError(f"replacement {replacement!r} is not one of the symbols")
        self._symbols = symbols
        self._ids = {symbol: i + 1 for i, symbol in enumerate(symbols)}
        self.separator = separator
        self.replacement = replacement

    @classmethod
    def from_texts(cls, texts: Iterable[Text], *, separator: str | None = None,
                   replacement: str | None = None) -> Charset:
        """Build the charset of every symbol that occurs in `texts`, sorted.

        Args:
            texts: strings and/or token sequences (see the module docstring).
            separator: for `decode`; by default "" when every text is a string
                and "|" when any text is a token sequence.
            replacement: a symbol for unknown characters, added to the charset
                when it does not occur in the texts.
        """
        found: set[str] = set()
        any_tokens = False
        for text in texts:
            any_tokens = any_tokens or not isinstance(text, str)
            found.update(split_symbols(text))
        if replacement is not None:
            found.add(unicodedata.normalize("NFC", replacement))
        if separator is None:
            separator = TOKEN_SEPARATOR if any_tokens else ""
        # Sorted, so that the same texts in any order give the same ids.
        return cls(sorted(found), separator=separator, replacement=replacement)

    def extended(self, texts: Iterable[Text]) -> Charset:
        """This charset with the symbols of `texts` that it lacks added after its own.

        The existing symbols keep their ids, so a trained model's output rows stay
        valid when new rows are appended for the new symbols (fine-tuning).
        """
        new = {s for text in texts for s in split_symbols(text)} - set(self._symbols)
        return Charset(self._symbols + tuple(sorted(new)), separator=self.separator,
                       replacement=self.replacement)

    @property
    def symbols(self) -> tuple[str, ...]:
        """The K symbols; symbol ``symbols[i]`` has id ``i + 1``."""
        return self._symbols

    @property
    def num_outputs(self) -> int:
        """Number of model outputs: the K symbols plus the blank (``num_classes``,
        as `mdrnn.models.build_model` takes it, is K)."""
        return len(self._symbols) + 1

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._ids

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Charset) and self.to_config() == other.to_config()

    def __hash__(self) -> int:
        return hash((self._symbols, self.separator, self.replacement))

    def __repr__(self) -> str:
        return f"Charset({len(self._symbols)} symbols, separator={self.separator!r})"

    def unknown_symbols(self, text: Text) -> list[str]:
        """The distinct symbols of `text` that this charset cannot emit, in order of appearance."""
        return list(dict.fromkeys(s for s in split_symbols(text) if s not in self._ids))

    def encode(self, text: Text, unknown: str = "error", *, name: str | None = None) -> list[int]:
        """Turn a text (or token sequence) into label ids 1..K.

        Args:
            text: a string (NFC code points) or a sequence of symbol tokens.
            unknown: what to do with symbols not in the charset: "error" raises
                InputError listing them, "skip" drops them, "replace" maps them
                to the `replacement` symbol.
            name: the sample or file the text belongs to, for the error message.

        Raises:
            InputError: unknown symbols under ``unknown="error"``.
        """
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
        if unknown == "replace" and self.replacement is None:
            raise ValueError("unknown='replace' needs a charset built with a replacement symbol")
        symbols = split_symbols(text)
        missing = [s for s in dict.fromkeys(symbols) if s not in self._ids]
        if missing and unknown == "error":
            where = f"{name}: " if name else ""
            listed = ", ".join(_describe(s) for s in missing)
            raise InputError(f"{where}text has symbols the model cannot emit: {listed}")
        fallback = self._ids.get(self.replacement) if unknown == "replace" else None
        ids = (self._ids.get(s, fallback) for s in symbols)
        return [i for i in ids if i is not None]

    def decode_symbols(self, ids: Iterable[int]) -> list[str]:
        """Map label ids to symbols; blanks (0) are dropped, no CTC collapsing happens here."""
        out = []
        for i in ids:
            i = int(i)
            if i == BLANK:
                continue
            if not 0 < i <= len(self._symbols):
                raise ValueError(f"label id {i} is outside 0..{len(self._symbols)}")
            out.append(self._symbols[i - 1])
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """Map label ids to text: symbols joined by `separator`, NFC-normalised."""
        return unicodedata.normalize("NFC", self.separator.join(self.decode_symbols(ids)))

    def to_config(self) -> dict:
        """A JSON-able description, stored inside the model file."""
        return {"symbols": list(self._symbols), "separator": self.separator,
                "replacement": self.replacement}

    @classmethod
    def from_config(cls, config: dict) -> Charset:
        """Rebuild a charset from `to_config` output."""
        unknown = set(config) - {"symbols", "separator", "replacement"}
        if unknown or "symbols" not in config:
            raise ValueError(f"not a charset config (keys {sorted(config)})")
        return cls(config["symbols"], separator=config.get("separator", ""),
                   replacement=config.get("replacement"))


def split_symbols(text: Text) -> list[str]:
    """Split a text into the symbols a model emits: NFC code points, or the given tokens.

    Args:
        text: a string, or a sequence of token strings (each NFC-normalised).
    """
    if isinstance(text, str):
        return list(unicodedata.normalize("NFC", text))
    tokens = list(text)
    for token in tokens:
        if not isinstance(token, str) or not token:
            raise ValueError(f"symbol tokens must be non-empty strings, got {token!r}")
    return [unicodedata.normalize("NFC", token) for token in tokens]
