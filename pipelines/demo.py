"""The demo: train an MDLSTM recogniser on the bundled real handwritten digit strings.

Lines are composed from MNIST digits (`mdrnn.datasets.digits`): the model trains on
strings of digit images 0..6999, is chosen on strings of images 7000..7499, and is
reported on strings of images 7500..7999, which played no part in training or in
choosing it.

The network is the Graves (2009) hierarchy with one change of geometry (preset
`graves2009_x9`): its last block is 4x1 instead of 4x2, so that width shrinks 9x
rather than 18x and a digit, about 45 px wide at a line height of 64, gets about
five CTC frames instead of two or three.

Training is a fixed number of epochs, so that a slower or busier machine takes
longer but learns the same; a time limit caps it, and the cosine schedule then
ends its decay early (benchmarks/RESULTS.md has the runs behind these settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2

DEMO_PRESET = "graves2009_x9"
DEMO_HEIGHT = 64
DEMO_EPOCHS = 40
DEMO_MINUTES = 15.0  # a cap: 40 epochs took about 10 minutes on a 2-core CPU


@dataclass
class DemoResult:
    model_path: Path
    val_cer: float
    test_cer: float
    test_wer: float
    test_lines: int
    epochs: int
    seconds: float
    samples: list[tuple[str, str, str, float]]  # (file, reference, transcription, confidence)


def demo_config(minutes: float = DEMO_MINUTES, seed: int = 0):
    """The demo's training settings: 40 epochs of 2,000 lines, Adam from 6e-3 along a
    cosine, and a time limit of `minutes`."""
    from mdrnn.pipelines.preprocess_config import PreprocessConfig
    from mdrnn.pipelines.train_config import TrainConfig

    return TrainConfig(spec=DEMO_PRESET, preprocessing=PreprocessConfig(height=DEMO_HEIGHT),
                       epochs=DEMO_EPOCHS, epoch_lines=2000, learning_rate=6e-3,
                       schedule="cosine", time_limit=60.0 * minutes, patience=20, seed=seed)


def run_demo(out_dir: str | Path, minutes: float = DEMO_MINUTES, *, train_lines: int = 10000,
             val_lines: int = 500, test_lines: int = 1000, samples: int = 8, seed: int = 0,
             verbose: int = 1) -> DemoResult:
    """Train on digit strings (for at most `minutes`), then report CER on unseen digits.

    Writes `out_dir/model.keras` (and the training's checkpoint and logs) and, in
    `out_dir/samples/`, a few test line images with a TSV of their transcriptions.
    """
    from mdrnn.datasets.digits import digit_lines
    from mdrnn.pipelines.atomic import atomic_write
    from mdrnn.pipelines.evaluate import evaluate
    from mdrnn.pipelines.recognizer import Recognizer
    from mdrnn.pipelines.train import train

    out = Path(out_dir)
    result = train(digit_lines("train", train_lines, seed=seed),
                   digit_lines("val", val_lines, seed=seed), out,
                   demo_config(minutes, seed), verbose=verbose)
    test = digit_lines("test", test_lines, seed=seed)
    recognizer = Recognizer.load(result.model_path)
    evaluation = evaluate(recognizer, test)
    rates = evaluation.rates
    folder = out / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for line in evaluation.lines[:samples]:
        sample = next(s for s in test if s.id == line.id)
        name = f"{sample.id}.png"
        cv2.imwrite(str(folder / name), sample.load())
        rows.append((name, line.reference, line.hypothesis, line.confidence))
    table = "file\treference\ttranscription\tconfidence\n" + "".join(
        f"{n}\t{r}\t{h}\t{c:.3f}\n" for n, r, h, c in rows)
    atomic_write(folder / "transcriptions.tsv", table.encode("utf-8"))
    return DemoResult(result.model_path, result.best_cer, rates.cer, rates.wer,
                      rates.lines, result.epochs_run, result.history[-1]["seconds"], rows)
