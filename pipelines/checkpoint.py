"""Training checkpoints.

A checkpoint is a folder with every variable of the model and the optimizer (as
one .npz each, in their fixed order) and a JSON state (epoch, best score, config).
It is written beside the old one and swapped in by renames, so a run killed at any
moment leaves either the previous checkpoint or the new one, never a mixture.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np


def _save_variables(path: Path, variables) -> None:
    np.savez(path, *[np.asarray(v.numpy()) for v in variables])


def _load_variables(path: Path, variables, what: str) -> None:
    with np.load(path) as data:
        arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
    if len(arrays) != len(variables) or any(
            a.shape != tuple(v.shape) for a, v in zip(arrays, variables, strict=True)):
        raise ValueError(f"{path}: the checkpoint's {what} do not match this network")
    for variable, array in zip(variables, arrays, strict=True):
        variable.assign(array)


def save_checkpoint(folder: str | Path, model, optimizer, state: dict) -> None:
    """Write model and optimizer variables and `state` to `folder`, atomically."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        _save_variables(tmp / "model.npz", model.variables)
        _save_variables(tmp / "optimizer.npz", optimizer.variables)
        (tmp / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
    except OSError as error:  # e.g. a full disk: the last checkpoint stays as it was
        shutil.rmtree(tmp, ignore_errors=True)
        raise OSError(error.errno, f"{tmp}: cannot write the checkpoint "
                                   f"({error.strerror or error}); {folder} is unchanged") from None
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def read_state(folder: str | Path) -> dict | None:
    """The state of the checkpoint in `folder` (or of a swap interrupted midway), or None."""
    folder = Path(folder)
    for candidate in (folder, folder.with_name(folder.name + ".old")):
        if (candidate / "state.json").is_file():
            return json.loads((candidate / "state.json").read_text(encoding="utf-8"))
    return None


def restore_checkpoint(folder: str | Path, model, optimizer) -> dict:
    """Load variables saved by `save_checkpoint` into built `model` and `optimizer`."""
    folder = Path(folder)
    if not (folder / "state.json").is_file():
        folder = folder.with_name(folder.name + ".old")
    _load_variables(folder / "model.npz", model.variables, "model weights")
    _load_variables(folder / "optimizer.npz", optimizer.variables, "optimizer variables")
    return json.loads((folder / "state.json").read_text(encoding="utf-8"))
