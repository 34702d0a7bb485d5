"""Training-step speed of graves2009 and blstm_ctc, and the share of CTC in a step.

Batches of B lines of H x W pixels with random labels; each variant is the real
training step of `mdrnn.pipelines.train` (forward/backward, sparse CTC, Adam update),
with XLA on and off (blstm_ctc: off only, as training runs it). Variants are
timed interleaved, median after warm-up. The CTC share is the time of the loss and
its gradient alone on the model's logits, over the step time.

    python benchmarks/train_speed.py [--batch 16] [--height 64] [--width 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mdrnn.ctc import ctc_loss  # noqa: E402
from mdrnn.models import build_model, output_lengths  # noqa: E402
from mdrnn.pipelines.train_config import TrainConfig  # noqa: E402
from mdrnn.pipelines.train_steps import (  # noqa: E402
    has_keras_rnn,
    make_optimizer,
    make_train_step,
)

CLASSES = 80


def make_batch(model, batch: int, height: int, width: int, seed: int = 0,
               classes: int = CLASSES) -> dict:
    rng = np.random.default_rng(seed)
    frames = int(output_lengths(model, width))
    length = max(1, frames // 3)
    return {
        "image": tf.constant(rng.uniform(size=(batch, height, width, 1)).astype("float32")),
        "width": tf.constant(np.full(batch, width, "int32")),
        "labels": tf.constant(rng.integers(1, classes + 1, (batch, length)).astype("int32")),
        "label_length": tf.constant(np.full(batch, length, "int32")),
    }


def make_variant(preset: str, xla: bool, args):
    model = build_model(preset, CLASSES, height=args.height)
    optimizer = make_optimizer(TrainConfig())
    optimizer.build(model.trainable_variables)
    step = make_train_step(model, optimizer, tf.distribute.get_strategy(), args.batch, xla)
    batch = make_batch(model, args.batch, args.height, args.width)
    return model, lambda: float(step(batch)), batch


def make_ctc_only(model, batch):
    logits = tf.constant(model({"image": batch["image"], "width": batch["width"]}))
    frames = output_lengths(model, batch["width"])

    @tf.function
    def loss_and_grad():
        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = tf.reduce_sum(ctc_loss(batch["labels"], logits, batch["label_length"],
                                          frames, check=False))
        return tape.gradient(loss, logits)

    return lambda: loss_and_grad().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--presets", default="graves2009,blstm_ctc")
    args = parser.parse_args()
    print(f"# {time.strftime('%Y-%m-%d')}  cores={os.cpu_count()}  TF {tf.__version__}  "
          f"Keras {keras.__version__}  batch={args.batch}  lines {args.height}x{args.width}")
    runs, ctc_runs = {}, {}
    for preset in args.presets.split(","):
        # Keras RNN layers train without XLA (see make_train_step): no XLA variant.
        keras_rnn = has_keras_rnn(build_model(preset, CLASSES, height=args.height))
        for xla in (False,) if keras_rnn else (True, False):
            model, run, batch = make_variant(preset, xla, args)
            runs[f"{preset}{'+xla' if xla else ''}"] = run
        ctc_runs[preset] = make_ctc_only(model, batch)
    everything = {**runs, **{f"ctc-only:{p}": r for p, r in ctc_runs.items()}}
    for run in everything.values():  # warm-up: trace and compile
        run()
        run()
    times = {name: [] for name in everything}
    for _ in range(args.repeats):
        for name, run in everything.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    ms = {name: statistics.median(t) * 1000 for name, t in times.items()}
    print(f"\n{'variant':22s} {'ms/step':>9s} {'ms/line':>8s} {'lines/s':>8s} {'CTC share':>9s}")
    for name in runs:
        preset = name.removesuffix("+xla")
        share = ms[f"ctc-only:{preset}"] / ms[name]
        print(f"{name:22s} {ms[name]:9.1f} {ms[name] / args.batch:8.2f} "
              f"{1000 * args.batch / ms[name]:8.1f} {100 * share:8.1f}%")
    presets = args.presets.split(",")
    if len(presets) == 2:
        best = {p: min(ms[p], ms.get(p + "+xla", ms[p])) for p in presets}
        print(f"\n{presets[0]} / {presets[1]} (best of XLA on/off) = "
              f"{best[presets[0]] / best[presets[1]]:.2f}")


if __name__ == "__main__":
    main()
