"""One job per output folder: an exclusive lock, and the leftovers of killed jobs removed.

A job that writes into a folder holds a lock on `<folder>/.mdrnn.lock` (an advisory
`flock`, released by the kernel even when the process is killed) for as long as it
runs. A second job into the same folder is refused at once with a message, rather
than both writing every output (or, for jsonl, every record) twice. Once the lock
is held, no other job can be writing there, so the temporary files that a job
killed by SIGKILL or a power cut left behind (`mdrnn.pipelines.atomic` names them
`.<name>.<8 random characters><suffix>`) are stale and are removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path

from mdrnn.errors import InputError

try:
    import fcntl
except ImportError:  # not POSIX: no lock, jobs must not share a folder
    fcntl = None

log = logging.getLogger(__name__)
LOCK_NAME = ".mdrnn.lock"
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.(txt|xml|jsonl|json|png|keras|csv)$")


@contextlib.contextmanager
def exclusive_folder(folder: str | Path):
    """Hold the folder's lock for the block (the folder is created if missing).

    Raises:
        InputError: another job holds it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    handle = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InputError(f"{folder}: another mdrnn job is writing into this folder; "
                                 f"wait for it to finish or choose another output "
                                 f"folder") from None
        removed = remove_stale_temporaries(folder)
        if removed:
            log.info("%s: removed %d temporary files left by an interrupted job", folder,
                     removed)
        yield folder
    finally:
        os.close(handle)  # releases the lock


def remove_stale_temporaries(folder: Path) -> int:
    """Delete the temporary output files of `mdrnn.pipelines.atomic` under `folder`."""
    removed = 0
    for path in folder.rglob(".*"):
        if _TEMPORARY.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed
