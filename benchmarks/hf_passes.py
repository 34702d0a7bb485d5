"""The passes of a Hessian-free step on a recogniser, the batch in one call or in shards.

`mdrnn train --optimizer hf` makes, per step, a loss-and-gradient pass on each
gradient batch, loss passes at trial points (CG backtracking, ρ, the line search)
and Gauss-Newton products on the curvature batch (`mdrnn.pipelines.train_hf`). With
`shards` > 1 each pass splits its batch into independent calls that TensorFlow runs
side by side. This times each pass on one batch of random lines (the MDLSTM's cost
does not depend on the pixels) with the batch whole and in `--shards` parts, the
variants interleaved, median and range over `--repeats` after one warm-up call each.

    python benchmarks/hf_passes.py [--batch 16] [--height 64] [--width 390] [--shards 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mdrnn.models import build_model, output_lengths  # noqa: E402
from mdrnn.pipelines.train_hf import HFSteps  # noqa: E402


def make_batch(model, batch: int, height: int, width: int) -> dict:
    rng = np.random.default_rng(0)
    length = max(1, int(output_lengths(model, width)) // 3)
    return {"image": tf.constant(rng.random((batch, height, width, 1), np.float32)),
            "width": tf.constant([width] * batch, tf.int32),
            "labels": tf.constant(rng.integers(1, 11, (batch, length)), tf.int32),
            "label_length": tf.constant([length] * batch, tf.int32)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="graves2009_x9")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=390)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    model = build_model(args.preset, 10, height=args.height)
    batch = make_batch(model, args.batch, args.height, args.width)
    strategy = tf.distribute.get_strategy()
    variants = {shards: HFSteps(model, strategy, 4, shards=shards).hf
                for shards in (1, args.shards)}
    vector = tf.random.normal(variants[1].flat_weights().shape)
    passes = {"loss": lambda hf: hf._value(batch),
              "loss and gradient": lambda hf: hf._gradient(batch),
              "Gauss-Newton product": lambda hf: hf.gauss_newton_product(batch, vector, 1.0)}
    times = {(name, shards): [] for name in passes for shards in variants}
    for run in passes.values():
        for hf in variants.values():  # warm-up: tracing and XLA compiling
            tf.nest.map_structure(lambda t: t.numpy(), run(hf))
    for _ in range(args.repeats):
        for name, run in passes.items():
            for shards, hf in variants.items():
                started = time.perf_counter()
                tf.nest.map_structure(lambda t: t.numpy(), run(hf))
                times[name, shards].append(1000 * (time.perf_counter() - started))
    print(f"{args.preset}, {args.batch} lines of {args.height} x {args.width}, "
          f"median (range) of {args.repeats} interleaved calls, ms")
    for name in passes:
        cells = []
        for shards in variants:
            t = times[name, shards]
            cells.append(f"{shards} shard(s) {statistics.median(t):7.1f} "
                         f"({min(t):.1f}-{max(t):.1f})")
        ratio = statistics.median(times[name, 1]) / statistics.median(times[name, args.shards])
        print(f"{name:22s} " + "   ".join(cells) + f"   ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
