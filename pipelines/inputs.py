"""Command-line inputs of a transcription job -> image files, each with its output name.

An input argument is an image file, a folder (searched recursively for images),
a glob pattern (``"scans/**/*.tif"``, quoted so that the shell leaves it alone),
or a list file (.txt, .lst, .list, .tsv): one image path per line, relative to
the list's folder; only the first tab-separated column is read, so a training
list ``image<TAB>text`` works as it is, and lines starting with ``#`` are comments.

Every file gets a *name*: its path relative to the folder, glob root or list
folder it came from, without the suffix (a file given directly: its stem).
Writers derive output files from it (``<out>/<name>.txt``), so a folder tree is
mirrored in the output folder and equal stems in different subfolders do not
collide. Ground-truth files (``*.gt.txt``) given directly, as ``data/*`` in a
shell expands to, are left out.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mdrnn.datasets.formats import IMAGE_SUFFIXES
from mdrnn.datasets.samples import read_text
from mdrnn.errors import InputError

log = logging.getLogger(__name__)

LIST_SUFFIXES = (".txt", ".lst", ".list", ".tsv")
GROUND_TRUTH_SUFFIX = ".gt.txt"


@dataclass(frozen=True)
class InputFile:
    """One image of a job.

    Args:
        path: the image file, as found (relative paths stay relative).
        name: the output name: a relative POSIX path without suffix, never
            starting with ``/`` or containing ``..``.
    """

    path: Path
    name: str


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _name(path: Path, root: Path | None) -> str:
    """The path relative to `root` without its suffix; the stem outside `root`."""
    relative = Path(path.name)
    if root is not None:
        try:
            relative = Path(os.path.normpath(path)).relative_to(os.path.normpath(root))
        except ValueError:
            pass
    return relative.with_suffix("").as_posix()


def _glob_root(pattern: str) -> Path:
    """The folder part of a pattern before its first wildcard: `a/b/*/c*.png` -> `a/b`."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _from_list(list_file: Path) -> list[InputFile]:
    files = []
    for line in read_text(list_file).splitlines():
        entry = line.split("\t", 1)[0].strip()
        if not entry or entry.startswith("#"):
            continue
        path = list_file.parent / entry
        # A missing entry stays in the job and fails alone when it is read, so that
        # one stale line does not stop a long list.
        files.append(InputFile(path, _name(path, list_file.parent)))
    if not files:
        raise InputError(f"{list_file}: lists no images")
    return files


def _expand_one(spec: str, problems: list[tuple[str, str]]) -> list[InputFile]:
    path = Path(spec)
    if path.is_dir():
        named = sorted(p for p in path.rglob("*") if _is_image(p))
        images = [p for p in named if p.is_file()]
        # A folder called x.png or a link to nothing looks like an image but is not one.
        problems += [(str(p), f"{p}: {'a folder' if p.is_dir() else 'a broken link'}, not an "
                     f"image file") for p in named if not p.is_file()]
        if not images:
            raise InputError(f"{spec}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        return [InputFile(p, _name(p, path)) for p in images]
    if path.is_file():
        if path.name.lower().endswith(GROUND_TRUTH_SUFFIX):
            return []
        if path.suffix.lower() in LIST_SUFFIXES:
            return _from_list(path)
        return [InputFile(path, _name(path, None))]
    if any(c in spec for c in "*?["):
        root = _glob_root(spec)
        matches = sorted(Path(p) for p in glob.glob(spec, recursive=True))
        images = [p for p in matches if p.is_file() and _is_image(p)]
        if not images:
            raise InputError(f"{spec}: the pattern matches no image files")
        return [InputFile(p, _name(p, root)) for p in images]
    raise InputError(f"{spec}: no such file or folder")


def expand_inputs(specs: Iterable[str],
                  problems: list[tuple[str, str]] | None = None) -> list[InputFile]:
    """Turn input arguments into the job's image files, in the order given.

    A file reached twice (say, by a folder and a pattern) is kept once, under
    its first name. Only paths are held, never images, so the list stays small.

    Args:
        specs: image files, folders, glob patterns and list files.
        problems: if given, the arguments that name nothing usable (and the entries
            of folders that look like images but are not files) are added to it as
            (name, reason) and the others go on; without it the first one raises.

    Raises:
        InputError: an argument that names nothing, a folder without images, a
            pattern that matches no image, an empty or unreadable list file (only
            without `problems`); no image at all.
    """
    files, seen, ground_truth = [], set(), 0
    found: list[tuple[str, str]] = []
    for spec in specs:
        try:
            expanded = _expand_one(str(spec), found)
        except InputError as error:
            if problems is None:
                raise
            found.append((str(spec), str(error)))
            continue
        if not expanded and str(spec).lower().endswith(GROUND_TRUTH_SUFFIX):
            ground_truth += 1
        for item in expanded:
            key = os.path.abspath(item.path)
            if key not in seen:
                seen.add(key)
                files.append(item)
    if ground_truth:
        log.info("left out %d ground-truth (.gt.txt) files", ground_truth)
    if problems is not None:
        problems += found
    if not files:
        raise InputError("no input images" + (f" ({found[0][1]})" if found else ""))
    return files


def check_unique_names(files: Sequence[InputFile]) -> None:
    """Raise InputError when two inputs would write the same output file.

    This happens for files given directly with equal stems (`a/1.png b/1.png`)
    or for images that differ only in suffix (`x.png`, `x.jpg`).
    """
    first: dict[str, Path] = {}
    for item in files:
        other = first.setdefault(item.name, item.path)
        if other != item.path:
            raise InputError(f"{other} and {item.path} would both be written as {item.name!r} "
                             f"(outputs are named after the path without its suffix; pass "
                             f"their parent folder to keep subfolders apart)")
