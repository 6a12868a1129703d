"""The window's menus and what it does with files: identify one, identify a folder of recordings into the
history, choose the library folder or the model file.

A mixin of `MainWindow` (which owns the panels, the workers and the settings it uses), kept apart so
the main window holds the listening flow and this the file flows.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog

from shazamlet.gui import messages as m
from shazamlet.gui import song_actions
from shazamlet.gui.history import entry_from_answer


class FileActions:
    """Menus and file flows of the main window (see the module's docstring)."""

    def _build_menu(self) -> None:
        file = self.menuBar().addMenu("&File")
        for text, slot, key in (("Add &Folder…", self.library._choose_folder, "Ctrl+O"),
                                ("Add F&iles…", self.library._choose_files, None),
                                ("&Identify a File…", self._choose_identify, "Ctrl+I"),
                                ("Identify a Folder of &Recordings…", self._choose_identify_folder, None),
                                ("Export &History…", self.history._choose_export, None),
                                ("&Quit", self.quit, "Ctrl+Q")):
            a = QAction(text, self)
            a.triggered.connect(slot)
            if key:
                a.setShortcut(QKeySequence(key))
            file.addAction(a)
        view = self.menuBar().addMenu("&View")
        self.details_action = QAction("Analysis &Details", self, checkable=True)
        self.details_action.setToolTip("On the spectrogram: the window each answer is based on and its 64x64 tiles")
        self.details_action.setChecked(self.settings.details())
        self.details_action.toggled.connect(self.set_details)
        view.addAction(self.details_action)
        lib = self.menuBar().addMenu("&Library")
        for text, slot in (("Change &Location…", self._choose_library_folder), ("&Reindex All Songs", self.reindex),
                           ("Choose &Model File…", self._choose_model)):
            a = QAction(text, self)
            a.triggered.connect(slot)
            lib.addAction(a)

    def set_details(self, on: bool) -> None:
        self.settings.set_details(on)
        self.listen.spectrogram.set_details(on)

    # -- one file -------------------------------------------------------------------------------
    def identify_file(self, path: str) -> None:
        self.listen.show_message(f"Identifying {Path(path).name}…", "…")
        self.workers.identify.emit(path)

    def _choose_identify(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Identify an audio file")
        if path:
            self.identify_file(path)

    def _file_identified(self, msg: m.FileIdentified) -> None:
        if msg.batch:
            self._batch_file(msg)
        elif msg.answer is None:
            self.listen.show_message("Could not identify the file.", Path(msg.path).name, detail=msg.error or "")
        else:
            self.map_view.clear_query()
            self.show_answer(msg.answer, final=True, source=f"in {Path(msg.path).name}")
            if msg.spectrogram is not None:  # the file's own sound, not the microphone's last seconds
                spec = self.listen.spectrogram
                spec.show_file(msg.spectrogram, msg.frame_seconds, Path(msg.path).name)
                a = msg.answer
                spec.mark_window(int(round(msg.window_s * spec.rate)), msg.window_s, a.tile_starts,
                                 None if a.silent else a.song is not None)
            if not msg.answer.silent:
                self.history.add(entry_from_answer(msg.answer, Path(msg.path).name))
        self.answered.emit(msg)

    # -- a folder of recordings -----------------------------------------------------------------
    def identify_folder(self, folder: str) -> None:
        """Identify every recording under `folder` into the history (the listen thread does the work)."""
        self.batch_count = 0
        self.tabs.setCurrentWidget(self.history)
        self.statusBar().showMessage(f"Identifying the recordings in {folder}…")
        self.workers.identify_folder.emit(folder)

    def _choose_identify_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Identify a folder of recordings")
        if folder:
            self.identify_folder(folder)

    def _batch_file(self, msg: m.FileIdentified) -> None:
        self.batch_count = getattr(self, "batch_count", 0) + 1
        name = Path(msg.path).name
        if msg.answer is not None and not msg.answer.silent:
            self.history.add(entry_from_answer(msg.answer, name))
        self.statusBar().showMessage(f"Identifying recordings: {self.batch_count} done, last {name}")

    def _folder_identified(self, msg: m.FolderIdentified) -> None:
        if msg.error and not msg.csv_path:
            self.banner.show_message("error", f"Identifying {msg.folder} failed: {msg.error}")
        elif msg.total == 0:
            self.banner.show_message("info", f"No audio files in {msg.folder}.")
        elif msg.found == msg.total:
            self.banner.show_message("info", f"All {msg.total} recordings in {msg.folder} were named: see the History.")
        else:
            self.not_found_csv = msg.csv_path
            self.banner.show_message("info", f"{msg.found} of {msg.total} recordings named (see the History); the "
                                     f"{msg.total - msg.found} not found are listed in {msg.csv_path}",
                                     "Open List", "not-found")
        self.statusBar().showMessage(f"Identified {msg.total} recordings, {msg.found} named.", 10000)
        self.folder_identified.emit(msg)

    def _open_not_found(self) -> None:
        if getattr(self, "not_found_csv", ""):
            song_actions.open_url(QUrl.fromLocalFile(self.not_found_csv))

    # -- library and model ----------------------------------------------------------------------
    def _choose_library_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Library location (a folder for Shazamlet's own files)")
        if folder:
            self.settings.set_library_folder(folder)
            self.library_arg = None
            self.load_core()

    def _choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a Shazamlet model", "", "Model (*.pt)")
        if path:
            self.settings.set_model_path(path)
            self.model_arg = None
            self.load_core()
