"""How well line confidences rank wrong lines below right ones (AUROC).

Reads the lines of a data source with a model (greedy), and for each candidate
definition of a line's confidence prints the probability that a line read right
scores higher than a line read wrong (AUROC; 0.5 is chance):

- the geometric mean of the best path's frame probabilities,
- the lowest and the product of the characters' peak probabilities,
- the exact p(text | x) by the CTC forward algorithm (`mdrnn.decoding`).

    python benchmarks/confidence.py MODEL digits:test
"""

from __future__ import annotations

import argparse
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def auroc(score: np.ndarray, right: np.ndarray) -> float:
    """P(score of a right line > score of a wrong one), ties counting half."""
    good, bad = score[right], score[~right]
    if not len(good) or not len(bad):
        return float("nan")
    return float(np.mean([(g > bad).mean() + 0.5 * (g == bad).mean() for g in good]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("data")
    args = parser.parse_args()

    from mdrnn.datasets.formats import open_source
    from mdrnn.decoding import greedy_decode, labelling_probability, log_probabilities
    from mdrnn.pipelines.recognizer import Recognizer
    from mdrnn.zoo import resolve_model

    recognizer = Recognizer.load(resolve_model(args.model))
    samples = open_source(args.data)
    lines = [recognizer.prepare(s.load()) for s in samples]
    rows = []
    for batch in recognizer.plan([line.shape[1] for line in lines]):
        logits, lengths = recognizer.forward([lines[i] for i in batch])
        log_probs, _ = log_probabilities(logits, lengths)
        decoded = greedy_decode(logits, lengths, per_char=True)
        labels = np.zeros((len(batch), max(1, max(len(d[0]) for d in decoded))), np.int64)
        for row, (ids, _, _) in zip(labels, decoded):
            row[:len(ids)] = ids
        exact = labelling_probability(logits, lengths, labels, [len(d[0]) for d in decoded])
        for b, (i, (ids, _, chars), p) in enumerate(zip(batch, decoded, exact)):
            best = log_probs[b, :lengths[b]].max(axis=-1)
            right = recognizer.charset.decode(ids) == samples[i].text
            rows.append((right, float(np.exp(best.mean())) if len(best) else 1.0,
                         float(chars.min()) if len(chars) else 1.0,
                         float(np.prod(chars)) if len(chars) else 1.0, float(p)))
    right = np.array([r[0] for r in rows])
    scores = np.array([r[1:] for r in rows])
    print(f"{len(rows)} lines, {int((~right).sum())} read wrong")
    names = ["geometric mean of best-path frames", "lowest character peak",
             "product of character peaks", "exact p(text | x)"]
    for name, column in zip(names, scores.T):
        print(f"| {name} | {auroc(column, right):.3f} |")


if __name__ == "__main__":
    main()
