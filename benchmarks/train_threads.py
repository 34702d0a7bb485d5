"""Training throughput by cores: one run on one core, one run on all, runs side by side.

Each variant is a fresh process timing the real training step of
`mdrnn.pipelines.train` (XLA forward/backward, sparse CTC, Adam) on B lines of
H x W pixels with random labels of C classes:

- one run pinned to one core (what `taskset -c 0 mdrnn train` gets);
- one run on all cores, the whole batch in one step (TensorFlow's default threads);
- one run on all cores, the batch in P shards side by side (P = the number of
  cores; `mdrnn train`'s default on a CPU);
- one run on all cores, MirroredStrategy over P logical CPU devices;
- P processes at once, each pinned to its own core: their summed lines/s is what
  P training runs side by side get;
- one run as a MultiWorkerMirroredStrategy cluster of P local worker processes
  (`TF_CONFIG` on localhost ports), each pinned to its own core and computing its
  part of the batch: the cluster's lines/s.

Variants are interleaved; each is run --repeats times; the 1-minute load average
is printed before and after.

    python benchmarks/train_threads.py [--preset graves2009_x6_wide] [--width 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def child(args) -> None:
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    if args.cluster:
        os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": args.cluster.split(",")},
                                              "task": {"type": "worker", "index": args.index}})
    import tensorflow as tf

    if args.mirrored:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * len(os.sched_getaffinity(0)))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import train_speed

    from mdrnn.models import build_model
    from mdrnn.pipelines.train_config import TrainConfig
    from mdrnn.pipelines.train_steps import (
        choose_strategy,
        default_shards,
        make_optimizer,
        make_train_step,
    )

    train_speed.CLASSES = args.classes
    strategy = choose_strategy(None if args.cluster else
                               len(tf.config.list_logical_devices("CPU")))
    with strategy.scope():
        model = build_model(args.preset, train_speed.CLASSES, height=args.height)
        optimizer = make_optimizer(TrainConfig())
        optimizer.build(model.trainable_variables)
    shards = default_shards(strategy, args.batch) if args.shards is None else args.shards
    step = make_train_step(model, optimizer, strategy, args.batch, True, shards)
    batch = train_speed.make_batch(model, args.batch, args.height, args.width)
    if args.mirrored or args.cluster:
        dataset = tf.data.Dataset.from_tensors(batch).repeat()
        batches = iter(strategy.experimental_distribute_dataset(dataset))
        batch = next(batches)
    for _ in range(3):  # compile and warm up
        float(step(batch))
    start = time.perf_counter()
    for _ in range(args.steps):
        float(step(batch))
    print(json.dumps({"lines_per_s": args.steps * args.batch / (time.perf_counter() - start)}))


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run(args, cores: list[int | None], extra: list[str], cluster: bool = False
        ) -> list[float]:
    base = [sys.executable, __file__, "--child", "--preset", args.preset, "--steps",
            str(args.steps), "--batch", str(args.batch), "--height", str(args.height),
            "--width", str(args.width), "--classes", str(args.classes), *extra]
    if cluster:
        base += ["--cluster", ",".join(f"localhost:{p}" for p in free_ports(len(cores)))]
    procs = [subprocess.Popen(base + ([] if c is None else ["--core", str(c)])
                              + (["--index", str(i)] if cluster else []),
                              stdout=subprocess.PIPE, text=True) for i, c in enumerate(cores)]
    rates = [json.loads(p.communicate()[0].strip().splitlines()[-1])["lines_per_s"]
             for p in procs]
    # A cluster's workers share each step: each saw the whole batch's lines/s.
    return [sum(rates) / len(rates)] if cluster else rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="graves2009_x6_wide")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=1000, help="a handwritten line")
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default="pinned,whole,shards,mirrored,side-by-side")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--core", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--shards", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mirrored", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cluster", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    cores = sorted(os.sched_getaffinity(0))
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  cores={len(cores)}  {args.preset}  "
          f"batch={args.batch}  lines {args.height}x{args.width}  classes={args.classes}  "
          f"load {os.getloadavg()[0]:.2f}")
    variants = {
        "pinned": ("one run pinned to one core", cores[:1], []),
        "whole": ("one run, all cores, whole batch", [None], ["--shards", "1"]),
        "shards": (f"one run, all cores, {len(cores)} shards", [None], []),
        "mirrored": (f"one run, MirroredStrategy on {len(cores)} CPUs", [None],
                     ["--mirrored", "--shards", "1"]),
        "side-by-side": (f"{len(cores)} runs at once, one core each", cores, []),
        "workers": (f"one run, {len(cores)} local workers, one core each", cores, []),
    }
    chosen = [(name, *variants[name]) for name in args.variants.split(",")]
    print(f"\n{'variant':44s} {'lines/s per run':>16s} {'lines/s in all':>15s}")
    for _ in range(args.repeats):
        for key, name, layout, extra in chosen:
            rates = run(args, layout, extra, cluster=key == "workers")
            per_run = " / ".join(f"{r:.0f}" for r in rates)
            print(f"{name:44s} {per_run:>16s} {sum(rates):15.0f}", flush=True)
    print(f"# load {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
