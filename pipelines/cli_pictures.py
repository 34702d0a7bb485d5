"""`mdrnn show` and `mdrnn plot`: pictures of what a model reads, and of a training run."""

from __future__ import annotations

from pathlib import Path

import click

from mdrnn.pipelines.options import (
    compute_options,
    decoder_options,
    echo_failure,
    load_recognizer,
    out_folder,
    progress_bar,
    quiet,
    report_failures,
    user_errors,
)


@click.command("show")
@click.argument("model")
@click.argument("inputs", nargs=-1, required=True)
@out_folder(name="out_dir")
@click.option("--activations", is_flag=True,
              help="Add the first MDLSTM level's activations in each scan direction.")
@click.option("--pages", is_flag=True,
              help="Inputs are page scans: draw the lines found, their baselines, reading "
                   "order and texts.")
@decoder_options
@compute_options
def show_command(model, inputs, out_dir, activations, pages, decoding, compute):
    """Draw what MODEL reads in each line image: OUT/<name>.png.

    Each picture shows the line as the network saw it with every character over the
    columns it was read from, coloured by its confidence, the line image as given
    with the same columns, the CTC output per frame and, with --activations, what
    the first MDLSTM level sees in each of its four scan directions. With --pages,
    each input is a page: the lines found and, facing them, their texts. INPUTS are
    as for `mdrnn transcribe` (needs: pip install "mdrnn[plot]").
    """
    from mdrnn.errors import InputError
    from mdrnn.pipelines.inputs import expand_inputs

    problems: list[tuple[str, str]] = []
    try:
        files = expand_inputs(inputs, problems)
    except InputError as error:
        raise click.BadParameter(str(error), param_hint="INPUTS") from None
    for _, reason in problems:
        echo_failure(reason)
    with user_errors():
        from mdrnn.pipelines.pictures import pyplot

        pyplot()  # the extra is missing: say so before loading the model
        recognizer = load_recognizer(model, decoding, compute)
        if activations and not pages:
            _check_mdlstm(model, recognizer.model)
        from mdrnn.pipelines.folder_lock import exclusive_folder

        with exclusive_folder(out_dir), progress_bar(len(files), "Drawing") as bar:
            progress = bar.update if bar is not None else None
            failures = (_draw_pages(recognizer, files, out_dir, progress) if pages else
                        _draw_lines(recognizer, files, out_dir, activations, progress))
    if not quiet():
        click.echo(f"{len(files) - len(failures)} drawn, {len(failures) + len(problems)} "
                   f"failed; output in {out_dir}", err=True)
    report_failures([*problems, *failures], len(files) + len(problems), "inputs")


def _check_mdlstm(name, model) -> None:
    from mdrnn.errors import InputError
    from mdrnn.pipelines.explain import first_mdlstm

    try:
        first_mdlstm(model)  # built once here, used for every line
    except ValueError:
        raise InputError(f"{name}: --activations draws the scans of an MDLSTM level, and "
                         "this model has none") from None


def _draw_lines(recognizer, files, out_dir, activations, progress) -> list[tuple[str, str]]:
    from mdrnn.datasets.imageio import load_image
    from mdrnn.errors import InputError
    from mdrnn.pipelines.atomic import atomic_write
    from mdrnn.pipelines.explain import explain
    from mdrnn.pipelines.pictures import render

    failures = []
    for item in files:
        try:
            explanation = explain(recognizer, load_image(item.path), activations=activations)
            target = out_dir / f"{item.name}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, render(explanation, item.path.name))
        except (InputError, OSError, ValueError) as error:
            reason = str(error) if str(item.path) in str(error) else f"{item.path}: {error}"
            failures.append((str(item.path), reason))
            echo_failure(reason)
        if progress is not None:
            progress(1)
    return failures


def _draw_pages(recognizer, files, out_dir, progress) -> list[tuple[str, str]]:
    from mdrnn.pipelines.transcribe import transcribe_files

    report = transcribe_files(recognizer, files, _PageDrawer(out_dir), pages=True,
                              progress=progress,
                              on_failure=lambda path, reason: echo_failure(reason))
    return [(str(path), reason) for path, reason in report.failures]


class _PageDrawer:
    """A transcription writer (`mdrnn.pipelines.writers`) that draws each page."""

    def __init__(self, out_dir):
        self.out_dir = out_dir

    def is_done(self, item) -> bool:
        return False

    def write(self, transcription) -> None:
        from mdrnn.datasets.imageio import load_image
        from mdrnn.pipelines.atomic import atomic_write
        from mdrnn.pipelines.pictures import render_page

        item = transcription.item
        target = self.out_dir / f"{item.name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, render_page(load_image(item.path), transcription, item.path.name))

    def write_failure(self, item, reason: str) -> None:
        pass  # reported by the job


@click.command("plot")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              help="The picture [RUN_DIR/curves.png].")
def plot_command(run_dir, out):
    """Draw a training run's curves from RUN_DIR/log.csv: loss, validation CER and WER,
    learning rate per epoch (`mdrnn train` draws them too, as curves.png, when the plot
    extra is installed)."""
    from mdrnn.pipelines.atomic import atomic_write
    from mdrnn.pipelines.pictures import curves, read_log

    with user_errors():
        target = out or run_dir / "curves.png"
        atomic_write(target, curves(read_log(run_dir / "log.csv"), run_dir.name))
    if not quiet():
        click.echo(f"curves of {run_dir} in {target}", err=True)
