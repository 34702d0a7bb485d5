"""Line recognition with a trained model: preprocessing, batching, forward pass, CTC decoding.

`Recognizer` applies the preprocessing stored in the model, batches lines, runs
the network and decodes its CTC output (greedy, beam search, or restricted to a
word list). Lines are sorted by width and cut into batches of `batch_size`, so a
batch holds lines of similar width and little of it is padding; each batch is
padded to a multiple of the model's total width subsampling (18 for graves2009).
The masked MDLSTM sees each line exactly as if it were alone, so batching never
changes a result.

The forward pass is one `tf.function` whose input signature leaves batch and
width free: it is traced once (about 3 s for graves2009) and then runs every
shape. ``xla=True`` compiles it with XLA instead, which compiles once per shape,
so batches are then padded to a few widths (a geometric series, at most 25%
padding) and always to `batch_size` rows. On a 2-core CPU that seldom pays
(benchmarks/transcribe_speed.py): once compiled, XLA ran digit-line jobs 1.0 to
1.8 times as fast as the traced graph (faster on narrow batches, slower on very
wide ones), but each shape took 5-50 s to compile, about 2 minutes for the 10
shapes of 2,000 lines, so it gains only on jobs of about 10^5 lines; it stays an
option for long jobs and accelerators (not measured here).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

import mdrnn.layers  # noqa: F401  (registers the custom layers for loading)
from mdrnn.alignment import align_texts
from mdrnn.datasets.charset import Charset
from mdrnn.decoding import beam_search_decode, greedy_decode
from mdrnn.errors import InputError
from mdrnn.lexicon import Lexicon, lexicon_decode_line, lexicon_decode_word, read_lexicon
from mdrnn.lm_decoding import LanguageModel, embedded_lm, lm_decoder
from mdrnn.models import load_model, metadata, padded_forward, width_multiple
from mdrnn.pipelines.preprocess import preprocess_line
from mdrnn.pipelines.preprocess_config import PreprocessConfig

DECODERS = ("greedy", "beam", "lexicon")
LEXICON_MODES = ("word", "line")
XLA_BUCKET_GROWTH = 1.25
WINDOW_BATCHES = 8
"""Jobs sort lines by width within windows of this many batches."""


def confidence_text(value: float, decimals: int) -> str:
    """A confidence for a file: clamped to [0, 1], with `decimals` decimals, or in
    scientific notation when that would round it to 0 (the exact p(text | x) of a
    long line can be 1e-8, and is still worth comparing)."""
    value = min(max(float(value), 0.0), 1.0)
    return f"{value:.{decimals}f}" if value == 0 or value >= 10 ** -decimals else f"{value:.3e}"


@dataclass(frozen=True)
class LineResult:
    """The text read in one line image.

    Args:
        text: the symbols joined by the charset's separator.
        confidence: in [0, 1]; its meaning depends on the decoder (see
            `mdrnn.decoding`): greedy, beam and lexicon lines, the exact
            probability of the whole text; lexicon words, the chosen entry's
            posterior among the entries.
        symbols: the emitted symbols, one per CTC label.
        char_confidences: one per symbol: its peak probability over the frames that
            read it (greedy: on the best path; other decoders: on the best alignment
            of their text, `mdrnn.alignment`).
        char_columns: per symbol, the columns [x0, x1) of the prepared line it was read
            from: from its first frame on the best alignment of the text to the next
            symbol's first frame (the last: to the line's last frame, which may reach
            into the padding of a batch), so the symbols' columns tile the line.
        no_ink: the line image is blank (no contrast): nothing was read.
    """

    text: str
    confidence: float
    symbols: tuple[str, ...] = ()
    char_confidences: tuple[float, ...] | None = None
    no_ink: bool = False
    char_columns: tuple[tuple[int, int], ...] | None = None

    def to_dict(self) -> dict:
        """Text and confidences as JSON values."""
        out = {"text": self.text, "confidence": float(confidence_text(self.confidence, 6))}
        if self.char_confidences is not None:
            out["char_confidences"] = [round(c, 4) for c in self.char_confidences]
        if self.no_ink:
            out["no_ink"] = True
        return out


class Recognizer:
    """Recognise text line images with a trained model.

    Args:
        model: a recogniser from `mdrnn.models.build_model`, with its charset
            and preprocessing in the metadata.
        decoder: "greedy", "beam" or "lexicon".
        beam_width: prefixes kept by the beam search (beam decoder, lexicon lines).
        lm: for the beam decoder, an n-gram language model to decode with, or
            "model" for the one stored in the model (see `mdrnn.lm_decoding`).
        lexicon: for the lexicon decoder: a word-list file (see `read_lexicon`),
            a list of words, or a `Lexicon`.
        lexicon_mode: "word": each image shows one entry, the most likely is
            chosen; "line": a beam search over lines of entries joined by spaces.
        batch_size: lines per forward pass.
        xla: compile the forward pass with XLA, per batch shape (see the module
            docstring: on CPU it costs more than it saves).
        name: how messages name the model, e.g. its file.

    Raises:
        InputError: the model lacks usable metadata, or a lexicon problem.
        ValueError: an option out of range, quoted.

    Example:
        >>> recognizer = Recognizer.load("model.keras", decoder="beam")  # doctest: +SKIP
        >>> [r.text for r in recognizer.recognize([load_image("line.png")])]  # doctest: +SKIP
    """

    def __init__(self, model: keras.Model, *, decoder: str = "greedy", beam_width: int = 16,
                 lm: LanguageModel | str | None = None,
                 lexicon: str | Path | Iterable[str] | Lexicon | None = None,
                 lexicon_mode: str = "word", batch_size: int = 64, xla: bool = False,
                 name: str = "model"):
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        if lexicon_mode not in LEXICON_MODES:
            raise ValueError(f"lexicon_mode must be one of {LEXICON_MODES}, got {lexicon_mode!r}")
        for option, value in (("beam_width", beam_width), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{option} must be a positive integer, got {value!r}")
        if (decoder == "lexicon") != (lexicon is not None):
            raise ValueError("a lexicon goes with decoder='lexicon', and that decoder needs one")
        if lm is not None and decoder != "beam":
            raise ValueError("a language model goes with decoder='beam'")
        self.model, self.name = model, name
        self.decoder, self.beam_width, self.lexicon_mode = decoder, beam_width, lexicon_mode
        self.batch_size, self.xla = batch_size, xla
        try:
            meta = metadata(model)
        except ValueError:
            raise InputError(f"{name}: not an mdrnn recogniser (no metadata layer)") from None
        if not meta.charset or not meta.preprocessing:
            raise InputError(f"{name}: the model stores no charset or preprocessing config")
        try:
            self.charset = Charset.from_config(meta.charset)
            self.preprocessing = PreprocessConfig.from_dict(meta.preprocessing)
        except (ValueError, TypeError) as error:
            raise InputError(f"{name}: unusable model metadata ({error})") from None
        classes = model.output_shape[-1]
        if classes != self.charset.num_outputs:
            raise InputError(f"{name}: the model has {classes} outputs, its charset needs "
                             f"{self.charset.num_outputs}")
        self.lexicon = self._lexicon(lexicon) if lexicon is not None else None
        self.lm_decoder = self._lm_decoder(lm) if lm is not None else None
        self._separator = None
        if self.lexicon is not None and lexicon_mode == "line":
            if " " not in self.charset:
                raise InputError(f"{name}: lexicon line mode joins words with spaces, and the "
                                 f"model cannot emit a space")
            self._separator = self.charset.encode(" ")[0]
        self.width_multiple = width_multiple(model)

        # XLA compiles per shape, so its batches always have batch_size rows.
        self._forward = padded_forward(model, xla=xla, rows=batch_size if xla else None,
                                       height=self.preprocessing.height)

    def _lm_decoder(self, lm: LanguageModel | str):
        if isinstance(lm, LanguageModel):
            return lm_decoder(lm, self.charset.symbols, beam_width=self.beam_width)
        if lm != "model":
            raise ValueError(f"lm must be a LanguageModel or 'model', got {lm!r}")
        with embedded_lm(self.model) as stored:
            if stored is None:
                raise InputError(f"{self.name}: the model carries no language model")
            return lm_decoder(stored, self.charset.symbols, beam_width=self.beam_width)

    def _lexicon(self, lexicon) -> Lexicon:
        if isinstance(lexicon, Lexicon):
            return lexicon
        if isinstance(lexicon, (str, Path)):
            return read_lexicon(lexicon, self.charset, split_words=self.lexicon_mode == "line")
        return Lexicon(list(lexicon), self.charset)

    @classmethod
    def load(cls, path: str | Path, **options) -> Recognizer:
        """Load a `.keras` model file (Keras safe mode) and build a recogniser from it.

        Args:
            path: the model file.
            **options: the constructor's keyword arguments.

        Raises:
            InputError: naming the file, when it is missing, not a Keras model or
                has no mdrnn metadata.
        """
        return cls(load_model(path), name=str(path), **options)

    def prepare(self, image: np.ndarray, *, columns: bool = False):
        """Preprocess a line image as at training: float32 (height, W), paper 0, ink 1;
        with `columns`, also its `ColumnMap` onto the image (`preprocess_line`)."""
        return preprocess_line(image, self.preprocessing, columns=columns)

    def padded_width(self, width: int) -> int:
        """The width a batch whose widest line has `width` columns is padded to."""
        units = max(1, math.ceil(width / self.width_multiple))
        if self.xla:
            bucket = 1
            while bucket < units:
                bucket = max(bucket + 1, math.ceil(bucket * XLA_BUCKET_GROWTH))
            units = bucket
        return units * self.width_multiple

    def plan(self, widths: Sequence[int]) -> list[np.ndarray]:
        """Indices of the batches for lines of these widths: sorted by width, `batch_size` each."""
        order = np.argsort(np.asarray(widths), kind="stable")
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def forward(self, lines: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Run the network on prepared lines as one padded batch.

        Args:
            lines: at most `batch_size` arrays from `prepare`.

        Returns:
            Logits (B, T, K+1) and each line's output length (B,).
        """
        height = self.preprocessing.height
        if not 0 < len(lines) <= self.batch_size:
            raise ValueError(f"forward takes 1..{self.batch_size} lines, got {len(lines)}")
        if any(line.ndim != 2 or line.shape[0] != height for line in lines):
            raise ValueError(f"prepared lines must be 2-D with height {height}, got shapes "
                             f"{[line.shape for line in lines]}")
        widths = np.array([line.shape[1] for line in lines], np.int32)
        images = np.zeros((len(lines), height, self.padded_width(int(widths.max())), 1),
                          np.float32)
        for i, line in enumerate(lines):
            images[i, :, :line.shape[1], 0] = line
        return self._forward(images, widths)

    def decode(self, logits: np.ndarray, lengths: np.ndarray) -> list[LineResult]:
        """Decode a batch of logits with the chosen decoder."""
        if self.decoder == "greedy":
            decoded = greedy_decode(logits, lengths, per_char=True)
        elif self.lm_decoder is not None:
            decoded = self.lm_decoder.decode(logits, lengths)
        elif self.decoder == "beam":
            decoded = beam_search_decode(logits, lengths, beam_width=self.beam_width)
        elif self.lexicon_mode == "word":
            decoded = lexicon_decode_word(logits, lengths, self.lexicon)
        else:
            decoded = lexicon_decode_line(logits, lengths, self.lexicon, self._separator,
                                          beam_width=self.beam_width)
        aligned = align_texts(logits, lengths, [d[0] for d in decoded])
        results = []
        for (ids, confidence, *greedy_peaks), (peaks, frames), length in zip(
                decoded, aligned, np.asarray(lengths), strict=True):
            chars = greedy_peaks[0] if greedy_peaks else peaks  # greedy: its own path
            starts = frames[:, 0].tolist()
            ends = starts[1:] + [max(int(length), *frames[:, 1].tolist())] if starts else []
            columns = tuple((a * self.width_multiple, max(a, b) * self.width_multiple)
                            for a, b in zip(starts, ends, strict=True))
            results.append(LineResult(self.charset.decode(ids), float(confidence),
                                      tuple(self.charset.decode_symbols(ids)),
                                      tuple(float(c) for c in chars), char_columns=columns))
        return results

    def recognize_prepared(self, lines: Sequence[np.ndarray]) -> list[LineResult]:
        """Recognise lines from `prepare`, batched by width; results in the given order.

        A blank line (no contrast, e.g. an empty crop or a 1x1 image) is not given to
        the network, which would read something into it: its text is empty.
        """
        results: list[LineResult | None] = [None] * len(lines)
        inked = []
        for i, line in enumerate(lines):
            if line.size and np.ptp(line) > 0:
                inked.append(i)
            else:
                results[i] = LineResult("", 1.0, (), (), no_ink=True, char_columns=())
        for batch in self.plan([lines[i].shape[1] for i in inked]):
            batch = [inked[j] for j in batch]
            logits, lengths = self.forward([lines[i] for i in batch])
            for i, result in zip(batch, self.decode(logits, lengths)):
                results[i] = result
        return results

    def recognize(self, images: Sequence[np.ndarray]) -> list[LineResult]:
        """Recognise line images (2-D uint8 gray); results in the given order.

        All images are held at once: for many lines, use `transcribe_files`,
        or call this on chunks of a few batches.
        """
        return self.recognize_prepared([self.prepare(image) for image in images])
