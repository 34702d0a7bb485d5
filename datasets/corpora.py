"""Readers of the public handwriting corpora: IAM lines and words, IFN/ENIT.

Both keep their own folder layouts; `mdrnn.datasets.formats.open_source` reaches
them as `iam:PATH`, `iam-ok:PATH`, `ifnenit:PATH` and `ifnenit-aw1:PATH`.
"""

from __future__ import annotations

import re
from pathlib import Path

from mdrnn.datasets.samples import (
    Sample,
    check_unique,
    clean_text,
    existing_path,
    raise_missing,
    read_text,
)
from mdrnn.errors import InputError


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
    raise_missing(missing, f"image listed in {list_file} not found")
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
