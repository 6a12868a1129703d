"""The window, offscreen, driven like a user: drops, Listen, history, inputs, broken states.

Real audio goes through the real path: a `FileInputStream` plays a clip into the same ring buffer a
microphone fills, the listen thread feeds the core's `Listener`, and the answer comes back to the
window. Models are random (see conftest): clips are cut where a library tile starts.
"""

from __future__ import annotations

import csv
import os
import shutil
import threading
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
from conftest import aligned_clip  # noqa: E402
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QTimer, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from synth import STYLES, write_library  # noqa: E402

from shazamlet.audio.capture import CaptureError, InputDevice  # noqa: E402
from shazamlet.gui.main_window import MainWindow  # noqa: E402
from shazamlet.gui.sources import FileInputStream  # noqa: E402
from shazamlet.library import Library  # noqa: E402
from shazamlet.model import TileEmbedder  # noqa: E402

SR = 22_050
DEVICES = [InputDevice(3, "USB Microphone", 1, 44100.0, True, False),
           InputDevice(7, "Monitor of Built-in Audio", 2, 44100.0, False, True)]
PULSE = [InputDevice(0, "pulse", 32, 44100.0, False, False), InputDevice(1, "default", 32, 44100.0, True, False)]


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    root = tmp_path_factory.mktemp("gui-music")
    write_library(root, n_per_style=1, seconds=12.0, styles=STYLES[:3], seed=50)
    return root


@pytest.fixture(scope="module")
def built_library(tmp_path_factory, music, random_model):
    """A library folder with the 3 songs, built by the core (not through the window)."""
    folder = tmp_path_factory.mktemp("gui-lib") / "lib"
    lib = Library.open(folder, TileEmbedder(str(random_model)))
    assert len(lib.add([music]).added) == 3
    lib.close()
    return folder


class Inputs:
    """Records which inputs the window opened; plays `wave` into each as if it were a microphone."""

    def __init__(self, wave=None, fail: str | None = None, speed: float = 2.0, loop: bool = False,
                 block: int = 1024) -> None:
        self.wave, self.fail, self.speed, self.loop, self.block = wave, fail, speed, loop, block
        self.opened: list = []
        self.pulse_source: list[str] = []

    def __call__(self, device):
        if self.fail:
            raise CaptureError(self.fail)
        wave = self.wave if self.wave is not None else np.zeros(SR, np.float32)
        stream = FileInputStream(wave, SR, name=f"test input {device}", speed=self.speed, loop=self.loop,
                                 delay_s=0.2, block_s=self.block / SR)
        self.opened.append((device, stream))
        self.pulse_source.append(os.environ.get("PULSE_SOURCE", ""))
        return stream.start()


@pytest.fixture()
def make_window(qtbot, tmp_path, random_model):
    windows = []

    def make(library, model=random_model, inputs=None, devices=DEVICES, wait_ready=True,
             settings_file: str | None = None, sources=(), list_devices=None) -> MainWindow:
        settings = QSettings(str(tmp_path / (settings_file or f"settings{len(windows)}.ini")), QSettings.IniFormat)
        w = MainWindow(str(library), str(model), settings=settings, open_stream=inputs or Inputs(),
                       list_devices=list_devices or (lambda _rescan=False: list(devices)),
                       history_path=tmp_path / "history.json", list_pulse_sources=lambda: list(sources))
        qtbot.addWidget(w)
        w.show()
        windows.append(w)
        if wait_ready:
            qtbot.waitUntil(lambda: w.ready and bool(w.inputs.choices), timeout=30_000)  # (listed by the listen thread)
        return w

    yield make
    for w in windows:
        w.close()


def drop(target, paths) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(target.rect().center()), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    target.dragEnterEvent(event)  # (Qt delivers drop events only inside a real drag: call the handlers)
    assert event.isAccepted()
    target.dropEvent(event)


