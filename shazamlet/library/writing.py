"""Writing to a library safely: one writer at a time, no stale temp files, and a full disk met in one line.

Every write (add, remove, reindex, an index rebuild) runs inside `writing()`: it holds the library's
write lock (a second writer waits, saying so), removes the temp files a killed writer left (only a
writer creates them, so while the lock is held none is live), and turns a full disk, a quota or a
read-only file system into `DiskFull`, one line, after the writer's own cleanup has removed its temp
files. Songs committed before the error stay; the index in use is only replaced once a new one is
complete, so nothing is lost.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from shazamlet.library.errors import DiskFull

log = logging.getLogger("shazamlet.library")

LOCK_NAME = ".write.lock"
TEMP_PREFIX = ".tmp-"  # of every file being written: fingerprint files (`store.py`), index generations (`index.py`)
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# Headroom past the estimate: the file system's own blocks, the catalog's WAL, a song's fingerprints.
SPACE_MARGIN_BYTES = 2 * 1024 * 1024


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error from a write means there is no room (OSError, or SQLite's own message)."""
    if isinstance(exc, OSError):
        return exc.errno in _DISK_ERRNOS
    return isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc)


def remove_stale_temps(folder: Path) -> int:
    """Delete the temp files a killed writer left in `folder` and its `fingerprints/`; returns how many.
    Call only while holding the write lock."""
    removed = 0
    for where in (folder, folder / "fingerprints"):
        try:
            entries = list(os.scandir(where))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
                try:
                    os.unlink(entry.path)
                    removed += 1
                except OSError:
                    pass
    return removed


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def check_space(folder: Path, needed: int, what: str) -> None:
    """Raise DiskFull before a write of about `needed` bytes that the disk cannot hold: a file written
    through a memory map (the ANNOY index) would otherwise kill the process (SIGBUS) when the disk fills."""
    free = free_bytes(folder)
    if free < needed + SPACE_MARGIN_BYTES:
        raise DiskFull(f"not enough disk space to {what} in {folder}: it needs about "
                                     f"{(needed + SPACE_MARGIN_BYTES) / 1e6:.0f} MB and {free / 1e6:.0f} MB are free; "
                                     "free some space and run the command again (nothing was lost)")


@contextmanager
def write_lock(folder: Path) -> Iterator[None]:
    """Hold the library's write lock; another process writing it is waited for (with one line)."""
    from filelock import FileLock, Timeout  # here: its import (~70 ms) would delay every read-only command

    lock = FileLock(str(folder / LOCK_NAME))
    try:
        lock.acquire(timeout=0.5)
    except Timeout:
        log.warning(f"waiting for another Shazamlet that is writing to the library {folder} ...")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


@contextmanager
def disk_errors(folder: Path, what: str) -> Iterator[None]:
    """Turn a full disk met while writing into DiskFull (one line, what was being done and what to do)."""
    try:
        yield
    except (OSError, sqlite3.OperationalError) as exc:  # (DiskFull is no OSError: it passes through)
        if not is_disk_full(exc):
            raise
        raise DiskFull(f"the disk holding the library {folder} is full: could not {what}; the songs "
                                     "stored before it are kept and the library answers as before; free some space "
                                     "and run the command again") from None
