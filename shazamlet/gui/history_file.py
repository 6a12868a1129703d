"""The history's JSON file: read once at start-up, written by a thread of its own.

Every identification (one per file of a folder) changes the history, and writing ~1000 entries to disk
must not hold up the GUI thread; writes that queue up while one is running are merged into one of the
newest entries. A file that cannot be read is set aside (`.damaged-<time>`), never overwritten.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, fields
from pathlib import Path

from shazamlet.gui.history_model import HistoryEntry

KEEP = 1000  # entries kept in the file
log = logging.getLogger(__name__)


class HistoryFile:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._pending: list[HistoryEntry] | None = None  # the newest entries not written yet
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history")
        self._closed = False
        self.error = ""  # why the last write failed ("" when it did not)

    def load(self) -> list[HistoryEntry]:
        """The entries kept; a file that is not a history is renamed aside (and the history starts empty)."""
        if not (self.path and self.path.exists()):
            return []
        try:
            known = {f.name for f in fields(HistoryEntry)}
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return [HistoryEntry(**{k: v for k, v in e.items() if k in known}) for e in raw]
        except (ValueError, TypeError, AttributeError) as exc:
            aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            try:
                self.path.replace(aside)
                log.warning("history %s could not be read (%s); kept as %s", self.path, exc, aside.name)
            except OSError:
                pass
            return []
        except OSError as exc:
            log.warning("history %s could not be read: %s", self.path, exc.strerror or exc)
            return []

    def save(self, entries: list[HistoryEntry]) -> None:
        """Write `entries` (the newest first) soon, in the writer's thread."""
        if not self.path:
            return
        with self._lock:
            idle = self._pending is None
            self._pending = list(entries[:KEEP])
        if self._closed:  # an answer that arrived while the window closed: written here, not lost
            self._write()
        elif idle:
            self._writer.submit(self._write)

    def flush(self) -> None:
        """Wait until what was saved is on disk (before reading the file back)."""
        self._writer.submit(lambda: None).result()

    def close(self) -> None:
        self._closed = True
        self._writer.shutdown(wait=True)

    def _write(self) -> None:
        with self._lock:
            entries, self._pending = self._pending, None
        if entries is None or self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps([asdict(e) for e in entries]), encoding="utf-8")
            tmp.replace(self.path)
            self.error = ""
        except OSError as exc:  # a full disk or a read-only folder: the history stays in the window
            self.error = f"history not saved: {exc.strerror or exc}"
            log.warning("%s", self.error)
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
