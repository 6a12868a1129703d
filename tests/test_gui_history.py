"""The History tab on its own: column widths, delete by entry with confirmation and undo, search, songs
that were not found, the CSV, and the actions on an entry."""

from __future__ import annotations

import csv
import json
import os
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402

from shazamlet.gui import song_actions  # noqa: E402
from shazamlet.gui.genres import GenrePalette  # noqa: E402
from shazamlet.gui.history import HistoryEntry, HistoryPanel  # noqa: E402

LONG_ARTIST = "The Extraordinarily Long-Named Philharmonic Orchestra of Somewhere"
LONG_SOURCE = "Monitor of Built-in Audio Analog Stereo (this computer's playback)"


def entry(title: str, artist: str = "Someone", path: str | None = None, confidence: float = 0.9,
          source: str = "USB Microphone", genre: str = "Rock", closest: str = "") -> HistoryEntry:
    path = f"/music/{genre}/{title}.flac" if path is None else path
    return HistoryEntry(time.time(), title if path else "", artist if path else "", confidence, genre, 0.7, path,
                        source, None, closest)


def make_panel(qtbot, tmp_path, entries=()) -> HistoryPanel:
    panel = HistoryPanel(tmp_path / "history.json", GenrePalette(["Rock", "Jazz"]))
    qtbot.addWidget(panel)
    panel.confirm_delete = lambda _entries: True
    for e in entries:
        panel.add(e)
    return panel


def cell(panel: HistoryPanel, row: int, col: int, role=Qt.DisplayRole):
    return panel.proxy.index(row, col).data(role)


def test_the_title_column_gets_the_width_long_artists_and_sources_do_not(qtbot, tmp_path):
    panel = make_panel(qtbot, tmp_path, [entry("A Fairly Long Song Title That Goes On", LONG_ARTIST,
                                               source=LONG_SOURCE)])
    panel.resize(520, 300)
    panel.show()
    qtbot.waitExposed(panel)
    header = panel.table.horizontalHeader()
    title, artist, source = header.sectionSize(1), header.sectionSize(2), header.sectionSize(5)
    print(f"title {title} px, artist {artist} px, source {source} px")
    assert title >= 120 and title > artist and title > source


def test_delete_removes_the_selected_entry_even_after_a_new_one_arrives(qtbot, tmp_path):
    first, second = entry("First"), entry("Second")
    panel = make_panel(qtbot, tmp_path, [first, second])  # newest on top: Second, First
    panel.table.selectRow(1)  # First
    panel.add(entry("Third"))  # a new identification lands on top while First is selected
    asked = []
    panel.confirm_delete = lambda entries: asked.append(list(entries)) or False
    panel.delete_selected()
    assert asked == [[first]] and len(panel.entries) == 3  # asked about First, and Cancel keeps it
    panel.confirm_delete = lambda entries: True
    panel.delete_selected()
    assert [e.title for e in panel.entries] == ["Third", "Second"]
    assert panel.undo.isEnabled()
    panel.undo.click()  # back where it was, and in the file too
    assert [e.title for e in panel.entries] == ["Third", "Second", "First"]
    panel.file.flush()
    reloaded = HistoryPanel(tmp_path / "history.json")
    qtbot.addWidget(reloaded)
    assert [e.title for e in reloaded.entries] == ["Third", "Second", "First"]


def test_deleting_several_and_undo_restores_their_places(qtbot, tmp_path):
    panel = make_panel(qtbot, tmp_path, [entry(t) for t in "ABCDE"])  # E D C B A
    panel.delete_entries([panel.entries[1], panel.entries[3]])  # D and B
    assert [e.title for e in panel.entries] == ["E", "C", "A"]
    panel.undo_stack.undo()
    assert [e.title for e in panel.entries] == ["E", "D", "C", "B", "A"]


def test_search_filters_rows_and_delete_acts_on_what_is_shown(qtbot, tmp_path):
    panel = make_panel(qtbot, tmp_path, [entry("Blue in Green", "Miles Davis", genre="Jazz"),
                                         entry("Highway Static", "The Overdrives"),
                                         entry("", path="", confidence=0.21, closest="Amelia Stone – Slow Rain")])
    panel.search.setText("miles")
    assert panel.proxy.rowCount() == 1 and cell(panel, 0, 1) == "Blue in Green"
    assert panel.count.text() == "1 of 3 identifications"
    panel.search.setText("not in")
    assert panel.proxy.rowCount() == 1 and cell(panel, 0, 1) == "Not in your library"
    panel.search.setText("overdrives")
    panel.table.selectRow(0)
    panel.delete_selected()
    panel.search.clear()
    assert [e.title for e in panel.entries] == ["", "Blue in Green"]


