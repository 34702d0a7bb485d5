"""Time CTC losses and decoders on one batch; print a table of median milliseconds.

Cases: the loss by TF's dense formulation and by its sparse (fused) kernel, eager,
in `tf.function` and (dense only: the fused kernel has no XLA lowering) under
`jit_compile=True`, each as loss alone and as loss + gradient; then greedy,
prefix beam search at several widths, TF's own beam search for comparison, and
lexicon decoding of words and of lines.

Logits imitate a trained model: a random best path (60% blanks) whose classes get
a margin over Gaussian noise, so beams behave as on real output. Every case runs
once to warm up (tracing, compiling), then the cases take turns for `--repeats`
rounds, so that load from other processes spreads over all of them.

    python benchmarks/ctc_speed.py --batch 16 --frames 250 56 --classes 81
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mdrnn.ctc import ctc_loss  # noqa: E402
from mdrnn.decoding import beam_search_decode, greedy_decode  # noqa: E402
from mdrnn.lexicon import Lexicon, lexicon_decode_line, lexicon_decode_word  # noqa: E402


def fake_logits(rng, batch, frames, classes, margin=6.0):
    """Logits (B, T, C) whose best path is random with 60% blanks, and lengths (B,)."""
    logits = rng.normal(size=(batch, frames, classes)).astype(np.float32)
    path = rng.integers(1, classes, size=(batch, frames))
    path[rng.random((batch, frames)) < 0.6] = 0
    np.put_along_axis(logits, path[..., None], margin, axis=2)
    lengths = rng.integers(int(0.8 * frames), frames + 1, size=batch)
    lengths[0] = frames
    return logits, lengths


def loss_cases(logits, lengths):
    """{name: callable} for the loss paths; labels are the greedy readings, so they fit."""
    labelling = [ids for ids, _ in greedy_decode(logits, lengths)]
    label_length = np.array([len(ids) for ids in labelling], np.int32)
    labels = np.zeros((len(labelling), max(label_length.max(), 1)), np.int32)
    for row, ids in zip(labels, labelling):
        row[:len(ids)] = ids
    args = [tf.constant(labels), tf.constant(logits), tf.constant(label_length),
            tf.constant(lengths.astype(np.int32))]

    def loss(xla):
        return lambda *a: ctc_loss(*a, check=False, xla=xla)

    def with_gradient(fn):
        def run(labels, logits, label_length, logit_length):
            with tf.GradientTape() as tape:
                tape.watch(logits)
                value = tf.reduce_sum(fn(labels, logits, label_length, logit_length))
            return tape.gradient(value, logits)
        return run

    cases = {}
    for name, xla in (("dense", True), ("sparse", False)):
        cases[f"loss {name}, eager"] = loss(xla)
        cases[f"loss+grad {name}, eager"] = with_gradient(loss(xla))
        cases[f"loss {name}, tf.function"] = tf.function(loss(xla))
        cases[f"loss+grad {name}, tf.function"] = tf.function(with_gradient(loss(xla)))
    cases["loss dense, XLA"] = tf.function(loss(True), jit_compile=True)
    cases["loss+grad dense, XLA"] = tf.function(with_gradient(loss(True)), jit_compile=True)
    return {name: (lambda fn=fn: fn(*args)) for name, fn in cases.items()}


def decoder_cases(logits, lengths, lexicon):
    # TF's decoder takes time-major logits with the blank as the last class.
    tf_logits = tf.constant(np.roll(logits, -1, axis=2).transpose(1, 0, 2))
    tf_lengths = tf.constant(lengths.astype(np.int32))
    cases = {"greedy": lambda: greedy_decode(logits, lengths)}
    for width in (1, 4, 16):
        cases[f"beam {width}"] = lambda w=width: beam_search_decode(logits, lengths, beam_width=w)
    cases["tf.nn.ctc_beam_search_decoder 16"] = lambda: tf.nn.ctc_beam_search_decoder(
        tf_logits, tf_lengths, beam_width=16, top_paths=1)
    cases[f"lexicon word ({len(lexicon.entries)} words, {len(lexicon.char)} trie nodes)"] = (
        lambda: lexicon_decode_word(logits, lengths, lexicon))
    cases["lexicon line, beam 16"] = lambda: lexicon_decode_line(logits, lengths, lexicon, 1)
    return cases


def measure(cases, repeats):
    """Median seconds per case: one warm-up call each, then `repeats` interleaved rounds."""
    for fn in cases.values():
        fn()
    times = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            result = fn()
            if isinstance(result, tf.Tensor):
                result.numpy()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, nargs="+", default=[250, 56])
    parser.add_argument("--classes", type=int, default=81, help="K + 1, blank included")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lexicon-size", type=int, default=1000)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    # Words of 4..12 characters; id 1 stays free to separate them in lines.
    lexicon = Lexicon([tuple(rng.integers(2, args.classes, size=rng.integers(4, 13)))
                       for _ in range(args.lexicon_size)])
    columns, label_lengths = {}, {}
    for frames in args.frames:
        logits, lengths = fake_logits(rng, args.batch, frames, args.classes)
        label_lengths[frames] = np.mean([len(ids) for ids, _ in greedy_decode(logits, lengths)])
        cases = {**loss_cases(logits, lengths),
                 **decoder_cases(logits, lengths, lexicon)}
        columns[frames] = measure(cases, args.repeats)
    try:
        tf.function(lambda *a: ctc_loss(*a, check=False), jit_compile=True)(
            tf.ones((1, 1), tf.int32), tf.zeros((1, 2, 3)), tf.ones(1, tf.int32),
            tf.fill([1], 2))
        sparse_xla = "compiles"
    except (tf.errors.InvalidArgumentError, ValueError):
        sparse_xla = "refused (no XLA kernel for CTCLoss)"

    print(f"# CTC speed, median ms of {args.repeats} interleaved runs after warm-up")
    print(f"# {datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"nproc={os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at the end, "
          f"TensorFlow {tf.__version__}, NumPy {np.__version__}")
    mean_labels = ", ".join(f"{n:.0f} at T={f}" for f, n in label_lengths.items())
    print(f"# B={args.batch}, K+1={args.classes}, output lengths 0.8T..T, mean label length "
          f"{mean_labels}; sparse loss under jit_compile: {sparse_xla}")
    names = list(next(iter(columns.values())))
    width = max(len(n) for n in names)
    print(f"| {'case':<{width}} | " + " | ".join(f"T={f:>4}" for f in columns) + " |")
    print(f"|{'-' * (width + 2)}|" + "|".join("-------:" for _ in columns) + "|")
    for name in names:
        cells = " | ".join(f"{columns[f][name] * 1e3:6.1f}" for f in columns)
        print(f"| {name:<{width}} | {cells} |")


if __name__ == "__main__":
    main()
