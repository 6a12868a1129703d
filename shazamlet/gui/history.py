"""The History tab: search, delete with confirmation and undo, actions on a song, CSV export, kept in a
JSON file between runs (`history_file.py`). The entries and their table model are in `history_model.py`."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QMenu,
                               QMessageBox, QPushButton, QVBoxLayout, QWidget)

from shazamlet.gui import song_actions
from shazamlet.gui.genres import GenrePalette
from shazamlet.gui.history_file import HistoryFile
from shazamlet.gui.history_model import (DeleteEntries, HistoryEntry, HistoryFilter, HistoryModel, entry_from_answer,
                                         write_csv)
from shazamlet.gui.widgets import ShareTable

__all__ = ["HistoryPanel", "HistoryEntry", "entry_from_answer", "write_csv"]

# Shares of the table's width for the columns whose text can be long (Artist, Genre, Source): Title takes
# what is left, and each can be dragged wider. Sized to their contents, Artist and Source once squeezed
# the title to a few letters.
SHARES = {2: 0.18, 4: 0.16, 5: 0.12}
MIN_WIDTH = {2: 60, 4: 80, 5: 60}  # the genre's colour swatch and a short name fit


class HistoryPanel(QWidget):
    def __init__(self, store: Path | None = None, palette: GenrePalette | None = None, parent=None) -> None:
        super().__init__(parent)
        self.file = HistoryFile(store)
        self.model = HistoryModel(palette or GenrePalette())
        self.proxy = HistoryFilter()
        self.proxy.setSourceModel(self.model)
        self.undo_stack = QUndoStack(self)
        self.search = QLineEdit(placeholderText="Search title, artist, genre, source…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)
        self.table = ShareTable(title=1, shares=SHARES, min_width=MIN_WIDTH)
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setTextElideMode(Qt.ElideRight)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.setAlternatingRowColors(True)
        self.table.setContextMenuPolicy(Qt.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.doubleClicked.connect(lambda _i: self._act(song_actions.play))
        self.delete = QPushButton("Delete…")
        self.delete.setToolTip("Delete the selected entries (Del); Undo puts them back")
        self.delete.clicked.connect(self.delete_selected)
        self.undo = QPushButton("Undo")
        self.undo.setEnabled(False)
        self.undo.clicked.connect(self.undo_stack.undo)
        self.undo_stack.canUndoChanged.connect(self.undo.setEnabled)
        self.undo_stack.undoTextChanged.connect(lambda t: self.undo.setToolTip(f"Undo: {t}" if t else ""))
        for key, slot in ((QKeySequence.Delete, self.delete_selected), (QKeySequence.Undo, self.undo_stack.undo)):
            a = QAction(self)
            a.setShortcut(key)
            a.setShortcutContext(Qt.WidgetWithChildrenShortcut)
            a.triggered.connect(slot)
            self.addAction(a)
        self.export = QPushButton("Export CSV…")
        self.export.clicked.connect(self._choose_export)
        self.count = QLabel()
        row = QHBoxLayout()
        row.addWidget(self.count, 1)
        row.addWidget(self.delete)
        row.addWidget(self.undo)
        row.addWidget(self.export)
        lay = QVBoxLayout(self)
        lay.addWidget(self.search)
        lay.addWidget(self.table, 1)
        lay.addLayout(row)
        self.model.set_entries(self.file.load())
        self._count()

    @property
    def entries(self) -> list[HistoryEntry]:
        return self.model.entries

    def add(self, entry: HistoryEntry) -> None:
        self.model.insert(0, entry)
        self._changed()

    # -- selection and actions ------------------------------------------------------------------
    def selected_entries(self) -> list[HistoryEntry]:
        rows = sorted({self.proxy.mapToSource(i).row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.entries[r] for r in rows]

    def confirm_delete(self, entries: list[HistoryEntry]) -> bool:
        """Asks before deleting (tests replace this)."""
        what = (f"“{entries[0].title or 'Not in your library'}” ({entries[0].short_when})" if len(entries) == 1
                else f"{len(entries)} entries")
        answer = QMessageBox.question(self, "Delete from history", f"Delete {what} from the history?\n"
                                      "You can undo this.", QMessageBox.Yes | QMessageBox.Cancel, QMessageBox.Yes)
        return answer == QMessageBox.Yes

    def delete_entries(self, entries: list[HistoryEntry]) -> None:
        if entries:
            self.undo_stack.push(DeleteEntries(self.model, entries, self._changed))

    def delete_selected(self) -> None:
        entries = self.selected_entries()
        if entries and self.confirm_delete(entries):
            self.delete_entries(entries)

    def _act(self, action) -> None:
        entries = [e for e in self.selected_entries() if e.in_library]
        if entries:
            e = entries[0]
            if action is song_actions.copy_name:
                action(e.title, e.artist, e.path)
            else:
                action(e.path)

    def _context_menu(self, pos) -> None:
        entries = self.selected_entries()
        if not entries:
            return
        menu = QMenu(self)
        found = entries[0].in_library
        for text, action in (("Open Folder", song_actions.open_folder), ("Play", song_actions.play),
                             ("Copy “Artist – Title”", song_actions.copy_name)):
            a = menu.addAction(text, lambda act=action: self._act(act))
            a.setEnabled(found)
        menu.addSeparator()
        menu.addAction("Delete…", self.delete_selected)
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def _filter(self, text: str) -> None:
        self.proxy.set_text(text)
        self._count()

    # -- files ----------------------------------------------------------------------------------
    def export_csv(self, path: str | Path) -> None:
        write_csv(path, self.entries)

    def _choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export history", "shazamlet-history.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def refresh_colours(self) -> None:
        self.model.refresh_colours()

    def _count(self) -> None:
        n, shown = len(self.entries), self.proxy.rowCount()
        text = f"{n} identification{'' if n == 1 else 's'}"
        self.count.setText(text if shown == n else f"{shown} of {text}")

    def _changed(self) -> None:
        self._count()
        self.file.save(self.entries)
