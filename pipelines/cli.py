"""The `mdrnn` command: a click group of thin wrappers over the library.

TensorFlow is imported inside the commands only, so `mdrnn --help` answers at once.
"""

import contextlib
import logging
import os
from pathlib import Path

import click

from mdrnn.pipelines.cli_lm import lm_group
from mdrnn.pipelines.options import BATCH_SIZE, decoder_options, load_recognizer, user_errors
from mdrnn.presets import PRESETS, resolve_spec


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.version_option(package_name="mdrnn")
def main(verbose: int, quiet: bool) -> None:
    """Offline handwriting recognition with multidimensional LSTM and CTC."""
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else
                                         logging.INFO if verbose else logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _quiet() -> bool:
    """Whether the group was given -q (only errors are printed)."""
    return bool(click.get_current_context().find_root().params.get("quiet"))


def _progress(length: int, label: str):
    """A progress bar on stderr, or None (as a context) under `mdrnn -q`."""
    if _quiet():
        return contextlib.nullcontext(None)
    return click.progressbar(length=length, label=label, file=click.get_text_stream("stderr"))


def _report_failures(failures, total: int, what: str) -> None:
    """List failures on stderr and exit with status 1, if there are any."""
    if failures:
        click.echo(f"{len(failures)} of {total} {what} failed:", err=True)
        for _, reason in failures:
            click.echo(f"  {reason}", err=True)
        raise click.exceptions.Exit(1)


@main.command()
@click.argument("model")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--out", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("-f", "--format", "output_format",
              type=click.Choice(["txt", "jsonl", "page", "alto"]), default="txt",
              show_default=True,
              help="txt: <name>.txt per input; jsonl: one record per input in "
                   "transcriptions.jsonl; page: PAGE XML 2019 <name>.xml per input; alto: "
                   "ALTO 4.2 <name>.xml per input (eScriptorium, kraken).")
@decoder_options
@click.option("--pages", is_flag=True, help="Inputs are page scans: find their lines first.")
@BATCH_SIZE
@click.option("--overwrite", is_flag=True, help="Redo inputs that already have output.")
def transcribe(model, inputs, out_dir, output_format, decoding, pages, batch_size, overwrite):
    """Transcribe line images, or page scans with --pages, with a trained MODEL.

    MODEL is a .keras file or the name of a shipped model (see `mdrnn models`).

    INPUTS are image files, folders (searched recursively), quoted glob
    patterns, or list files (.txt/.lst/.tsv) of image paths. Inputs that
    already have output are skipped, so a re-run resumes an interrupted job.
    Outputs mirror the inputs' subfolders; failed inputs are listed at the end
    and make the exit status 1.
    """
    from mdrnn.errors import InputError
    from mdrnn.pipelines.inputs import check_unique_names, expand_inputs

    try:
        files = expand_inputs(inputs)
        if output_format != "jsonl":
            check_unique_names(files)
    except InputError as error:
        raise click.BadParameter(str(error), param_hint="INPUTS") from None
    with user_errors():
        recognizer = load_recognizer(model, decoding, batch_size)
        from mdrnn.pipelines.transcribe import transcribe_files
        from mdrnn.pipelines.writers import open_writer

        with open_writer(output_format, out_dir, overwrite=overwrite) as writer, \
                _progress(len(files), "Transcribing") as bar:
            report = transcribe_files(
                recognizer, files, writer, pages=pages,
                progress=bar.update if bar is not None else None,
                on_failure=lambda path, reason: click.echo(f"failed: {reason}", err=True))
    if not _quiet():
        click.echo(f"{report.done} transcribed, {report.skipped} already done, "
                   f"{len(report.failures)} failed; output in {out_dir}", err=True)
    _report_failures(report.failures, report.total, "inputs")


@main.command("evaluate")
@click.argument("model")
@click.argument("data")
@decoder_options
@BATCH_SIZE
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write per-line results (id, reference, hypothesis, errors, confidence) "
                   "to this TSV file.")
