"""Readers for line-image datasets; every reader returns a list of `Sample`.

Sources: a folder of line images with `<stem>.gt.txt` transcriptions, a TSV list
(`image<TAB>text`), IAM `lines.txt`/`words.txt`, IFN/ENIT `.tif` + `.tru`, and PAGE
XML line regions (`mdrnn.datasets.page`). `open_source(spec)` picks the reader from
one string.

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
from mdrnn.datasets.page import read_page
from mdrnn.datasets.samples import (
    Sample,
    check_unique,
    clean_text,
    existing_path,
    inside,
    read_text,
)
from mdrnn.errors import InputError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pnm", ".pbm", ".pgm",
                  ".ppm", ".webp")
LIST_SUFFIXES = (".tsv", ".txt", ".lst", ".list")


def _raise_missing(missing: list[str], what: str) -> None:
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(f"{missing[0]}: {what}{more}")


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


def read_folder(folder: str | Path, *, recursive: bool = False) -> list[Sample]:
    """Read line images that each have a `<stem>.gt.txt` transcription beside them.

    An image without a transcription, an empty transcription or one that is not
    UTF-8 raises InputError naming the file: silently training on fewer lines
    than the user prepared would hide the mistake.

    Args:
        folder: the folder of images (png, jpg, tif, bmp, pnm, webp).
        recursive: also read images in subfolders.
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
            missing.append(f"{image}")
            continue
        text = clean_text(read_text(gt))
        if not text:
            raise InputError(f"{gt}: empty transcription")
        samples.append(Sample(image, text, image.relative_to(folder).as_posix()))
    _raise_missing(missing, "no <stem>.gt.txt transcription beside this image")
    return check_unique(samples, folder)


def read_list(list_file: str | Path) -> list[Sample]:
    """Read a list file of `image<TAB>text` lines; relative image paths start at the list's folder.

    Empty lines are skipped; the text is everything after the first tab.

    Args:
        list_file: a UTF-8 text file (.tsv, .txt, ...).
    """
    path = existing_path(list_file, "file")
    samples, missing, seen = [], [], {}
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        if "\t" not in line:
            hint = " (an IAM lines.txt? use iam:PATH)" if line.startswith("#") else ""
            raise InputError(f"{where}: expected 'image<TAB>text'{hint}")
        name, raw = line.split("\t", 1)
        name, text = name.strip(), clean_text(raw)
        if not name or not text:
            raise InputError(f"{where}: empty {'image path' if not name else 'transcription'}")
        if name in seen:
            raise InputError(f"{where}: {name} is listed again (first on line {seen[name]})")
        seen[name] = number
        image = inside(path.parent, name)
        if image is None:
            raise InputError(f"{where}: image {name} lies outside the list's folder")
        if not image.is_file():
            missing.append(f"{where}: image {image}")
        samples.append(Sample(image, text, name))
    _raise_missing(missing, "not found")
    if not samples:
        raise InputError(f"{path}: lists no images")
    return samples


