"""Language models with a recogniser: build one from transcriptions, choose its weight, keep it.

`tune_lm` runs the network once over validation lines and decodes its output with
every weight and word bonus asked for, choosing the pair with the lowest CER
(ties: the smaller weight). `lm_auto` is what `mdrnn train --lm auto` does after
training: a character LM of the training transcriptions only, tuned on the
validation lines and stored in the model file, so that `mdrnn transcribe MODEL`
decodes with it by default.
"""

from __future__ import annotations

import functools
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2

from mdrnn.datasets.samples import Sample
from mdrnn.decoding import beam_search_decode
from mdrnn.errors import InputError
from mdrnn.lm import build_arpa
from mdrnn.lm_decoding import LanguageModel, attach_lm, lm_decoder
from mdrnn.models import load_model
from mdrnn.pipelines.atomic import atomic_path
from mdrnn.pipelines.metrics import error_rates
from mdrnn.pipelines.recognizer import Recognizer

log = logging.getLogger(__name__)

WEIGHTS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
BONUSES = (0.0,)
PENALTIES = (0.0, 1.0, 2.0, 3.0)
MIN_GAIN = 0.02
"""`lm_auto` keeps an LM that lowers the validation CER by at least this fraction: a
smaller gain is within what tuning on the same lines finds by chance (on random
digit strings, where an LM cannot help, it found 1.4%)."""


@dataclass(frozen=True)
class Trial:
    """One decoding of the validation lines: the LM settings, CER, WER, lines/s."""

    weight: float
    bonus: float
    blank_penalty: float
    cer: float
    wer: float
    lines_per_second: float


def network_outputs(recognizer: Recognizer, samples: Sequence[Sample]):
    """Logits and output lengths of the readable samples, batch by batch, and their texts."""
    outputs, texts = [], []
    prepared, references = [], []
    for sample in samples:
        try:
            prepared.append(recognizer.prepare(sample.load()))
            references.append(sample.text)
        except (InputError, ValueError, cv2.error) as error:
            log.warning("%s: left out of LM tuning (%s)", sample.name, error)
    for batch in recognizer.plan([line.shape[1] for line in prepared]):
        logits, lengths = recognizer.forward([prepared[i] for i in batch])
        outputs.append((logits, lengths))
        texts.append([references[i] for i in batch])
    return outputs, texts


def tune_lm(recognizer: Recognizer, samples: Sequence[Sample], lm: LanguageModel, *,
            weights: Sequence[float] = WEIGHTS, bonuses: Sequence[float] = BONUSES,
            penalties: Sequence[float] = PENALTIES, engine: str = "auto",
            network=None) -> tuple[LanguageModel, list[Trial]]:
    """Choose the LM weight, word bonus and blank penalty with the lowest CER on
    transcribed samples (all combinations are tried).

    Args:
        engine: the LM decoder (see `mdrnn.lm_decoding.lm_decoder`).
        network: `network_outputs(recognizer, samples)`, when already computed.

    Returns:
        The LM with the chosen weight and bonus, and every trial (weight 0 first:
        the prefix beam search of `mdrnn.decoding`, without the LM).
    """
    outputs, texts = network or network_outputs(recognizer, samples)
    references = [text for batch in texts for text in batch]
    trials = []
    grid = [(w, b, p) for w in weights for b in bonuses for p in penalties if w > 0]
    for weight, bonus, penalty in [(0.0, 0.0, 0.0), *grid]:
        if weight:
            decode = lm_decoder(replace(lm, weight=weight, bonus=bonus, blank_penalty=penalty),
                                recognizer.charset.symbols, beam_width=recognizer.beam_width,
                                engine=engine).decode
        else:  # the exact prefix beam search: what decoding without the LM gives
            decode = functools.partial(beam_search_decode,
                                       beam_width=recognizer.beam_width)
        start, hypotheses = time.perf_counter(), []
        for logits, lengths in outputs:
            hypotheses += [recognizer.charset.decode(ids)
                           for ids, _ in decode(logits, lengths)]
        seconds = time.perf_counter() - start
        rates = error_rates(references, hypotheses)
        trials.append(Trial(weight, bonus, penalty, rates.cer, rates.wer,
                            len(references) / max(seconds, 1e-9)))
        log.debug("LM weight %g, bonus %g, blank penalty %g: CER %.2f%%, WER %.2f%%",
                  weight, bonus, penalty, 100 * rates.cer, 100 * rates.wer)
    best = min(trials, key=lambda t: (round(t.cer, 6), t.weight, abs(t.blank_penalty)))
    return replace(lm, weight=best.weight, bonus=best.bonus,
                   blank_penalty=best.blank_penalty), trials


def lm_auto(model_path: str | Path, train_samples: Sequence[Sample],
            val_samples: Sequence[Sample], *, order: int = 6) -> tuple[LanguageModel, list]:
    """Build a character LM of the training texts, tune it on `val_samples`, and store
    it in the model file (rewritten atomically) if it lowers the CER by `MIN_GAIN`
    or more; return the chosen LM (weight 0: not stored) and the trials."""
    model_path = Path(model_path)
    model = load_model(model_path)
    recognizer = Recognizer(model, decoder="beam", name=str(model_path))
    # Every symbol the model reads, though fine-tuning data may show only some.
    arpa = build_arpa((s.text for s in train_samples), order=order,
                      symbols=recognizer.charset.symbols)
    with tempfile.TemporaryDirectory(prefix="mdrnn-lm-") as tmp:
        path = Path(tmp, "lm.arpa")
        path.write_bytes(arpa)
        chosen, trials = tune_lm(recognizer, val_samples, LanguageModel(path))
    best = min(t.cer for t in trials)
    if chosen.weight == 0 or best > (1 - MIN_GAIN) * trials[0].cer:
        log.warning("%s: the language model lowered the validation CER from %.2f%% to %.2f%% "
                    "only; not stored", model_path, 100 * trials[0].cer, 100 * best)
        return replace(chosen, weight=0.0), trials
    attach_lm(model, arpa, chosen)
    with atomic_path(model_path) as tmp:
        model.save(tmp)
    return chosen, trials