def test_empty_library_then_dropping_a_folder_indexes_it_with_progress(make_window, qtbot, tmp_path, music):
    w = make_window(tmp_path / "new-lib")
    assert w.listen.card_stack.currentWidget() is w.listen.hint  # "Drag a folder of music here"
    assert "Drag a folder" in w.listen.hint.text()
    progress = []
    w.workers.core.progress.connect(progress.append)
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "corrupt.wav").write_bytes(b"RIFF....not a wave file")
    ticks = []  # the event loop keeps turning while the core thread indexes
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)
    with qtbot.waitSignal(w.indexing_done, timeout=60_000) as done:
        drop(w, [music, odd])
        assert w.library.progress_row.isVisibleTo(w.library)  # the window is not blocked meanwhile
    timer.stop()
    gaps = np.diff(ticks)
    print(f"event loop during indexing: {len(ticks)} ticks, longest gap {gaps.max() * 1000:.0f} ms")
    assert len(done.args[0].report.added) == 3
    assert gaps.max() < 0.5
    embed = [p for p in progress if p.phase == "embed"]
    assert [p.done for p in embed] == [0, 1, 2, 3, 4] and embed[-1].total == 4 and embed[-1].files_per_s > 0
    problems = [w.library.problems.item(i).text() for i in range(w.library.problems.count())]
    assert len(problems) == 1 and "corrupt.wav" in problems[0] and w.library.problems.isVisibleTo(w.library)
    assert any(p.phase == "index" for p in progress)
    assert w.library.model.rowCount() == 3 and not w.library.progress_row.isVisibleTo(w.library)
    assert w.listen.card_stack.currentWidget() is not w.listen.hint
    qtbot.waitUntil(lambda: w.map_view.map is not None and len(w.map_view.map.xy) > 0, timeout=20_000)
    assert set(w.map_view.map.genre) == {s.name for s in STYLES[:3]}
    w.library.search.setText("techno")
    assert w.library.proxy.rowCount() == 1
    w.library.table.selectRow(0)
    with qtbot.waitSignal(w.indexing_done, timeout=30_000) as removed:
        w.library.remove.click()
    assert removed.args[0].job == "remove" and len(removed.args[0].report.updated) == 1
    assert w.library.model.rowCount() == 2 and all("techno" not in s.path for s in w.songs)


def test_listen_identifies_the_song_playing_into_the_input(make_window, qtbot, built_library, music):
    path = sorted(music.rglob("*.wav"))[1]
    wave, _ = sf.read(path, dtype="float32")
    inputs = Inputs(aligned_clip(wave, 4, seconds=7.0))
    w = make_window(built_library, inputs=inputs)
    assert w.listen.card_stack.currentWidget() is not w.listen.hint
    updates = []
    w.answered.connect(updates.append)
    draws = []  # how often the spectrogram is redrawn while the listen thread identifies
    w.draw_timer.timeout.connect(lambda: draws.append(time.perf_counter()))
    qtbot.keyClick(w, Qt.Key_Space)  # the Listen shortcut
    assert w.listening
    qtbot.waitUntil(lambda: bool(updates) and updates[-1].kind == "final", timeout=30_000)
    gaps = np.diff(draws)
    print(f"spectrogram: {len(draws) / (draws[-1] - draws[0]):.0f} fps, longest gap {gaps.max() * 1000:.0f} ms")
    assert len(draws) / (draws[-1] - draws[0]) > 10 and gaps.max() < 0.3  # never waits for the listen thread
    final = updates[-1]
    assert final.answer.song is not None and final.answer.song.path == str(path)
    assert final.heard_s < 6.0  # sure early: stops by itself
    qtbot.waitUntil(lambda: not w.listening, timeout=5000)
    assert w.listen.title.text() == final.answer.song.title
    assert w.listen.song_votes.labels[0].startswith(final.answer.song.title)
    assert w.listen.song_votes.values[0] == pytest.approx(final.answer.song.score)
    assert w.listen.genre_votes.labels and abs(sum(w.listen.genre_votes.values) - 1.0) < 0.01
    assert w.listen.spectrogram.mel.frames_done > 50  # the spectrogram saw the audio
    spec, used = w.listen.spectrogram, final.answer.tile_starts
    # by default a clean picture: the current 3-s window, no analysed window, tiles or labels
    assert spec.live_box.isVisible() and not spec.live_label.isVisible()
    assert not spec.window_box.isVisible() and not any(m.isVisible() for m in spec.tile_marks)
    assert not spec.window_label.isVisible()
    w.details_action.trigger()  # View > Analysis Details
    assert w.listen.spectrogram.window_box.isVisible() and w.settings.details()
    # the tiles marked on it are the ones the answer matched
    assert sum(m.isVisible() for m in spec.tile_marks) == len(used) > 0
    assert spec.window_label.toPlainText().startswith(f"{final.window_s:.1f} s analysed · {len(used)} tile")
    spec.mark_window(final.end_sample, final.window_s, used[1:], True)  # a half-silent first tile left out
    assert sum(m.isVisible() for m in spec.tile_marks) == len(used) - 1
    qtbot.waitUntil(lambda: w.map_view.centre.data.size == 1, timeout=20_000)  # the query is on the map
    entry = w.history.entries[0]
    assert entry.title == final.answer.song.title and entry.path == str(path)