def evaluate_command(model, data, decoding, batch_size, output):
    """Measure CER, WER and line accuracy of MODEL (a file or a shipped model's name)
    on transcribed DATA.

    DATA is a folder of line images with .gt.txt files, a TSV list
    (image<TAB>text), a PAGE .xml, digits:val, or TYPE:PATH with TYPE one of
    iam, iam-ok, ifnenit, ifnenit-aw1, page, alto, folder, list.
    """
    with user_errors():
        recognizer = load_recognizer(model, decoding, batch_size)
        from mdrnn.datasets.charset import TOKEN_SEPARATOR
        from mdrnn.datasets.formats import open_source
        from mdrnn.pipelines import evaluate as evaluation

        samples = open_source(data)
        with _progress(len(samples), "Evaluating") as bar:
            result = evaluation.evaluate(
                recognizer, samples, progress=bar.update if bar is not None else None,
                on_failure=lambda name, reason: click.echo(f"failed: {reason}", err=True))
        if output is not None:
            separator = recognizer.charset.separator or TOKEN_SEPARATOR
            evaluation.write_results(output, result, separator)
    click.echo(evaluation.summary(result))
    _report_failures(result.failures, len(samples), "samples")


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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder.")
@click.option("--pages", is_flag=True,
              help="Inputs are page scans: find their lines, write each line and a JSON "
                   "of the line coordinates per page.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="JSON file of preprocessing settings; the options below override it.")
@click.option("--height", type=click.IntRange(8, 1024), help="Line height in pixels [64].")
@click.option("--polarity", type=click.Choice(["auto", "keep", "invert"]),
              help="Ink polarity: detect, take as dark on light, or invert [auto].")
@click.option("--binarise", type=click.Choice(["none", "otsu", "sauvola"]),
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

    import cv2

    from mdrnn.datasets.formats import open_source
    from mdrnn.errors import InputError
    from mdrnn.pipelines.batch import run_job, write_samples
    from mdrnn.pipelines.inputs import check_unique_names, expand_inputs
    from mdrnn.pipelines.preprocess import PreprocessConfig
    from mdrnn.pipelines.segment import SegmentConfig

    overrides = {"height": height, "polarity": polarity, "binarise": binarise,
                 "min_component": denoise, "deskew": deskew, "slant": slant, "crop": crop}
    try:
        base = (PreprocessConfig.from_dict(json.loads(Path(config_file).read_text("utf-8")))
                if config_file else PreprocessConfig())
        config = dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})
    except (OSError, ValueError, TypeError) as exc:
        raise click.BadParameter(f"{config_file}: {exc}", param_hint="--config") from None
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # we report bad files
    sources = [i for i in inputs if i.split(":", 1)[0] in ("alto", "page")
               and not Path(i).exists()]
    files = [i for i in inputs if i not in sources]
    try:
        jobs = expand_inputs(files) if files else []
        check_unique_names(jobs)
        samples = [s for source in sources for s in open_source(source)]
    except InputError as error:
        raise click.BadParameter(str(error), param_hint="INPUTS") from None
    quiet = click.get_current_context().find_root().params.get("quiet")
    results = write_samples(samples, out, config, overwrite)
    with click.progressbar(jobs, label="Preprocessing", file=click.get_text_stream("stderr"),
                           hidden=bool(quiet)) as bar:
        for job in bar:
            results.append(run_job(job, out, config, SegmentConfig() if pages else None,
                                   overwrite))
    failed = [r for r in results if r.status == "failed"]
    for result in failed:
        click.echo(f"failed: {result.message}", err=True)
    done = sum(r.status == "done" for r in results)
    skipped = len(results) - done - len(failed)
    click.echo(f"{done} preprocessed ({sum(r.lines for r in results)} lines), {skipped} "
               f"already done, {len(failed)} failed; output in {out}", err=True)
    if failed:
        raise click.exceptions.Exit(1)


@main.command("train")
@click.option("--train", "train_data", required=True, metavar="DATA",
              help="Training data: a folder of images with .gt.txt, a TSV list, a PAGE or ALTO "
                   ".xml, digits, or TYPE:PATH (iam, iam-ok, ifnenit, ifnenit-aw1, page, alto, "
                   "folder, list).")
