"""Training: compiled CTC steps over bucketed batches, validation, checkpoints, resume.

The model's forward pass (and so its backward pass) is compiled with XLA; the CTC
loss runs outside it with TF's fused sparse kernel, which has no XLA lowering and
is several times faster than the dense formulation that has (benchmarks/).

An output folder holds:
    model.keras      the best model so far by validation CER (network, charset,
                     preprocessing), written atomically
    checkpoint/      the last finished epoch: all variables and the state to resume
    log.csv          one row per epoch
    tensorboard/     the same figures for TensorBoard
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mdrnn.datasets.charset import Charset
from mdrnn.datasets.line_dataset import LineDataset
from mdrnn.errors import InputError
from mdrnn.models import (
    build_model,
    output_lengths,
    padded_forward,
    transfer_weights,
    width_multiple,
)
from mdrnn.pipelines.atomic import atomic_path
from mdrnn.pipelines.checkpoint import read_state, restore_checkpoint, save_checkpoint
from mdrnn.pipelines.finetune import start_from
from mdrnn.pipelines.folder_lock import exclusive_folder
from mdrnn.pipelines.preprocess import preprocess_line
from mdrnn.pipelines.progress import EpochProgress
from mdrnn.pipelines.schedule import learning_rate, run_progress
from mdrnn.pipelines.train_config import TrainConfig, TrainResult, base_learning_rate
from mdrnn.pipelines.train_hf import HFSteps
from mdrnn.pipelines.train_records import write_records
from mdrnn.pipelines.train_steps import (
    choose_strategy,
    default_shards,
    evaluate_dataset,
    has_keras_rnn,
    is_chief,
    make_optimizer,
    make_train_step,
)
from mdrnn.presets import resolve_spec

log = logging.getLogger(__name__)

def _epoch_batches(data: LineDataset, config: TrainConfig, epoch: int) -> tf.data.Dataset:
    return data.dataset(epoch, max(1, config.epoch_lines // config.batch_size)
                        if config.epoch_lines else None)


def train(train_samples, val_samples, out_dir: str | Path, config: TrainConfig | None = None,
          *, resume: bool = False, devices: int | None = None, shards: int | None = None,
          verbose: int = 1) -> TrainResult:
    """Train a recogniser; the best model by validation CER goes to `out_dir/model.keras`.

    Args:
        train_samples, val_samples: sequences of `Sample`.
        out_dir: where the model, checkpoint and logs go.
        config: how to train; on `resume` the checkpoint's config is used instead.
        resume: continue the run whose checkpoint is in `out_dir`.
        devices: devices to train on (MirroredStrategy); None: all GPUs, or the CPU.
        shards: parts of each batch computed concurrently (`make_train_step`); None:
            one per core this process may use when training on the CPU.
        verbose: 0: epoch lines logged at INFO level only; otherwise logged as warnings
            (shown by default), with a progress line on a terminal.

    Under MultiWorkerMirroredStrategy (`TF_CONFIG` set) every worker runs this; the
    chief alone writes into `out_dir` (and holds its lock), the others write into a
    temporary folder that is removed when they finish.

    Raises:
        InputError: no checkpoint to resume, a finished run in the way, another job
            writing into `out_dir`, or a worker of the cluster lost (the run resumes
            from its last checkpoint when every worker is started again with `resume`).
    """
    out = Path(out_dir)
    try:
        if is_chief():
            with exclusive_folder(out):
                return _train(train_samples, val_samples, out, out, config, resume, devices,
                              shards, verbose)
        with tempfile.TemporaryDirectory(prefix="mdrnn-worker-") as scratch:
            return _train(train_samples, val_samples, out, Path(scratch), config, resume,
                          devices, shards, verbose)
    except tf.errors.UnavailableError as error:  # a worker of the cluster is gone
        reason = str(error).split("Collective ops is aborted by: ")[-1].splitlines()[0]
        raise InputError(f"{out}: training stopped, a worker of the cluster is unreachable "
                         f"({reason}); start every worker again with --resume") from None


def _train(train_samples, val_samples, out: Path, written: Path, config, resume, devices,
           shards, verbose) -> TrainResult:
    """`train`, reading a run to resume from `out` and writing into `written`."""
    folder = out / "checkpoint"
    state = read_state(folder)
    if resume and state is None:
        raise InputError(f"{out}: no checkpoint to resume from")
    if not resume and state is not None:
        raise InputError(f"{out} already holds a training run; pass --resume to continue "
                         "it or choose another output folder")
    if state is not None:
        config = TrainConfig.from_dict(state["config"])
        charset = Charset.from_config(state["charset"])
    else:
        config = config or TrainConfig()
        charset = Charset.from_texts(s.text for s in train_samples)
        if config.initial_model:
            initial, config, charset = start_from(config, train_samples)
    preprocessing = config.preprocessing
    spec = resolve_spec(config.spec)
    if config.dropout is not None:
        spec["dropout"] = config.dropout
    keras.utils.set_random_seed(config.seed)
    previous_policy = keras.config.dtype_policy()
    if config.mixed_precision:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        strategy = choose_strategy(devices)
        with strategy.scope():
            try:
                model = build_model(spec, len(charset.symbols), height=preprocessing.height,
                                    charset=charset.to_config(),
                                    preprocessing=preprocessing.to_dict())
            except ValueError as error:  # a spec (--spec FILE) the builder refuses
                raise InputError(" ".join(str(error).split())) from None
            if shards is None:
                shards = default_shards(strategy, config.batch_size)
            if config.optimizer == "hf":  # its shards split the curvature products
                optimizer = HFSteps(model, strategy, config.hf_batches, shards=shards,
                                    xla=config.xla and not has_keras_rnn(model),
                                    average=config.hf_average, damping=config.hf_damping,
                                    max_cg=config.hf_max_cg,
                                    precondition=config.hf_precondition,
                                    clip=config.hf_clip,
                                    structural=config.hf_structural)
            else:
                optimizer = make_optimizer(config)
                optimizer.build(model.trainable_variables)
    finally:
        if config.mixed_precision:  # else leave the global policy as it was, unset
            keras.config.set_dtype_policy(previous_policy)
    if state is not None:
        state = restore_checkpoint(folder, model, optimizer)
        log.info("resuming %s after epoch %d", out, state["epoch"])
    elif config.initial_model:
        transfer_weights(initial, model)
        del initial

    def frames(width: int) -> int:
        return int(output_lengths(model, width))

    multiple = width_multiple(model)
    # Each width is one XLA compile; small sets get fewer, so that each fills batches.
    buckets = max(1, min(config.buckets, len(train_samples) // (8 * config.batch_size)))
    prepare = functools.partial(preprocess_line, config=preprocessing)
    train_data = LineDataset(train_samples, charset, prepare, height=preprocessing.height,
                             batch_size=config.batch_size, width_multiple=multiple,
                             num_buckets=buckets, training=True, seed=config.seed,
                             output_length=frames,
                             **({} if config.augment else {"augmentation": None}))
    val_data = LineDataset(val_samples, charset, prepare, height=preprocessing.height,
                           batch_size=config.batch_size,
                           width_multiple=multiple, num_buckets=config.buckets,
                           unknown="skip")
    summary = {"symbols": len(charset.symbols), "weights": int(model.count_params())}
    for name, data in (("train", train_data), ("val", val_data)):
        summary[name] = {"lines": len(data.samples) - len(data.dropped),
                         "skipped": data.drop_counts}
    if config.strict and (train_data.dropped or val_data.dropped):
        first = next(iter({**train_data.dropped, **val_data.dropped}.values()))
        raise InputError(f"strict: {len(train_data.dropped)} training and "
                         f"{len(val_data.dropped)} validation lines cannot be used (first: "
                         f"{first})")
    summary["shards"] = shards
    if shards > 1:
        log.info("each batch is computed in %d shards side by side", shards)
    if config.optimizer == "hf":
        step = optimizer
    else:
        compiled = make_train_step(model, optimizer, strategy, config.batch_size, config.xla,
                                   shards)

        def step(batch):
            return [float(compiled(batch))]
    predict = padded_forward(model, xla=config.xla, rows=config.batch_size)
    writer = tf.summary.create_file_writer(str(written / "tensorboard"))

    history = state["history"] if state else []
    best_cer = state["best_cer"] if state else math.inf
    best_epoch = state["best_epoch"] if state else 0
    elapsed = state["seconds"] if state else 0.0
    start_epoch = state["epoch"] + 1 if state else 1
    epoch = start_epoch - 1
    # HF may validate and save its weights' moving average.
    weights = optimizer.averaged if config.optimizer == "hf" else contextlib.nullcontext
    for epoch in range(start_epoch, config.epochs + 1):
        started = time.monotonic()
        progress = run_progress(epoch, config.epochs, elapsed, config.time_limit)
        rate = learning_rate(config.schedule, base_learning_rate(config), progress, history,
                             factor=config.lr_factor, patience=config.lr_patience)
        optimizer.learning_rate = rate
        batches = _epoch_batches(train_data, config, epoch)
        if epoch == start_epoch and config.xla:
            log.info("epoch %d: compiling the training step with XLA first (a few minutes "
                     "on a CPU, once per line width)", epoch)
        display = EpochProgress(epoch, config.epochs, int(batches.cardinality()),
                                show=None if verbose else False)
        losses = []
        for batch in strategy.experimental_distribute_dataset(batches):
            for loss in step(batch):  # HF: none until it holds a step's batches
                losses.append(loss)
                display.update(loss, config.batch_size)
        for loss in step.flush() if config.optimizer == "hf" else []:
            losses.append(loss)
            display.update(loss, config.batch_size)
        display.close()
        train_seconds = time.monotonic() - started
        lines = len(losses) * config.batch_size
        with weights():
            rates, _ = evaluate_dataset(predict, val_data)
        elapsed += time.monotonic() - started
        what = "learning rate"
        if config.optimizer == "hf":  # the log shows λ (the step share follows the schedule)
            what, rate = "damping λ", float(optimizer.hf.damping.numpy())
        row = {"epoch": epoch, "learning_rate": rate, "loss": float(np.mean(losses)),
               "val_cer": rates.cer, "val_wer": rates.wer, "val_line_accuracy": rates.line_accuracy,
               "lines_per_s": lines / train_seconds, "seconds": elapsed}
        history.append(row)
        if rates.cer < best_cer:
            best_cer, best_epoch = rates.cer, epoch
            with atomic_path(written / "model.keras") as tmp, weights():
                model.save(tmp)
        log.info("epoch %d: %s %.3g, loss %.3f, %.0f lines/s, validation CER %.2f%%, "
                 "WER %.2f%% (best %.2f%% at epoch %d)", epoch, what, rate, row["loss"],
                 row["lines_per_s"], 100 * rates.cer, 100 * rates.wer, 100 * best_cer, best_epoch)
        if config.optimizer == "hf":  # noise near 1 or above: more --hf-batches may help
            log.info("epoch %d: the last HF step's gradient had a relative standard error "
                     "of %.2f", epoch, optimizer.last.get("gradient_noise", math.nan))
        save_checkpoint(written / "checkpoint", model, optimizer, {
            "epoch": epoch, "best_cer": best_cer, "best_epoch": best_epoch, "seconds": elapsed,
            "history": history, "charset": charset.to_config(),
            "config": dataclasses.asdict(config)})
        with weights():
            write_records(written, writer, history, model, val_data.samples)
        if epoch - best_epoch >= config.patience:
            log.info("stopping: no better validation CER for %d epochs", config.patience)
            break
        if config.time_limit is not None and elapsed >= config.time_limit:
            log.info("stopping: time limit of %.0f s reached", config.time_limit)
            break
    return TrainResult(best_cer, best_epoch, epoch, written / "model.keras", history,
                       {**summary, "seconds": elapsed})
