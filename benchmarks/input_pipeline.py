"""Throughput of the tf.data input pipeline on bundled digit-string lines.

Prints lines per second for: building a `LineDataset` (decode + preprocess every
line once), one evaluation epoch, one training epoch (with augmentation), and,
for comparison, a plain tf.data map that decodes and preprocesses every line in
every epoch (the design `LineDataset` replaces).

    python benchmarks/input_pipeline.py --lines 4000 --height 64
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import numpy as np


def _epoch_lines(dataset) -> int:
    return sum(int(batch["image"].shape[0]) for batch in dataset)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=4000, help="digit-string lines")
    parser.add_argument("--height", type=int, default=64, help="preprocessing height")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--width-multiple", type=int, default=18)
    args = parser.parse_args()

    import tensorflow as tf

    from mdrnn.datasets.charset import Charset
    from mdrnn.datasets.digits import digit_lines
    from mdrnn.datasets.line_dataset import LineDataset
    from mdrnn.pipelines.preprocess import preprocess_line
    from mdrnn.pipelines.preprocess_config import PreprocessConfig

    samples = digit_lines("train", args.lines, seed=0)
    charset = Charset.from_texts(s.text for s in samples)
    config = PreprocessConfig(height=args.height)
    options = dict(batch_size=args.batch_size, width_multiple=args.width_multiple)
    rows = []

    start = time.perf_counter()
    options = {**options, "height": config.height,
               "prepare": lambda image: preprocess_line(image, config)}
    evaluation = LineDataset(samples, charset, **options)
    rows.append(("LineDataset build: decode + preprocess once", len(samples),
                 time.perf_counter() - start))
    training = LineDataset(samples, charset, training=True, **options)
    for name, data in (("epoch, evaluation (no augmentation)", evaluation),
                       ("epoch, training (augmentation)", training)):
        start = time.perf_counter()
        count = _epoch_lines(data.dataset(0))
        rows.append((name, count, time.perf_counter() - start))

    def decode(i):
        return preprocess_line(samples[int(i)].load(), config)[..., None]

    plain = (tf.data.Dataset.range(len(samples))
             .map(lambda i: tf.numpy_function(decode, [i], tf.float32),
                  num_parallel_calls=tf.data.AUTOTUNE)
             .padded_batch(args.batch_size, padded_shapes=[args.height, None, 1])
             .prefetch(tf.data.AUTOTUNE))
    start = time.perf_counter()
    count = sum(int(batch.shape[0]) for batch in plain)
    rows.append(("epoch, plain map: decode + preprocess each epoch", count,
                 time.perf_counter() - start))

    widths = np.array([evaluation.assemble(b)["image"].shape[2] for b in evaluation.plan()])
    machine = platform.processor() or platform.machine()
    print(f"# input pipeline, {args.lines} digit lines at height {args.height}, batch "
          f"{args.batch_size}; {datetime.date.today()}, {machine}, nproc {os.cpu_count()}, "
          f"TensorFlow {tf.__version__}")
    print(f"# bucket widths {evaluation.bucket_widths}; mean padded width {widths.mean():.0f}")
    print(f"{'stage':<52} {'lines':>7} {'seconds':>8} {'lines/s':>9}")
    for name, count, seconds in rows:
        print(f"{name:<52} {count:>7} {seconds:>8.2f} {count / seconds:>9.0f}")


if __name__ == "__main__":
    main()