@click.option("--val", "val_data", required=True, metavar="DATA", help="Validation data.")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: model.keras, checkpoint/, log.csv, tensorboard/.")
@click.option("--preset", type=click.Choice(list(PRESETS)), default="graves2009",
              show_default=True,
              help="Network; graves2009_x9 has a 4x1 last block (twice the CTC frames), "
                   "graves2009_x9_wide twice its widths, graves2009_x6_wide a 4x2 middle "
                   "block (a third more frames again).")
@click.option("--spec", "spec_file", type=click.Path(exists=True, dir_okay=False),
              help="JSON file of a network spec (see mdrnn.models); replaces --preset.")
@click.option("--height", type=click.IntRange(8, 1024), default=64, show_default=True,
              help="Line height the images are scaled to.")
@click.option("--right-to-left", is_flag=True,
              help="The script runs right to left (Arabic, Hebrew): lines are mirrored.")
@click.option("--epochs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam",
              show_default=True, help="sgd uses momentum 0.9 (Graves: --learning-rate 1e-4).")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True),
              help="Default 1e-3 for adam, 1e-4 for sgd.")
@click.option("--schedule", type=click.Choice(["constant", "cosine", "plateau"]),
              default="constant", show_default=True,
              help="Learning rate per epoch: cosine decays to 0 over --epochs; plateau cuts it "
                   "by --lr-factor after --lr-patience epochs without a better validation CER.")
@click.option("--lr-factor", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.3, show_default=True, help="The plateau schedule's cut.")
@click.option("--lr-patience", type=click.IntRange(min=1), default=8, show_default=True,
              help="Epochs without a better validation CER before the plateau cut.")
@click.option("--patience", type=click.IntRange(min=1), default=20, show_default=True,
              help="Stop after this many epochs without a better validation CER.")
@click.option("--augment", is_flag=True, help="Distort training lines (shape and contrast).")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True),
              help="Dropout after the feed-forward layers.")
@click.option("--epoch-lines", type=click.IntRange(min=1),
              help="Lines per epoch (a new random subset each epoch) [all].")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), metavar="MINUTES",
              help="Stop after the epoch in which this much time has passed.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--xla/--no-xla", default=True, show_default=True,
              help="Compile forward and backward passes with XLA.")
@click.option("--mixed-precision", is_flag=True, help="float16 compute (for GPUs).")
@click.option("--devices", type=click.IntRange(min=1),
              help="Train on this many devices (MirroredStrategy) [all GPUs, else the CPU].")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out.")
@click.option("--from", "from_model", metavar="MODEL",
              help="Fine-tune a trained model (file or shipped name): its network, height "
                   "and weights, its charset extended by the new data's symbols. --preset, "
                   "--spec, --height and --right-to-left are then the model's.")
@click.option("--lm", "lm_mode", type=click.Choice(["auto", "none"]), default="none",
              show_default=True,
              help="auto: after training, build a character LM of the training texts, tune "
                   "its weight on --val and store both in the model (needs the lm extra).")
@click.option("--lm-order", type=click.IntRange(1, 20), default=6, show_default=True,
              help="The --lm auto model's longest n-gram.")
