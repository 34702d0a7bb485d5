"""Decoding with n-gram language models: CER, WER and lines/s by decoder and LM order.

The network runs once over the validation lines; its outputs are then decoded
greedily, by the exact prefix beam search without an LM, and with each LM by two
decoders: that prefix beam search over the LM compiled to an automaton ("prefix")
and flashlight-text's beam search ("flashlight"). The LMs are character n-grams
of each order and a word n-gram, built from the training transcriptions only.
Each LM's weight, word bonus and blank penalty are chosen on the validation lines
themselves (as `mdrnn train --lm auto` does), so the LM rows are tuned on what
they report: the figures say what tuning can reach, not what a held-out test
would show. Speeds are decoding only (lines/s of one process,
network excluded), timed after the tuning in interleaved passes.

    python benchmarks/lm_decoding.py --model fr-copiste \
        --train alto:../shared/data/copiste/train --val alto:../shared/data/copiste/val
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="fr-copiste")
    parser.add_argument("--train", required=True, help="data source of the LM's text")
    parser.add_argument("--val", required=True, help="data source to tune and report on")
    parser.add_argument("--orders", default="4,5,6,7,8")
    parser.add_argument("--word-order", type=int, default=3, help="0: no word LM")
    parser.add_argument("--beam-widths", default="16")
    parser.add_argument("--engines", default="prefix,flashlight")
    parser.add_argument("--weights", help="LM weights to tune over (default: tune_lm's)")
    parser.add_argument("--penalties", help="blank penalties to tune over (default: tune_lm's)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed passes of each chosen decoder, interleaved")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()

    from mdrnn.datasets.formats import open_source
    from mdrnn.decoding import beam_search_decode, greedy_decode
    from mdrnn.lm import build_arpa
    from mdrnn.lm_decoding import KENLM_MAX_ORDER, LanguageModel, lm_decoder
    from mdrnn.models import load_model
    from mdrnn.pipelines.lm_tune import network_outputs, tune_lm
    from mdrnn.pipelines.metrics import error_rates
    from mdrnn.pipelines.recognizer import Recognizer
    from mdrnn.zoo import resolve_model

    texts = [s.text for s in open_source(args.train)]
    recognizer = Recognizer(load_model(resolve_model(args.model)), decoder="beam")
    network = network_outputs(recognizer, open_source(args.val))
    outputs, references = network[0], [t for batch in network[1] for t in batch]
    rows, decoders = [], []

    def plain(name, decode):
        hypotheses = []
        for logits, lengths in outputs:
            hypotheses += [recognizer.charset.decode(r[0]) for r in decode(logits, lengths)]
        rates = error_rates(references, hypotheses)
        rows.append({"decoder": name, "cer": rates.cer, "wer": rates.wer})
        decoders.append(decode)

    plain("greedy", greedy_decode)
    for width in map(int, args.beam_widths.split(",")):
        plain(f"beam {width}", lambda lg, n, w=width: beam_search_decode(lg, n, beam_width=w))
    with tempfile.TemporaryDirectory() as tmp:
        lms = [(f"char {n}-gram", "char", n) for n in map(int, args.orders.split(","))]
        if args.word_order:
            lms.append((f"word {args.word_order}-gram", "word", args.word_order))
        for name, unit, order in lms:
            path = Path(tmp, f"{unit}{order}.arpa")
            start = time.perf_counter()
            path.write_bytes(build_arpa(texts, order=order, unit=unit))
            built = time.perf_counter() - start
            for width, engine in itertools.product(map(int, args.beam_widths.split(",")),
                                                   args.engines.split(",")):
                if (unit == "word" and engine == "prefix") or (
                        engine == "flashlight" and order > KENLM_MAX_ORDER):
                    continue
                recognizer.beam_width = width
                grid = {"bonuses": (0.0, 1.0, 2.0) if unit == "word" else (0.0,)}
                for key, option in (("weights", args.weights), ("penalties", args.penalties)):
                    if option:
                        grid[key] = tuple(float(x) for x in option.split(","))
                chosen, trials = tune_lm(recognizer, [], LanguageModel(path, unit), **grid,
                                         engine=engine, network=network)
                best = min(trials[1:], key=lambda t: t.cer)
                rows.append({"decoder": f"{engine} beam {width} + {name}", "cer": best.cer,
                             "wer": best.wer, "weight": best.weight, "bonus": best.bonus,
                             "blank_penalty": best.blank_penalty, "build_s": built,
                             "arpa_bytes": path.stat().st_size})
                tuned = LanguageModel(path, unit, best.weight, best.bonus, best.blank_penalty)
                decoders.append(lm_decoder(tuned, recognizer.charset.symbols,
                                           beam_width=width, engine=engine).decode)
                print(rows[-1], flush=True)
        # Speed: every chosen decoder over all lines, `repeats` times, interleaved.
        load_before = os.getloadavg()[0]
        seconds = [[] for _ in rows]
        for _ in range(args.repeats):
            for row_seconds, decode in zip(seconds, decoders):
                start = time.perf_counter()
                for logits, lengths in outputs:
                    decode(logits, lengths)
                row_seconds.append(time.perf_counter() - start)
        load_after = os.getloadavg()[0]
        for row, row_seconds in zip(rows, seconds):
            speeds = sorted(len(references) / s for s in row_seconds)
            row["lines_per_s"] = speeds[len(speeds) // 2]
            row["lines_per_s_range"] = [speeds[0], speeds[-1]]
    greedy = rows[0]["cer"]
    print(f"\n{len(references)} lines, {platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d')}; lines/s: median (range) of {args.repeats} passes; "
          f"load average {load_before:.2f} before, {load_after:.2f} after\n")
    print("| decoder | CER % | vs greedy | WER % | lines/s | weight / bonus / blank |")
    print("|---|--:|--:|--:|--:|---|")
    for r in rows:
        tuned = (f"{r['weight']:g} / {r['bonus']:g} / {r['blank_penalty']:g}"
                 if "weight" in r else "")
        print(f"| {r['decoder']} | {100 * r['cer']:.2f} | {100 * (r['cer'] / greedy - 1):+.1f}% "
              f"| {100 * r['wer']:.2f} | {r['lines_per_s']:.0f} ({r['lines_per_s_range'][0]:.0f}-"
              f"{r['lines_per_s_range'][1]:.0f}) | {tuned} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