def test_a_song_not_in_the_library_shows_its_confidence_and_the_closest_song(qtbot, tmp_path):
    panel = make_panel(qtbot, tmp_path, [entry("", path="", confidence=0.21, closest="Amelia Stone – Slow Rain")])
    assert cell(panel, 0, 1) == "Not in your library"
    assert cell(panel, 0, 3) == "21%"
    assert "Slow Rain" in cell(panel, 0, 3, Qt.ToolTipRole)


def test_csv_says_whether_each_song_is_in_the_library(qtbot, tmp_path):
    panel = make_panel(qtbot, tmp_path, [entry("Found"), entry("", path="", confidence=0.2, closest="X – Y")])
    out = tmp_path / "h.csv"
    panel.export_csv(out)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["title"], r["in_library"], r["confidence"], r["closest"]) for r in rows] == [
        ("", "false", "0.200", "X – Y"), ("Found", "true", "0.900", "")]


def test_genre_cells_take_the_genre_colour(qtbot, tmp_path):
    palette = GenrePalette(["Rock", "Jazz"])
    panel = make_panel(qtbot, tmp_path, [entry("A", genre="Jazz"), entry("B", genre="Rock")])
    panel.model.palette = palette
    assert cell(panel, 0, 4, Qt.DecorationRole).name() == palette.colour("Rock")
    assert cell(panel, 1, 4, Qt.DecorationRole).name() == palette.colour("Jazz") != palette.colour("Rock")


def test_actions_on_an_entry_open_its_folder_play_it_and_copy_its_name(qtbot, tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(song_actions, "open_url", lambda url: opened.append(url.toLocalFile()) or True)
    panel = make_panel(qtbot, tmp_path, [entry("Slow Rain", "Amelia Stone", path="/music/Ballad/slow.flac")])
    panel.table.selectRow(0)
    panel._act(song_actions.open_folder)
    panel._act(song_actions.play)
    panel._act(song_actions.copy_name)
    assert opened == ["/music/Ballad", "/music/Ballad/slow.flac"]
    assert QGuiApplication.clipboard().text() == "Amelia Stone \u2013 Slow Rain"


def test_the_library_tab_gives_the_title_the_width_long_artists_do_not(qtbot):
    from shazamlet.gui.library_panel import LibraryPanel
    from shazamlet.library.catalog import Song
    panel = LibraryPanel(GenrePalette(["Rock"]))
    qtbot.addWidget(panel)
    panel.set_songs([Song(1, "/music/Rock/a.flac", "The Long Goodbye (Live at the Royal Albert Hall, 1974)",
                          LONG_ARTIST, "", "Rock", 200.0, "h", 1, 0.0, 0.0, 60, "e.npy")])
    panel.resize(480, 300)
    panel.show()
    qtbot.waitExposed(panel)
    header = panel.table.horizontalHeader()
    title, artist = header.sectionSize(0), header.sectionSize(1)
    print(f"title {title} px, artist {artist} px")
    assert title >= 150 and title > artist
    assert header.length() <= panel.table.viewport().width() + 1  # no sideways scrolling


def test_a_damaged_history_file_is_set_aside_not_overwritten(qtbot, tmp_path):
    store = tmp_path / "history.json"
    store.write_text('[{"time": 1, "title": "cut off', encoding="utf-8")
    panel = make_panel(qtbot, tmp_path, [entry("New")])
    panel.file.flush()
    aside = list(tmp_path.glob("history.json.damaged-*"))
    assert len(aside) == 1 and aside[0].read_text(encoding="utf-8") == '[{"time": 1, "title": "cut off'
    assert [e["title"] for e in json.loads(store.read_text(encoding="utf-8"))] == ["New"]


def test_the_history_is_written_off_the_gui_thread_and_a_failed_write_loses_nothing(qtbot, tmp_path, monkeypatch):
    panel = make_panel(qtbot, tmp_path)
    writers = []
    real = Path.write_text

    def write_text(self, *args, **kwargs):
        writers.append(threading.current_thread() is threading.main_thread())
        if self.name.startswith("history.json") and len(writers) == 2:
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    panel.add(entry("One"))
    panel.file.flush()
    panel.add(entry("Two"))  # the disk is full for this write
    panel.file.flush()
    assert writers == [False, False] and "No space left" in panel.file.error
    assert [e.title for e in panel.entries] == ["Two", "One"]
    assert not list(tmp_path.glob("*.tmp"))
    panel.add(entry("Three"))  # space again: all of it is written
    panel.file.flush()
    assert [e["title"] for e in json.loads((tmp_path / "history.json").read_text())] == ["Three", "Two", "One"]
    panel.file.close()  # the window closed; an answer still on its way is written all the same
    panel.add(entry("Four"))
    assert [e["title"] for e in json.loads((tmp_path / "history.json").read_text())][0] == "Four"
