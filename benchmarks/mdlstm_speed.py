"""MDLSTM2D speed: wavefront layer vs a per-pixel scan and vs a 1-D Keras LSTM.

Times forward + backward (gradient of a sum w.r.t. inputs and weights), median of
interleaved repeats after warm-up, each variant with XLA on and off, and prints a
table with ratios taken within this run. With --memory, each variant also runs in a
fresh subprocess to report its peak resident memory.

    python benchmarks/mdlstm_speed.py [--repeats 7] [--sizes small,large] [--memory]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import mdrnn.layers.mdlstm as mdlstm_module  # noqa: E402
from mdrnn.layers import MDLSTM2D  # noqa: E402
from mdrnn.layers.cell import cell_forward  # noqa: E402
from mdrnn.layers.wavefront import scan_diagonals  # noqa: E402

SIZES = {
    "small": {"batch": 8, "height": 32, "width": 128, "channels": 1, "units": 16},
    "large": {"batch": 16, "height": 64, "width": 256, "channels": 1, "units": 32},
}


def _autodiff_scan(*args):
    """The same wavefront forward, differentiated by TF through the loop."""
    return scan_diagonals.__wrapped__(*args)[0]


class PixelScan(keras.layers.Layer):
    """The same top-left cell visited one pixel at a time in a tf.while_loop, in its
    strongest plain form: each step's input projection is read from a TensorArray
    unstacked once, and both predecessors' states from the TensorArrays of the states
    written so far (left: the last step, above: W steps back)."""

    def __init__(self, mdlstm: MDLSTM2D):
        super().__init__()
        self.mdlstm = mdlstm

    def projected(self, x):
        """(n, recurrent, peephole, B, H, W, the input projections (B, H*W, 5n))."""
        layer = self.mdlstm
        n = layer.units
        kernel, bias = layer.kernel[0], layer.bias[0]
        b, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        xs = tf.reshape(tf.einsum("bhwc,cm->bhwm", x, kernel) + bias, [b, h * w, 5 * n])
        return n, layer.recurrent_kernel[0], layer.peephole[0], b, h, w, xs

    def call(self, x):
        n, recurrent, peephole, b, h, w, xs = self.projected(x)
        steps = h * w
        rows = x.shape[0]  # static here, as XLA's TensorArrays need whole element shapes
        inputs = tf.TensorArray(x.dtype, size=steps, element_shape=[rows, 5 * n]).unstack(
            tf.transpose(xs, [1, 0, 2]))  # (H*W, B, 5n), row-major pixel order
        zero = tf.zeros([b, n], x.dtype)

        def step(t, left_h, left_c, hs, cs):
            j = t % w
            not_first = tf.cast(j > 0, x.dtype)
            h_x, c_x = left_h * not_first, left_c * not_first
            h_y, c_y = tf.cond(t >= w, lambda: (hs.read(t - w), cs.read(t - w)),
                               lambda: (zero, zero))
            z = inputs.read(t) + tf.concat([h_y, h_x], -1) @ recurrent
            h_new, c, _ = cell_forward(z, c_y, c_x, tf.unstack(peephole))
            return t + 1, h_new, c, hs.write(t, h_new), cs.write(t, c)

        def array():
            return tf.TensorArray(x.dtype, size=steps, element_shape=[rows, n],
                                  clear_after_read=False)

        *_, hs, _ = tf.while_loop(lambda t, *_: t < steps, step,
                                  (0, zero, zero, array(), array()), maximum_iterations=steps)
        return tf.reshape(tf.transpose(hs.stack(), [1, 0, 2]), [b, h, w, n])


class NaivePixelScan(PixelScan):
    """The per-pixel scan as first written, kept for comparison: it slices its input as
    `xs[t]` from the whole tensor and scatters states into a row buffer, whose
    gradients materialise full-size tensors at every step (slow without XLA)."""

    def call(self, x):
        n, recurrent, peephole, b, h, w, xs = self.projected(x)
        xs = tf.transpose(xs, [1, 0, 2])  # (H*W, B, 5n), row-major pixel order
        zero = tf.zeros([b, n], x.dtype)
        steps = h * w

        def step(t, row_h, row_c, left_h, left_c, out):
            # row_* hold the previous row's states for columns >= j (the y predecessors),
            # left_* the state just computed (the x predecessor, unless j == 0).
            j = t % w
            not_first = tf.cast(j > 0, x.dtype)
            h_y, c_y = row_h[j], row_c[j]
            h_x, c_x = left_h * not_first, left_c * not_first
            z = xs[t] + tf.concat([h_y, h_x], -1) @ recurrent
            h_new, c, _ = cell_forward(z, c_y, c_x, tf.unstack(peephole))
            row_h = tf.tensor_scatter_nd_update(row_h, [[j]], h_new[None])
            row_c = tf.tensor_scatter_nd_update(row_c, [[j]], c[None])
            return t + 1, row_h, row_c, h_new, c, out.write(t, h_new)

        row = tf.zeros([w, b, n], x.dtype)
        out = tf.TensorArray(x.dtype, size=steps, element_shape=[None, n])
        *_, out = tf.while_loop(lambda t, *_: t < steps, step,
                                (0, row, row, zero, zero, out), maximum_iterations=steps)
        return tf.reshape(tf.transpose(out.stack(), [1, 0, 2]), [b, h, w, n])


def make_variant(name: str, size: dict):
    """Return (step function, inputs, weight count) for one variant."""
    s = size
    x = tf.constant(np.random.default_rng(0).normal(
        size=(s["batch"], s["height"], s["width"], s["channels"])).astype("float32"))
    if name.startswith("keras-lstm"):
        layer = keras.layers.LSTM(s["units"], return_sequences=True)
        # B*H rows of W steps: the same number of cell updates as one direction.
        x = tf.reshape(x, [-1, s["width"], s["channels"]])
    elif name.startswith(("pixel-scan", "naive-pixel-scan")):
        inner = MDLSTM2D(s["units"], directions=("tl",))
        inner.build(x.shape)
        layer = (NaivePixelScan if name.startswith("naive") else PixelScan)(inner)
    else:
        directions = ("tl", "tr", "bl", "br") if "4dir" in name else ("tl",)
        layer = MDLSTM2D(s["units"], directions=directions,
                         stack_directions="stacked" in name)
    layer(x[:1])  # build
    weights = layer.trainable_variables
    autodiff = "autodiff" in name

    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x, *weights])

    fn = tf.function(step, jit_compile=name.endswith("+xla"))

    def run():
        if autodiff:  # swap the core only while this variant runs
            original = mdlstm_module.scan_diagonals
            mdlstm_module.scan_diagonals = _autodiff_scan
            try:
                return fn(x)
            finally:
                mdlstm_module.scan_diagonals = original
        return fn(x)

    return run


VARIANTS = [
    "mdlstm-1dir", "mdlstm-1dir+xla",
    "mdlstm-1dir-autodiff", "mdlstm-1dir-autodiff+xla",
    "mdlstm-4dir", "mdlstm-4dir+xla",
    "mdlstm-4dir-stacked", "mdlstm-4dir-stacked+xla",
    "pixel-scan", "pixel-scan+xla",
    "naive-pixel-scan", "naive-pixel-scan+xla",
    "keras-lstm", "keras-lstm+xla",
]


def time_variants(size: dict, names: list[str], repeats: int) -> dict[str, float]:
    runs = {name: make_variant(name, size) for name in names}
    for run in runs.values():  # warm-up: trace, compile, first allocation
        for _ in range(2):
            tf.nest.map_structure(lambda t: t.numpy(), run())
    times = {name: [] for name in names}
    for _ in range(repeats):  # interleaved, so machine load hits all variants alike
        for name, run in runs.items():
            start = time.perf_counter()
            tf.nest.map_structure(lambda t: t.numpy(), run())
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1000 for name, t in times.items()}


def peak_memory_mb(size_name: str, name: str) -> float:
    """Peak resident memory one variant adds, run alone in a fresh process.

    ru_maxrss survives exec (the child would inherit this process's peak), so the
    child resets its high-water mark through /proc/self/clear_refs and reads VmHWM.
    """
    code = (
        "import sys; sys.argv=['x'];"
        "import benchmarks.mdlstm_speed as b;"
        "hwm = lambda: int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]"
        ".split()[1]);"
        "open('/proc/self/clear_refs', 'w').write('5'); base = hwm();"
        f"run = b.make_variant({name!r}, b.SIZES[{size_name!r}]); run(); run();"
        "print((hwm() - base) / 1024)"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=root, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sizes", default="small,large")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    names = args.variants.split(",")
    device = tf.config.list_logical_devices("GPU")
    print(f"# {time.strftime('%Y-%m-%d')}  {platform.processor() or platform.machine()}  "
          f"cores={os.cpu_count()}  TF {tf.__version__}  Keras {keras.__version__}  "
          f"device={'GPU ' + device[0].name if device else 'CPU'}")
    results = {}
    for size_name in args.sizes.split(","):
        size = SIZES[size_name]
        ms = time_variants(size, names, args.repeats)
        best = {}
        for name in names:
            base = name.removesuffix("+xla")
            best[base] = min(best.get(base, float("inf")), ms[name])
        print(f"\n## {size_name}: " + ", ".join(f"{k}={v}" for k, v in size.items()))
        print(f"{'variant':28s} {'ms (fwd+bwd)':>12s} {'vs mdlstm-1dir best':>20s}"
              + ("  peak MB" if args.memory else ""))
        ref = best.get("mdlstm-1dir")
        for name in names:
            ratio = f"{ms[name] / ref:20.2f}" if ref else f"{'':20s}"
            mem = f"  {peak_memory_mb(size_name, name):7.0f}" if args.memory else ""
            print(f"{name:28s} {ms[name]:12.1f} {ratio}{mem}")
        if ref:
            print("\nratios of best-of-XLA-on/off:")
            for other in ("pixel-scan", "naive-pixel-scan", "keras-lstm", "mdlstm-4dir",
                          "mdlstm-4dir-stacked", "mdlstm-1dir-autodiff"):
                if other in best:
                    print(f"  {other:22s} / mdlstm-1dir = {best[other] / ref:6.2f}")
            scans = [best[k] for k in ("pixel-scan", "naive-pixel-scan") if k in best]
            if scans:  # the baseline at its strongest: the fastest form, XLA on or off
                print(f"  best per-pixel scan    / mdlstm-1dir = {min(scans) / ref:6.2f}")
        results[size_name] = {"ms": ms, "best": best}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print(f"\npeak RSS of this process: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
