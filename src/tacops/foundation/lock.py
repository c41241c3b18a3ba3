"""One run at a time against one system: an exclusive, non-blocking file lock."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tacops.foundation.errors import LockedError
from tacops.foundation.i18n import _


@contextmanager
def system_lock(lock_dir: Path, system: str, command: str) -> Iterator[None]:
    """Hold the lock of ``system`` for the duration of the block, or raise LockedError.

    The kernel drops the lock when the process ends, so a killed run leaves no stale lock.
    """
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"{system}.lock"
    handle = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise LockedError(
                _("Another tacops run holds the lock on {system} ({holder}).").format(system=system, holder=holder),
                hint=_("Wait for it to finish; the lock file is {path}.").format(path=path),
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}: {command}\n")
        handle.flush()
        yield
    finally:
        handle.close()
