"""Training throughput by threads: one run on all cores against runs side by side.

Each variant is a fresh process timing the real training step of
`mdrnn.pipelines.train` (XLA forward/backward, sparse CTC, Adam) on B digit-sized
lines of H x W pixels with random labels:

- one process with TensorFlow's default thread pools (all cores);
- one process limited to one thread, pinned to one core;
- P processes at once (P = the number of cores), each with one thread on its own
  core: their summed lines/s is what P training runs side by side get.

    python benchmarks/train_threads.py [--preset graves2009_x9] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def child(args) -> None:
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    import tensorflow as tf

    if args.core is not None:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import train_speed

    from mdrnn.models import build_model
    from mdrnn.pipelines.train_config import TrainConfig
    from mdrnn.pipelines.train_steps import make_optimizer, make_train_step

    train_speed.CLASSES = 10
    model = build_model(args.preset, train_speed.CLASSES, height=args.height)
    optimizer = make_optimizer(TrainConfig())
    optimizer.build(model.trainable_variables)
    step = make_train_step(model, optimizer, tf.distribute.get_strategy(), args.batch, True)
    batch = train_speed.make_batch(model, args.batch, args.height, args.width)
    for _ in range(3):  # compile and warm up
        float(step(batch))
    start = time.perf_counter()
    for _ in range(args.steps):
        float(step(batch))
    print(json.dumps({"lines_per_s": args.steps * args.batch / (time.perf_counter() - start)}))


def run(args, cores: list[int | None]) -> list[float]:
    base = [sys.executable, __file__, "--child", "--preset", args.preset, "--steps",
            str(args.steps), "--batch", str(args.batch), "--height", str(args.height),
            "--width", str(args.width)]
    procs = [subprocess.Popen(base + ([] if c is None else ["--core", str(c)]),
                              stdout=subprocess.PIPE, text=True) for c in cores]
    return [json.loads(p.communicate()[0].strip().splitlines()[-1])["lines_per_s"]
            for p in procs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="graves2009_x9")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=360, help="about a 7-digit line")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--core", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    cores = sorted(os.sched_getaffinity(0))
    print(f"# {time.strftime('%Y-%m-%d')}  cores={len(cores)}  {args.preset}  "
          f"batch={args.batch}  lines {args.height}x{args.width}")
    print(f"\n{'variant':44s} {'lines/s per run':>16s} {'lines/s in all':>15s}")
    for _ in range(args.repeats):
        for name, layout in (("one run, default threads", [None]),
                             ("one run, one thread on one core", cores[:1]),
                             (f"{len(cores)} runs at once, one thread and core each", cores)):
            rates = run(args, layout)
            per_run = " / ".join(f"{r:.0f}" for r in rates)
            print(f"{name:44s} {per_run:>16s} {sum(rates):15.0f}")


if __name__ == "__main__":
    main()
