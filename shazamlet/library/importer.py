"""Adding files to a library: what to add, decoding them in worker threads, and the report of it.

Decoders run ahead of the encoder in a bounded window of files, and each decoded song is handed to the
library in the order the files were given (`decode_files`), so that a song is committed as soon as its
fingerprints are on disk. The library (`shazamlet.library.library`) decides how a song is prepared
and what storing it means (an `add` keeps unchanged songs, a `reindex` replaces files).
"""

from __future__ import annotations

import errno
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from shazamlet.audio.decode import is_audio_file
from shazamlet.library.prepare import FailedSong, PreparedSong, default_workers


@dataclass
class AddProgress:
    """Sent after each file (phase "embed") and each song indexed (phase "index")."""

    phase: str
    done: int
    total: int
    audio_seconds: float = 0.0
    path: str = ""
    error: str | None = None


@dataclass
class AddReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    audio_seconds: float = 0.0
    elapsed_s: float = 0.0
    cancelled: bool = False


ProgressFn = Callable[[AddProgress], None]
StoreFn = Callable[[PreparedSong, AddReport], None]


def collect_audio_files(paths: Iterable[str | Path]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(file, root) pairs for every audio file under `paths` (recursive), each file once; plus one line
    for each thing skipped and why.

    Files come as found under their root (a folder reached through a link keeps the link's name, which
    is the genre a user expects from `ROOT/Jazz -> /nas/jazz`): absolute, not resolved. Links to folders
    are followed once each: a link back to a folder already searched (a loop) is skipped and said.
    """
    found: list[tuple[Path, Path]] = []
    errors: list[str] = []
    seen_files: set[tuple[int, int]] = set()

    def add_file(f: Path, root: Path) -> None:
        try:
            st = f.stat()
        except OSError as exc:
            errors.append(f"{f}: {_why(exc)}")
            return
        if (st.st_dev, st.st_ino) not in seen_files:  # the same file through two links: once
            seen_files.add((st.st_dev, st.st_ino))
            found.append((f, root))

    for raw in paths:
        p = Path(os.path.abspath(Path(raw).expanduser()))
        try:
            is_dir = p.is_dir()
            p.stat()
        except OSError as exc:
            errors.append(f"{raw}: {_why(exc)}")
            continue
        if not is_dir:
            add_file(p, p.parent)
            continue
        seen_dirs: set[tuple[int, int]] = set()

        def walk_error(exc: OSError) -> None:
            errors.append(f"{exc.filename}: folder skipped: {_why(exc)}")

        for folder, dirs, names in os.walk(p, onerror=walk_error, followlinks=True):
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen_dirs:
                errors.append(f"{folder}: folder skipped: a link back to a folder already searched (a loop)")
                dirs.clear()
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            dirs.sort()
            for name in sorted(names):
                f = Path(folder) / name
                if is_audio_file(f):
                    if not f.exists():
                        errors.append(f"{f}: a link to nothing (its target is gone)")
                    else:
                        add_file(f, p)
    return found, errors


def _why(exc: OSError) -> str:
    """A few words for an OSError a person can act on."""
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == errno.ELOOP:
        return "a loop of symbolic links"
    if isinstance(exc, FileNotFoundError):
        return "no such file or folder"
    return exc.strerror or str(exc)


PrepareFn = Callable[[Path, Path, str | None], PreparedSong | FailedSong]  # (file, root, genre) -> a decoded song


def decode_files(todo: list[tuple[Path, Path, str | None]], prepare: PrepareFn, report: AddReport,
                 progress: ProgressFn | None, cancel: Callable[[], bool] | None, workers: int | None,
                 store: StoreFn, failed_note: str = "") -> None:
    """Run `prepare` on `todo` (file, root, genre) in worker threads and hand each song to `store`, in
    order; a file that fails gets its one line, plus `failed_note`, in the report's errors. `cancel`
    is asked between songs (the report then says cancelled)."""
    if not todo:
        return
    n_workers = workers or default_workers()
    with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="decode") as pool:
        # A bounded window of files in flight: decoders run ahead of the encoder, but never hold
        # more than a few songs' tiles in memory.
        window = 2 * n_workers + 1
        pending = deque()
        jobs = iter(todo)

        def submit_next() -> None:
            item = next(jobs, None)
            if item is not None:
                pending.append((item[0], pool.submit(prepare, *item)))

        for _ in range(window):
            submit_next()
        done = 0
        try:
            while pending:
                if cancel and cancel():
                    report.cancelled = True
                    break
                path, fut = pending.popleft()
                result = fut.result()
                submit_next()
                if isinstance(result, FailedSong):
                    report.errors.append(result.error + failed_note)
                else:
                    store(result, report)
                done += 1
                if progress:
                    progress(AddProgress("embed", done, len(todo), report.audio_seconds, str(path),
                                         result.error if isinstance(result, FailedSong) else None))
        finally:
            for _, fut in pending:
                fut.cancel()
