"""The window's views and flows added for issue 24: the clean spectrogram and a dropped file's, one colour
per genre, songs shown as they are added, a folder of recordings identified, the tray and notifications."""

from __future__ import annotations

import csv
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
import soundfile as sf  # noqa: E402
from conftest import aligned_clip  # noqa: E402
from test_gui import SR, Inputs, built_library, drop, make_window, music  # noqa: E402,F401  (fixtures)
from test_gui_answer import answer, candidate  # noqa: E402

from shazamlet.config import FeatureConfig  # noqa: E402
from shazamlet.gui import messages as m  # noqa: E402
from shazamlet.gui.core_worker import remaining_seconds  # noqa: E402
from shazamlet.gui.folder_batch import NOT_FOUND_CSV  # noqa: E402
from shazamlet.gui.genres import GenrePalette  # noqa: E402
from shazamlet.gui.spectrogram import (LEVELS_DB, SpectrogramView, StreamingMel, band_position,  # noqa: E402
                                       frequency_ticks)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_the_spectrogram_axis_is_in_hz_on_the_front_ends_mel_scale():
    f = FeatureConfig()
    labels = [label for _, label in frequency_ticks(f)]
    assert labels == ["100 Hz", "500 Hz", "1 kHz", "2 kHz", "4 kHz", "8 kHz"]
    positions = [pos for pos, _ in frequency_ticks(f)]
    assert all(0 < p < f.n_mels for p in positions) and positions == sorted(positions)
    assert abs(band_position(f.f_max, f) - (f.n_mels + 0.5)) < 1e-6  # f_max: the last point of the scale


