"""The main window: wires the panels to the core and listen threads (`workers.py`).

Nothing here waits on audio, disk or the model: requests go to the workers through queued signals,
answers come back as the messages of `messages.py`. The only per-frame work on this thread is
pulling the newest samples from the capture ring for the spectrogram and the level meter. The menus and
file flows are `file_actions.py`'s, adding and removing songs `library_actions.py`'s.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QMainWindow, QSizePolicy, QSplitter, QTabWidget,
                               QVBoxLayout, QWidget)

from shazamlet.gui import theme
from shazamlet.gui import messages as m
from shazamlet.gui.file_actions import FileActions
from shazamlet.gui.genres import GenrePalette
from shazamlet.gui.history import HistoryPanel, entry_from_answer
from shazamlet.gui.input_selector import InputSelector
from shazamlet.gui.library_actions import LibraryActions
from shazamlet.gui.library_panel import LibraryPanel
from shazamlet.gui.listen_panel import ListenPanel
from shazamlet.gui.map_view import MapView
from shazamlet.gui.settings import AppSettings
from shazamlet.gui.sources import (DeviceLister, InputChoice, SourceLister, StreamFactory, default_devices,
                                   open_microphone, pulse_sources)
from shazamlet.gui.tray import Tray
from shazamlet.gui.widgets import Banner
from shazamlet.gui.workers import Workers
from shazamlet.names import song_line

DRAW_MS = 66  # 15 frames per second: a smooth enough scroll; each frame is ~1% of a core


class MainWindow(FileActions, LibraryActions, QMainWindow):
    # for tests and the e2e driver
    answered = Signal(object)  # ListenUpdate or FileIdentified
    library_changed = Signal(object)  # list[Song]
    indexing_done = Signal(object)  # IndexFinished
    folder_identified = Signal(object)  # FolderIdentified

    def __init__(self, library: str | None = None, model: str | None = None, settings: QSettings | None = None,
                 open_stream: StreamFactory = open_microphone, list_devices: DeviceLister = default_devices,
                 history_path: Path | None = None, list_pulse_sources: SourceLister = pulse_sources,
                 tray_available: bool | None = None) -> None:
        super().__init__()
        self.setWindowTitle("Shazamlet")
        self.setAcceptDrops(True)
        self.settings = AppSettings(settings)
        self.library_arg, self.model_arg = library, model
        self.list_devices = list_devices
        self.list_pulse_sources = list_pulse_sources
        self.songs = []
        self.ready = False
        self.core_error = ""  # why the model or the library could not be opened
        self.indexing = False
        self.listening = False
        self.session = 0
        self.stream = None
        self.read_pos = 0
        self.last_song_id: int | None = None  # continuous mode: the song of the last history entry
        self.source_name = ""
        self.palette = GenrePalette()  # one colour per genre, shared by every view
        self.quitting = False  # closing the window quits (else, while listening with a tray, it hides)

        self._build_ui(history_path)
        self.tray = Tray(self, tray_available)
        self.tray.listen_toggled.connect(self.toggle_listening)
        self.tray.show_requested.connect(self.show_window)
        self.tray.quit_requested.connect(self.quit)
        self._start_workers(open_stream)
        geometry = self.settings.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        self.draw_timer = QTimer(self)
        self.draw_timer.setInterval(DRAW_MS)
        self.draw_timer.timeout.connect(self._draw)
        # after the window is shown: the devices and, in the core thread, the model and the library
        QTimer.singleShot(0, self.refresh_devices)
        QTimer.singleShot(0, self.load_core)

    # -- construction ---------------------------------------------------------------------------
    def _build_ui(self, history_path: Path | None) -> None:
        self.inputs = InputSelector()
        self.inputs.changed.connect(self._device_changed)
        self.inputs.refresh_requested.connect(self.refresh_devices)
        self.inputs.refreshed.connect(self._devices_refreshed)
        self.continuous = QCheckBox("Keep listening")
        self.continuous.setToolTip("Continuous mode: keep listening and add a history entry each time the song changes")
        self.continuous.setChecked(self.settings.continuous())
        self.continuous.toggled.connect(self._continuous_toggled)
        bar = QHBoxLayout()
        bar.addWidget(self.inputs)
        bar.addSpacing(16)
        bar.addWidget(self.continuous)
        self.library_info = QLabel("")
        self.library_info.setStyleSheet(f"color: {theme.MUTED}")
        self.library_info.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)  # a long path must not widen the window
        self.library_info.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        bar.addWidget(self.library_info, 1)

        self.banner = Banner()
        self.banner.action.connect(self._banner_action)
        self.listen = ListenPanel(self.palette)
        self.listen.listen_clicked.connect(self.toggle_listening)
        self.listen.card.song_changed.connect(self._song_named)
        self.listen.file_dropped.connect(self.identify_file)
        self.listen.paths_dropped.connect(self.add_paths)
        self.map_view = MapView(self.palette)
        self.history = HistoryPanel(history_path, self.palette)
        self.library = LibraryPanel(self.palette)
        self.library.set_genre_from(self.settings.genre_from())
        self.library.genre_from_changed.connect(self.settings.set_genre_from)
        self.library.add_requested.connect(self.add_paths)
        self.library.remove_requested.connect(self.remove_paths)
        self.library.cancel_requested.connect(lambda: self.workers.cancel())
        self.tabs = QTabWidget()
        self.tabs.addTab(self.map_view, "Map")
        self.tabs.addTab(self.history, "History")
        self.tabs.addTab(self.library, "Library")
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.listen)
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([760, 500])
        self.splitter = split
        if self.settings.splitter() is not None:
            split.restoreState(self.settings.splitter())
        self.tabs.setCurrentIndex(self.settings.tab())
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.addLayout(bar)
        lay.addWidget(self.banner)
        lay.addWidget(split, 1)
        self.setCentralWidget(central)
        self.listen.spectrogram.set_details(self.settings.details())
        self.statusBar().showMessage("Starting…")
        QShortcut(QKeySequence(Qt.Key_Space), self, self.toggle_listening)
        self._build_menu()

    def _start_workers(self, open_stream: StreamFactory) -> None:
        """The worker threads (`workers.py`), their answers connected to this window's handlers."""
        self.workers = Workers(open_stream, self.list_devices, self.list_pulse_sources, self)
        core, listen = self.workers.core, self.workers.listen
        core.ready.connect(self._core_ready)
        core.failed.connect(self._core_failed)
        core.status.connect(self.statusBar().showMessage)
        core.progress.connect(self._indexing_progress)  # a method, so queued: a lambda would run in the core thread
        core.finished.connect(self._indexing_finished)
        core.map_ready.connect(self.map_view.set_map)
        core.older_songs.connect(self._older_songs)
        listen.started.connect(self._capture_started)
        listen.failed.connect(self._capture_failed)
        listen.update.connect(self._listen_update)
        listen.stopped.connect(self._listen_stopped)
        listen.file_done.connect(self._file_identified)
        listen.inputs_listed.connect(self._inputs_listed)
        listen.folder_done.connect(self._folder_identified)
        self.workers.run()

    # -- the core -------------------------------------------------------------------------------
    def load_core(self) -> None:
        self.ready = False
        folder = self.library_arg or self.settings.library_folder()
        self.workers.load.emit(folder or "", self.model_arg or self.settings.model_path() or "")

    def _core_ready(self, msg: m.CoreReady) -> None:
        self.ready, self.core_error = True, ""
        self.banner.clear("model", "library", "reindex")
        self.workers.recognizer.emit((msg.recognizer,))
        self._set_songs(msg.songs)
        self.library_info.setText(f"Library: {msg.folder}  ·  model: {msg.model_name}")
        self.statusBar().showMessage("Ready." if msg.songs else "Ready: the library is empty.", 5000)
        if msg.mismatch:
            self.banner.show_message("warning", f"Reindexing needed: {msg.mismatch}", "Reindex Library", "reindex")
            self.listen.show_message("Not ready.", "Your library needs reindexing",
                                     detail="Press Reindex Library above; listening works again when it is done.")

    def _core_failed(self, msg: m.CoreFailed) -> None:
        self.core_error = msg.message
        self.listen.set_empty_library(False)
        self.listen.show_message("Not ready.", "No model" if msg.what == "model" else "No library",
                                 detail="See the message above: nothing can be identified until it is solved.")
        if msg.what == "model":
            self.banner.show_message("error", f"The model could not be loaded — {msg.message}",
                                     "Choose Model File…", "model")
        else:
            self.banner.show_message("error", f"The library could not be opened — {msg.message}",
                                     "Choose Library Folder…", "library")
        self.statusBar().showMessage("Not ready.")

    def _banner_action(self, action: str) -> None:
        {"reindex": self.reindex, "model": self._choose_model, "library": self._choose_library_folder,
         "devices": self.refresh_devices, "capture": self.refresh_devices,
         "not-found": self._open_not_found}.get(action, lambda: None)()

    # -- input devices --------------------------------------------------------------------------
    def refresh_devices(self) -> None:
        """Ask the listen thread to list the inputs (`_inputs_listed` shows them)."""
        self.workers.list_inputs.emit()

    def _inputs_listed(self, msg: m.InputsListed) -> None:
        self.inputs.show_inputs(msg.devices, msg.sources, self.settings.device())

    def _devices_refreshed(self, any_device: bool) -> None:
        if not any_device:
            self.banner.show_message("warning", "No microphone found. Connect one and press Refresh — or drop an "
                                     "audio file on the Listen area to identify it.", "Refresh", "devices")
        else:
            self.banner.clear("devices")

    def _emit_start(self) -> None:
        c = self.inputs.current()
        self.workers.start.emit(c.device, c.pulse_source, self.continuous.isChecked(), self.session)

    def _device_changed(self, choice: InputChoice) -> None:
        self.settings.set_device(choice.key)
        if self.listening:  # switch inputs: the worker closes the old stream, opens the new one
            self.session += 1
            self.stream = None
            self.listen.show_message("Switching input…")
            self._emit_start()

    def _continuous_toggled(self, on: bool) -> None:
        self.settings.set_continuous(on)
        self.workers.continuous.emit(on)

    # -- listening ------------------------------------------------------------------------------
    def toggle_listening(self) -> None:
        if self.listening:
            self.stop_listening()
        else:
            self.start_listening()

    def start_listening(self) -> None:
        if self.listening:
            return
        self.session += 1
        self.listening = True
        self.last_song_id = None
        self.listen.set_listening(True)
        self.tray.set_listening(True)
        self.listen.set_empty_library(False)
        self.listen.song_votes.set_votes([], [])
        self.listen.genre_votes.set_votes([], [])
        self.map_view.clear_query()
        self.listen.show_status("Opening the input…")
        self._emit_start()

    def stop_listening(self) -> None:
        if not self.listening:
            return
        self.workers.stop.emit(self.session)
        self._stopped_ui()
        self.listen.show_status("Stopped.", "Press Listen (Space), or drop an audio file here")

    def _stopped_ui(self) -> None:
        self.listening = False
        self.stream = None
        self.draw_timer.stop()
        self.listen.set_listening(False)
        self.tray.set_listening(False)
        self.listen.set_level_note("", False)
        self.listen.set_empty_library(not self.songs and not self.indexing)

    def _capture_started(self, msg: m.CaptureStarted) -> None:
        if msg.session != self.session or not self.listening:
            return
        self.stream, self.read_pos = msg.stream, msg.start_sample
        choice = self.inputs.current()
        self.source_name = choice.label.split("  ")[0] if choice.device >= 0 else "the default input"
        self.listen.input_is_monitor = choice.is_monitor
        self.listen.spectrogram.reset(msg.stream.rate, msg.start_sample, msg.mel)
        self.listen.meter.reset()
        self.banner.clear("capture", "devices")
        wait = "" if self.ready else (" — nothing can be identified until the problem above is solved"
                                      if self.core_error else " (the model is still loading)")
        if not self.songs and self.ready:
            wait = " — but your library is empty: drag a folder of music here first"
        self.listen.show_status(f"Listening on {self.source_name}…{wait}", "Listening…",
                                "The first answer comes after about 3 seconds.")
        self.draw_timer.start()

    def _capture_failed(self, msg: m.CaptureFailed) -> None:
        if msg.session != self.session:
            return
        self._stopped_ui()
        self.banner.show_message("error", f"Cannot listen: {msg.message}", "Refresh Inputs", "capture")
        self.listen.show_message("Cannot listen.", "No input", detail=msg.message)

    def _draw(self) -> None:
        stream = self.stream
        if stream is None:
            return
        samples, self.read_pos = stream.ring.since(self.read_pos, limit=int(stream.rate * 2))
        self.listen.feed(samples, stream.rate, self.read_pos)

    def _listen_update(self, msg: m.ListenUpdate) -> None:
        if msg.session != self.session or not self.listening:
            return
        a = msg.answer
        self.show_answer(a, final=msg.kind == "final", heard_s=msg.heard_s)
        self.listen.spectrogram.mark_window(msg.end_sample, msg.window_s, a.tile_starts,
                                            None if a.silent else a.song is not None)
        if msg.kind == "final" and not a.silent:
            if not self.continuous.isChecked():
                self.history.add(entry_from_answer(a, self.source_name))
            elif a.song is not None and a.song.song_id != self.last_song_id:
                # continuous: one entry per song; a doubtful window in the middle of it changes nothing
                self.history.add(entry_from_answer(a, self.source_name))
                self.last_song_id = a.song.song_id
                e = self.history.entries[0]
                self.tray.notify(e.title, f"{e.artist + ' · ' if e.artist else ''}{e.confidence:.0%} sure")
        self.answered.emit(msg)

    def _listen_stopped(self, msg: m.ListenStopped) -> None:
        if msg.session == self.session and self.listening:
            self._draw()
            self._stopped_ui()

    def show_answer(self, a, final: bool, heard_s: float | None = None, source: str = "") -> None:
        self.listen.show_answer(a, final, f"after {heard_s:.1f} s" if heard_s is not None else source)
        self.map_view.show_query(a.fingerprints)

    def _song_named(self, song) -> None:
        """The song in the window title (and so in the task bar), until another is named."""
        self.setWindowTitle(f"{song_line(song.title, song.artist)} — Shazamlet")
        self.tray.set_song(song_line(song.title, song.artist))

    # -- window ---------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    def show_window(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def quit(self) -> None:
        self.quitting = True
        self.close()

    def closeEvent(self, event) -> None:
        if self.listening and self.tray.available and not self.quitting:
            # listening goes on in the tray; its menu stops it, shows the window or quits
            event.ignore()
            self.hide()
            self.tray.notify("Shazamlet keeps listening", "Closed to the tray: its menu stops listening or quits.")
            return
        self.tray.icon.hide()
        self.settings.set_splitter(self.splitter.saveState())
        self.settings.set_tab(self.tabs.currentIndex())
        self.settings.set_geometry(self.saveGeometry())
        self.draw_timer.stop()
        self.hide()  # gone at once, while the workers finish a file being indexed or identified
        self.workers.shutdown()
        self.history.file.close()  # its last write
        super().closeEvent(event)