def read_iam(path: str | Path, *, ok_only: bool = False) -> list[Sample]:
    """Read IAM `lines.txt` or `words.txt` with the IAM image layout.

    Image `a01-000u-00` is `a01/a01-000u/a01-000u-00.png` under the `lines/` (or,
    for word ids, `words/`) folder beside `ascii/`, or beside the list file. The
    `|` word separator becomes a space.

    Args:
        path: the list file, or the IAM root folder holding `ascii/lines.txt`.
        ok_only: keep only entries whose segmentation flag is `ok` (IAM marks
            lines with word segmentation errors `err`, doubtful words `er`).
    """
    path = Path(path)
    if path.is_dir():
        candidates = [path / "ascii" / "lines.txt", path / "lines.txt"]
        list_file = next((p for p in candidates if p.is_file()), None)
        if list_file is None:
            raise InputError(f"{path}: no ascii/lines.txt or lines.txt (IAM layout)")
    else:
        list_file = existing_path(path, "file")
    entries = []
    for number, line in enumerate(read_text(list_file).splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        parts = fields[0].split("-")
        if len(fields) < 9 or len(parts) not in (3, 4) or fields[1] not in ("ok", "err", "er"):
            raise InputError(f"{list_file}:{number}: not an IAM lines.txt/words.txt entry")
        if ok_only and fields[1] != "ok":
            continue
        # Words are `id flag gray x y w h tag text`, lines `id flag gray n x y w h text`.
        text = clean_text(" ".join(fields[8:]).replace("|", " "))
        relative = Path(parts[0], f"{parts[0]}-{parts[1]}", f"{fields[0]}.png")
        entries.append((fields[0], relative, text))
    if not entries:
        raise InputError(f"{list_file}: no IAM entries")
    kind, first = ("lines" if entries[0][0].count("-") == 2 else "words"), entries[0][1]
    roots = [list_file.parent.parent / kind, list_file.parent / kind, list_file.parent]
    root = next((r for r in roots if (r / first).is_file()), None)
    if root is None:
        raise InputError(f"{list_file}: image {first} not found under "
                         f"{', '.join(str(r) for r in roots)}")
    missing = [f"{root / rel}" for _, rel, _ in entries if not (root / rel).is_file()]
    _raise_missing(missing, f"image listed in {list_file} not found")
    return check_unique([Sample(root / rel, text, i) for i, rel, text in entries], list_file)


def shape_label(token: str) -> str:
    """Reduce an IFN/ENIT AW2 shape label to one of the 120 labels of RNNLIB's lookup.

    The `llL` marker (shadda over the letter) is dropped, and so are the variant
    digits 1/2 after the first character (`yaB1` -> `yaB`), as RNNLIB's IFN/ENIT
    setup does.
    """
    head, _, tail = token.partition("llL")
    token = head or tail
    return token[:1] + re.sub("[12]", "", token[1:])


def _parse_tru(tru: Path) -> dict[str, str]:
    try:
        # Windows-1256 defines all 256 bytes, so decoding cannot fail.
        content = tru.read_bytes().decode("cp1256")
    except OSError as error:
        raise InputError(f"{tru}: cannot read ({error.strerror or error})") from None
    for line in content.splitlines():
        if line.startswith("LBL:"):
            pairs = (item.split(":", 1) for item in line[4:].strip().split(";") if ":" in item)
            return {key.strip(): value.strip() for key, value in pairs}
    raise InputError(f"{tru}: no LBL: line (not an IFN/ENIT .tru file)")


def read_ifnenit(path: str | Path, *, target: str = "shapes") -> list[Sample]:
    """Read IFN/ENIT word images (`.tif`) with their `.tru` ground truth.

    Args:
        path: a `.tru` file or a folder searched recursively for them; each image
            is `<stem>.tif` beside its `.tru` or in a sibling `tif/` folder (the
            layout of the distribution: `set_a/tru/`, `set_a/tif/`).
        target: "shapes": the AW2 character-shape labels as a tuple of tokens in
            reading order, reduced by `shape_label`; "word": the AW1 word in
            Windows-1256, decoded to Unicode, with IFN/ENIT's `.` between words
            replaced by a space. Both stay in logical (reading) order.
    """
    if target not in ("shapes", "word"):
        raise ValueError(f"target must be 'shapes' or 'word', got {target!r}")
    root = Path(path)
    if root.is_dir():
        trus = sorted(root.rglob("*.tru"))
    elif root.is_file() and root.suffix.lower() == ".tru":
        trus = [root]
    else:
        raise InputError(f"{root}: no such folder or .tru file")
    if not trus:
        raise InputError(f"{root}: no .tru files")
    samples = []
    for tru in trus:
        fields = _parse_tru(tru)
        key = "AW2" if target == "shapes" else "AW1"
        if not fields.get(key):
            raise InputError(f"{tru}: the LBL: line has no {key} field")
        if target == "shapes":
            text = tuple(shape_label(t) for t in fields["AW2"].split("|") if t.strip())
        else:
            text = clean_text(fields["AW1"].replace(".", " "))
        images = [tru.with_suffix(s) for s in (".tif", ".TIF")]
        images += [tru.parent.parent / "tif" / (tru.stem + s) for s in (".tif", ".TIF")]
        image = next((p for p in images if p.is_file()), None)
        if image is None:
            raise InputError(f"{tru}: no image {tru.stem}.tif beside it or in ../tif")
        samples.append(Sample(image, text, tru.stem))
    return check_unique(samples, root)


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


def open_source(spec: str, *, seed: int = 0) -> list[Sample]:
    """Read the samples a command-line data argument names.

    Args:
        spec: a folder (images + .gt.txt), a list file (.tsv/.txt/.lst), a PAGE
            or ALTO `.xml` file, or a typed source: `iam:PATH`, `iam-ok:PATH` (only lines
            segmented `ok`), `ifnenit:PATH` (shape labels), `ifnenit-aw1:PATH`
            (Unicode words), `page:PATH`, `alto:PATH`, `folder:PATH`, `list:PATH`, or
            `digits`, `digits:train`, `digits:val:500` (bundled digit strings,
            default counts 10000 train, 1000 val and test).
        seed: the random seed of generated sources (digits).

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
        return READERS[kind](Path(argument))
    if path.is_dir():
        return read_folder(path)
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        return read_list(path)
    if path.is_file() and path.suffix.lower() == ".xml":
        return read_alto(path) if is_alto(path) else read_page(path)
    if path.is_file():
        raise InputError(f"{spec}: not a data source; expected {SPEC_HELP}")
    # A drive letter (C:\...) is one character, so it never looks like a type.
    if colon and re.fullmatch(r"[A-Za-z][\w-]+", kind):
        raise InputError(f"{spec}: unknown source type {kind!r}; expected {SPEC_HELP}")
    raise InputError(f"{spec}: no such file or folder")