def train_command(train_data, val_data, out, preset, spec_file, height, right_to_left, epochs,
                  batch_size, optimizer, learning_rate, schedule, lr_factor, lr_patience,
                  patience, augment, dropout, epoch_lines, time_limit, seed, xla,
                  mixed_precision, devices, resume, from_model, lm_mode, lm_order):
    """Train a recogniser; the best model by validation CER is OUT/model.keras."""
    import json

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with user_errors():
        spec = preset
        if spec_file:
            try:
                spec = json.loads(Path(spec_file).read_text(encoding="utf-8"))
            except ValueError as error:
                raise click.BadParameter(f"{spec_file}: {error}", param_hint="--spec") from None
        from mdrnn.datasets.formats import open_source
        from mdrnn.pipelines.train import TrainConfig, train
        from mdrnn.zoo import resolve_model

        initial = None if from_model is None else str(resolve_model(from_model).resolve())
        if dropout is not None and initial is None:
            spec = {**resolve_spec(spec), "dropout": dropout}

        try:
            config = TrainConfig(
                spec=spec, preprocessing={"height": height, "right_to_left": right_to_left},
                epochs=epochs,
                batch_size=batch_size, optimizer=optimizer, learning_rate=learning_rate,
                schedule=schedule, lr_factor=lr_factor, lr_patience=lr_patience,
                patience=patience, augment=augment, epoch_lines=epoch_lines,
                time_limit=None if time_limit is None else 60 * time_limit, seed=seed, xla=xla,
                mixed_precision=mixed_precision, initial_model=initial,
                initial_dropout=dropout if initial else None)
        except ValueError as error:
            raise click.UsageError(str(error)) from None
        if lm_mode == "auto":
            from mdrnn.lm import require_varikn

            require_varikn()  # fail now, not after hours of training, if the extra is missing
        train_samples, val_samples = (open_source(train_data, seed=seed),
                                      open_source(val_data, seed=seed))
        result = train(train_samples, val_samples, out, config, resume=resume, devices=devices,
                       verbose=0 if _quiet() else 1)
        click.echo(f"best validation CER {100 * result.best_cer:.2f}% at epoch "
                   f"{result.best_epoch}; model: {result.model_path}")
        if lm_mode == "auto":
            from mdrnn.pipelines.lm_tune import lm_auto

            lm, trials = lm_auto(result.model_path, train_samples, val_samples, order=lm_order)
            if lm.weight:
                click.echo(f"with its {lm_order}-gram character LM (weight {lm.weight:g}): "
                           f"validation CER {100 * min(t.cer for t in trials):.2f}%, beam "
                           f"search without it {100 * trials[0].cer:.2f}%")


main.add_command(lm_group)


@main.command()
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("mdrnn-demo"), show_default=True, help="Output folder.")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=15.0,
              show_default=True,
              help="Time limit: training stops after its epochs or this long, if sooner.")
@click.option("--seed", type=int, default=0, show_default=True)
def demo(out, minutes, seed):
    """Train on the bundled real handwritten digit strings and report the error rate.

    The model trains on strings of MNIST digit images, is chosen on strings of
    other digit images, and is measured on strings of digit images it never saw.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with user_errors():
        from mdrnn.pipelines.checkpoint import read_state

        if read_state(out / "checkpoint") is not None:
            raise click.UsageError(f"{out} already holds a run; choose another --out")
        from mdrnn.pipelines.demo import DEMO_EPOCHS, run_demo

        click.echo(f"Training an MDLSTM recogniser on handwritten digit strings: {DEMO_EPOCHS} "
                   f"epochs, about 10 minutes on 2 CPU cores, at most {minutes:g} (output in "
                   f"{out}) ...", err=True)
        result = run_demo(out, minutes, seed=seed, verbose=0 if _quiet() else 1)
    click.echo(f"\nTest CER {100 * result.test_cer:.2f}%, WER {100 * result.test_wer:.2f}% on "
               f"{result.test_lines} lines of unseen digits (validation CER "
               f"{100 * result.val_cer:.2f}%, {result.epochs} epochs, {result.seconds / 60:.1f} "
               f"min).\nModel: {result.model_path}\n\nSample transcriptions:")
    for name, reference, hypothesis, confidence in result.samples:
        mark = "ok " if reference == hypothesis else "ERR"
        click.echo(f"  {mark} {hypothesis:14s} (truth {reference}, confidence "
                   f"{confidence:.2f})  {out / 'samples' / name}")
    click.echo(f"\nNext:\n"
               f"  mdrnn transcribe {result.model_path} {out / 'samples'} --out {out / 'text'}\n"
               f"  mdrnn evaluate {result.model_path} digits:test\n"
               f"  mdrnn train --train digits:train:30000 --val digits:val:500 --out runs/digits "
               f"--preset graves2009_x9_wide \\\n"
               f"      --learning-rate 3e-3 --schedule cosine --augment --dropout 0.1 "
               f"--epoch-lines 2000 --epochs 100 --patience 30   # the full recipe (about an hour)")
