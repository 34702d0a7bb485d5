"""Readers for line-image datasets; every reader returns a list of `Sample`.

Sources: a folder of line images with `<stem>.gt.txt` transcriptions, a TSV list
(`image<TAB>text`), IAM and IFN/ENIT (`mdrnn.datasets.corpora`), PAGE and ALTO XML
line regions (`mdrnn.datasets.page`, `mdrnn.datasets.alto`). `open_source(spec)`
picks the reader from one string.

Transcriptions are cleaned the same way everywhere: NFC-normalised, leading and
trailing whitespace removed, and runs of whitespace (tabs included) collapsed to
one space, since a doubled space cannot be seen in an image and so cannot be
learned. Every user mistake (missing file, missing or empty transcription, text
that is not UTF-8, unreadable XML) raises `InputError` naming the file.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from mdrnn.datasets.alto import is_alto, read_alto
from mdrnn.datasets.corpora import read_iam, read_ifnenit
from mdrnn.datasets.page import read_page
from mdrnn.datasets.samples import (
    Sample,
    check_unique,
    clean_text,
    existing_path,
    inside,
    raise_missing,
    read_text,
)
from mdrnn.errors import InputError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pnm", ".pbm", ".pgm",
                  ".ppm", ".webp")
LIST_SUFFIXES = (".tsv", ".txt", ".lst", ".list")


def _transcription_for(image: Path) -> Path | None:
    # `x.png` -> `x.gt.txt`; OCR-D/ocropus name variants `x.bin.png`, `x.nrm.png`
    # share `x.gt.txt`, so one further suffix is tried.
    stem = image.name[: -len(image.suffix)]
    candidates = [stem, stem.rsplit(".", 1)[0]] if "." in stem else [stem]
    for candidate in candidates:
        gt = image.with_name(candidate + ".gt.txt")
        if gt.is_file():
            return gt
    return None


def _problem(problems: list[str] | None, message: str) -> None:
    """Note a bad sample in `problems` (the reading goes on), or raise without it."""
    if problems is None:
        raise InputError(message)
    problems.append(message)


def read_folder(folder: str | Path, *, recursive: bool = False,
                problems: list[str] | None = None) -> list[Sample]:
    """Read line images that each have a `<stem>.gt.txt` transcription beside them.

    An image without a transcription, an empty transcription or one that is not
    UTF-8 raises InputError naming the file: silently training on fewer lines
    than the user prepared would hide the mistake. With `problems` (evaluation),
    such samples are left out and described there instead.

    Args:
        folder: the folder of images (png, jpg, tif, bmp, pnm, webp).
        recursive: also read images in subfolders.
        problems: a list to collect the bad samples' messages in.
    """
    folder = existing_path(folder, "dir")
    found = folder.rglob("*") if recursive else folder.iterdir()
    images = sorted(p for p in found if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InputError(f"{folder}: no line images ({', '.join(IMAGE_SUFFIXES)})")
    samples, missing = [], []
    for image in images:
        gt = _transcription_for(image)
        if gt is None:
            if problems is None:
                missing.append(f"{image}")
            else:
                problems.append(f"{image}: no <stem>.gt.txt transcription beside this image")
            continue
        try:
            text = clean_text(read_text(gt))
        except InputError as error:
            _problem(problems, str(error))
            continue
        if not text:
            _problem(problems, f"{gt}: empty transcription")
            continue
        samples.append(Sample(image, text, image.relative_to(folder).as_posix()))
    raise_missing(missing, "no <stem>.gt.txt transcription beside this image")
    return check_unique(samples, folder)


def read_list(list_file: str | Path, *, problems: list[str] | None = None) -> list[Sample]:
    """Read a list file of `image<TAB>text` lines; relative image paths start at the list's folder.

    Empty lines are skipped; the text is everything after the first tab. A bad row
    raises InputError naming file and line, or with `problems` is described there
    and left out.

    Args:
        list_file: a UTF-8 text file (.tsv, .txt, ...).
        problems: a list to collect the bad rows' messages in.
    """
    path = existing_path(list_file, "file")
    samples, missing, seen = [], [], {}
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        if "\t" not in line:
            hint = " (an IAM lines.txt? use iam:PATH)" if line.startswith("#") else ""
            _problem(problems, f"{where}: expected 'image<TAB>text'{hint}")
            continue
        name, raw = line.split("\t", 1)
        name, text = name.strip(), clean_text(raw)
        image = inside(path.parent, name)
        if not name or not text:
            _problem(problems, f"{where}: empty {'image path' if not name else 'transcription'}")
        elif name in seen:
            _problem(problems, f"{where}: {name} is listed again (first on line {seen[name]})")
        elif image is None:
            _problem(problems, f"{where}: image {name} lies outside the list's folder")
        elif not image.is_file() and problems is not None:
            problems.append(f"{where}: image {image}: not found")
        else:
            seen[name] = number
            if not image.is_file():
                missing.append(f"{where}: image {image}")
            samples.append(Sample(image, text, name))
    raise_missing(missing, "not found")
    if not samples:
        raise InputError(f"{path}: lists no images")
    return samples


READERS = {
    "iam": read_iam,
    "iam-ok": lambda p: read_iam(p, ok_only=True),
    "ifnenit": read_ifnenit,
    "ifnenit-aw1": lambda p: read_ifnenit(p, target="word"),
    "page": read_page,
    "alto": read_alto,
    "folder": read_folder,
    "list": read_list,
}
SPEC_HELP = ("a folder of images with .gt.txt, a .tsv/.txt list, a PAGE or ALTO .xml, "
             "digits[:train|val|test[:COUNT]], or TYPE:PATH with TYPE one of " + ", ".join(READERS))


def _open_digits(spec: str, argument: str, seed: int) -> list[Sample]:
    from mdrnn.datasets.digits import DEFAULT_COUNTS, digit_lines

    split, _, count = argument.partition(":")
    split = split or "train"
    if split not in DEFAULT_COUNTS or (count and not count.isdigit()) or count == "0":
        raise InputError(f"{spec}: expected digits[:train|val|test[:COUNT]]")
    return digit_lines(split, int(count) if count else None, seed=seed)


def open_source(spec: str, *, seed: int = 0, problems: list[str] | None = None) -> list[Sample]:
    """Read the samples a command-line data argument names.

    Args:
        spec: a folder (images + .gt.txt), a list file (.tsv/.txt/.lst), a PAGE
            or ALTO `.xml` file, or a typed source: `iam:PATH`, `iam-ok:PATH` (only lines
            segmented `ok`), `ifnenit:PATH` (shape labels), `ifnenit-aw1:PATH`
            (Unicode words), `page:PATH`, `alto:PATH`, `folder:PATH`, `list:PATH`, or
            `digits`, `digits:train`, `digits:val:500` (bundled digit strings,
            default counts 10000 train, 1000 val and test).
        seed: the random seed of generated sources (digits).
        problems: for folders and lists, collect the bad samples' messages here and
            go on without them (evaluation) instead of raising (training).

    Raises:
        InputError: unknown type, missing path, or bad data in the files.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"empty data source; expected {SPEC_HELP}")
    kind, colon, argument = spec.partition(":")
    if kind == "digits":
        return _open_digits(spec, argument, seed)
    path = Path(spec)
    if colon and kind in READERS and not path.exists():
        if not argument:
            raise InputError(f"{spec}: a path must follow '{kind}:'")
        if not Path(argument).exists():
            raise InputError(f"{spec}: no such file or folder {argument}")
        if kind in ("folder", "list") and problems is not None:
            return READERS[kind](Path(argument), problems=problems)
        return READERS[kind](Path(argument))
    if path.is_dir():
        return read_folder(path, problems=problems)
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        return read_list(path, problems=problems)
    if path.is_file() and path.suffix.lower() == ".xml":
        return read_alto(path) if is_alto(path) else read_page(path)
    if path.is_file():
        raise InputError(f"{spec}: not a data source; expected {SPEC_HELP}")
    # A drive letter (C:\...) is one character, so it never looks like a type.
    if colon and re.fullmatch(r"[A-Za-z][\w-]+", kind):
        raise InputError(f"{spec}: unknown source type {kind!r}; expected {SPEC_HELP}")
    raise InputError(f"{spec}: no such file or folder")
