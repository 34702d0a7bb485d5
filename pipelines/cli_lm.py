"""`mdrnn lm`: build n-gram language models and choose their decoding weight."""

from __future__ import annotations

from pathlib import Path

import click

from mdrnn.lm import UNITS
from mdrnn.pipelines.options import (
    BATCH_SIZE,
    allow_outside_option,
    start_tensorflow,
    user_errors,
)


@click.group("lm")
def lm_group():
    """N-gram language models for decoding (needs: pip install "mdrnn[lm]")."""


@lm_group.command("build")
@click.argument("data", nargs=-1)
@allow_outside_option
@click.option("--text", "text_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A plain UTF-8 text file, one line of text per line (repeatable).")
@click.option("--order", type=click.IntRange(1, 20), default=6, show_default=True,
              help="Longest n-gram.")
@click.option("--unit", type=click.Choice(UNITS), default="char", show_default=True,
              help="char: every symbol is an LM word, the space <space>; word: words.")
@click.option("--prune", type=click.FloatRange(min=0, min_open=True), default=0.01,
              show_default=True, help="Leave out n-grams that gain less (smaller keeps more).")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The ARPA file to write.")
def build_command(data, text_files, order, unit, prune, out):
    """Build a Kneser-Ney n-gram LM from the transcriptions of DATA (any training data
    source) and the lines of --text files, as an ARPA file."""
    if not data and not text_files:
        raise click.UsageError("give DATA sources or --text files to build from")
    with user_errors():
        from mdrnn.datasets.formats import open_source
        from mdrnn.datasets.samples import read_text
        from mdrnn.lm import build_arpa, read_arpa
        from mdrnn.pipelines.atomic import atomic_write

        texts = [sample.text for source in data for sample in open_source(source)]
        for path in text_files:
            texts += [line for line in read_text(path).splitlines() if line.strip()]
        atomic_write(out, build_arpa(texts, order=order, unit=unit, prune=prune))
        arpa = read_arpa(out)
    counts = ", ".join(f"{n + 1}-grams {c}" for n, c in enumerate(arpa.counts))
    click.echo(f"{out}: {unit} LM of {len(texts)} lines: {counts}", err=True)


def _numbers(text: str, option: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of numbers",
                                 param_hint=option) from None


@lm_group.command("tune")
@click.argument("model")
@click.argument("data")
@allow_outside_option
@click.option("--lm", "lm_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The ARPA file.")
@click.option("--lm-unit", type=click.Choice(UNITS), default="char",
              show_default=True)
@click.option("--weights", default="0.5,0.75,1,1.25,1.5,1.75,2", show_default=True,
              help="LM weights to try.")
@click.option("--bonuses", default="0", show_default=True, help="Word bonuses to try.")
@click.option("--penalties", default="0,1,2,3", show_default=True,
              help="Blank penalties to try.")
@click.option("--beam-width", type=click.IntRange(min=1), default=16, show_default=True)
@BATCH_SIZE
@click.option("--save", type=click.Path(dir_okay=False, path_type=Path),
              help="Write MODEL with the LM and the best weight stored in it to this "
                   ".keras file: `mdrnn transcribe` then decodes with them by default.")
def tune_command(model, data, lm_file, lm_unit, weights, bonuses, penalties, beam_width,
                 batch_size, save):
    """Decode transcribed DATA (validation lines) with MODEL and the LM at each weight and
    word bonus and blank penalty; print CER, WER and speed per setting (weight 0: the
    beam search without the LM), and keep the best with --save."""
    weights, bonuses = _numbers(weights, "--weights"), _numbers(bonuses, "--bonuses")
    penalties = _numbers(penalties, "--penalties")
    if save is not None and save.suffix != ".keras":
        raise click.BadParameter(f"{save}: must end in .keras", param_hint="--save")
    start_tensorflow()
    with user_errors():
        from mdrnn.datasets.formats import open_source
        from mdrnn.lm_decoding import LanguageModel, attach_lm
        from mdrnn.models import load_model
        from mdrnn.pipelines.atomic import atomic_path
        from mdrnn.pipelines.lm_tune import tune_lm
        from mdrnn.pipelines.recognizer import Recognizer
        from mdrnn.zoo import resolve_model

        path = resolve_model(model)
        network = load_model(path)
        recognizer = Recognizer(network, decoder="beam", beam_width=beam_width,
                                batch_size=batch_size, name=str(path))
        try:
            lm = LanguageModel(lm_file, unit=lm_unit)
            chosen, trials = tune_lm(recognizer, open_source(data), lm, weights=weights,
                                     bonuses=bonuses, penalties=penalties)
        except ValueError as error:
            raise click.UsageError(str(error)) from None
        click.echo("weight  bonus  blank     CER     WER  lines/s")
        for t in trials:
            click.echo(f"{t.weight:6g} {t.bonus:6g} {t.blank_penalty:6g} {100 * t.cer:6.2f}% "
                       f"{100 * t.wer:6.2f}% {t.lines_per_second:8.1f}")
        click.echo(f"best: weight {chosen.weight:g}, bonus {chosen.bonus:g}, blank penalty "
                   f"{chosen.blank_penalty:g}")
        if save is not None and chosen.weight == 0:
            click.echo("no weight lowered the CER: nothing saved", err=True)
        elif save is not None:
            attach_lm(network, lm_file.read_bytes(), chosen)
            with atomic_path(save) as tmp:
                network.save(tmp)
            click.echo(f"model with its LM: {save}", err=True)
