"""Evaluation of a recogniser on transcribed lines: CER, WER, line accuracy, per-line results.

`evaluate` recognises the samples of a data source in windows of a few batches
(so images are loaded a window at a time), compares each hypothesis with its
reference by edit distance (`mdrnn.pipelines.metrics`) and keeps the per-line
results. A sample whose image cannot be read is listed as a failure and left out
of the rates, which are therefore over the readable lines only.

References that are token sequences (IFN/ENIT shape labels) are compared with
the recognised symbols token by token, not with the joined text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from mdrnn.datasets.charset import TOKEN_SEPARATOR
from mdrnn.datasets.samples import Sample
from mdrnn.errors import InputError
from mdrnn.pipelines.atomic import atomic_write
from mdrnn.pipelines.metrics import ErrorRates, confusions, error_rates, line_errors
from mdrnn.pipelines.recognizer import WINDOW_BATCHES, Recognizer

TSV_COLUMNS = ("id", "reference", "hypothesis", "char_errors", "word_errors", "confidence")


@dataclass(frozen=True)
class LineEvaluation:
    """One evaluated line.

    Args:
        id: the sample id.
        reference: the transcription (a token tuple for token datasets).
        hypothesis: what the recogniser read (a token tuple for token datasets).
        char_errors: edit distance in symbols.
        word_errors: edit distance in words.
        confidence: the decoder's confidence in [0, 1].
    """

    id: str
    reference: str | tuple[str, ...]
    hypothesis: str | tuple[str, ...]
    char_errors: int
    word_errors: int
    confidence: float


@dataclass
class Evaluation:
    """The outcome of `evaluate`: rates over the readable lines, the lines, the failures."""

    rates: ErrorRates
    lines: list[LineEvaluation]
    failures: list[tuple[str, str]] = field(default_factory=list)


def _load(sample: Sample, recognizer: Recognizer):
    """The prepared line, or the reason it cannot be had."""
    try:
        return recognizer.prepare(sample.load()), None
    except InputError as error:
        return None, str(error)
    except (ValueError, cv2.error) as error:
        return None, f"{sample.name}: {' '.join(str(error).split())}"


def evaluate(recognizer: Recognizer, samples: Sequence[Sample], *, window: int | None = None,
             progress: Callable[[int], None] | None = None,
             on_failure: Callable[[str, str], None] | None = None) -> Evaluation:
    """Recognise samples and score the hypotheses against their transcriptions.

    Args:
        recognizer: the model and decoder.
        samples: the data, e.g. from `mdrnn.datasets.formats.open_source`.
        window: samples loaded and recognised together; default a few batches.
        progress: called with the number of samples finished, as they finish.
        on_failure: called with (sample name, reason) for unreadable samples.

    Returns:
        The rates, the per-line results in sample order, and the failures.
    """
    window = window or WINDOW_BATCHES * recognizer.batch_size
    lines, failures = [], []
    for start in range(0, len(samples), window):
        chunk = samples[start:start + window]
        readable, prepared = [], []
        for sample in chunk:
            line, reason = _load(sample, recognizer)
            if reason is not None:
                failures.append((sample.name, reason))
                if on_failure is not None:
                    on_failure(sample.name, reason)
            else:
                readable.append(sample)
                prepared.append(line)
        for sample, result in zip(readable, recognizer.recognize_prepared(prepared)):
            tokens = not isinstance(sample.text, str)
            hypothesis = result.symbols if tokens else result.text
            char_errors, word_errors = line_errors(sample.text, hypothesis)
            lines.append(LineEvaluation(sample.id, sample.text, hypothesis, char_errors,
                                        word_errors, result.confidence))
        if progress is not None:
            progress(len(chunk))
    rates = error_rates([line.reference for line in lines], [line.hypothesis for line in lines])
    return Evaluation(rates, lines, failures)


def _shown(text: str | tuple[str, ...], separator: str) -> str:
    return text if isinstance(text, str) else separator.join(text)


def write_results(path: str | Path, evaluation: Evaluation,
                  separator: str = TOKEN_SEPARATOR) -> None:
    """Write the per-line results as a TSV file with a header row (see `TSV_COLUMNS`).

    Fields that hold a tab, a quote or a newline are quoted as by `csv`; token
    sequences are joined by `separator`.
    """
    buffer = io.StringIO()
    out = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    out.writerow(TSV_COLUMNS)
    for line in evaluation.lines:
        out.writerow([line.id, _shown(line.reference, separator),
                      _shown(line.hypothesis, separator), line.char_errors, line.word_errors,
                      f"{line.confidence:.6f}"])
    atomic_write(path, buffer.getvalue().encode("utf-8"))


def _symbol(symbol: str) -> str:
    return {"": "(none)", " ": "(space)"}.get(symbol, symbol)


def summary(evaluation: Evaluation, top: int = 10) -> str:
    """The rates and the `top` most frequent character errors as aligned lines of text."""
    r = evaluation.rates
    lines = [
        f"CER            {100 * r.cer:6.2f} %  ({r.char_errors} errors / {r.chars} characters)",
        f"WER            {100 * r.wer:6.2f} %  ({r.word_errors} errors / {r.words} words)",
        f"line accuracy  {100 * r.line_accuracy:6.2f} %  ({r.lines_correct} of {r.lines} lines)",
    ]
    errors = confusions(((line.reference, line.hypothesis) for line in evaluation.lines), top)
    if errors:
        lines.append("most frequent errors (truth -> read: count): " + ", ".join(
            f"{_symbol(a)} -> {_symbol(b)}: {n}" for a, b, n in errors))
    return "\n".join(lines)
