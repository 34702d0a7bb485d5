"""Real handwriting (Copiste val pages): accuracy, transcription speed and adaptation to new hands.

    python benchmarks/copiste.py evaluate MODEL [--val ../shared/data/copiste/val]
    python benchmarks/copiste.py adapt MODEL [--lines 10 50 200] [--steps 60]

`evaluate` reads the val lines (`alto:`), recognises them with greedy and beam
decoding, and with the model's own language model if it carries one, and prints
one JSON object: CER, WER and line accuracy for all val lines
and for the lines whose text never occurs in train ("unseen text": the consent and
reference lines repeat across writers), the most frequent character errors, and
transcription speed (prepared lines to text, greedy and with the LM, three timed
runs after a warm one: median and range, with the load average before and after).

`adapt` measures how few lines of new hands it takes to adapt a trained model: the
val lines of each writer (a copy: the page stem without its `_N` page suffix) are
split in page order into a first half (the pool) and a second half (the test);
for each N, N lines drawn from the pools (seed 0) fine-tune the model
(`TrainConfig.initial_model`, Adam at a constant 3e-4 for about `--steps` batches,
no augmentation, the N lines as their own validation set), and the CER on the test
halves is compared with the unadapted model's.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "copiste"


def _header() -> dict:
    return {"date": datetime.date.today().isoformat(), "machine": platform.processor()
            or platform.machine(), "cpus": os.cpu_count(), "python": sys.version.split()[0]}


def _rates(recognizer, samples) -> dict:
    from mdrnn.pipelines.evaluate import evaluate
    from mdrnn.pipelines.metrics import confusions

    result = evaluate(recognizer, samples)
    r = result.rates
    return {"lines": r.lines, "cer": round(100 * r.cer, 2), "wer": round(100 * r.wer, 2),
            "line_accuracy": round(100 * r.line_accuracy, 2),
            "confusions": [f"{a or '(none)'} -> {b or '(none)'}: {n}" for a, b, n in confusions(
                [(x.reference, x.hypothesis) for x in result.lines], 15)]}


def _speed(recognizer, lines) -> dict:
    """Prepared lines to text: three timed runs after a warm one, median and range."""
    recognizer.recognize_prepared(lines)  # warm: tracing
    before, times = os.getloadavg()[0], []
    for _ in range(3):
        started = time.perf_counter()
        recognizer.recognize_prepared(lines)
        times.append(time.perf_counter() - started)
    speeds = sorted(len(lines) / t for t in times)
    return {"median": round(statistics.median(speeds), 1),
            "range": [round(speeds[0], 1), round(speeds[-1], 1)],
            "load_before": before, "load_after": os.getloadavg()[0]}


def evaluate_model(model: str, val: Path, train: Path) -> dict:
    from mdrnn.datasets.formats import open_source
    from mdrnn.lm_decoding import embedded_lm
    from mdrnn.models import load_model
    from mdrnn.pipelines.recognizer import Recognizer
    from mdrnn.zoo import resolve_model

    samples = open_source(f"alto:{val}")
    train_texts = {s.text for s in open_source(f"alto:{train}")}
    unseen = [s for s in samples if s.text not in train_texts]
    report = {**_header(), "model": model, "val_lines": len(samples),
              "unseen_text_lines": len(unseen)}
    network = load_model(resolve_model(model))
    recognizers = {decoder: Recognizer(network, decoder=decoder) for decoder in ("greedy", "beam")}
    with embedded_lm(network) as stored:
        if stored is not None:  # the model's own LM, as `mdrnn transcribe` uses it
            recognizers["beam+lm"] = Recognizer(network, decoder="beam", lm=stored)
            report["lm"] = {"unit": stored.unit, "weight": stored.weight,
                            "blank_penalty": stored.blank_penalty, "bonus": stored.bonus}
    for name, recognizer in recognizers.items():
        report[name] = {"all": _rates(recognizer, samples),
                        "unseen_text": _rates(recognizer, unseen)}
    lines = [recognizers["greedy"].prepare(s.load()) for s in samples]
    report["transcription_lines_per_s"] = {name: _speed(recognizers[name], lines)
                                           for name in recognizers if name != "beam"}
    return report


def _writer(sample_id: str) -> str:
    page = sample_id.split("/")[0]
    return re.sub(r"_\d$", "", page)


def adapt(model: str, val: Path, counts: list[int], steps: int) -> dict:
    import numpy as np

    from mdrnn.datasets.formats import open_source
    from mdrnn.pipelines.recognizer import Recognizer
    from mdrnn.pipelines.train import train
    from mdrnn.pipelines.train_config import TrainConfig
    from mdrnn.zoo import resolve_model

    by_writer: dict[str, list] = {}
    for sample in open_source(f"alto:{val}"):   # page order, then line order
        by_writer.setdefault(_writer(sample.id), []).append(sample)
    pool, test = [], []
    for lines in by_writer.values():
        half = len(lines) // 2
        pool += lines[:half]
        test += lines[half:]
    path = str(resolve_model(model).resolve())
    report = {**_header(), "model": model, "writers": len(by_writer), "pool_lines": len(pool),
              "test_lines": len(test), "steps": steps,
              "unadapted": _rates(Recognizer.load(path), test)}
    rng = np.random.default_rng(0)
    order = rng.permutation(len(pool))
    for count in counts:
        chosen = [pool[i] for i in order[:count]]
        batch = min(16, count)
        epochs = max(1, math.ceil(steps / math.ceil(count / batch)))
        config = TrainConfig(initial_model=path, epochs=epochs, batch_size=batch,
                             learning_rate=3e-4, patience=epochs, seed=0)
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            train(chosen, chosen, out, config, verbose=0)
            seconds = time.perf_counter() - started
            rates = _rates(Recognizer.load(Path(out) / "model.keras"), test)
        report[f"adapted_{count}"] = {**rates, "epochs": epochs, "seconds": round(seconds)}
        print(json.dumps({count: report[f"adapted_{count}"]}), file=sys.stderr, flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=["evaluate", "adapt"])
    parser.add_argument("model", help="a .keras file or a shipped model's name")
    parser.add_argument("--val", type=Path, default=DATA / "val")
    parser.add_argument("--train", type=Path, default=DATA / "train")
    parser.add_argument("--lines", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    if args.task == "evaluate":
        report = evaluate_model(args.model, args.val, args.train)
    else:
        report = adapt(args.model, args.val, args.lines, args.steps)
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