def looped(periods: list[int], seconds: float) -> np.ndarray:
    """A sound that repeats every 1024 samples (one frame hop): every tile of it is the same tile,
    wherever a listening attempt starts, so the random test model recognises it at any offset."""
    t = np.arange(int(seconds * SR))
    x = sum(np.sin(2 * np.pi * k * t / 1024 + k) for k in periods)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def test_continuous_mode_adds_a_history_entry_when_the_song_changes(make_window, qtbot, tmp_path):
    (tmp_path / "music" / "drone").mkdir(parents=True)
    low, high = looped([5, 9, 14], 6.0), looped([40, 61, 90], 6.0)
    sf.write(tmp_path / "music" / "drone" / "low.wav", low, SR)
    sf.write(tmp_path / "music" / "drone" / "high.wav", high, SR)
    inputs = Inputs(np.concatenate([low, low, high, high]), speed=3.0)  # ~12 s of one, then the other
    w = make_window(tmp_path / "lib", inputs=inputs)
    with qtbot.waitSignal(w.indexing_done, timeout=30_000):
        w.add_paths([str(tmp_path / "music")])
    w.continuous.setChecked(True)
    finals = []
    w.answered.connect(lambda msg: finals.append(msg) if msg.kind == "final" else None)
    w.start_listening()
    qtbot.waitUntil(lambda: len(w.history.entries) == 2, timeout=30_000)
    assert w.listening  # still listening after its answers
    sure = [f.answer.song.title for f in finals if f.answer.song]
    assert len(sure) >= 3 and sure[0] == "low" and sure.count("low") >= 2  # the same song again: no new entry
    assert [e.title for e in reversed(w.history.entries)] == ["low", "high"]
    w.stop_listening()
    assert w.settings.continuous()


