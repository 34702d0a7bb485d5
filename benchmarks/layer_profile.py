"""Where the MDLSTM's time goes: matmul peak, FLOPs, the cost of one wavefront step.

    taskset -c 0 python benchmarks/layer_profile.py [--repeats 5] [--json out.json]

Run it pinned to one core: a training shard and XLA's wavefront loops run on one
thread, so one core's figures are the ones that bound them. It prints:

1. the matmul peak of this core: an XLA-compiled 1024^3 matmul, float32 and bfloat16;
2. the wavefront step's own matmul ((B*H) x (C+2n) times (C+2n) x 5n) in an XLA loop
   of K steps: a loop of tanh alone, and the same with the matmul first;
3. the layer (one direction, XLA) at batch 1-16 on 32 x 128, forward + backward and
   forward alone, per cell; and a least-squares fit of time = K * per_step + cells *
   per_cell: the fixed cost of a diagonal and the marginal cost of a cell;
4. the kernels XLA runs in each iteration of the layer's two loops (optimized HLO),
   and the time of each kernel under the TensorFlow profiler (small case);
5. the layer and the Keras LSTM of `mdlstm_speed.py` (small and large): matmul FLOPs,
   GFLOP/s and share of the peak;
6. the training step of graves2009_x9 on lines of 64 x 1,000 px (batch 16): matmul
   FLOPs per line counted from the layers' shapes, the floor FLOPs / peak, and the
   measured ms per line.

FLOPs count the multiply-adds of matmuls (2 per multiply-add), forward and backward
(3x the forward: the input and the weight gradients), including the cells the
wavefront computes outside the image (K * H per direction instead of W * H); the
elementwise work of the gates is not counted, so the floor is a lower bound.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from mdlstm_speed import SIZES, make_variant  # noqa: E402
from train_speed import make_variant as make_train_variant  # noqa: E402

from mdrnn.layers import MDLSTM2D  # noqa: E402


def _wait(result):
    """Block until a call's tensors are computed (a float is already)."""
    tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, result)


def best_and_median(run, repeats: int) -> tuple[float, float]:
    """(best, median) seconds of `run` after two warm-up calls."""
    for _ in range(2):
        _wait(run())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _wait(run())
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def matmul_peak(dtype: str, repeats: int, size: int = 1024) -> float:
    """GFLOP/s of an XLA-compiled size^3 matmul, the best of `repeats`."""
    rng = np.random.default_rng(0)
    a, b = (tf.cast(rng.normal(size=(size, size)), dtype) for _ in range(2))
    fn = tf.function(lambda a, b: a @ b, jit_compile=True)
    best, _ = best_and_median(lambda: fn(a, b), repeats)
    return 2 * size ** 3 / best / 1e9


