"""How well line confidences rank wrong lines below right ones (AUROC).

Reads the lines of a data source with a model (greedy), and for each candidate
definition of a line's confidence prints the probability that a line read right
scores higher than a line read wrong (AUROC; 0.5 is chance):

- the geometric mean of the best path's frame probabilities,
- the lowest and the product of the characters' peak probabilities,
- the exact p(text | x) by the CTC forward algorithm (`mdrnn.decoding`).

With --chars, the characters instead: each decoder's text is aligned to the truth
(an optimal edit script) and every character read is right (kept) or wrong
(substituted or inserted); the AUROC says how well the characters' confidences
(`LineResult.char_confidences`) rank the wrong ones below the right ones, for the
greedy decoder, beam search, and beam search with the model's LM if it has one.

    python benchmarks/confidence.py MODEL digits:test
    python benchmarks/confidence.py fr-copiste alto:../shared/data/copiste/val --chars
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
    parser.add_argument("--chars", action="store_true", help="character confidences")
    args = parser.parse_args()
    if args.chars:
        characters(args.model, args.data)
        return

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


def characters(model: str, data: str) -> None:
    from rapidfuzz.distance import Levenshtein

    from mdrnn.datasets.formats import open_source
    from mdrnn.lm_decoding import embedded_lm
    from mdrnn.models import load_model
    from mdrnn.pipelines.recognizer import Recognizer
    from mdrnn.zoo import resolve_model

    network = load_model(resolve_model(model))
    samples = open_source(data)
    lines = [s.load() for s in samples]
    with embedded_lm(network) as stored:
        decoders = {"greedy": {"decoder": "greedy"}, "beam 16": {"decoder": "beam"}}
        if stored is not None:
            decoders["beam 16 + the model's LM"] = {"decoder": "beam", "lm": "model"}
        for name, options in decoders.items():
            results = Recognizer(network, **options).recognize(lines)
            scores, right = [], []
            for sample, result in zip(samples, results, strict=True):
                wrong = set()
                for op in Levenshtein.editops(list(sample.text), list(result.symbols)):
                    if op.tag != "delete":
                        wrong.add(op.dest_pos)
                scores += list(result.char_confidences)
                right += [k not in wrong for k in range(len(result.symbols))]
            right = np.array(right)
            print(f"| {name} | {len(right)} | {int((~right).sum())} | "
                  f"{auroc(np.array(scores), right):.3f} |", flush=True)


if __name__ == "__main__":
    main()
