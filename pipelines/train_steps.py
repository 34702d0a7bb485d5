"""The compiled pieces of training: optimiser, CTC train step, validation (over the
forward pass of `mdrnn.models.padded_forward`) and the tf.distribute strategy."""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from mdrnn.ctc import ctc_loss
from mdrnn.datasets.charset import Charset
from mdrnn.datasets.line_dataset import LineDataset
from mdrnn.decoding import greedy_decode
from mdrnn.errors import InputError
from mdrnn.models import output_lengths
from mdrnn.pipelines.metrics import ErrorRates, error_rates
from mdrnn.pipelines.train_config import TrainConfig, base_learning_rate


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(base_learning_rate(config), momentum=config.momentum,
                                         global_clipnorm=config.clip_norm)
    else:
        optimizer = keras.optimizers.Adam(base_learning_rate(config),
                                          global_clipnorm=config.clip_norm)
    if config.mixed_precision:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def has_keras_rnn(model) -> bool:
    return any(isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))
               for layer in model.layers)


def default_shards(strategy: tf.distribute.Strategy, batch_size: int) -> int:
    """One shard per core this process may use, when it trains on one CPU device.

    XLA's CPU code runs a compiled step on one thread (the wavefront's steps are small
    and sequential), so a step over the whole batch uses one core however many there
    are; shards of the batch computed side by side use them all.
    """
    if strategy.num_replicas_in_sync > 1 or tf.config.list_logical_devices("GPU"):
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), batch_size))


def _shard_sizes(batch_size: int, shards: int) -> list[int]:
    return [batch_size // shards + (i < batch_size % shards) for i in range(shards)]


def make_train_step(model, optimizer, strategy, global_batch: int, xla: bool = True,
                    shards: int = 1):
    """A compiled training step; returns the mean loss of the batch.

    With `xla`, forward and backward are compiled per replica with XLA and the sparse
    CTC kernel runs outside. Keras RNN layers cannot send their gradient across an
    XLA boundary (TensorList), and compiling their whole step with the dense CTC
    formulation ran 18x slower (benchmarks/train_speed.py), so they run without XLA.

    With `shards` > 1 each replica's batch (of `global_batch` / replicas lines, as
    training batches are: it drops incomplete ones) is split into that many parts
    whose forward and backward passes are independent calls, which TensorFlow runs
    concurrently on its inter-op threads; their gradients are summed, so the update
    is the one of the whole batch (up to the order of floating-point sums).
    """
    compiled = xla and not has_keras_rnn(model)
    forward = tf.function(lambda image, width: model({"image": image, "width": width},
                                                     training=True), jit_compile=compiled)
    scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    replica_batch = global_batch // strategy.num_replicas_in_sync
    sizes = _shard_sizes(replica_batch, max(1, min(shards, replica_batch)))
    variables = model.trainable_variables

    def loss_and_grads(part):
        with tf.GradientTape() as tape:
            logits = forward(part["image"], part["width"])
            frames = output_lengths(model, part["width"])
            # The pipeline dropped lines that cannot fit, so no check in the step.
            losses = ctc_loss(part["labels"], logits, part["label_length"], frames,
                              check=False)
            loss = tf.reduce_sum(losses) / global_batch
            objective = optimizer.scale_loss(loss) if scaled else loss
        return loss, tape.gradient(objective, variables)

    def replica_step(batch):
        if len(sizes) == 1:
            loss, grads = loss_and_grads(batch)
        else:
            pieces = {key: tf.split(value, sizes) for key, value in batch.items()}
            results = [loss_and_grads({key: value[i] for key, value in pieces.items()})
                       for i in range(len(sizes))]
            loss = tf.add_n([result[0] for result in results])
            grads = [None if any(g is None for g in shard_grads) else tf.add_n(shard_grads)
                     for shard_grads in zip(*(result[1] for result in results))]
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    @tf.function(reduce_retracing=True)
    def step(batch):
        losses = strategy.run(replica_step, args=(batch,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    return step


def _hypothesis(charset: Charset, ids, reference):
    # Token transcriptions (IFN/ENIT shapes) are compared token by token.
    return charset.decode(ids) if isinstance(reference, str) else tuple(
        charset.decode_symbols(ids))


def evaluate_dataset(predict, data: LineDataset) -> tuple[ErrorRates, list[tuple]]:
    """Greedy-decode every line of `data` with `predict` (`mdrnn.models.padded_forward`);
    return (rates, [(sample, hypothesis, confidence)])."""
    rows = []
    for batch in data.dataset():
        logits, frames = predict(batch["image"], batch["width"].numpy())
        decoded = greedy_decode(logits, frames)
        for i, (ids, confidence) in zip(batch["index"].numpy(), decoded):
            sample = data.samples[i]
            rows.append((sample, _hypothesis(data.charset, ids, sample.text), confidence))
    rates = error_rates([s.text for s, _, _ in rows], [h for _, h, _ in rows])
    return rates, rows


def is_chief() -> bool:
    """Whether this process writes the run's outputs: always, except for the workers
    other than the chief of a MultiWorkerMirroredStrategy cluster (`TF_CONFIG`; the
    chief is the "chief" task, or worker 0 where there is none)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    cluster, task = config.get("cluster") or {}, config.get("task") or {}
    if not cluster:
        return True
    kind, index = task.get("type"), int(task.get("index", 0))
    return kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)


def choose_strategy(devices: int | None = None) -> tf.distribute.Strategy:
    """MultiWorkerMirrored under TF_CONFIG, Mirrored over several devices, else default."""
    if "TF_CONFIG" in os.environ and json.loads(os.environ["TF_CONFIG"]).get("cluster"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    available = gpus or cpus
    if devices is None:
        devices = len(gpus) or 1
    if devices > len(available):
        raise InputError(f"{devices} devices asked for, {len(available)} available")
    if devices <= 1:
        return tf.distribute.get_strategy()
    return tf.distribute.MirroredStrategy([d.name for d in available[:devices]])
