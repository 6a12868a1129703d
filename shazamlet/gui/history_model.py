"""The history's data: its entries, the table model over them, the search filter, CSV, and undoable delete.

The table shows the entries through a `QSortFilterProxyModel`, and every action on a selection maps
it back to the entries themselves (not to row numbers): a new identification inserted above a
selected row must not change which entry Delete removes. Rows are inserted and removed with the
model's begin/end calls, so the view's selection moves with its entries.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor, QUndoCommand

from shazamlet.gui import theme
from shazamlet.gui.genres import GenrePalette
from shazamlet.names import song_line

if TYPE_CHECKING:  # the window shows before torch is imported
    from shazamlet.recognition import Answer

COLUMNS = ("Time", "Title", "Artist", "Confidence", "Genre", "Source")
CSV_FIELDS = ("time", "title", "artist", "in_library", "confidence", "genre", "genre_confidence", "path", "source",
              "closest")
NOT_FOUND = "Not in your library"


@dataclass
class HistoryEntry:
    time: float  # unix seconds
    title: str  # "" when the song is not in the library
    artist: str
    confidence: float  # 0..1: the named song's, or the closest candidate's when none was named
    genre: str
    genre_confidence: float
    path: str  # the library file, "" when not in the library
    source: str  # input device name or dropped file
    song_id: int | None = None
    closest: str = ""  # "Title – Artist" of the closest song when none was named (not close enough)

    @property
    def in_library(self) -> bool:
        return bool(self.path)

    @property
    def when(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time))

    @property
    def short_when(self) -> str:
        today = time.strftime("%Y-%m-%d") == time.strftime("%Y-%m-%d", time.localtime(self.time))
        return time.strftime("%H:%M:%S" if today else "%b %d %H:%M", time.localtime(self.time))


def entry_from_answer(answer: Answer, source: str) -> HistoryEntry:
    s = answer.song
    g = answer.genre
    best = answer.candidates[0] if answer.candidates else None
    return HistoryEntry(time.time(), s.title if s else "", s.artist if s else "",
                        s.score if s else (best.score if best else 0.0), g.label if g else "",
                        g.score if g else 0.0, s.path if s else "", source, s.song_id if s else None,
                        "" if s or best is None else song_line(best.title, best.artist, best.path))


def write_csv(path: str | Path, entries: list[HistoryEntry]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for e in entries:
            w.writerow([e.when, e.title, e.artist, "true" if e.in_library else "false", f"{e.confidence:.3f}",
                        e.genre, f"{e.genre_confidence:.3f}", e.path, e.source, e.closest])


class HistoryModel(QAbstractTableModel):
    """The entries, newest first, as table rows; `palette` colours the genre cells."""

    def __init__(self, palette: GenrePalette) -> None:
        super().__init__()
        self.entries: list[HistoryEntry] = []
        self.palette = palette

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.entries)

    def columnCount(self, parent=QModelIndex()) -> int:
        return len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if role == Qt.DisplayRole and orientation == Qt.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        e, col = self.entries[index.row()], index.column()
        if role == Qt.DisplayRole:
            return (e.short_when, e.title or NOT_FOUND, e.artist, f"{e.confidence:.0%}",
                    e.genre or "—", e.source)[col]
        if role == Qt.ToolTipRole:
            if col == 0:
                return e.when
            if col == 3 and not e.in_library:
                return (f"Closest song in your library: {e.closest} — not close enough to name it (50% is the bar)"
                        if e.closest else "No song of your library came close")
            if col == 4 and e.genre:
                return f"sounds like {e.genre} ({e.genre_confidence:.0%} of the votes)"
            if col == 1:  # the whole title, which the column may cut
                return "\n".join(x for x in (e.title or NOT_FOUND, e.path or e.closest) if x)
            return self.data(index) or None
        if role == Qt.ForegroundRole and not e.in_library and col in (1, 3):
            return QColor(theme.WARN if col == 1 else theme.MUTED)
        if role == Qt.DecorationRole and col == 4 and e.genre:
            return QColor(self.palette.colour(e.genre))
        if role == Qt.TextAlignmentRole and col == 3:
            return int(Qt.AlignRight | Qt.AlignVCenter)
        return None

    def set_entries(self, entries: list[HistoryEntry]) -> None:
        self.beginResetModel()
        self.entries = list(entries)
        self.endResetModel()

    def insert(self, row: int, entry: HistoryEntry) -> None:
        self.beginInsertRows(QModelIndex(), row, row)
        self.entries.insert(row, entry)
        self.endInsertRows()

    def remove(self, entry: HistoryEntry) -> int:
        """Remove one entry (by identity); returns the row it had."""
        row = next(i for i, e in enumerate(self.entries) if e is entry)
        self.beginRemoveRows(QModelIndex(), row, row)
        del self.entries[row]
        self.endRemoveRows()
        return row

    def refresh_colours(self) -> None:
        if self.entries:
            self.dataChanged.emit(self.index(0, 4), self.index(len(self.entries) - 1, 4), [Qt.DecorationRole])


class HistoryFilter(QSortFilterProxyModel):
    """Keeps the rows whose title, artist, genre, source, closest song or date hold every word typed
    ("not in" finds the songs that were not found)."""

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []

    def set_text(self, text: str) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt 6.10: invalidateFilter is deprecated
            self.beginFilterChange()
            self.words = text.lower().split()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.words = text.lower().split()
            self.invalidateFilter()

    def filterAcceptsRow(self, row, parent) -> bool:
        if not self.words:
            return True
        e = self.sourceModel().entries[row]
        hay = " ".join([e.title or NOT_FOUND, e.artist, e.genre, e.source, e.closest, e.when]).lower()
        return all(w in hay for w in self.words)


class DeleteEntries(QUndoCommand):
    """Deleting entries, undoable: undo puts each back where it was."""

    def __init__(self, model: HistoryModel, entries: list[HistoryEntry], after) -> None:
        n = len(entries)
        super().__init__(f"Delete {n} histor{'y entry' if n == 1 else 'ies'}")
        self.model, self.entries, self.after = model, entries, after
        self.rows: list[tuple[int, HistoryEntry]] = []

    def redo(self) -> None:
        self.rows = [(self.model.remove(e), e) for e in self.entries]
        self.after()

    def undo(self) -> None:
        for row, e in reversed(self.rows):  # each row index was taken after the ones before were removed
            self.model.insert(min(row, len(self.model.entries)), e)
        self.after()
