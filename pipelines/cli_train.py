"""`mdrnn train` and `mdrnn demo`: training commands over `mdrnn.pipelines.train`.

TensorFlow is imported inside the commands only, so `mdrnn --help` answers at once.
"""

import difflib
import json
from pathlib import Path

import click

from mdrnn.pipelines.options import (
    allow_outside_option,
    height_option,
    out_folder,
    quiet,
    start_tensorflow,
    user_errors,
)
from mdrnn.pipelines.schedule import SCHEDULES
from mdrnn.presets import PRESETS


def _read_config(ctx: click.Context, param: click.Parameter, value: str | None):
    """Load --config FILE as defaults for the other options (the command line wins).

    Keys are option names, with dashes or underscores (``learning-rate``,
    ``learning_rate``); an unknown key is an error that names the closest one.
    """
    if value is None:
        return None
    text = Path(value).read_text(encoding="utf-8")
    if value.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise click.BadParameter(f"{value}: YAML needs PyYAML (pip install pyyaml); or "
                                     f"write the file as JSON", param_hint="--config") from None
        parse, errors = yaml.safe_load, (yaml.YAMLError,)
    else:
        parse, errors = json.loads, (ValueError,)
    try:
        data = parse(text)
    except errors as error:
        raise click.BadParameter(f"{value}: {' '.join(str(error).split())}",
                                 param_hint="--config") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{value}: must hold a mapping of option names to values",
                                 param_hint="--config")
    names = {}
    for option in ctx.command.params:
        if option.name != param.name:
            for flag in option.opts:
                if flag.startswith("--"):
                    names[flag[2:]] = option.name
                    names[flag[2:].replace("-", "_")] = option.name
    defaults = {}
    for key, setting in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), sorted(names), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise click.BadParameter(f"{value}: unknown key {key!r}{hint}", param_hint="--config")
        defaults[names[key]] = setting
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def _summary(summary: dict) -> str:
    """The run in one line: lines used and skipped (and why), symbols, weights, time."""
    parts = []
    for name, what in (("train", "trained on"), ("val", "validated on")):
        data = summary[name]
        skipped = ", ".join(f"{n} {kind}" for kind, n in data["skipped"].items())
        parts.append(f"{what} {data['lines']} lines" + (f" ({sum(data['skipped'].values())} "
                                                         f"skipped: {skipped})" if skipped else ""))
    return (f"{'; '.join(parts)}; {summary['symbols']} symbols, {summary['weights']:,} "
            f"weights; {summary['seconds'] / 60:.1f} min")


@click.command("train")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              is_eager=True, expose_value=False, callback=_read_config,
              help="A JSON (or YAML) file of option values, keyed by option name "
                   "(e.g. {\"preset\": \"graves2009_x6_wide\", \"augment\": true}); options "
                   "given on the command line override it.")
@click.option("--train", "train_data", required=True, metavar="DATA",
              help="Training data: a folder of images with .gt.txt, a TSV list, a PAGE or ALTO "
                   ".xml, digits, or TYPE:PATH (iam, iam-ok, ifnenit, ifnenit-aw1, page, alto, "
                   "folder, list).")
@click.option("--val", "val_data", required=True, metavar="DATA", help="Validation data.")
@out_folder("Output folder: model.keras, checkpoint/, log.csv, tensorboard/.")
@click.option("--preset", type=click.Choice(list(PRESETS)), default="graves2009",
              show_default=True,
              help="Network; graves2009_x9 has a 4x1 last block (twice the CTC frames), "
                   "graves2009_x9_wide twice its widths, graves2009_x6_wide a 4x2 middle "
                   "block (a third more frames again).")
@click.option("--spec", "spec_file", type=click.Path(exists=True, dir_okay=False),
              help="JSON file of a network spec (see mdrnn.models); replaces --preset.")
@height_option(default=64, show_default=True)
@click.option("--right-to-left", is_flag=True,
              help="The script runs right to left (Arabic, Hebrew): lines are mirrored.")
@click.option("--epochs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--optimizer", type=click.Choice(["adam", "sgd", "hf"]), default="adam",
              show_default=True,
              help="sgd uses momentum 0.9 (Graves: --learning-rate 1e-4); hf is Hessian-free "
                   "(Martens 2010), one step per --hf-batches batches, on one device.")
@click.option("--hf-batches", type=click.IntRange(min=1), default=4, show_default=True,
              help="hf: batches per step (gradient on all, curvature on the first).")
@click.option("--hf-damping", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="hf: the initial damping λ (adapted as it goes).")
@click.option("--hf-max-cg", type=click.IntRange(min=1), default=50, show_default=True,
              help="hf: conjugate-gradient iterations per step at most.")
@click.option("--hf-average", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              show_default=True,
              help="hf: validate and save a moving average of the weights over steps with "
                   "this decay (e.g. 0.95; 0: the weights themselves).")
@click.option("--hf-precondition", type=click.FloatRange(0, 1), default=0.0,
              show_default=True,
              help="hf: precondition CG by Martens' diagonal (squared gradients + λ) to "
                   "this power (he takes 0.75; 0: none).")
@click.option("--hf-clip", type=float, default=0.0, show_default=True,
              help="hf: scale each weight tensor's part of a batch gradient down to this many "
                   "times its median norm over the last 200 batch gradients (gradients from a "
                   "cliff of the loss; e.g. 4; 0: never).")