def test_the_live_spectrogram_scrolls_under_a_still_axis_with_now_at_the_right(qtbot):
    """The axis is seconds before now and stands still (a moving range redrew the axis and painted the
    view twice a frame); the picture slides, its newest sound at 0 and older sound further left."""
    f = FeatureConfig()
    spec = SpectrogramView(f, seconds=12.0)
    qtbot.addWidget(spec)
    spec.resize(700, 260)
    spec.show()
    qtbot.waitExposed(spec)
    rate = 48_000
    spec.reset(rate, 0, StreamingMel(f, rate))
    t = np.arange(4 * rate) / rate
    quiet, tone = np.zeros(2 * rate, np.float32), (0.5 * np.sin(2 * np.pi * 1000 * t[: 2 * rate])).astype(np.float32)
    spec.push(tone, 2 * rate)  # 2 s of a 1 kHz tone, then 2 s of silence
    spec.push(quiet, 4 * rate)
    assert spec.getViewBox().viewRange()[0] == [-12.0, 0.0]
    assert spec.getPlotItem().getAxis("bottom").labelText == "seconds ago"
    band = int(band_position(1000, f))
    cols = spec.data[band]
    seconds_ago = (len(cols) - 1 - np.arange(len(cols))) * spec.frame_seconds
    loud = seconds_ago[np.nan_to_num(cols, nan=-200) > -40]
    assert 1.8 < loud.min() < 2.3 and 3.6 < loud.max() < 4.1  # heard 2-4 s ago
    # the picture shown is the data through pyqtgraph's own inferno map at the levels; unheard time is background
    shown = spec.image.image
    heard = ~np.isnan(spec.data[0])
    argb, _ = pg.makeARGB(spec.data[:, heard], lut=pg.colormap.get("inferno").getLookupTable(nPts=256),
                          levels=LEVELS_DB)
    assert np.array_equal(shown[:, heard, :3], argb[..., [2, 1, 0]])  # makeARGB: BGRA
    assert (~heard).any() and (shown[:, ~heard, :3] == [0x14, 0x14, 0x1C]).all()
    right = spec.image.mapRectToParent(spec.image.boundingRect()).right()
    assert abs(right) < 0.1  # the newest column ends at "now"
    live = spec.live_box.mapRectToParent(spec.live_box.rect())
    assert spec.live_box.isVisible() and abs(live.right()) < 0.1 and abs(live.width() - f.tile_seconds) < 0.01
    spec.mark_window(4 * rate, 4.0, np.array([0, 11, 22]), True)  # an answer's window: 0-4 s of the stream
    spec.set_details(True)
    spec.push(quiet[: rate // 2], 4 * rate + rate // 2)
    assert spec.getViewBox().viewRange()[0] == [-12.0, 0.0]  # still, while the picture moved on
    shown = spec.window_box.mapRectToParent(spec.window_box.rect()).translated(spec.scroller.pos())
    assert abs(shown.right() + 0.5) < 0.1 and abs(shown.left() + 4.5) < 0.1  # the marks slide with it


def test_a_dropped_file_shows_its_own_spectrogram(make_window, qtbot, built_library, music, tmp_path):
    w = make_window(built_library)
    path = sorted(music.rglob("*.wav"))[2]
    wave, _ = sf.read(path, dtype="float32")
    clip = tmp_path / "recording.wav"
    sf.write(clip, aligned_clip(wave, 3, seconds=5.0), SR)
    with qtbot.waitSignal(w.answered, timeout=20_000) as got:
        drop(w.listen, [clip])
    msg = got.args[0]
    spec = w.listen.spectrogram
    assert msg.spectrogram is not None and msg.spectrogram.shape[0] == FeatureConfig().n_mels
    assert np.array_equal(spec.data, msg.spectrogram)  # the file's sound, not the microphone's
    assert spec.title.toPlainText() == "recording.wav"
    assert abs(spec.image.width() - msg.spectrogram.shape[1]) == 0
    assert not spec.window_box.isVisible()  # clean by default
    w.details_action.setChecked(True)
    assert spec.window_box.isVisible() and spec.n_marked == len(msg.answer.tile_starts) > 0


def test_one_colour_per_genre_on_the_map_the_votes_and_the_tables(make_window, qtbot, built_library):
    w = make_window(built_library)
    qtbot.waitUntil(lambda: w.map_view.map is not None, timeout=20_000)
    genres = sorted({s.genre for s in w.songs})
    assert w.map_view.genre_colour == {g: w.palette.colour(g) for g in genres}
    assert len(set(w.map_view.genre_colour.values())) == len(genres)
    w.listen.show_answer(answer(candidate("x", "y", 0.9)), True, "after 3 s")  # votes: Rock 70 %, Jazz 30 %
    assert w.listen.genre_votes.colours == [w.palette.colour("Rock"), w.palette.colour("Jazz")]
    row = w.library.proxy.index(0, 2)
    assert row.data(0x1).name() == w.palette.colour(row.data())  # Qt.DecorationRole
    # the top genre no longer takes one fixed colour whatever it is
    w.listen.show_answer(answer(candidate("x", "y", 0.9)), True, "after 3 s")
    assert w.listen.genre_votes.colours[0] != "#db2777"
    palette = GenrePalette(["b", "a"])
    assert palette.colour("a") != palette.colour("b") and GenrePalette(["a", "b"]).colour("a") == palette.colour("a")


def test_songs_appear_in_the_library_as_they_are_added_with_an_honest_estimate(make_window, qtbot, tmp_path, music):
    w = make_window(tmp_path / "lib")
    events, progress = [], []
    w.library.model.rowsInserted.connect(lambda *_: events.append(("row", w.library.model.rowCount())))
    w.indexing_done.connect(lambda _msg: events.append(("done", w.library.model.rowCount())))
    w.workers.core.progress.connect(progress.append)  # (runs in the core thread: only appends)
    with qtbot.waitSignal(w.indexing_done, timeout=60_000):
        w.add_paths([str(music)])
    assert events == [("row", 1), ("row", 2), ("row", 3), ("done", 3)]  # each song shown as soon as it is stored
    embed = [p for p in progress if p.phase == "embed"]
    assert [p.done for p in embed] == [0, 1, 2, 3] and embed[0].total == 3  # the count comes first
    assert embed[1].eta_s is None and embed[2].eta_s is not None  # no estimate from the first file alone
    assert embed[-1].eta_s == 0.0
    assert w.library.model.rowCount() == 3
    assert remaining_seconds(2, 10, 6.0) == 24.0 and remaining_seconds(1, 10, 3.0) is None


def test_a_folder_of_recordings_goes_into_the_history_with_a_csv_of_what_was_not_found(
        make_window, qtbot, built_library, music, tmp_path):
    w = make_window(built_library)
    rec = tmp_path / "recordings"
    rec.mkdir()
    wave, _ = sf.read(sorted(music.rglob("*.wav"))[0], dtype="float32")
    sf.write(rec / "a-song.wav", aligned_clip(wave, 3, seconds=4.0), SR)
    sf.write(rec / "noise.wav", np.random.default_rng(3).standard_normal(SR * 4).astype(np.float32) * 0.2, SR)
    (rec / "broken.wav").write_bytes(b"not audio")
    with qtbot.waitSignal(w.folder_identified, timeout=60_000) as done:
        w.identify_folder(str(rec))
    msg = done.args[0]
    assert (msg.total, msg.found) == (3, 1) and msg.csv_path == str(rec / NOT_FOUND_CSV)
    rows = list(csv.DictReader(open(msg.csv_path, encoding="utf-8")))
    assert {os.path.basename(r["file"]): r["reason"].split(":")[0] for r in rows} == {
        "broken.wav": "could not be read", "noise.wav": "not in your library"}
    assert [e.source for e in w.history.entries] == ["noise.wav", "a-song.wav"]
    assert w.history.entries[1].in_library and not w.history.entries[0].in_library
    assert "1 of 3 recordings named" in w.banner.text.text() and w.banner.action_id == "not-found"


def test_continuous_mode_notifies_and_the_window_closes_to_the_tray_while_listening(make_window, qtbot,
                                                                                    built_library):
    w = make_window(built_library, inputs=Inputs(np.zeros(SR * 30, np.float32), speed=1.0))
    sent = []
    w.tray.available = True  # (the offscreen platform has no tray)
    w.tray.icon.showMessage = lambda title, text, *a: sent.append((title, text))
    w.continuous.setChecked(True)
    w.start_listening()
    assert w.tray.listen_action.text() == "Stop Listening"
    song = candidate("Slow Rain", "Amelia Stone", 0.93)
    w.workers.listen.update.emit(m.ListenUpdate(w.session, "final", answer(song), 3.0, 3.0, SR * 3, SR))
    w.workers.listen.update.emit(m.ListenUpdate(w.session, "final", answer(song), 6.0, 3.0, SR * 6, SR))
    assert sent == [("Slow Rain", "Amelia Stone · 93% sure")]  # once per song, not per window
    assert "Amelia Stone – Slow Rain" in w.tray.icon.toolTip()
    w.close()  # with a tray, closing while listening keeps listening
    assert not w.isVisible() and w.listening and len(sent) == 2
    w.tray.listen_action.trigger()  # Stop from the tray menu
    assert not w.listening and w.tray.listen_action.text() == "Listen"
    w.tray.show_requested.emit()
    assert w.isVisible()
    w.continuous.setChecked(False)
    w.start_listening()
    w.workers.listen.update.emit(m.ListenUpdate(w.session, "final", answer(song), 3.0, 3.0, SR * 3, SR))
    assert len(sent) == 2  # one answer at a time: the user is looking at the window
    w.quit()
    assert not w.isVisible()


def test_each_input_is_listed_once_readably_microphones_first():
    from shazamlet.audio.capture import InputDevice
    from shazamlet.gui.sources import input_choices

    alsa = [InputDevice(0, "HDA Intel PCH: ALC257 Analog (hw:0,0)", 2, 44100.0, False, False),
            InputDevice(1, "pulse", 32, 44100.0, False, False), InputDevice(2, "default", 32, 44100.0, True, False)]
    sources = [("alsa_output.pci.monitor", "Monitor of Built-in Audio Analog Stereo", False),
               ("alsa_input.usb-mic", "USB Mic", True), ("alsa_input.pci", "Built-in Audio Analog Stereo", False)]
    choices = input_choices(alsa, sources)
    assert [c.label for c in choices] == ["USB Mic  · default", "Built-in Audio Analog Stereo",
                                          "This computer's audio (Built-in Audio Analog Stereo)"]
    assert all(c.device == 1 for c in choices) and choices[0].pulse_source == "alsa_input.usb-mic"
    # without PulseAudio: the hardware inputs, no ALSA aliases of the default
    plain = input_choices([alsa[0], InputDevice(5, "sysdefault", 2, 44100.0, True, False),
                           InputDevice(6, "Loopback: PCM (hw:2,1)", 2, 44100.0, False, True)], [])
    assert [c.label for c in plain] == ["System default input", "HDA Intel PCH: ALC257 Analog",
                                        "This computer's audio (Loopback: PCM)"]


def test_nothing_remembered_selects_the_default_source(make_window, qtbot, built_library):
    from shazamlet.audio.capture import InputDevice

    w = make_window(built_library, devices=[InputDevice(0, "pulse", 32, 44100.0, False, False)],
                    sources=[("v.monitor", "Monitor of Null Output", True)])
    assert w.inputs.labels() == ["This computer's audio (Null Output)  · default"]
    assert w.inputs.current().pulse_source == "v.monitor"


def test_clipping_is_said_only_for_flat_tops_on_a_microphone(qtbot):
    from shazamlet.gui.listen_panel import ListenPanel

    panel = ListenPanel()
    qtbot.addWidget(panel)
    t = np.arange(SR // 10) / SR
    song = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    song[::500] = 1.0  # a well-mastered song's peaks touch full scale, one sample at a time
    panel.feed(song, SR, len(song))
    assert not panel.level_note.text().startswith("Clipping")
    flat = np.clip(song * 30, -1, 1)  # a microphone driven into its limits: flat tops
    panel.feed(flat, SR, 2 * len(song))
    assert panel.level_note.text().startswith("Clipping: lower the microphone's input volume")
    panel.meter.reset()
    panel.input_is_monitor = True  # the computer's own audio: nothing to turn down
    panel.feed(flat, SR, 3 * len(song))
    assert not panel.level_note.text().startswith("Clipping")


def test_memory_held_by_indexing_is_given_back_after_adding(make_window, qtbot, tmp_path, music, monkeypatch):
    """Measured (20 one-minute songs added from a thread, bundled model): 486 MB fresh, 623 MB after
    adding, 472 MB after `release_memory`; here: the core calls it once adding is done, after the map."""
    from shazamlet.gui import core_worker

    calls = []
    real = core_worker.release_memory
    monkeypatch.setattr(core_worker, "release_memory", lambda: calls.append(rss_mb()) or real())
    w = make_window(tmp_path / "lib")
    with qtbot.waitSignal(w.workers.core.map_ready, timeout=60_000):
        w.add_paths([str(music)])
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=10_000)
    assert calls[0] > 0  # (read from /proc: this runs on Linux)
