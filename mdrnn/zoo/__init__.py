"""Trained models shipped inside the package, chosen by name wherever a model file is.

Each shipped model is `<name>.keras` in this folder with a card `<name>.json` beside
it: what it reads, its training data and their licence and attribution, its
recipe, and its measured error rates. `resolve_model` turns a command's MODEL
argument (a path or a name) into a file; `shipped_models` lists the cards.
"""

from __future__ import annotations

import json
from pathlib import Path

from mdrnn.errors import InputError

FOLDER = Path(__file__).resolve().parent


def shipped_models() -> dict[str, dict]:
    """The cards of the shipped models by name, in name order."""
    cards = {}
    for card in sorted(FOLDER.glob("*.json"), key=lambda path: path.stem):
        if (FOLDER / f"{card.stem}.keras").is_file():
            cards[card.stem] = json.loads(card.read_text(encoding="utf-8"))
    return cards


def resolve_model(model: str | Path) -> Path:
    """The model file a MODEL argument names: an existing file, else a shipped model.

    Raises:
        InputError: neither a file nor the name of a shipped model.
    """
    path = Path(model)
    if path.is_file():
        return path
    name = str(model)
    if "/" not in name and "\\" not in name and (FOLDER / f"{name}.keras").is_file():
        return FOLDER / f"{name}.keras"
    names = ", ".join(shipped_models()) or "none"
    raise InputError(f"{model}: no such model file, nor a shipped model (shipped: {names})")
