"""`mdrnn evaluate --report FILE.html`: one self-contained page on how a model reads a set.

The page holds the rates; the calibration of the line confidence (the lines in five
groups of rising confidence: the mean confidence, which for the exact p(text | x)
is the line accuracy a calibrated model has, beside the line accuracy and CER
measured); the most frequent character errors; and the worst lines, each with its
image (embedded as PNG) and its truth and reading with the differences marked.
Nothing is fetched: styles are inline, images are data URIs, there is no script.
"""

from __future__ import annotations

import base64
import datetime
import html
from collections.abc import Sequence

import cv2
import numpy as np
from rapidfuzz.distance import Levenshtein

from mdrnn.datasets.charset import TOKEN_SEPARATOR
from mdrnn.datasets.samples import Sample
from mdrnn.errors import InputError
from mdrnn.pipelines.evaluate import Evaluation, LineEvaluation
from mdrnn.pipelines.metrics import confusions, error_rates

WORST_LINES = 30
CONFIDENCE_GROUPS = 5
IMAGE_HEIGHT = 48
STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 80em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
td.text, th.text { text-align: left; font-family: serif; font-size: 1.15em; }
del { background: #f8c4c4; text-decoration: none; }
ins { background: #fbe3a8; text-decoration: none; }
img { display: block; max-width: 100%; }
.note { color: #666; font-size: 0.9em; }
"""


def _joined(symbols: Sequence[str], tokens: bool) -> str:
    return (TOKEN_SEPARATOR if tokens else "").join(symbols)


def marked_difference(reference, hypothesis) -> tuple[str, str]:
    """HTML of the truth with what was missed or misread in <del>, and of the reading
    with what was misread or added in <ins>."""
    tokens = not isinstance(reference, str)
    ref, hyp = list(reference), list(hypothesis)
    truth, read = [], []
    for tag, a0, a1, b0, b1 in Levenshtein.opcodes(ref, hyp):
        left = html.escape(_joined(ref[a0:a1], tokens))
        right = html.escape(_joined(hyp[b0:b1], tokens))
        if tag == "equal":
            truth.append(left)
            read.append(right)
        else:
            if a1 > a0:
                truth.append(f"<del>{left}</del>")
            if b1 > b0:
                read.append(f"<ins>{right}</ins>")
    glue = TOKEN_SEPARATOR if tokens else ""
    return glue.join(truth), glue.join(read)


def _image_uri(sample: Sample) -> str | None:
    try:
        image = sample.load()
    except (InputError, OSError, ValueError, cv2.error):
        return None
    scale = IMAGE_HEIGHT / max(image.shape[0], 1)
    image = cv2.resize(image, (max(1, round(image.shape[1] * scale)), IMAGE_HEIGHT),
                       interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(".png", image)
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode() if ok else None


def calibration(lines: Sequence[LineEvaluation], groups: int = CONFIDENCE_GROUPS) -> list[dict]:
    """The lines in `groups` groups of rising confidence (equal counts): per group the
    confidence range, the mean confidence, the line accuracy and the CER."""
    order = sorted(lines, key=lambda line: line.confidence)
    rows = []
    for part in np.array_split(np.arange(len(order)), min(groups, len(order))):
        chosen = [order[i] for i in part]
        rates = error_rates([x.reference for x in chosen], [x.hypothesis for x in chosen])
        rows.append({"lines": len(chosen), "low": chosen[0].confidence,
                     "high": chosen[-1].confidence,
                     "mean": float(np.mean([x.confidence for x in chosen])),
                     "line_accuracy": rates.line_accuracy, "cer": rates.cer})
    return rows


def _worst(lines: Sequence[LineEvaluation], count: int) -> list[LineEvaluation]:
    def badness(line):
        return (line.char_errors / max(len(line.reference), 1), line.char_errors)

    return sorted((x for x in lines if x.char_errors), key=badness, reverse=True)[:count]


def html_report(evaluation: Evaluation, samples: Sequence[Sample], *, model: str,
                data: str, decoder: str) -> str:
    """The report page (see the module docstring) as an HTML string."""
    rates = evaluation.rates
    by_id = {sample.id: sample for sample in samples}
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    e = html.escape
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
           f"<title>mdrnn evaluation: {e(model)} on {e(data)}</title>"
           f"<style>{STYLE}</style></head><body>",
           f"<h1>{e(model)} on {e(data)}</h1>",
           f"<p class='note'>{e(decoder)} decoding; {stamp}; "
           f"{len(evaluation.failures)} samples could not be read.</p>",
           "<table><tr><th>lines</th><th>CER</th><th>WER</th><th>line accuracy</th></tr>",
           f"<tr><td>{rates.lines}</td><td>{100 * rates.cer:.2f}%</td>"
           f"<td>{100 * rates.wer:.2f}%</td><td>{100 * rates.line_accuracy:.2f}%</td></tr>"
           "</table>"]
    if evaluation.lines:
        out.append("<h2>Confidence</h2><p class='note'>Lines in groups of rising line "
                   "confidence (the probability of the whole text read). For a calibrated "
                   "model the mean confidence of a group is its line accuracy.</p><table>"
                   "<tr><th>lines</th><th>confidence from</th><th>to</th><th>mean</th>"
                   "<th>line accuracy</th><th>CER</th></tr>")
        for row in calibration(evaluation.lines):
            out.append(f"<tr><td>{row['lines']}</td><td>{row['low']:.3g}</td>"
                       f"<td>{row['high']:.3g}</td><td>{row['mean']:.3g}</td>"
                       f"<td>{100 * row['line_accuracy']:.1f}%</td>"
                       f"<td>{100 * row['cer']:.2f}%</td></tr>")
        out.append("</table>")
    errors = confusions(((x.reference, x.hypothesis) for x in evaluation.lines), 15)
    if errors:
        out.append("<h2>Most frequent errors</h2><table><tr><th class='text'>truth</th>"
                   "<th class='text'>read</th><th>count</th></tr>")
        for truth, read, count in errors:
            shown = [e({"": "(nothing)", " ": "(space)"}.get(x, x)) for x in (truth, read)]
            out.append(f"<tr><td class='text'>{shown[0]}</td><td class='text'>{shown[1]}</td>"
                       f"<td>{count}</td></tr>")
        out.append("</table>")
    worst = _worst(evaluation.lines, WORST_LINES)
    if worst:
        out.append(f"<h2>The {len(worst)} worst lines</h2><p class='note'>By CER. "
                   "<del>Missed or misread</del> in the truth, <ins>misread or added</ins> "
                   "in the reading.</p><table>")
        for line in worst:
            truth, read = marked_difference(line.reference, line.hypothesis)
            uri = _image_uri(by_id[line.id]) if line.id in by_id else None
            image = f"<img src='{uri}' alt='{e(line.id)}'>" if uri else "(no image)"
            errors = f"{line.char_errors} error{'s' if line.char_errors > 1 else ''}"
            out.append(f"<tr><td class='text' colspan='2'>{e(line.id)}: {errors}, "
                       f"confidence {line.confidence:.3g}{image}</td></tr>"
                       f"<tr><th class='text'>truth</th><td class='text'>{truth}</td></tr>"
                       f"<tr><th class='text'>read</th><td class='text'>{read}</td></tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)
