"""What the commands share: recognition options, user-error handling, progress and failures.

TensorFlow is imported only when a recogniser is loaded, so `--help` stays instant.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
from pathlib import Path

import click

from mdrnn.lm import UNITS

BATCH_SIZE = click.option("--batch-size", type=click.IntRange(min=1), default=64,
                          show_default=True, help="Lines per forward pass.")
def out_folder(help: str = "Output folder.", name: str = "out", **kwargs):
    """The -o/--out option of every command that writes a folder."""
    kwargs.setdefault("required", "default" not in kwargs)
    return click.option("-o", "--out", name, type=click.Path(file_okay=False, path_type=Path),
                        help=help, **kwargs)


def height_option(help: str = "Line height the images are scaled to, in pixels.", **kwargs):
    """The --height option: the line height the images are scaled to."""
    return click.option("--height", type=click.IntRange(8, 1024), help=help, **kwargs)


def _allow_outside(ctx, param, value):
    if value:
        from mdrnn.datasets.samples import allow_outside

        allow_outside()
        ctx.call_on_close(functools.partial(allow_outside, False))


allow_outside_option = click.option(
    "--allow-outside", is_flag=True, expose_value=False, callback=_allow_outside,
    help="Let PAGE, ALTO and list files name images outside their own folder (refused "
         "by default, so that a data file cannot make a job read other files).")


LM_SETTINGS = {"lm_weight": "weight", "word_bonus": "bonus", "blank_penalty": "blank_penalty"}


def option_group(name: str, options: list):
    """A decorator adding `options` to a command, their values passed to it together
    as one dict keyword argument `name`."""
    # Each click.option decorator, applied to a stand-in, says its parameter's name.
    keys = [option(lambda: None).__click_params__[0].name for option in options]

    def decorate(command):
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            kwargs[name] = {key: kwargs.pop(key) for key in keys}
            return command(*args, **kwargs)

        for option in reversed(options):
            wrapper = option(wrapper)
        return wrapper

    return decorate


format_option = click.option(
    "-f", "--format", "output_format", type=click.Choice(["txt", "jsonl", "page", "alto"]),
    default="txt", show_default=True,
    help="txt: <name>.txt per input; jsonl: one record per input in transcriptions.jsonl; "
         "page: PAGE XML 2019 <name>.xml per input; alto: ALTO 4.2 <name>.xml per input "
         "(eScriptorium, kraken).")

decoder_options = option_group("decoding", [
    click.option("--decoder", type=click.Choice(["greedy", "beam", "lexicon"]),
                 help="CTC decoding: best path, prefix beam search (with the LM, if "
                      "any), or words of --lexicon. [beam if the model carries a "
                      "language model or --lm is given, else greedy]"),
    click.option("--beam-width", type=click.IntRange(min=1), default=16, show_default=True,
                 help="Prefixes kept by the beam search."),
    click.option("--lexicon", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                 help="Word list, one entry per line, for --decoder lexicon."),
    click.option("--lexicon-mode", type=click.Choice(["word", "line"]), default="word",
                 show_default=True,
                 help="word: each image shows one entry; line: entries joined by spaces."),
    click.option("--lm", metavar="FILE|none",
                 help="N-gram language model (ARPA, see `mdrnn lm build`) for the beam "
                      "search; 'none' ignores the model's own. [the model's, if any]"),
    click.option("--lm-unit", type=click.Choice(UNITS), default="char",
                 show_default=True, help="What the words of --lm are."),
    click.option("--lm-weight", type=click.FloatRange(0, 10),
                 help="Scale of the LM's log-probabilities. [the model's, else 1]"),
    click.option("--word-bonus", type=click.FloatRange(-10, 10),
                 help="Added per word (char LM: per frame reading a space). "
                      "[the model's, else 0]"),
    click.option("--blank-penalty", type=click.FloatRange(-10, 10),
                 help="Subtracted from the blank's log-probability per frame, against "
                      "the deletions an LM favours. [the model's, else 0]"),
])


@contextlib.contextmanager
def user_errors():
    """Turn bad input and unwritable output into a one-line `Error: ...` (exit 1)."""
    from mdrnn.errors import InputError

    try:
        yield
    except (InputError, OSError) as error:
        raise click.ClickException(str(error)) from None


compute_options = option_group("compute", [
    BATCH_SIZE,
    click.option("--threads", type=click.IntRange(min=1),
                 help="CPU threads for the network [TensorFlow's choice: all cores]."),
    click.option("--device", default="auto", show_default=True, metavar="auto|cpu|gpu[:N]",
                 help="Where the network runs: the first GPU if any (auto), the CPU, "
                      "or GPU number N."),
])


def start_tensorflow() -> None:
    """Import TensorFlow and let it find its devices without the lines its C++ side
    prints on every start (absl's preamble, CUDA probing on a machine without a GPU);
    with -v they are shown. Errors still surface as Python exceptions."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from mdrnn.lm import quiet_native_output

    verbose = logging.getLogger("mdrnn").isEnabledFor(logging.DEBUG)
    with contextlib.nullcontext() if verbose else quiet_native_output():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")


def configure_tensorflow(threads: int | None, device: str) -> None:
    """Set TensorFlow's thread pools and visible devices, before it runs anything."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    visible = None
    if device == "cpu":
        visible = []
    elif device != "auto":
        name, _, number = device.partition(":")
        if name != "gpu" or (number and not number.isdigit()):
            raise click.BadParameter(f"{device!r}: choose auto, cpu, gpu or gpu:N",
                                     param_hint="--device")
        if int(number or 0) >= len(gpus):
            raise click.BadParameter(f"{device}: this machine has {len(gpus)} GPU(s) that "
                                     f"TensorFlow can use", param_hint="--device")
        visible = [gpus[int(number or 0)]]
    try:
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        if visible is not None:
            tf.config.set_visible_devices(visible, "GPU")
    except RuntimeError:  # only when TensorFlow already ran in this process (not the CLI's)
        logging.getLogger(__name__).warning("TensorFlow is already running: --threads and "
                                            "--device apply to a fresh process only")


def load_recognizer(model: str, decoding: dict, compute: dict):
    """Check the decoding options together, then load MODEL (a file or a shipped name)
    with its language model where one applies, on the device and threads asked for;
    TensorFlow is imported here."""
    decoder, lm = decoding["decoder"], decoding["lm"]
    explicit_lm = lm is not None and lm != "none"
    tuned = any(decoding[key] is not None for key in LM_SETTINGS)
    if decoder == "lexicon" and decoding["lexicon"] is None:
        raise click.UsageError("--decoder lexicon needs --lexicon FILE")
    if decoding["lexicon"] is not None and decoder != "lexicon":
        raise click.UsageError("--lexicon goes with --decoder lexicon")
    if decoder in ("greedy", "lexicon") and (explicit_lm or tuned):
        raise click.UsageError(f"--lm and its settings go with the beam decoder, not "
                               f"--decoder {decoder}")
    if explicit_lm and not Path(lm).is_file():
        raise click.BadParameter(f"{lm}: no such language model file", param_hint="--lm")
    start_tensorflow()
    configure_tensorflow(compute["threads"], compute["device"])
    from mdrnn.errors import InputError
    from mdrnn.lm_decoding import LanguageModel, embedded_lm, require_flashlight
    from mdrnn.models import load_model
    from mdrnn.pipelines.recognizer import Recognizer
    from mdrnn.zoo import resolve_model

    path = resolve_model(model)
    network = load_model(path)
    options = dict(beam_width=decoding["beam_width"], lexicon=decoding["lexicon"],
                   lexicon_mode=decoding["lexicon_mode"], batch_size=compute["batch_size"],
                   name=str(path))
    with embedded_lm(network) as stored:
        chosen = None
        if explicit_lm:
            chosen = LanguageModel(Path(lm), unit=decoding["lm_unit"])
        elif lm is None and decoder in (None, "beam") and stored is not None:
            chosen = stored
            if stored.unit == "word":
                try:
                    require_flashlight()
                except InputError as error:  # the core install: decode without the LM
                    logging.getLogger(__name__).warning(
                        "%s carries a word language model, left unused: %s", path, error)
                    chosen = None
        if chosen is None and tuned:
            raise click.UsageError("--lm-weight, --word-bonus and --blank-penalty need a "
                                   "language model: --lm FILE, or a model that carries one")
        if chosen is not None:
            given = {field: decoding[key] for key, field in LM_SETTINGS.items()
                     if decoding[key] is not None}
            try:
                chosen = dataclasses.replace(chosen, **given)
            except ValueError as error:
                raise click.UsageError(str(error)) from None
        return Recognizer(network, decoder=decoder or ("beam" if chosen else "greedy"),
                          lm=chosen, **options)


def quiet() -> bool:
    """Whether the group was given -q (only errors are printed)."""
    return bool(click.get_current_context().find_root().params.get("quiet"))


def progress_bar(length: int, label: str):
    """A progress bar on stderr, or None (as a context) under `mdrnn -q`."""
    if quiet():
        return contextlib.nullcontext(None)
    return click.progressbar(length=length, label=label, file=click.get_text_stream("stderr"))


def one_line(message: str) -> str:
    """A message on one line: line breaks (e.g. inside a file name) shown escaped."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


def echo_failure(reason: str) -> None:
    """Report one failed input on stderr, on one line."""
    click.echo(f"failed: {one_line(reason)}", err=True)


def report_failures(failures, total: int, what: str) -> None:
    """List failures on stderr and exit with status 1, if there are any."""
    if failures:
        click.echo(f"{len(failures)} of {total} {what} failed:", err=True)
        for _, reason in failures:
            click.echo(f"  {one_line(reason)}", err=True)
        raise click.exceptions.Exit(1)


def transcription_options(command):
    """The options of a transcription job: --out, --format, decoding, --pages, compute,
    --overwrite (the parameters out_dir, output_format, decoding, pages, compute,
    overwrite)."""
    for option in reversed([
            out_folder(name="out_dir"), format_option, decoder_options,
            click.option("--pages", is_flag=True,
                         help="Inputs are page scans: find their lines first."),
            compute_options,
            click.option("--overwrite", is_flag=True,
                         help="Redo inputs that already have output.")]):
        command = option(command)
    return command


def job_inputs(inputs, output_format: str):
    """A transcription job's INPUTS as (files, problems): the inputs that name nothing
    usable are reported now and returned as (input, reason); names that would collide
    in a per-input output format are a usage error."""
    from mdrnn.errors import InputError
    from mdrnn.pipelines.inputs import check_unique_names, expand_inputs

    problems: list[tuple[str, str]] = []
    try:
        files = expand_inputs(inputs, problems)
        if output_format != "jsonl":
            check_unique_names(files)
    except InputError as error:
        raise click.BadParameter(str(error), param_hint="INPUTS") from None
    for _, reason in problems:
        echo_failure(reason)
    return files, problems


def report_job(report, problems, out_dir) -> None:
    """A transcription job's counts on stderr, then its failures (exit status 1)."""
    if not quiet():
        click.echo(f"{report.done} transcribed, {report.skipped} already done, "
                   f"{len(report.failures) + len(problems)} failed; output in {out_dir}",
                   err=True)
    report_failures([*problems, *report.failures], report.total + len(problems), "inputs")