def step_loop(rows: int, width_in: int, width_out: int, steps: int, repeats: int,
              matmul: bool) -> float:
    """Seconds per iteration of an XLA loop carrying (rows, width_in) through a tanh,
    with or without a matmul by (width_in, width_out) before it (whose first width_in
    columns go on): the difference is the cost of the step's matmul in a loop."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(rows, width_in)).astype("float32"))
    w = tf.constant((rng.normal(size=(width_in, width_out)) / np.sqrt(width_in))
                    .astype("float32"))

    @tf.function(jit_compile=True)
    def loop(x):
        def body(k, h):
            return k + 1, tf.tanh((h @ w)[:, :width_in] if matmul else h)
        return tf.while_loop(lambda k, _: k < steps, body, (0, x))[1]

    _, median = best_and_median(lambda: loop(x), repeats)
    return median / steps


def layer_scaling(repeats: int, units: int = 16, height: int = 32, width: int = 128):
    """The one-direction layer with XLA at several batch sizes: forward + backward, and
    the forward pass alone (as in transcription)."""
    steps = height + width - 1
    points = []
    for batch in (1, 2, 4, 8, 16):
        size = {"batch": batch, "height": height, "width": width, "channels": 1,
                "units": units}
        _, both = best_and_median(make_variant("mdlstm-1dir+xla", size), repeats)
        layer = MDLSTM2D(units, directions="tl")
        x = tf.constant(np.zeros((batch, height, width, 1), "float32"))
        forward = tf.function(layer, jit_compile=True)
        _, alone = best_and_median(lambda f=forward, x=x: f(x), repeats)
        points.append({"batch": batch, "cells": batch * height * steps,
                       "seconds": both, "forward_seconds": alone})
    cells = np.array([p["cells"] for p in points], float)
    seconds = np.array([p["seconds"] for p in points])
    per_cell, intercept = np.polyfit(cells, seconds, 1)
    return {"points": points, "per_step_us": intercept / steps * 1e6,
            "per_cell_ns": per_cell * 1e9, "steps": steps,
            "per_cell_gflops": 30 * units * (1 + 2 * units) / per_cell / 1e9}


def kernels_per_iteration(units: int = 16) -> list[Counter]:
    """The HLO instructions that run as kernels in each while body of the layer's
    XLA-compiled forward + backward (fusions, dots, copies, custom calls)."""
    layer = MDLSTM2D(units, directions="tl")
    x = tf.constant(np.zeros((8, 32, 128, 1), "float32"))
    layer(x)

    @tf.function(jit_compile=True)
    def grads(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x))
        return tape.gradient(loss, [x, *layer.trainable_variables])

    hlo = grads.experimental_get_compiler_ir(x)(stage="optimized_hlo")
    bodies = set(re.findall(r"while\(.*?body=%([\w.\-]+)", hlo))
    found, current = [], None
    for line in hlo.splitlines():
        header = re.match(r"^%([\w.\-]+) .*\{$", line)
        if header:
            current = Counter() if header.group(1) in bodies else None
            if current is not None:
                found.append(current)
            continue
        op = re.search(r"= \S+ ([a-z\-]+)\(", line)
        if current is not None and op and op.group(1) in (
                "fusion", "dot", "copy", "custom-call", "dynamic-update-slice",
                "dynamic-slice", "convolution"):
            current[op.group(1)] += 1
    return found


def thunk_profile(repeats: int, logdir: str) -> list[tuple[str, int, float]]:
    """The small case's forward + backward under the TensorFlow profiler: for each
    XLA thunk (a fused kernel, a dot, a while loop), its calls and ms per layer call."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    run = make_variant("mdlstm-1dir+xla", SIZES["small"])
    for _ in range(2):
        _wait(run())
    tf.profiler.experimental.start(logdir)
    for _ in range(repeats):
        _wait(run())
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    path = max(Path(logdir).rglob("*.xplane.pb"), key=lambda p: p.stat().st_mtime)
    space.ParseFromString(path.read_bytes())
    total, calls = Counter(), Counter()
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                total[name] += event.duration_ps
                calls[name] += 1
    return [(name, calls[name] // repeats, ps / 1e9 / repeats)
            for name, ps in total.most_common() if re.match(r"(while|dot|.*fusion|copy)", name)]


def mdlstm_flops(height: int, width: int, channels: int, units: int, directions: int):
    """Forward + backward matmul FLOPs of an MDLSTM2D layer on one image."""
    cells = height * (height + width - 1)
    return 3 * directions * cells * 2 * (channels + 2 * units) * 5 * units


def lstm_flops(steps: int, channels: int, units: int) -> int:
    """Forward + backward matmul FLOPs of one Keras LSTM over one sequence."""
    return 3 * steps * 2 * (channels + units) * 4 * units


def model_flops(model: keras.Model, height: int, width: int) -> int:
    """Forward + backward matmul FLOPs of a model on one line of height x width px."""
    layers = [layer for layer in model.layers
              if isinstance(layer, (MDLSTM2D, keras.layers.Dense))]
    # A masked layer's input is [tensor, mask]: take the tensor.
    probe = keras.Model(model.inputs, [layer.input[0] if isinstance(layer.input, list)
                                       else layer.input for layer in layers])
    shapes = probe({"image": np.zeros((1, height, width, 1), "float32"),
                    "width": np.array([width], "int32")})
    total = 0
    for layer, x in zip(layers, shapes):
        shape = tuple(x.shape)
        if isinstance(layer, MDLSTM2D):
            total += mdlstm_flops(shape[1], shape[2], shape[3], layer.units,
                                  len(layer.directions))
        else:
            total += 3 * int(np.prod(shape[:-1])) * 2 * shape[-1] * layer.units
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  cores given={cores}  TF {tf.__version__}  "
          f"load {os.getloadavg()[0]:.2f}")
    out = {"cores": cores}
    out["peak_gflops"] = {d: matmul_peak(d, args.repeats) for d in ("float32", "bfloat16")}
    peak = out["peak_gflops"]["float32"]
    print(f"matmul peak, 1024^3 XLA: float32 {peak:.1f} GFLOP/s, "
          f"bfloat16 {out['peak_gflops']['bfloat16']:.1f} GFLOP/s")

    s = SIZES["small"]
    rows, steps = s["batch"] * s["height"], s["height"] + s["width"] - 1
    width_in, width_out = s["channels"] + 2 * s["units"], 5 * s["units"]
    with_mm = step_loop(rows, width_in, width_out, steps, args.repeats, matmul=True)
    bare = step_loop(rows, width_in, width_out, steps, args.repeats, matmul=False)
    mm_flops = 2 * rows * width_in * width_out
    mm_gflops = mm_flops / (with_mm - bare) / 1e9
    out["step_loop"] = {"with_matmul_us": with_mm * 1e6, "without_us": bare * 1e6,
                        "matmul_gflops": mm_gflops}
    print(f"\nXLA loop of {steps} steps, tanh of {rows}x{width_in}: {bare * 1e6:.1f} us per "
          f"step; with the step's matmul ({rows}x{width_in} @ {width_in}x{width_out}) "
          f"first: {with_mm * 1e6:.1f} us, so the matmul {(with_mm - bare) * 1e6:.1f} us "
          f"({mm_gflops:.1f} GFLOP/s, {100 * mm_gflops / peak:.0f}% of peak)")

    fit = layer_scaling(args.repeats)
    out["layer_scaling"] = fit
    print(f"\nlayer, 1 direction, XLA, 32x128 (K={fit['steps']} diagonals), by batch: "
          "ms forward + backward (forward alone), ns per cell")
    for p in fit["points"]:
        print(f"  batch {p['batch']:2d}: {p['cells']:6d} cells  {1e3 * p['seconds']:7.1f} "
              f"({1e3 * p['forward_seconds']:6.1f}) ms  {1e9 * p['seconds'] / p['cells']:7.0f} "
              f"({1e9 * p['forward_seconds'] / p['cells']:5.0f}) ns/cell")
    print(f"  fit: {fit['per_step_us']:.1f} us per diagonal (forward + backward) + "
          f"{fit['per_cell_ns']:.1f} ns per cell ({fit['per_cell_gflops']:.1f} GFLOP/s at "
          f"the margin, {100 * fit['per_cell_gflops'] / peak:.0f}% of peak)")

    kernels = kernels_per_iteration()
    out["kernels_per_iteration"] = [dict(k) for k in kernels]
    print("\nkernels per loop iteration (optimized HLO): "
          + "; ".join(", ".join(f"{n} {op}" for op, n in k.most_common()) for k in kernels))

    with tempfile.TemporaryDirectory() as logdir:
        thunks = thunk_profile(args.repeats, logdir)
    out["thunks"] = thunks
    print("\nthe small case under the profiler, XLA thunks (calls per layer call, ms):")
    for name, calls, ms in thunks[:16]:
        print(f"  {ms:7.2f} ms  {calls:4d}x  {name}")

    out["layers"] = {}
    for size_name, s in SIZES.items():
        cells_w = s["batch"] * s["height"]
        variants = {
            "mdlstm-1dir+xla": s["batch"] * mdlstm_flops(s["height"], s["width"],
                                                         s["channels"], s["units"], 1),
            "keras-lstm": cells_w * lstm_flops(s["width"], s["channels"], s["units"]),
        }
        print(f"\n{size_name} ({s}):")
        for name, flops in variants.items():
            _, median = best_and_median(make_variant(name, s), args.repeats)
            gflops = flops / median / 1e9
            out["layers"][f"{size_name}:{name}"] = {"ms": median * 1e3, "flops": flops,
                                                   "gflops": gflops}
            print(f"  {name:16s} {median * 1e3:8.1f} ms  {flops / 1e6:8.1f} MFLOP  "
                  f"{gflops:6.1f} GFLOP/s  {100 * gflops / peak:4.1f}% of peak")

    class Args:
        batch, height, width = 16, 64, 1000

    model, run, _ = make_train_variant("graves2009_x9", True, Args)
    _, median = best_and_median(run, args.repeats)
    flops = model_flops(model, Args.height, Args.width)
    ms_line = median * 1e3 / Args.batch
    floor = flops / (peak * 1e9) * 1e3
    out["training_step"] = {"ms_per_line": ms_line, "flops_per_line": flops,
                            "floor_ms_per_line": floor}
    print(f"\ntraining step, graves2009_x9, 16 lines of 64x1000: {ms_line:.2f} ms/line; "
          f"{flops / 1e9:.3f} GFLOP per line, floor at peak {floor:.2f} ms/line "
          f"({100 * floor / ms_line:.1f}% of peak achieved)")
    print(f"# load {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