def test_listening_goes_on_while_songs_are_added(make_window, qtbot, tmp_path):
    """Identification (listen thread) and indexing (core thread) share the library; the index swap
    at the end of indexing must not pull the index from under a running query."""
    (tmp_path / "music" / "drone").mkdir(parents=True)
    low = looped([5, 9, 14], 6.0)
    sf.write(tmp_path / "music" / "drone" / "low.wav", low, SR)
    write_library(tmp_path / "more", n_per_style=1, seconds=8.0, styles=STYLES[:2], seed=900)
    w = make_window(tmp_path / "lib", inputs=Inputs(np.tile(low, 4), speed=3.0))
    with qtbot.waitSignal(w.indexing_done, timeout=30_000):
        w.add_paths([str(tmp_path / "music")])
    w.continuous.setChecked(True)
    updates = []
    w.answered.connect(updates.append)
    w.start_listening()
    qtbot.waitUntil(lambda: len(updates) >= 1, timeout=20_000)
    with qtbot.waitSignal(w.indexing_done, timeout=60_000) as done:
        w.add_paths([str(tmp_path / "more")])
    assert len(done.args[0].report.added) == 2
    seen = len(updates)
    qtbot.waitUntil(lambda: len(updates) >= seen + 2, timeout=20_000)  # answers keep coming, from the new index
    assert w.listening and not w.banner.isVisibleTo(w)
    assert all(u.answer.song.title == "low" for u in updates if u.kind == "final" and u.answer.song)
    w.stop_listening()


def test_history_from_dropped_files_delete_and_csv_export(make_window, qtbot, built_library, music, tmp_path):
    w = make_window(built_library)
    songs = sorted(music.rglob("*.wav"))
    for i, path in enumerate(songs[:2]):
        wave, _ = sf.read(path, dtype="float32")
        clip = tmp_path / f"clip{i}.wav"
        sf.write(clip, aligned_clip(wave, 3), SR)  # one tile long: it starts where a library tile does
        with qtbot.waitSignal(w.answered, timeout=20_000) as got:
            drop(w.listen, [clip])  # one audio file on the Listen area: identify it, not add it
        assert got.args[0].answer.song.path == str(path)
    assert len(w.history.entries) == 2 and w.history.proxy.rowCount() == 2
    assert len(w.songs) == 3  # nothing was added to the library
    out = tmp_path / "history.csv"
    w.history.export_csv(out)
    rows = list(csv.DictReader(out.open()))
    assert [r["path"] for r in rows] == [str(songs[1]), str(songs[0])]
    by_path = {s.path: s for s in w.songs}
    assert rows[0]["title"] == by_path[str(songs[1])].title and rows[0]["artist"] == by_path[str(songs[1])].artist
    w.history.table.selectRow(0)
    w.history.confirm_delete = lambda entries: True
    w.history.delete_selected()
    assert [e.path for e in w.history.entries] == [str(songs[0])]
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"not audio at all")
    with qtbot.waitSignal(w.answered, timeout=10_000) as got:
        w.identify_file(str(bad))
    assert got.args[0].error and "broken.wav" in w.listen.title.text()


def test_switching_the_input_while_listening(make_window, qtbot, built_library):
    inputs = Inputs(np.random.default_rng(0).standard_normal(SR * 4).astype(np.float32) * 0.1, loop=True)
    w = make_window(built_library, inputs=inputs)
    assert w.inputs.labels() == ["USB Microphone  · default", "This computer's audio (Built-in Audio)"]
    w.inputs.box.setCurrentIndex(0)
    w.start_listening()
    qtbot.waitUntil(lambda: w.stream is not None, timeout=5000)
    w.inputs.box.setCurrentIndex(1)
    qtbot.waitUntil(lambda: len(inputs.opened) == 2 and w.stream is inputs.opened[1][1], timeout=5000)
    assert [d for d, _ in inputs.opened] == [3, 7]
    qtbot.waitUntil(lambda: inputs.opened[0][1].finished, timeout=5000)  # the old input was closed
    qtbot.wait(300)
    assert w.listening and w.listen.spectrogram.mel.frames_done > 0
    w.stop_listening()
    w.continuous.setChecked(True)
    w.resize(760, 560)  # (smaller than the offscreen screen, which restoreGeometry clamps to)
    width = w.width()
    w.close()  # settings are remembered: input, continuous mode, geometry
    w2 = make_window(built_library, settings_file="settings0.ini")
    qtbot.waitUntil(lambda: len(w2.inputs.labels()) == 2)
    assert w2.inputs.current().label.startswith("This computer's audio") and w2.inputs.current().device == 7
    assert w2.continuous.isChecked() and w2.width() == width


