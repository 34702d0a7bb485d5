"""The `mdrnn` command: a click group of thin wrappers over the library.

TensorFlow is imported inside the commands only, so `mdrnn --help` answers at once.
"""

import logging
import signal
from pathlib import Path

import click

from mdrnn.pipelines.cli_beam import beam_transcribe_command
from mdrnn.pipelines.cli_lm import lm_group
from mdrnn.pipelines.cli_pictures import plot_command, show_command
from mdrnn.pipelines.cli_train import demo, train_command
from mdrnn.pipelines.options import (
    allow_outside_option,
    compute_options,
    decoder_options,
    echo_failure,
    height_option,
    job_inputs,
    load_recognizer,
    out_folder,
    progress_bar,
    report_failures,
    report_job,
    start_tensorflow,
    transcription_options,
    user_errors,
)
from mdrnn.pipelines.preprocess_config import BINARISERS, POLARITIES


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.version_option(package_name="mdrnn")
def main(verbose: int, quiet: bool) -> None:
    """Offline handwriting recognition with multidimensional LSTM and CTC."""
    # SIGTERM (kill, a batch scheduler) stops a job as Ctrl-C does: the write in
    # progress is dropped, temporary files are removed, and a re-run resumes.
    signal.signal(signal.SIGTERM, _interrupt)
    # mdrnn's progress (INFO) shows by default, other libraries' only from -v on.
    handler = logging.StreamHandler()
    handler.setFormatter(_Formatter())
    logging.basicConfig(level=logging.DEBUG if verbose > 1 else
                        logging.INFO if verbose else logging.WARNING, handlers=[handler])
    logging.getLogger("mdrnn").setLevel(logging.ERROR if quiet else
                                        logging.DEBUG if verbose else logging.INFO)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class _Formatter(logging.Formatter):
    """Progress as plain lines; warnings and errors say what they are and where from."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno == logging.INFO:
            return message
        return f"{record.levelname} {record.name}: {message}"


@main.command()
@click.argument("model")
@click.argument("inputs", nargs=-1, required=True)
@transcription_options
def transcribe(model, inputs, out_dir, output_format, decoding, pages, compute, overwrite):
    """Transcribe line images, or page scans with --pages, with a trained MODEL.

    MODEL is a .keras file or the name of a shipped model (see `mdrnn models`).

    INPUTS are image files, folders (searched recursively), quoted glob
    patterns, or list files (.txt/.lst/.tsv) of image paths. Inputs that
    already have output are skipped, so a re-run resumes an interrupted job.
    Outputs mirror the inputs' subfolders; failed inputs are listed at the end
    and make the exit status 1.
    """
    files, problems = job_inputs(inputs, output_format)
    with user_errors():
        recognizer = load_recognizer(model, decoding, compute)
        from mdrnn.pipelines.folder_lock import exclusive_folder
        from mdrnn.pipelines.transcribe import transcribe_files
        from mdrnn.pipelines.writers import open_writer

        with exclusive_folder(out_dir), \
                open_writer(output_format, out_dir, overwrite=overwrite) as writer, \
                progress_bar(len(files), "Transcribing") as bar:
            report = transcribe_files(
                recognizer, files, writer, pages=pages,
                progress=bar.update if bar is not None else None,
                on_failure=lambda path, reason: echo_failure(reason))
    report_job(report, problems, out_dir)


@main.command("evaluate")
@click.argument("model")
@click.argument("data")
@allow_outside_option
@decoder_options
@compute_options
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write per-line results (id, reference, hypothesis, errors, confidence) "
                   "to this TSV file.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a self-contained HTML page: the rates, the confidence's "
                   "calibration, the frequent errors and the worst lines with their images.")
def evaluate_command(model, data, decoding, compute, output, report):
    """Measure CER, WER and line accuracy of MODEL (a file or a shipped model's name)
    on transcribed DATA.

    DATA is a folder of line images with .gt.txt files, a TSV list
    (image<TAB>text), a PAGE .xml, digits:val, or TYPE:PATH with TYPE one of
    iam, iam-ok, ifnenit, ifnenit-aw1, page, alto, folder, list.
    """
    with user_errors():
        recognizer = load_recognizer(model, decoding, compute)
        from mdrnn.datasets.charset import TOKEN_SEPARATOR
        from mdrnn.datasets.formats import open_source
        from mdrnn.pipelines import evaluate as evaluation

        problems: list[str] = []  # samples that cannot be read: reported, left out
        samples = open_source(data, problems=problems)
        for reason in problems:
            echo_failure(reason)
        with progress_bar(len(samples), "Evaluating") as bar:
            result = evaluation.evaluate(
                recognizer, samples, progress=bar.update if bar is not None else None,
                on_failure=lambda name, reason: echo_failure(reason))
        if output is not None:
            separator = recognizer.charset.separator or TOKEN_SEPARATOR
            evaluation.write_results(output, result, separator)
        if report is not None:
            from mdrnn.pipelines.atomic import atomic_write
            from mdrnn.pipelines.report import html_report

            page = html_report(result, samples, model=model, data=data,
                               decoder=recognizer.decoder)
            atomic_write(report, page.encode("utf-8"))
    click.echo(evaluation.summary(result))
    report_failures([*((None, p) for p in problems), *result.failures],
                    len(samples) + len(problems), "samples")


@main.command("export")
@click.argument("model")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def export_command(model, folder):
    """Export MODEL (a file or a shipped name) as a TensorFlow SavedModel in FOLDER.

    The SavedModel's `serve` endpoint takes {"image": uint8 (B, H, W, 1) lines as
    `mdrnn preprocess --config FOLDER/preprocess.json` writes them, "width": int32 (B,)}
    and returns {"logits": (B, T, K+1) CTC scores, blank 0, "lengths": (B,)};
    FOLDER/mdrnn.json holds the charset and how to decode.
    """
    start_tensorflow()
    with user_errors():
        from mdrnn.pipelines.export import export_model
        from mdrnn.zoo import resolve_model

        export_model(resolve_model(model), folder)
    click.echo(f"exported to {folder}", err=True)


@main.command("models")
def models_command():
    """List the trained models shipped with mdrnn: their data, licence and error rates."""
    from mdrnn.zoo import shipped_models

    for name, card in shipped_models().items():
        click.echo(f"{name}: {card['description']}")
        for key in ("training_data", "licence", "attribution", "measured"):
            if key in card:
                click.echo(f"    {key.replace('_', ' ')}: {card[key]}")


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@out_folder()
@allow_outside_option
@click.option("--pages", is_flag=True,
              help="Inputs are page scans: find their lines, write each line and a JSON "
                   "of the line coordinates per page.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="JSON file of preprocessing settings; the options below override it.")
@height_option("Line height the images are scaled to, in pixels [64, or the --config "
               "file's].")
@click.option("--polarity", type=click.Choice(POLARITIES),
              help="Ink polarity: detect, take as dark on light, or invert [auto].")
@click.option("--binarise", type=click.Choice(BINARISERS),
              help="Binarisation [none].")
@click.option("--denoise", type=click.IntRange(0), metavar="PIXELS",
              help="Remove ink specks smaller than this [0: off].")
@click.option("--deskew/--no-deskew", default=None, help="Level skewed text [off].")
@click.option("--slant/--no-slant", default=None, help="Make slanted strokes upright [off].")
@click.option("--crop/--no-crop", default=None, help="Crop to the ink [on].")
@click.option("--overwrite", is_flag=True, help="Redo inputs whose outputs exist.")
def preprocess(inputs, out, pages, config_file, height, polarity, binarise, denoise, deskew,
               slant, crop, overwrite):
    """Normalise line images (or the lines of page scans) into OUT as 8-bit PNG.

    INPUTS are image files, folders (searched recursively) and glob patterns, or the
    transcribed lines of ALTO or PAGE files (alto:PATH, page:PATH), written as
    PAGE/LINE.png with PAGE/LINE.gt.txt: a line folder to train on. Files that
    cannot be read are reported and skipped; the exit status is 1 if any failed.
    """
    import dataclasses
    import json

    from mdrnn.errors import InputError
    from mdrnn.pipelines.folder_lock import exclusive_folder
    from mdrnn.pipelines.preprocess_config import PreprocessConfig
    from mdrnn.pipelines.preprocess_job import plan_inputs, preprocess_files

    overrides = {"height": height, "polarity": polarity, "binarise": binarise,
                 "min_component": denoise, "deskew": deskew, "slant": slant, "crop": crop}
    try:
        base = (PreprocessConfig.from_dict(json.loads(Path(config_file).read_text("utf-8")))
                if config_file else PreprocessConfig())
        config = dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})
    except (OSError, ValueError, TypeError) as exc:
        raise click.BadParameter(f"{config_file}: {exc}", param_hint="--config") from None
    try:
        jobs, samples = plan_inputs(inputs)
    except InputError as error:
        raise click.BadParameter(str(error), param_hint="INPUTS") from None
    with user_errors(), exclusive_folder(out), progress_bar(len(jobs), "Preprocessing") as bar:
        results = preprocess_files(jobs, samples, out, config, pages=pages, overwrite=overwrite,
                                   progress=bar.update if bar is not None else None)
    failed = [r for r in results if r.status == "failed"]
    for result in failed:
        echo_failure(result.message)
    done = sum(r.status == "done" for r in results)
    skipped = len(results) - done - len(failed)
    click.echo(f"{done} preprocessed ({sum(r.lines for r in results)} lines), {skipped} "
               f"already done, {len(failed)} failed; output in {out}", err=True)
    if failed:
        raise click.exceptions.Exit(1)


main.add_command(lm_group)
main.add_command(train_command)
main.add_command(demo)
main.add_command(show_command)
main.add_command(plot_command)
main.add_command(beam_transcribe_command)
