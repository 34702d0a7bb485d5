"""Pictures of an `Explanation` (`mdrnn show`), drawn with matplotlib (the plot extra).

From top to bottom: the text read and its confidence; the line as the network saw
it (preprocessed), each character's columns shaded (from the frame where CTC reads it to the next
character's) and its symbol written above that frame, in the colour of its
confidence (red unsure, green sure; the colour bar on the right); the line image
as given, with the same columns mapped back onto it;
the CTC output per frame (the blank's probability and the likeliest symbol's); with
activations, the first MDLSTM level's mean |h| in each of the four scan directions
(tl: the scan from the top left corner, its arrow the way it goes), as Graves &
Schmidhuber (2009, Figure 3) show them.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mdrnn.errors import InputError

if TYPE_CHECKING:  # importing it would import TensorFlow
    from mdrnn.pipelines.explain import Explanation

ARROWS = {"tl": "tl \u2198", "tr": "tr \u2199", "bl": "bl \u2197", "br": "br \u2196"}
DPI = 100


def pyplot():
    try:
        import matplotlib
    except ImportError:
        raise InputError('pictures need matplotlib: pip install "mdrnn[plot]"') from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def render(explanation: Explanation, title: str = "") -> bytes:
    """The picture, as PNG bytes."""
    plt = pyplot()
    from matplotlib import cm, colors, patheffects

    line, result = explanation.line, explanation.result
    height, width = line.shape
    maps = explanation.activations or {}
    scan = explanation.image if explanation.image_spans is not None else None
    scan_height = 0 if scan is None else int(np.clip(
        width * scan.shape[0] / max(scan.shape[1], 1), 20, 3 * height))
    rows = [height + 30, *([scan_height] if scan is not None else []), 60]
    rows += [max(24, height // 2)] * len(maps)
    left, right, top, bottom, gap = 70, 90, 40, 25, 22
    figure_width = width + left + right
    figure_height = sum(rows) + gap * (len(rows) - 1) + top + bottom
    figure = plt.figure(figsize=(figure_width / DPI, figure_height / DPI), dpi=DPI)
    confidence_map = plt.get_cmap("RdYlGn")
    norm = colors.Normalize(0.0, 1.0)

    def axes(row: int, extra: float = 0.0):
        """An axes spanning the line's columns at `row`, sized in pixels."""
        y = figure_height - top - sum(rows[:row + 1]) - gap * row
        return figure.add_axes((left / figure_width, y / figure_height,
                                (width + extra) / figure_width, rows[row] / figure_height))

    ax = axes(0)
    ax.imshow(1.0 - line, cmap="gray", vmin=0.0, vmax=1.0, extent=(0, width, height, 0),
              aspect="auto", interpolation="nearest")
    chars = result.char_confidences or ()
    for symbol, (x0, x1), confidence in zip(result.symbols, explanation.spans, chars,
                                            strict=True):
        colour = confidence_map(norm(confidence))
        ax.axvspan(x0, x1, color=colour, alpha=0.35, linewidth=0)
        # A tile starts at the frame where CTC reads its symbol: the label goes there.
        ax.text(x0 + explanation.frame_width / 2, -3, symbol if symbol != " " else "\u2423",
                ha="center", va="bottom", fontsize=11, color=colour, fontweight="bold",
                path_effects=[patheffects.withStroke(linewidth=1.5, foreground="0.25")])
    ax.set_xlim(0, width)
    ax.set_ylim(height, -30)
    ax.set_yticks([])
    ax.set_ylabel("line", rotation=0, ha="right", va="center")
    shown = result.text if result.text else "(nothing read)"
    ax.set_title(f"{title}{': ' if title else ''}{shown}  (line confidence "
                 f"{result.confidence:.3g})", loc="left", fontsize=10)
    y = figure_height - top - rows[0]
    bar_axes = figure.add_axes(((left + width + 12) / figure_width, y / figure_height,
                                10 / figure_width, rows[0] / figure_height))
    bar = figure.colorbar(cm.ScalarMappable(norm, confidence_map), cax=bar_axes)
    bar.set_label("character\nconfidence", fontsize=7)
    bar.ax.tick_params(labelsize=7)

    row = 1
    if scan is not None:
        # The line image as given, each character's columns mapped back onto it.
        ax = axes(row)
        ax.imshow(scan if scan.ndim == 2 else scan[..., 0], cmap="gray", aspect="auto",
                  extent=(0, scan.shape[1], scan.shape[0], 0), interpolation="antialiased")
        for (x0, x1), confidence in zip(explanation.image_spans, chars, strict=True):
            ax.axvspan(x0, x1, color=confidence_map(norm(confidence)), alpha=0.3, linewidth=0)
        ax.set_xlim(0, scan.shape[1])
        ax.set_yticks([])
        ax.set_ylabel("image", rotation=0, ha="right", va="center")
        row += 1

    ax = axes(row)
    frames = np.arange(len(explanation.blank) + 1) * explanation.frame_width
    ax.stairs(explanation.blank, frames, color="0.6", label="blank")
    ax.stairs(explanation.best, frames, color="tab:blue", label="likeliest\nsymbol")
    ax.set_xlim(0, width)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("CTC", rotation=0, ha="right", va="center")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.05), fontsize=7, frameon=False)

    for index, (direction, values) in enumerate(maps.items(), start=row + 1):
        ax = axes(index)
        ax.imshow(values, cmap="viridis", aspect="auto", extent=(0, width, height, 0),
                  interpolation="nearest")
        ax.set_yticks([])
        ax.set_ylabel(ARROWS.get(direction, direction), rotation=0, ha="right",
                      va="center", fontsize=9)
    for ax in figure.axes:
        ax.tick_params(labelsize=7)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