@click.option("--hf-structural", type=click.FloatRange(min=0), default=0.0,
              show_default=True,
              help="hf: structural damping μ (Martens & Sutskever 2011): damp changes of the "
                   "recurrent layers' outputs by λμ (0: none).")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True),
              help="Default 1e-3 for adam, 1e-4 for sgd; for hf the share of each step taken "
                   "(default 1: whole steps), which --schedule then lowers.")
@click.option("--schedule", type=click.Choice(SCHEDULES),
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
@click.option("--shards", type=click.IntRange(min=1),
              help="Split each batch into this many parts computed side by side [on the "
                   "CPU: one per core this process may use].")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out.")
@allow_outside_option
@click.option("--strict", is_flag=True,
              help="Stop before training if any line cannot be used (unreadable, too wide, "
                   "too dense for the network) instead of skipping it.")
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
                  batch_size, optimizer, hf_batches, hf_damping, hf_max_cg, hf_average,
                  hf_precondition, hf_clip, hf_structural, learning_rate, schedule, lr_factor,
                  lr_patience, patience, augment, dropout, epoch_lines, time_limit, seed, xla,
                  mixed_precision, devices, shards, resume, strict, from_model, lm_mode, lm_order):
    """Train a recogniser; the best model by validation CER is OUT/model.keras."""
    import json

    start_tensorflow()
    with user_errors():
        spec = preset
        if spec_file:
            try:
                spec = json.loads(Path(spec_file).read_text(encoding="utf-8"))
            except ValueError as error:
                raise click.BadParameter(f"{spec_file}: {error}", param_hint="--spec") from None
        from mdrnn.datasets.formats import open_source
        from mdrnn.pipelines.preprocess_config import PreprocessConfig
        from mdrnn.pipelines.train import train
        from mdrnn.pipelines.train_config import TrainConfig
        from mdrnn.zoo import resolve_model

        initial = None if from_model is None else str(resolve_model(from_model).resolve())

        try:
            config = TrainConfig(
                spec=spec,
                preprocessing=PreprocessConfig(height=height, right_to_left=right_to_left),
                epochs=epochs,
                batch_size=batch_size, optimizer=optimizer, hf_batches=hf_batches,
                hf_damping=hf_damping, hf_max_cg=hf_max_cg, hf_average=hf_average,
                hf_precondition=hf_precondition, hf_clip=hf_clip,
                hf_structural=hf_structural,
                learning_rate=learning_rate,
                schedule=schedule, lr_factor=lr_factor, lr_patience=lr_patience,
                patience=patience, augment=augment, epoch_lines=epoch_lines,
                time_limit=None if time_limit is None else 60 * time_limit, seed=seed, xla=xla,
                mixed_precision=mixed_precision, initial_model=initial,
                dropout=dropout, strict=strict)
        except ValueError as error:
            raise click.UsageError(str(error)) from None
        if lm_mode == "auto":
            from mdrnn.lm import require_varikn

            require_varikn()  # fail now, not after hours of training, if the extra is missing
        train_samples, val_samples = (open_source(train_data, seed=seed),
                                      open_source(val_data, seed=seed))
        try:
            result = train(train_samples, val_samples, out, config, resume=resume,
                           devices=devices, shards=shards, verbose=0 if quiet() else 1)
        except KeyboardInterrupt:
            click.echo(f"\ninterrupted: the last finished epoch is in {out / 'checkpoint'}; "
                       f"add --resume to the same command to continue", err=True)
            raise click.Abort() from None
        click.echo(f"best validation CER {100 * result.best_cer:.2f}% at epoch "
                   f"{result.best_epoch}; model: {result.model_path}")
        click.echo(_summary(result.summary), err=True)
        if lm_mode == "auto":
            from mdrnn.pipelines.lm_tune import lm_auto

            lm, trials = lm_auto(result.model_path, train_samples, val_samples, order=lm_order)
            if lm.weight:
                click.echo(f"with its {lm_order}-gram character LM (weight {lm.weight:g}): "
                           f"validation CER {100 * min(t.cer for t in trials):.2f}%, beam "
                           f"search without it {100 * trials[0].cer:.2f}%")


@click.command()
@out_folder(default=Path("mdrnn-demo"), show_default=True)
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=15.0,
              show_default=True,
              help="Time limit: training stops after its epochs or this long, if sooner.")
@click.option("--seed", type=int, default=0, show_default=True)
def demo(out, minutes, seed):
    """Train on the bundled real handwritten digit strings and report the error rate.

    The model trains on strings of MNIST digit images, is chosen on strings of
    other digit images, and is measured on strings of digit images it never saw.
    """
    start_tensorflow()
    with user_errors():
        from mdrnn.pipelines.checkpoint import read_state

        if read_state(out / "checkpoint") is not None:
            raise click.UsageError(f"{out} already holds a run; choose another --out")
        from mdrnn.pipelines.demo import DEMO_EPOCHS, run_demo

        click.echo(f"Training an MDLSTM recogniser on handwritten digit strings: {DEMO_EPOCHS} "
                   f"epochs, about 10 minutes on 2 CPU cores, at most {minutes:g} (output in "
                   f"{out}) ...", err=True)
        result = run_demo(out, minutes, seed=seed, verbose=0 if quiet() else 1)
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