def test_inputs_are_listed_off_the_gui_thread_and_rescanned_only_without_a_stream(make_window, qtbot, built_library):
    calls = []

    def list_devices(rescan: bool) -> list[InputDevice]:  # PortAudio and pactl can take seconds
        calls.append((threading.current_thread() is threading.main_thread(), rescan))
        time.sleep(0.3)
        return list(DEVICES)

    w = make_window(built_library, inputs=Inputs(loop=True), list_devices=list_devices)
    assert calls == [(False, True)] and len(w.inputs.labels()) == 2
    w.start_listening()
    qtbot.waitUntil(lambda: w.stream is not None, timeout=5000)
    w.refresh_devices()  # while a stream is open PortAudio must not restart
    qtbot.waitUntil(lambda: len(calls) == 2, timeout=5000)
    assert calls[1] == (False, False)
    w.stop_listening()


def test_pulseaudio_monitor_sources_are_offered_and_opened_by_name(make_window, qtbot, built_library):
    inputs = Inputs(loop=True)
    w = make_window(built_library, inputs=inputs, devices=PULSE,
                    sources=[("alsa_input.usb-mic", "USB Mic"), ("alsa_output.pci.monitor", "Monitor of Speakers")])
    labels = w.inputs.labels()  # no source is known to be the default: the system default stays
    assert labels == ["System default input", "USB Mic", "This computer's audio (Speakers)"]
    w.inputs.box.setCurrentIndex(2)
    assert w.settings.device() == "pulse:alsa_output.pci.monitor"
    w.start_listening()
    qtbot.waitUntil(lambda: w.stream is not None, timeout=5000)
    w.inputs.box.setCurrentIndex(0)  # back to the system default, while listening
    qtbot.waitUntil(lambda: len(inputs.opened) == 2 and w.stream is inputs.opened[1][1], timeout=5000)
    w.stop_listening()
    assert [d for d, _ in inputs.opened] == [0, None]
    assert inputs.pulse_source == ["alsa_output.pci.monitor", ""]
    assert w.settings.device() == ""


def test_no_microphone_and_busy_device(make_window, qtbot, built_library):
    w = make_window(built_library, inputs=Inputs(fail="cannot open USB Microphone: Device unavailable "
                                                       "(is another program using it?)"), devices=[])
    assert w.banner.isVisibleTo(w) and "No microphone" in w.banner.text.text()
    w.start_listening()
    qtbot.waitUntil(lambda: not w.listening, timeout=5000)
    assert "another program" in w.banner.text.text()
    assert w.listen.button.text() == "Listen"


def test_library_location_comes_from_the_settings(make_window, qtbot, built_library, tmp_path):
    settings = QSettings(str(tmp_path / "located.ini"), QSettings.IniFormat)
    settings.setValue("library/folder", str(built_library))
    settings.sync()
    w = make_window("", settings_file="located.ini")  # no --library: the remembered location
    assert len(w.songs) == 3 and str(built_library) in w.library_info.text()


def test_missing_and_mismatched_model(make_window, qtbot, built_library, other_random_model, tmp_path):
    w = make_window(built_library, model=tmp_path / "nope.pt", wait_ready=False)
    qtbot.waitUntil(lambda: w.banner.isVisibleTo(w) and "model" in w.banner.text.text(), timeout=10_000)
    assert "not found" in w.banner.text.text() and w.banner.action_id == "model"
    lib_copy = tmp_path / "lib-copy"
    shutil.copytree(built_library, lib_copy)
    w2 = make_window(lib_copy, model=other_random_model)
    assert w2.banner.action_id == "reindex" and "another model (random-test)" in w2.banner.text.text()
    assert w2.workers.listen.recognizer is None  # no identification against fingerprints of another model
    with qtbot.waitSignal(w2.indexing_done, timeout=60_000) as done:
        w2.banner.button.click()
    assert done.args[0].job == "reindex" and done.args[0].recognizer is not None
    assert not w2.banner.isVisibleTo(w2)


