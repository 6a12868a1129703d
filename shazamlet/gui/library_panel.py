"""The library tab: songs table with search, add/remove/reveal, indexing progress and problems."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QLabel,
                               QLineEdit, QListWidget, QProgressBar, QPushButton, QVBoxLayout, QWidget)

from shazamlet.gui.genres import GenrePalette
from shazamlet.gui.messages import IndexFinished, IndexProgress
from shazamlet.gui.widgets import ShareTable
from shazamlet.names import clock, display_names

if TYPE_CHECKING:
    from shazamlet.library import Song

COLUMNS = ("Title", "Artist", "Genre", "Duration")


def format_remaining(seconds: float | None) -> str:
    if seconds is None:
        return "estimating the time left…"
    if seconds < 60:
        return "under a minute left"
    minutes = round(seconds / 60)
    return f"about {minutes} min left" if minutes < 90 else f"about {seconds / 3600:.1f} h left"


class SongTableModel(QAbstractTableModel):
    def __init__(self, palette: GenrePalette | None = None) -> None:
        super().__init__()
        self.songs: list[Song] = []
        self.palette = palette or GenrePalette()

    def add_song(self, song: Song) -> None:
        """A song stored while adding goes on: shown at once (replacing its older row, if any)."""
        for row, s in enumerate(self.songs):
            if s.path == song.path:
                self.songs[row] = song
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
                return
        self.beginInsertRows(QModelIndex(), len(self.songs), len(self.songs))
        self.songs.append(song)
        self.endInsertRows()

    def set_songs(self, songs: list[Song]) -> None:
        self.beginResetModel()
        self.songs = list(songs)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.songs)

    def columnCount(self, parent=QModelIndex()) -> int:
        return len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if role == Qt.DisplayRole and orientation == Qt.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        s = self.songs[index.row()]
        col = index.column()
        title, artist = display_names(s.title, s.artist, s.path)
        if role == Qt.DisplayRole:
            return (title, artist, s.genre or "—", clock(round(s.duration_s)))[col]
        if role == Qt.UserRole:  # sort key
            return (title.lower(), artist.lower(), (s.genre or "").lower(), s.duration_s)[col]
        if role == Qt.DecorationRole and col == 2 and s.genre:
            return QColor(self.palette.colour(s.genre))
        if role == Qt.ToolTipRole:
            return s.path
        if role == Qt.TextAlignmentRole and col == 3:
            return int(Qt.AlignRight | Qt.AlignVCenter)
        return None


class SongFilter(QSortFilterProxyModel):
    """Matches the search text against title, artist, album, genre and path."""

    def filterAcceptsRow(self, row, parent) -> bool:
        text = self.filterRegularExpression().pattern().lower()
        if not text:
            return True
        s = self.sourceModel().songs[row]
        hay = " ".join([s.title, s.artist, s.album, s.genre or "", s.path]).lower()
        return all(word in hay for word in text.split())


class LibraryPanel(QWidget):
    add_requested = Signal(object)  # list[str]
    remove_requested = Signal(object)  # list[str]
    cancel_requested = Signal()
    genre_from_changed = Signal(str)

    def __init__(self, palette: GenrePalette | None = None, parent=None) -> None:
        super().__init__(parent)
        self.model = SongTableModel(palette)
        self.proxy = SongFilter()
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(Qt.UserRole)

        self.search = QLineEdit(placeholderText="Search title, artist, genre…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)
        self.add_folder = QPushButton("Add Folder…")
        self.add_folder.clicked.connect(self._choose_folder)
        self.add_files = QPushButton("Add Files…")
        self.add_files.clicked.connect(self._choose_files)
        self.genre_from = QComboBox()
        self.genre_from.addItem("Genre from folder", "folder")
        self.genre_from.addItem("Genre from tags", "tag")
        self.genre_from.setToolTip("Where a new song's genre comes from: the folder under the one you add "
                                   "(e.g. Music/jazz/…), or the file's genre tag (folder as fallback)")
        self.genre_from.currentIndexChanged.connect(lambda _i: self.genre_from_changed.emit(self.genre_from_value()))
        top = QHBoxLayout()
        top.addWidget(self.add_folder)
        top.addWidget(self.add_files)
        top.addStretch(1)
        top.addWidget(self.genre_from)

        self.table = ShareTable(title=0, shares={1: 0.25, 2: 0.16}, min_width={1: 80, 2: 80})
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(1, Qt.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.doubleClicked.connect(lambda _i: self.reveal_selected())

        self.remove = QPushButton("Remove")
        self.remove.clicked.connect(self.remove_selected)
        self.reveal = QPushButton("Reveal File")
        self.reveal.clicked.connect(self.reveal_selected)
        self.count_label = QLabel()
        row = QHBoxLayout()
        row.addWidget(self.count_label, 1)
        row.addWidget(self.reveal)
        row.addWidget(self.remove)

        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m files")
        self.progress_label = QLabel()
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(self.cancel_requested)
        prog = QHBoxLayout()
        prog.addWidget(self.progress, 1)
        prog.addWidget(self.progress_label)
        prog.addWidget(self.cancel)
        self.progress_row = QWidget()
        self.progress_row.setLayout(prog)
        self.progress_row.hide()

        self.problems_label = QLabel("Problems with some files:")
        self.problems = QListWidget()
        self.problems.setMaximumHeight(110)
        self.problems.setWordWrap(True)
        self.problems_label.hide()
        self.problems.hide()

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.search)
        lay.addWidget(self.table, 1)
        lay.addLayout(row)
        lay.addWidget(self.progress_row)
        lay.addWidget(self.problems_label)
        lay.addWidget(self.problems)
        self.set_songs([])

    # -- data -----------------------------------------------------------------------------------
    def genre_from_value(self) -> str:
        return self.genre_from.currentData()

    def set_genre_from(self, value: str) -> None:
        i = self.genre_from.findData(value)
        self.genre_from.setCurrentIndex(max(0, i))

    def set_songs(self, songs: list[Song]) -> None:
        self.model.set_songs(songs)
        hours = sum(s.duration_s for s in songs) / 3600
        self.count_label.setText(f"{len(songs)} songs · {hours:.1f} h" if songs else "No songs yet")

    def _filter(self, text: str) -> None:
        self.proxy.setFilterRegularExpression(text.strip())

    def selected_songs(self) -> list[Song]:
        rows = {self.proxy.mapToSource(i).row() for i in self.table.selectionModel().selectedRows()}
        return [self.model.songs[r] for r in sorted(rows)]

    # -- actions --------------------------------------------------------------------------------
    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of music")
        if folder:
            self.add_requested.emit([folder])

    def _choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add music files", "",
                                                "Audio (*.wav *.flac *.ogg *.oga *.opus *.mp3 *.aiff *.aif)")
        if files:
            self.add_requested.emit(files)

    def remove_selected(self) -> None:
        songs = self.selected_songs()
        if songs:
            self.remove_requested.emit([s.path for s in songs])

    def reveal_selected(self) -> None:
        songs = self.selected_songs()
        if songs:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(songs[0].path).parent)))

    # -- indexing -------------------------------------------------------------------------------
    def indexing_started(self) -> None:
        self.progress.setRange(0, 0)  # busy until the files are counted
        self.progress_label.setText("looking for audio files…")
        self.progress_row.show()
        self.cancel.setEnabled(True)
        self.problems.clear()
        self.problems.hide()
        self.problems_label.hide()

    def indexing_progress(self, p: IndexProgress) -> str:
        """Show the progress (and the song just added); returns the one line for the status bar."""
        if p.phase == "embed":
            self.progress.setFormat("%v / %m files")
            self.progress.setRange(0, max(1, p.total))
            self.progress.setValue(p.done)
            if p.done == 0:
                text = f"{p.total} audio files found; learning the first…"
            else:
                text = (f"{p.files_per_s:.2f} files/s · {format_remaining(p.eta_s)} · "
                        f"{p.audio_seconds / 60:.1f} min of audio")
            self.progress_label.setText(text)
            self.progress.setToolTip(p.path)
            if p.song is not None:
                self.model.add_song(p.song)
                self.count_label.setText(f"{len(self.model.songs)} songs (adding…)")
            if p.error:
                self._problem(p.error)
            return f"Adding songs: {p.done} of {p.total} · {text}"
        self.progress.setFormat("building the index %p%")
        self.progress.setRange(0, max(1, p.total))
        self.progress.setValue(p.done)
        self.progress_label.setText("")
        self.cancel.setEnabled(False)
        return "Building the index…"

    def indexing_finished(self, msg: IndexFinished) -> str:
        """Hide the progress, list the problems; returns a one-line summary."""
        self.progress_row.hide()
        self.set_songs(msg.songs)
        r = msg.report
        for e in r.errors + r.duplicates:
            if not any(self.problems.item(i).text() == e for i in range(self.problems.count())):
                self._problem(e)
        if msg.job == "remove":
            return f"Removed {len(r.updated)} songs." + (f" {r.errors[0]}" if r.errors else "")
        verb = "Re-indexed" if msg.job == "reindex" else "Added"
        text = (f"{verb} {len(r.added) + len(r.updated)} songs"
                + (f", {len(r.unchanged)} unchanged" if r.unchanged else "")
                + (f", {len(r.errors) + len(r.duplicates)} skipped (see the Library tab)" if r.errors or r.duplicates else "")
                + (f" in {r.elapsed_s:.0f} s" if r.elapsed_s >= 1 else "") + ".")
        return ("Cancelled. " if r.cancelled else "") + text

    def _problem(self, text: str) -> None:
        self.problems.addItem(text)
        self.problems.show()
        self.problems_label.show()
