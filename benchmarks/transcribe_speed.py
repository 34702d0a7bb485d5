"""Transcription throughput and peak memory: batched vs one line at a time, decoding vs forward.

Writes N digit-string lines (`mdrnn.datasets.digits.digit_lines`) as PNG files
to a temporary folder, saves an untrained graves2009 model for them (speed does
not depend on the weights) and runs whole transcription jobs
(`transcribe_files`, JSON-lines output) over them, each variant in a fresh
process so that its peak resident memory (ru_maxrss) is its own:

- batched: all N lines, `--batch-size` lines per forward pass;
- batched, N/4 lines: the same peak memory shows that it does not grow with N;
- one at a time: batch size 1 on the first `--single-count` lines;
- XLA (with --xla): batched and compiled per width bucket, compile time included;
- beam search (width 16) on the first `--single-count` lines, for its decoding time.

Each variant runs its job twice: cold (tracing, or XLA compiling, included) and
warm; the warm job's time is split into preprocessing, forward pass, decoding and
the rest (reading the PNG files, writing the output).

    python benchmarks/transcribe_speed.py [--count 10000] [--batch-size 64] [--xla]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _timed(owner, name: str, totals: dict) -> None:
    """Replace a bound method by one that adds its run time to totals[name]."""
    method = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def child(folder: Path, count: int, batch_size: int, decoder: str, xla: bool) -> dict:
    """Run one transcription job twice in this process (cold, then warm); return the figures."""
    from mdrnn.pipelines.inputs import expand_inputs
    from mdrnn.pipelines.recognizer import Recognizer
    from mdrnn.pipelines.transcribe import transcribe_files
    from mdrnn.pipelines.writers import JsonlWriter

    files = expand_inputs([str(folder / "lines")])[:count]
    recognizer = Recognizer.load(folder / "model.keras", decoder=decoder, batch_size=batch_size,
                                 xla=xla)
    totals = dict.fromkeys(("prepare", "forward", "decode"), 0.0)
    for name in totals:
        _timed(recognizer, name, totals)
    figures = {}
    for run in ("cold", "warm"):
        totals.update(dict.fromkeys(totals, 0.0))
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            with JsonlWriter(Path(out) / "out.jsonl") as writer:
                report = transcribe_files(recognizer, files, writer)
            figures[run] = time.perf_counter() - start
        if report.failures:
            raise SystemExit(f"{len(report.failures)} inputs failed: {report.failures[0]}")
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return {"lines": report.done, **figures, **totals,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20}


def prepare_data(folder: Path, count: int) -> None:
    """Write the digit lines and an untrained graves2009 model for them."""
    import cv2

    from mdrnn.datasets.charset import Charset
    from mdrnn.datasets.digits import digit_lines
    from mdrnn.models import graves2009
    from mdrnn.pipelines.preprocess_config import PreprocessConfig

    (folder / "lines").mkdir()
    for sample in digit_lines("train", count, seed=0):
        cv2.imwrite(str(folder / "lines" / f"{sample.id}.png"), sample.source)
    charset = Charset.from_texts(["0123456789"])
    model = graves2009(len(charset.symbols), charset=charset.to_config(),
                       preprocessing=PreprocessConfig().to_dict())
    model.save(folder / "model.keras")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000, help="digit lines (default 10000)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--single-count", type=int, default=200,
                        help="lines for the one-at-a-time and beam-search rows")
    parser.add_argument("--xla", action="store_true", help="also time the XLA-compiled path")
    parser.add_argument("--child", nargs=5, metavar=("FOLDER", "COUNT", "BATCH", "DECODER", "XLA"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folder, count, batch, decoder, xla = args.child
        print(json.dumps(child(Path(folder), int(count), int(batch), decoder, xla == "1")))
        return

    single = min(args.single_count, args.count)
    variants = [("batched", args.count, args.batch_size, "greedy", False),
                ("batched, N/4 lines", max(1, args.count // 4), args.batch_size, "greedy", False),
                ("one at a time", single, 1, "greedy", False)]
    if args.xla:
        variants.append(("batched, XLA", args.count, args.batch_size, "greedy", True))
    variants.append(("batched, beam search 16", single, args.batch_size, "beam", False))

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        prepare_data(Path(folder), args.count)
        print(f"wrote {args.count} lines in {time.perf_counter() - start:.0f} s", flush=True)
        rows = []
        for name, count, batch, decoder, xla in variants:
            command = [sys.executable, __file__, "--child", folder, str(count), str(batch),
                       decoder, "1" if xla else "0"]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
            rows.append((name, batch, json.loads(done.stdout.strip().splitlines()[-1])))
            print(f"  {name}: done", flush=True)

    import tensorflow as tf

    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"TensorFlow {tf.__version__}, {datetime.date.today()}; graves2009 untrained, "
          f"digit lines at height 64\n")
    print("cold: the first job in a fresh process, tracing (and with XLA compiling) the "
          "network;\nwarm: the same job again; the time split is the warm job's.\n")
    print(f"{'variant':24} {'batch':>5} {'lines':>6} {'cold l/s':>8} {'warm l/s':>8} "
          f"{'prep s':>7} {'forward s':>9} {'decode s':>8} {'other s':>7} {'peak MiB':>8}")
    for name, batch, r in rows:
        other = r["warm"] - r["prepare"] - r["forward"] - r["decode"]
        print(f"{name:24} {batch:5d} {r['lines']:6d} {r['lines'] / r['cold']:8.1f} "
              f"{r['lines'] / r['warm']:8.1f} {r['prepare']:7.2f} {r['forward']:9.2f} "
              f"{r['decode']:8.2f} {other:7.2f} {r['peak_mib']:8.0f}")

if __name__ == "__main__":
    main()