def curves(history: list[dict], title: str = "") -> bytes:
    """A training run's curves per epoch, as PNG bytes: the training loss, the
    validation CER and WER, and the learning rate (rows of `log.csv`)."""
    plt = pyplot()
    epochs = [int(row["epoch"]) for row in history]
    figure, (loss, rates, schedule) = plt.subplots(
        3, 1, figsize=(7, 7), dpi=DPI, sharex=True, height_ratios=[2, 2, 1])
    loss.plot(epochs, [float(row["loss"]) for row in history], marker=".", color="tab:gray")
    loss.set_ylabel("training loss\n(CTC per line)")
    loss.set_yscale("log")
    loss.yaxis.set_major_formatter("{x:g}")
    values = [float(row["loss"]) for row in history]
    if max(values) < 10 * min(values):  # within a decade: label the minor ticks too
        loss.yaxis.set_minor_formatter("{x:g}")
    for key, label, colour in (("val_cer", "CER", "tab:red"), ("val_wer", "WER", "tab:blue")):
        values = [100 * float(row[key]) for row in history]
        rates.plot(epochs, values, marker=".", color=colour, label=f"validation {label}")
    best = min(history, key=lambda row: float(row["val_cer"]))
    rates.annotate(f"best CER {100 * float(best['val_cer']):.2f}% (epoch {best['epoch']})",
                   (int(best["epoch"]), 100 * float(best["val_cer"])), xytext=(0, 12),
                   textcoords="offset points", ha="center", fontsize=8, color="tab:red")
    rates.set_ylabel("error rate (%)")
    rates.set_ylim(bottom=0)
    rates.legend(fontsize=8, frameon=False)
    schedule.plot(epochs, [float(row["learning_rate"]) for row in history], color="tab:green")
    schedule.set_ylabel("learning rate")
    schedule.set_xlabel("epoch")
    for ax in (loss, rates, schedule):
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    minutes = float(history[-1]["seconds"]) / 60
    loss.set_title(f"{title}{': ' if title else ''}{len(history)} epochs, {minutes:.0f} min",
                   loc="left", fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


LOG_COLUMNS = ("epoch", "learning_rate", "loss", "val_cer", "val_wer", "seconds")


def read_log(path: Path) -> list[dict]:
    """The rows of a run's `log.csv` (`mdrnn train`), checked."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (is this a training run's folder?)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{path}: {error}") from None
    missing = [c for c in LOG_COLUMNS if rows and c not in rows[0]]
    if not rows or missing:
        what = "no epochs" if not rows else "no " + ", ".join(missing)
        raise InputError(f"{path}: not a training log ({what})")
    for number, row in enumerate(rows, 2):
        try:
            int(row["epoch"])
            [float(row[c]) for c in LOG_COLUMNS[1:]]
        except (TypeError, ValueError):
            raise InputError(f"{path}:{number}: not a row of numbers") from None
    return rows


def render_page(image: np.ndarray, transcription, title: str = "") -> bytes:
    """A page with the lines found on it and what was read in them, as PNG bytes.

    Left, the page with each line's outline (coloured by the mean confidence of its
    characters), baseline (blue) and reading-order number; right, facing it, each
    line's number, text and that mean confidence at the line's height.
    """
    plt = pyplot()
    from matplotlib import colors

    height, width = image.shape[:2]
    scale = min(1.0, 1400 / max(height, 1))
    figure_height = max(height * scale, 300) / DPI
    figure = plt.figure(figsize=(2 * width * scale / DPI + 0.4, figure_height + 0.4), dpi=DPI)
    page, text = figure.subplots(1, 2, sharey=True)
    page.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="antialiased")
    confidence_map = plt.get_cmap("RdYlGn")
    pitch = np.median([line.bbox[3] - line.bbox[1] for line in transcription.lines] or [20])
    fontsize = float(np.clip(0.5 * pitch * scale * 72 / DPI, 6, 14))
    for number, line in enumerate(transcription.lines, 1):
        chars = line.result.char_confidences
        mean = float(np.mean(chars)) if chars else 0.0
        colour = confidence_map(colors.Normalize(0, 1)(mean))
        polygon = np.vstack([line.polygon, line.polygon[:1]])
        page.plot(polygon[:, 0], polygon[:, 1], color=colour, linewidth=1.2)
        if line.baseline is not None:
            page.plot(line.baseline[:, 0], line.baseline[:, 1], color="tab:blue", linewidth=1)
        x0, y0, _, y1 = line.bbox
        page.text(x0, (y0 + y1) / 2, str(number), ha="right", va="center",
                  fontsize=fontsize * 0.8, color="tab:blue")
        text.text(0.01 * width, (y0 + y1) / 2, f"{number}  {line.result.text}  "
                  f"({mean:.2f})" if chars else f"{number}", va="center", fontsize=fontsize,
                  color="0.1")
    text.set_xlim(0, width)
    text.set_aspect("equal")
    for ax in (page, text):
        ax.set_xticks([])
        ax.set_yticks([])
    page.set_ylim(height, 0)
    page.set_title(f"{title}{': ' if title else ''}{len(transcription.lines)} lines",
                   loc="left", fontsize=9)
    figure.subplots_adjust(left=0.02, right=0.98, top=1 - 0.3 / (figure_height + 0.4),
                           bottom=0.01, wspace=0.02)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()
