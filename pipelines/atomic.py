"""Atomic file output: write beside the target, flush to disk, rename into place.

A file is then complete under its name or absent, even after a crash, and an
interrupted job never leaves half-written output to be mistaken for done work.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`, with the same suffix (Keras wants `.keras`);
    once the block succeeds, its content is fsync'ed and renamed to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix,
                                         dir=path.parent)
    try:  # from here on the temporary goes, however the block ends (a SIGTERM: Ctrl-C)
        os.close(handle)
        yield Path(temporary)
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except OSError as error:  # e.g. a full disk: say which file could not be written
        if error.filename is None:
            raise OSError(error.errno, f"{path}: {error.strerror or error}") from None
        raise
    finally:
        Path(temporary).unlink(missing_ok=True)


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically; the folder is created when missing."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
