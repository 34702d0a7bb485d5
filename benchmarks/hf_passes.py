"""Time of the passes a Hessian-free step is made of, on the HF digit recipe's network.

graves2009_x9 at height 64 (the demo's network), a batch of B random lines of W
pixels, the step's functions as `mdrnn train --optimizer hf` builds them (XLA on,
the products in one shard per core): the loss (forward pass and CTC), the loss and
its gradient, and one Gauss-Newton product G·v. The three are timed interleaved
after warm-up (first calls compile); the last line is a JSON object with each
pass's median seconds and its ratio to the loss pass. To compare two versions of
the code, run this script under each in turn, alternating, on a quiet machine.

    python benchmarks/hf_passes.py [--batch 16] [--width 320] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from train_speed import make_batch  # noqa: E402  (beside this script)

from mdrnn.models import build_model  # noqa: E402
from mdrnn.pipelines.train_hf import HFSteps  # noqa: E402
from mdrnn.pipelines.train_steps import default_shards  # noqa: E402

CLASSES = 10  # the ten digits of the digit recipe's lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    model = build_model("graves2009_x9", CLASSES, height=args.height)
    strategy = tf.distribute.get_strategy()
    steps = HFSteps(model, strategy, 1, shards=default_shards(strategy, args.batch))
    hf, batch = steps.hf, make_batch(model, args.batch, args.height, args.width,
                                        classes=CLASSES)
    vector = tf.constant(np.random.default_rng(1).normal(
        size=hf.flat_weights().shape).astype("float32"))
    passes = {
        "loss": lambda: hf._value(batch).numpy(),
        "gradient": lambda: hf._gradient(batch)[1].numpy(),
        "product": lambda: hf.gauss_newton_product(batch, vector, 1.0).numpy(),
    }
    times: dict[str, list[float]] = {name: [] for name in passes}
    for name, run in passes.items():  # first calls trace and compile
        start = time.perf_counter()
        run()
        print(f"first call of {name}: {time.perf_counter() - start:.1f} s", flush=True)
    for _ in range(args.repeats):
        for name, run in passes.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(json.dumps({
        "batch": args.batch, "width": args.width, "shards": hf.shards,
        **{f"{name}_s": round(m, 4) for name, m in medians.items()},
        **{f"{name}_over_loss": round(m / medians["loss"], 2)
           for name, m in medians.items() if name != "loss"},
    }))


if __name__ == "__main__":
    main()