def test_display_spectrogram_equals_the_front_end():
    import torch

    from shazamlet.config import FeatureConfig
    from shazamlet.features import LogMelFrontEnd, power_to_db
    from shazamlet.gui.spectrogram import StreamingMel

    wave = np.random.default_rng(1).standard_normal(SR * 2).astype(np.float32) * 0.3
    mel = StreamingMel(FeatureConfig(), SR)
    parts = [mel.push(chunk) for chunk in np.array_split(wave, 17)]  # pushed in uneven pieces
    ours = np.concatenate(parts, axis=1)
    ref = power_to_db(LogMelFrontEnd()(torch.from_numpy(wave))).numpy()
    assert ours.shape == ref.shape
    assert np.allclose(ours, ref, atol=0.05)


def test_level_note_says_when_the_input_clips_or_is_silent(qtbot):
    from shazamlet.gui.listen_panel import ListenPanel

    panel = ListenPanel()
    qtbot.addWidget(panel)
    t = np.arange(SR // 10) / SR
    tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    panel.feed(tone, SR, len(tone))
    assert panel.level_note.text() == "-23 dBFS"  # RMS of a 0.1 sine: 20 log10(0.1 / sqrt 2)
    panel.feed(np.clip(tone * 30, -1, 1), SR, 2 * len(tone))
    assert panel.level_note.text().startswith("Clipping")
    for i in range(20):  # 2 s of digital silence; the clip warning holds 1.5 s, then silence is said
        panel.feed(np.zeros(SR // 10, np.float32), SR, (3 + i) * len(tone))
    assert panel.level_note.text().startswith("Silent")
    panel.feed(tone, SR, 30 * len(tone))
    assert panel.level_note.text().endswith("dBFS")


def test_the_level_figure_is_written_four_times_a_second_not_every_frame(qtbot):
    from shazamlet.gui.listen_panel import ListenPanel

    panel = ListenPanel()
    qtbot.addWidget(panel)
    frame = int(SR * 0.066)  # the window's frames
    t = np.arange(frame) / SR
    texts = []
    for i in range(30):  # 2 s of a tone getting louder: a new figure every frame
        panel.feed((0.01 * 1.15 ** i * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR, (i + 1) * frame)
        texts.append(panel.level_note.text())
    changes = sum(a != b for a, b in zip(texts, texts[1:]))
    assert 6 <= changes <= 9, texts
    assert texts[-1] != texts[0] and texts[-1].endswith("dBFS")


def test_a_library_without_in_between_tiles_offers_a_reindex(make_window, qtbot, music, trained_model, tmp_path):
    """Songs added by a version before in-between tiles still answer; the window says that reindexing
    them helps, and its Reindex Library button adds them."""
    from shazamlet.config import IndexConfig

    folder = tmp_path / "old-lib"
    lib = Library.open(folder, TileEmbedder(str(trained_model)), index_cfg=IndexConfig(between_tiles=False))
    assert len(lib.add([music]).added) == 3
    lib.close()
    w = make_window(folder, model=trained_model)
    qtbot.waitUntil(lambda: w.banner.action_id == "reindex", timeout=10_000)  # told after `ready`
    assert "3 songs were added by an earlier version" in w.banner.text.text()
    assert w.workers.listen.recognizer is not None  # listening works meanwhile
    with qtbot.waitSignal(w.indexing_done, timeout=60_000):
        w.banner.button.click()
    assert not w.banner.isVisibleTo(w)
    reopened = Library.open(folder, TileEmbedder(str(trained_model)), create=False)
    assert reopened.songs_from_older_version() == [] and len(reopened.songs()) == 3
    reopened.close()
