"""The Listen area: the big button, the answer, the live spectrogram, level meter and vote charts."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QStackedLayout, QVBoxLayout,
                               QWidget)

from shazamlet.gui import theme
from shazamlet.gui.answer_card import AnswerCard, HeardSong
from shazamlet.gui.genres import GenrePalette
from shazamlet.gui.spectrogram import SpectrogramView
from shazamlet.gui.widgets import LevelMeter, VoteChart, big_font
from shazamlet.names import clock, song_line

# the level's figure is written 4 times a second: each new text lays the word-wrapped row (and the window's
# layout above it) out again, ~2% of a core at the window's 15 frames a second; a warning shows at once
NOTE_EVERY_S = 0.25

BUTTON_STYLE = """
QPushButton#listen {{ border-radius: 56px; background: {bg}; color: white; font-weight: bold;
                     border: 3px solid {border}; }}
QPushButton#listen:hover {{ border-color: white; }}
QPushButton#listen:disabled {{ background: {disabled}; color: {muted}; }}
"""


class ListenPanel(QWidget):
    listen_clicked = Signal()
    file_dropped = Signal(str)  # one audio file: identify it
    paths_dropped = Signal(object)  # folders or several files: add them to the library

    def __init__(self, palette: GenrePalette | None = None, parent=None) -> None:
        super().__init__(parent)
        self.palette = palette or GenrePalette()
        # the computer's own audio: nothing there can be turned down, and its peaks are the song's own
        self.input_is_monitor = False
        self.setAcceptDrops(True)
        self.button = QPushButton("Listen")
        self.button.setObjectName("listen")
        self.button.setFixedSize(112, 112)
        self.button.setFont(big_font(self, 15, bold=True))
        self.button.setToolTip("Listen (Space)")
        self.button.setFocusPolicy(Qt.NoFocus)
        self.button.clicked.connect(self.listen_clicked)
        self.set_listening(False)

        # the answer card, or the empty-library hint in its place
        self.card = AnswerCard()
        self.state, self.title, self.artist = self.card.state, self.card.title, self.card.artist
        self.detail, self.confidence = self.card.detail, self.card.confidence
        card_w = self.card
        self.hint = QLabel("<div style='font-size:20pt; font-weight:bold'>Drag a folder of music here</div>"
                           f"<div style='color:{theme.MUTED}'>or use <b>Add Folder…</b> in the Library tab. Shazamlet "
                           "learns your songs (a few seconds each on a laptop; you see them arrive "
                           "in the Library tab) and then recognises them through the microphone.</div>")
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignCenter)
        self.hint.setStyleSheet(f"QLabel {{ border: 2px dashed {theme.OUTLINE}; border-radius: 12px; padding: 16px; }}")
        self.card_stack = QStackedLayout()
        self.card_stack.addWidget(card_w)
        self.card_stack.addWidget(self.hint)
        top = QHBoxLayout()
        top.addWidget(self.button, 0, Qt.AlignTop)
        top.addSpacing(16)
        top.addLayout(self.card_stack, 1)

        self.spectrogram = SpectrogramView()
        self.meter = LevelMeter()
        self.level_note = QLabel("")
        self._level_note = ("", False)
        self._note_at = 0.0  # stream seconds when the level's figure was last written
        self.level_note.setMinimumWidth(230)
        self.level_note.setWordWrap(True)
        meter_row = QHBoxLayout()
        meter_row.addWidget(QLabel("Input level"))
        meter_row.addWidget(self.meter, 1)
        meter_row.addWidget(self.level_note)

        self.song_votes = VoteChart("Song votes (top 5)", theme.SONG_VOTES)
        self.genre_votes = VoteChart("Genre votes")
        charts = QHBoxLayout()
        charts.addWidget(self.song_votes, 3)
        charts.addWidget(self.genre_votes, 2)

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.spectrogram, 3)
        lay.addLayout(meter_row)
        lay.addLayout(charts, 2)
        self.drop_frame = QFrame(self)  # highlight while something is dragged over
        self.drop_frame.setStyleSheet(f"QFrame {{ border: 3px dashed {theme.LIVE}; border-radius: 10px; }}")
        self.drop_frame.setAttribute(Qt.WA_TransparentForMouseEvents)
        self.drop_frame.hide()
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)

    # -- state ----------------------------------------------------------------------------------
    def set_listening(self, on: bool) -> None:
        self.button.setText("Stop" if on else "Listen")
        self.button.setStyleSheet(BUTTON_STYLE.format(bg=theme.STOP if on else theme.ACCENT,
                                                      border=theme.STOP_EDGE if on else theme.ACCENT_EDGE,
                                                      disabled=theme.DISABLED, muted=theme.MUTED))

    def set_empty_library(self, empty: bool) -> None:
        self.card_stack.setCurrentIndex(1 if empty else 0)

    def show_message(self, state: str, title: str = "", artist: str = "", detail: str = "",
                     confidence: float | None = None, tone: str = "") -> None:
        self.card.show_message(state, title, artist, detail, confidence, tone)

    def show_status(self, state: str, title: str = "", detail: str = "") -> None:
        """A state that names no song (listening, stopped): the last song heard stays on the card."""
        if not self.card.show_last_heard(state):
            self.show_message(state, title, detail=detail)

    def show_answer(self, a, final: bool, when: str) -> None:
        """Present a `shazamlet.recognition.Answer`: the card and both vote charts."""
        genre = f"sounds like {a.genre.label} ({a.genre.score:.0%})" if a.genre else ""
        best = a.candidates[0] if a.candidates else None
        if a.silent:  # (the vote charts keep the last votes: silence has none to show)
            if not self.card.show_last_heard(f"Silence {when} — turn the music up, or check the input."):
                self.show_message(f"Silence {when} — nothing to identify yet.", "…",
                                  detail="Turn the music up, or check the input.")
            return
        elif a.song:
            s = a.song
            state = ("✓ Got it " if final else "Refining… best so far ") + when
            self.card.show_song(HeardSong.from_candidate(s), state, f"{s.path}\nat {clock(s.offset_s)} · {genre}", final,
                                "good" if final else "")
        elif final:
            closest = (f"Closest in your library: {song_line(best.title, best.artist, best.path)} ({best.score:.0%}, "
                       "not close enough)") if best else ""
            self.show_message(f"Heard {when}", "Not in your library", genre.capitalize() if genre else "", closest,
                              best.score if best else None, "warn")
        else:
            guess = (f"best guess {song_line(best.title, best.artist, best.path)} ({best.score:.0%})" if best
                     else "no candidate yet")
            if not self.card.show_last_heard(f"Listening… {when}: not sure yet, {guess}"):
                self.show_message(f"Listening… {when}", "Not sure yet", guess, genre, None)
        labels = [song_line(c.title, c.artist, c.path) for c in a.candidates]
        self.song_votes.set_votes(labels, [c.score for c in a.candidates], 0 if a.song else None)
        votes = sorted(a.genre.votes.items(), key=lambda kv: -kv[1])[:6] if a.genre else []
        self.genre_votes.set_votes([k for k, _ in votes], [v for _, v in votes], 0,
                                   [self.palette.colour(k) for k, _ in votes])

    def feed(self, samples, rate: int, end_sample: int) -> None:
        """New microphone samples (ending at `end_sample` of the stream): meter, spectrogram, and the
        note beside the meter that tells the user when the input is clipping or silent."""
        self.meter.feed(samples, len(samples) / rate)
        self.spectrogram.push(samples, end_sample)
        if self.meter.clipping and not self.input_is_monitor:
            self.set_level_note("Clipping: lower the microphone's input volume in the sound settings, "
                                "or move it away from the speaker.", True)
        elif self.meter.silent:
            self.set_level_note("Silent: is the right input selected?", True)
        else:
            at = end_sample / rate
            if self._level_note[1] or not self._level_note[0] or not 0 <= at - self._note_at < NOTE_EVERY_S:
                self._note_at = at
                self.set_level_note(f"{self.meter.rms_db:.0f} dBFS", False)

    def set_level_note(self, text: str, warn: bool) -> None:
        """Called on every frame: the label is touched only when its text or style changes (a style
        sheet re-polishes the label and lays the row out again)."""
        text_before, warn_before = self._level_note
        self._level_note = (text, warn)
        if text != text_before:
            self.level_note.setText(text)
        if warn != warn_before or self.level_note.styleSheet() == "":
            self.level_note.setStyleSheet(f"color: {theme.WARN}; font-weight: bold" if warn else f"color: {theme.MUTED}")

    # -- drops ----------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
            self.drop_frame.setGeometry(self.rect())
            self.drop_frame.show()
            self.drop_frame.raise_()

    def dragLeaveEvent(self, event) -> None:
        self.drop_frame.hide()

    def dropEvent(self, event) -> None:
        self.drop_frame.hide()
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        self.handle_paths(paths)

    def handle_paths(self, paths: list[str]) -> None:
        from shazamlet.audio.decode import is_audio_file

        if len(paths) == 1 and Path(paths[0]).is_file() and is_audio_file(Path(paths[0])):
            self.file_dropped.emit(paths[0])
        else:
            self.paths_dropped.emit(paths)
