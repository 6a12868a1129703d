"""The answer card of the Listen area: what is heard now, or the last song named, and what to do with it.

A named song stays on the card as "Last heard" (with when and how sure) through the silence after it,
a doubtful window, Stop and the next Listen, until another answer replaces it: in continuous mode the
music stopping used to blank the card to "…", which is when people look at it. Its actions (open the
folder, play, copy "Artist – Title") act on the song the card shows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from shazamlet.gui import theme
from shazamlet.gui import song_actions
from shazamlet.gui.widgets import big_font
from shazamlet.names import display_names

TONES = {"good": f"color: {theme.GOOD_TEXT}", "warn": f"color: {theme.WARN}"}


@dataclass(frozen=True)
class HeardSong:
    """A song the window named, as the card shows it."""

    title: str
    artist: str  # "" when unknown
    path: str
    score: float  # calibrated confidence, 0..1
    when: float  # unix seconds

    @classmethod
    def from_candidate(cls, c, when: float | None = None) -> "HeardSong":
        title, artist = display_names(c.title, c.artist, c.path)
        return cls(title, artist, c.path, c.score, time.time() if when is None else when)


class AnswerCard(QWidget):
    song_changed = Signal(object)  # HeardSong: a song was named (the window puts it in its title)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.shown: HeardSong | None = None  # the song the actions act on
        self.last: HeardSong | None = None  # the last song named by a final answer
        self.state = QLabel("")
        self.state.setFont(big_font(self, 11, bold=True))
        self.state.setWordWrap(True)
        self.kicker = QLabel("")  # "LAST HEARD · 14:03", above an answer that is not the current one
        self.kicker.setStyleSheet(f"color: {theme.MUTED}; letter-spacing: 1px")
        self.kicker.hide()
        self.title = QLabel("Press Listen, or drop an audio file here")
        self.title.setFont(big_font(self, 20, bold=True))
        self.title.setWordWrap(True)
        self.artist = QLabel("")
        self.artist.setFont(big_font(self, 14))
        self.artist.setWordWrap(True)
        self.detail = QLabel("")
        self.detail.setStyleSheet(f"color: {theme.MUTED}")
        self.detail.setWordWrap(True)  # a long path must not widen the panel
        self.detail.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.confidence = QProgressBar()
        self.confidence.setRange(0, 100)
        self.confidence.setFormat("confidence %p%")
        self.confidence.setMaximumWidth(360)
        self.confidence.hide()
        self.open_folder = QPushButton("Open Folder")
        self.play = QPushButton("Play")
        self.copy = QPushButton("Copy")
        self.copy.setToolTip("Copy “Artist – Title”")
        self.open_folder.clicked.connect(lambda: self.shown and song_actions.open_folder(self.shown.path))
        self.play.clicked.connect(lambda: self.shown and song_actions.play(self.shown.path))
        self.copy.clicked.connect(lambda: self.shown and song_actions.copy_name(self.shown.title, self.shown.artist))
        actions = QHBoxLayout()
        actions.setContentsMargins(0, 4, 0, 0)
        for b in (self.open_folder, self.play, self.copy):
            actions.addWidget(b)
        actions.addStretch(1)
        self.actions = QWidget()
        self.actions.setLayout(actions)
        self.actions.hide()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.state, self.kicker, self.title, self.artist, self.detail, self.confidence, self.actions):
            lay.addWidget(w)
        lay.addStretch(1)

    def _confidence(self, value: float | None) -> None:
        self.confidence.setVisible(value is not None)
        if value is not None:
            self.confidence.setValue(int(round(value * 100)))
            colour = theme.GOOD if value >= 0.5 else theme.CAUTION
            self.confidence.setStyleSheet(f"QProgressBar::chunk {{ background: {colour}; }}")

    def show_message(self, state: str, title: str = "", artist: str = "", detail: str = "",
                     confidence: float | None = None, tone: str = "") -> None:
        """Any other text: no song, no actions."""
        self.shown = None
        self.state.setText(state)
        self.state.setStyleSheet(TONES.get(tone, f"color: {theme.SOFT}"))
        self.kicker.hide()
        self.title.setText(title)
        self.artist.setText(artist)
        self.artist.setVisible(bool(artist))
        self.detail.setText(detail)
        self._confidence(confidence)
        self.actions.hide()

    def show_song(self, song: HeardSong, state: str, detail: str, final: bool, tone: str = "") -> None:
        """A song named now (`final`: for sure, so it becomes the last heard)."""
        self.show_message(state, song.title, song.artist, detail, song.score, tone)
        self.shown = song
        self.actions.setVisible(bool(song.path))
        if final:
            self.last = song
            self.song_changed.emit(song)

    def show_last_heard(self, state: str, tone: str = "") -> bool:
        """Keep the last song named on the card under a new state line; False when there is none."""
        if self.last is None:
            return False
        s = self.last
        self.show_message(state, s.title, s.artist, "", s.score, tone)
        self.kicker.setText(f"LAST HEARD · {time.strftime('%H:%M', time.localtime(s.when))} · {s.score:.0%} sure")
        self.kicker.show()
        self.shown = s
        self.actions.setVisible(bool(s.path))
        return True
