"""History of identifications: a table, delete, CSV export, kept in a JSON file between runs."""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

COLUMNS = ("Time", "Title", "Artist", "Confidence", "Genre", "Source")
CSV_FIELDS = ("time", "title", "artist", "confidence", "genre", "genre_confidence", "path", "source")


@dataclass
class HistoryEntry:
    time: float  # unix seconds
    title: str  # "" when the song is not in the library
    artist: str
    confidence: float  # 0..1 (the best candidate's, also when not accepted)
    genre: str
    genre_confidence: float
    path: str  # the library file, "" when not in the library
    source: str  # input device name or dropped file
    song_id: int | None = None

    @property
    def when(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time))

    @property
    def short_when(self) -> str:
        today = time.strftime("%Y-%m-%d") == time.strftime("%Y-%m-%d", time.localtime(self.time))
        return time.strftime("%H:%M:%S" if today else "%b %d %H:%M", time.localtime(self.time))


def entry_from_answer(answer, source: str) -> HistoryEntry:
    s = answer.song
    g = answer.genre
    best = answer.candidates[0].score if answer.candidates else 0.0
    return HistoryEntry(time.time(), s.title if s else "", s.artist if s else "", s.score if s else best,
                        g.label if g else "", g.score if g else 0.0, s.path if s else "", source,
                        s.song_id if s else None)


def write_csv(path: str | Path, entries: list[HistoryEntry]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for e in entries:
            w.writerow([e.when, e.title, e.artist, f"{e.confidence:.3f}", e.genre, f"{e.genre_confidence:.3f}",
                        e.path, e.source])


class HistoryPanel(QWidget):
    changed = Signal()

    def __init__(self, store: Path | None = None, parent=None) -> None:
        super().__init__(parent)
        self.store = store
        self.entries: list[HistoryEntry] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        for col in range(len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.Stretch if col == 1 else QHeaderView.ResizeToContents)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.delete = QPushButton("Delete")
        self.delete.clicked.connect(self.delete_selected)
        self.export = QPushButton("Export CSV…")
        self.export.clicked.connect(self._choose_export)
        self.count = QLabel()
        row = QHBoxLayout()
        row.addWidget(self.count, 1)
        row.addWidget(self.delete)
        row.addWidget(self.export)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table, 1)
        lay.addLayout(row)
        self._load()
        self._refill()

    def add(self, entry: HistoryEntry) -> None:
        self.entries.insert(0, entry)
        self._refill()
        self._save()

    def delete_rows(self, rows: list[int]) -> None:
        for r in sorted(set(rows), reverse=True):
            if 0 <= r < len(self.entries):
                del self.entries[r]
        self._refill()
        self._save()

    def delete_selected(self) -> None:
        self.delete_rows([i.row() for i in self.table.selectionModel().selectedRows()])

    def export_csv(self, path: str | Path) -> None:
        write_csv(path, self.entries)

    def _choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export history", "shazamlet-history.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def _refill(self) -> None:
        self.table.setRowCount(len(self.entries))
        for r, e in enumerate(self.entries):
            title = e.title or "Not in your library"
            cells = (e.short_when, title, e.artist, f"{e.confidence:.0%}",
                     f"{e.genre} ({e.genre_confidence:.0%})" if e.genre else "—", e.source)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 0:
                    item.setToolTip(e.when)
                if c == 1:
                    item.setToolTip(e.path)
                if c == 3:
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.table.setItem(r, c, item)
        n = len(self.entries)
        self.count.setText(f"{n} identification{'' if n == 1 else 's'}")
        self.changed.emit()

    def _load(self) -> None:
        if self.store and self.store.exists():
            try:
                raw = json.loads(self.store.read_text(encoding="utf-8"))
                self.entries = [HistoryEntry(**e) for e in raw]
            except (ValueError, TypeError):
                self.entries = []  # an unreadable history is not worth an error

    def _save(self) -> None:
        if self.store:
            self.store.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.store.with_suffix(".tmp")
            tmp.write_text(json.dumps([asdict(e) for e in self.entries[:1000]]), encoding="utf-8")
            tmp.replace(self.store)
