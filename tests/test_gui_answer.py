"""The answer card: the last song heard stays through silence and Stop, the window title names it, its
actions, and names read from untagged files."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402
from test_gui import SR, Inputs, built_library, make_window, music  # noqa: E402,F401  (fixtures)

from shazamlet.gui import messages as m  # noqa: E402
from shazamlet.gui import song_actions  # noqa: E402
from shazamlet.gui.listen_panel import ListenPanel  # noqa: E402
from shazamlet.library.tags import names_from_file_name  # noqa: E402
from shazamlet.recognition import GenreVote  # noqa: E402
from shazamlet.recognition import Answer, Candidate  # noqa: E402


def candidate(title: str, artist: str, score: float, path: str | None = None) -> Candidate:
    return Candidate(1, path or f"/music/Rock/{title}.flac", title, artist, "Rock", score, score, 0.9, 42.0, 5)


def answer(song: Candidate | None = None, best: Candidate | None = None, silent: bool = False) -> Answer:
    cands = [c for c in (song or best,) if c is not None]
    genre = None if silent else GenreVote("Rock", 0.7, {"Rock": 0.7, "Jazz": 0.3})
    return Answer(song, cands, genre, 0.0, 0 if silent else 5, 10.0, silent=silent)


def test_the_last_song_stays_on_the_card_through_silence_and_not_sure(qtbot):
    panel = ListenPanel()
    qtbot.addWidget(panel)
    panel.show_answer(answer(candidate("Slow Rain", "Amelia Stone", 0.93)), True, "after 3.1 s")
    panel.show_answer(answer(silent=True), True, "after 6.0 s")
    assert panel.title.text() == "Slow Rain" and panel.artist.text() == "Amelia Stone"
    assert panel.card.kicker.isVisibleTo(panel) and panel.card.kicker.text().startswith("LAST HEARD")
    assert "93%" in panel.card.kicker.text() and panel.confidence.value() == 93
    assert panel.state.text().startswith("Silence after 6.0 s")
    panel.show_answer(answer(best=candidate("Other", "X", 0.3)), False, "after 2.0 s")  # a doubtful window
    assert panel.title.text() == "Slow Rain" and "not sure yet" in panel.state.text()
    panel.show_answer(answer(candidate("Night Bus", "Kilohertz Club", 0.8)), True, "after 3.0 s")
    assert panel.title.text() == "Night Bus" and not panel.card.kicker.isVisibleTo(panel)


def test_not_in_your_library_says_how_close_the_closest_song_was(qtbot):
    panel = ListenPanel()
    qtbot.addWidget(panel)
    panel.show_answer(answer(best=candidate("Slow Rain", "Amelia Stone", 0.23)), True, "after 3.0 s")
    assert panel.title.text() == "Not in your library"
    assert panel.confidence.isVisibleTo(panel) and panel.confidence.value() == 23
    assert "Amelia Stone – Slow Rain (23%" in panel.detail.text()
    assert not panel.card.actions.isVisibleTo(panel)


def test_no_unknown_artist_in_large_type_and_raw_file_names_read(qtbot):
    panel = ListenPanel()
    qtbot.addWidget(panel)
    raw = candidate("Crystan-Battlescape01", "", 0.9, "/music/Game/Crystan-Battlescape01.ogg")
    panel.show_answer(answer(raw), True, "after 3.0 s")
    assert (panel.title.text(), panel.artist.text()) == ("Battlescape 01", "Crystan")
    untitled = candidate("Nocturne in E flat", "", 0.9, "/music/Classical/Tagged.flac")
    panel.show_answer(answer(untitled), True, "after 3.0 s")
    assert panel.artist.text() == "" and not panel.artist.isVisibleTo(panel)
    assert "unknown" not in panel.title.text() + panel.artist.text()


@pytest.mark.parametrize("stem, expected", [
    ("Crystan-Battlescape01", ("Battlescape 01", "Crystan")),
    ("03 - Miles Davis - So What", ("So What", "Miles Davis")),
    ("Nina Simone – Feeling Good", ("Feeling Good", "Nina Simone")),
    ("07. Blue_in_Green", ("Blue in Green", "")),
    ("Jay-Z", ("Jay-Z", "")),
    ("techno_song_00", ("techno song 00", "")),
])
def test_untagged_file_names_give_title_and_artist(stem, expected):
    assert names_from_file_name(stem) == expected


def test_after_stop_the_window_keeps_the_last_heard_card_and_its_title(make_window, qtbot, built_library,
                                                                       monkeypatch):
    """Real listening to silence after a song was named: the card keeps the song, Stop keeps it too."""
    w = make_window(built_library, inputs=Inputs(np.zeros(SR * 30, np.float32), speed=3.0))
    w.continuous.setChecked(True)
    w.start_listening()
    qtbot.waitUntil(lambda: w.stream is not None, timeout=10_000)
    song = candidate("Slow Rain", "Amelia Stone", 0.93)
    w.workers.listen.update.emit(m.ListenUpdate(w.session, "final", answer(song), 3.0, 3.0, SR * 3, SR))
    assert w.windowTitle() == "Amelia Stone – Slow Rain — Shazamlet"
    silences = []
    w.answered.connect(lambda msg: silences.append(msg) if msg.answer.silent else None)
    qtbot.waitUntil(lambda: len(silences) >= 1, timeout=20_000)  # the real pipeline hears the silence
    assert w.listen.title.text() == "Slow Rain" and w.listen.state.text().startswith("Silence")
    w.stop_listening()
    assert w.listen.state.text() == "Stopped." and w.listen.title.text() == "Slow Rain"
    assert w.listen.card.kicker.isVisibleTo(w)
    opened = []
    monkeypatch.setattr(song_actions, "open_url", lambda url: opened.append(url.toLocalFile()) or True)
    w.listen.card.open_folder.click()
    w.listen.card.play.click()
    w.listen.card.copy.click()
    assert opened == ["/music/Rock", "/music/Rock/Slow Rain.flac"]
    assert QGuiApplication.clipboard().text() == "Amelia Stone – Slow Rain"
    w.start_listening()  # listening again: the card still names it until the next answer
    assert w.listen.title.text() == "Slow Rain"
    w.stop_listening()
