"""`Sample`, the one type every reader returns, and the text helpers readers share."""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mdrnn.datasets.imageio import load_image
from mdrnn.errors import InputError


@dataclass(frozen=True, eq=False)
class Sample:
    """One line image and its transcription.

    Samples compare by identity (`eq=False`): an array source has no useful `==`.

    Args:
        source: the image file (str or Path), or the image itself as a 2-D uint8
            gray array, dark ink on light paper.
        text: a string, or a tuple of symbol tokens where one symbol is longer
            than one character (IFN/ENIT shape labels such as ("saB", "yaM")).
            Strings are split into code points by `Charset`; tuples are not split.
        id: unique within a dataset; names the sample in messages and outputs.
    """

    source: str | Path | np.ndarray
    text: str | tuple[str, ...]
    id: str

    def __post_init__(self):
        source, text = self.source, self.text
        if isinstance(source, np.ndarray) and (source.dtype != np.uint8 or source.ndim != 2):
            raise ValueError(f"sample {self.id!r}: an array source must be 2-D uint8, got "
                             f"{source.dtype} with shape {source.shape}")
        if not isinstance(source, str | Path | np.ndarray):
            raise TypeError(f"sample {self.id!r}: source must be a path or an array, "
                            f"got {type(source).__name__}")
        if isinstance(text, list):  # a list would make the frozen sample mutable
            object.__setattr__(self, "text", text := tuple(text))
        if not isinstance(text, str | tuple) or not all(isinstance(t, str) for t in text):
            raise TypeError(f"sample {self.id!r}: text must be a str or a tuple of str, "
                            f"got {text!r}")
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"sample id must be a non-empty string, got {self.id!r}")

    @property
    def name(self) -> str:
        """How messages refer to the sample: its file for path sources, else its id."""
        return self.id if isinstance(self.source, np.ndarray) else str(self.source)

    def load(self) -> np.ndarray:
        """The line image as 2-D uint8 gray; InputError names an unreadable file."""
        if isinstance(self.source, np.ndarray):
            return self.source
        return load_image(self.source)


def clean_text(text: str) -> str:
    """NFC-normalise a transcription and collapse its whitespace to single spaces."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def read_text(path: Path) -> str:
    """Read a UTF-8 text file (BOM allowed); InputError names the file otherwise."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
                         f"{error.start})") from None


_outside = {"allowed": False}


def allow_outside(allowed: bool = True) -> None:
    """Let data files name images outside their own folder (the `--allow-outside`
    option of the commands that read data); refused by default."""
    _outside["allowed"] = allowed


def outside_allowed() -> bool:
    return _outside["allowed"]


def inside(folder: Path, name: str, root: Path | None = None) -> Path | None:
    """`folder / name` when that path stays inside `root` (by default `folder`): no
    absolute path or ``..`` leading out (symbolic links are not followed, so linked
    data folders work); else None, unless `allow_outside` was called. A data file
    may only name images in its folder."""
    path = Path(os.path.normpath(folder / name))
    base = Path(os.path.normpath(root if root is not None else folder))
    return path if path == base or base in path.parents or outside_allowed() else None


def existing_path(path: str | Path, kind: str) -> Path:
    """`path`, checked to be an existing file (`kind` "file") or folder ("dir")."""
    path = Path(path)
    if kind == "dir" and not path.is_dir():
        raise InputError(f"{path}: no such folder")
    if kind == "file" and not path.is_file():
        raise InputError(f"{path}: no such file")
    return path


def check_unique(samples: list[Sample], where: Path) -> list[Sample]:
    ids = [s.id for s in samples]
    if len(set(ids)) < len(ids):
        twice = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"{where}: sample id {twice!r} occurs twice")
    return samples


def raise_missing(missing: list[str], what: str) -> None:
    """Raise an InputError naming the first of `missing` and how many more there are."""
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(f"{missing[0]}: {what}{more}")
