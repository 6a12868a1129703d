"""The listen thread: opens the input, feeds the core's `Listener`, identifies dropped files.

Capture is the sounddevice callback writing into a ring; this thread pulls what is new on a timer
and hands it to `Listener.push`, which answers when a window is due. While an answer is being
computed the timer waits, and the next pull takes everything that arrived meanwhile, so stale audio
never queues up (SongRec habit). Every attempt carries a session number: the window ignores
messages from an attempt it has already stopped.
"""

from __future__ import annotations

import os
import threading

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from shazamlet.audio.capture import CaptureError
from shazamlet.gui.messages import (CaptureFailed, CaptureStarted, FileIdentified, FolderIdentified, InputsListed,
                                    ListenStopped, ListenUpdate)
from shazamlet.gui.sources import DeviceLister, SourceLister, StreamFactory

PULL_MS = 100


class ListenWorker(QObject):
    started = Signal(object)  # CaptureStarted
    failed = Signal(object)  # CaptureFailed
    update = Signal(object)  # ListenUpdate
    stopped = Signal(object)  # ListenStopped
    file_done = Signal(object)  # FileIdentified
    folder_done = Signal(object)  # FolderIdentified
    inputs_listed = Signal(object)  # InputsListed

    def __init__(self, open_stream: StreamFactory, list_devices: DeviceLister, list_sources: SourceLister,
                 lock: threading.RLock) -> None:
        super().__init__()
        self.open_stream, self.list_devices, self.list_sources = open_stream, list_devices, list_sources
        self.lock = lock
        self.recognizer = None
        self.stream = None
        self.listener = None
        self.session = 0
        self.continuous = False
        self.position = 0
        self.timer = QTimer(self)  # moves to the worker's thread with its parent
        self.timer.setInterval(PULL_MS)
        self.timer.timeout.connect(self._pull)
        self.batch: list[str] = []  # a folder's recordings still to identify
        self.batch_folder = ""
        self.batch_rows: list[list[str]] = []
        self.batch_total = 0

    @Slot(object)
    def set_recognizer(self, holder: tuple) -> None:
        """`(recognizer,)` or `(None,)` (never a bare None through a queued signal)."""
        self.recognizer = holder[0]
        self.listener = None  # made again for the new recognizer on the next pull

    @Slot(bool)
    def set_continuous(self, on: bool) -> None:
        self.continuous = on

    @Slot(int, str, bool, int)
    def start(self, device: int, pulse_source: str, continuous: bool, session: int) -> None:
        """Open input `device` (a sounddevice index, -1 = the system default) and listen.

        `pulse_source` names a PulseAudio source for the ALSA "pulse" device: libpulse reads
        PULSE_SOURCE when a stream opens, so setting it just before opening picks the source.
        """
        self._close_stream()
        if pulse_source:
            os.environ["PULSE_SOURCE"] = pulse_source
        else:
            os.environ.pop("PULSE_SOURCE", None)
        self.session, self.continuous = session, continuous
        try:
            stream = self.open_stream(None if device < 0 else device)
        except CaptureError as exc:
            self.failed.emit(CaptureFailed(session, str(exc)))
            return
        except Exception as exc:  # a driver error must not end the thread
            self.failed.emit(CaptureFailed(session, f"cannot open the input: {str(exc).splitlines()[0]}"))
            return
        self.stream = stream
        from shazamlet.config import FeatureConfig
        from shazamlet.gui.spectrogram import StreamingMel

        features = self.recognizer.features if self.recognizer is not None else FeatureConfig()
        # A new stream: everything its ring holds was heard in this attempt, from the first sample
        # (not from wherever the capture thread had got to by now), so the window starts with the sound.
        self.position = 0
        self.listener = None
        self.started.emit(CaptureStarted(session, stream, self.position, StreamingMel(features, stream.rate)))
        self.timer.start()

    @Slot()
    def list_inputs(self) -> None:
        """The input devices and PulseAudio sources, listed here because PortAudio and `pactl` can take
        seconds; PortAudio rescans (a microphone plugged in since) only while no stream is open."""
        devices = self.list_devices(self.stream is None)
        self.inputs_listed.emit(InputsListed(devices, self.list_sources() if devices else []))

    @Slot(int)
    def stop(self, session: int) -> None:
        if session == self.session and self.stream is not None:
            self._close_stream()
            self.stopped.emit(ListenStopped(session))

    @Slot()
    def shutdown(self) -> None:
        self._close_stream()

    def _close_stream(self) -> None:
        self.timer.stop()
        if self.stream is not None:
            try:
                self.stream.stop()
            except Exception:
                pass
            self.stream = None
        self.listener = None

    def _pull(self) -> None:
        stream = self.stream
        if stream is None:
            return
        samples, self.position = stream.ring.since(self.position)
        if self.recognizer is None or len(samples) == 0:
            return  # the model is still loading: the window already shows the spectrogram
        if self.listener is None:
            from shazamlet.listen import Listener

            self.listener = Listener(self.recognizer, stream.rate)
        try:
            with self.lock:
                event = self.listener.push(samples)
        except Exception as exc:
            self._close_stream()
            self.failed.emit(CaptureFailed(self.session, f"identification failed: {str(exc).splitlines()[0]}"))
            self.stopped.emit(ListenStopped(self.session))
            return
        if event is None:
            return
        self.update.emit(ListenUpdate(self.session, event.kind, event.answer, event.heard_s, event.window_s,
                                      self.position, stream.rate))
        if event.kind == "final":
            if self.continuous:
                self.listener.reset()
            else:
                self._close_stream()
                self.stopped.emit(ListenStopped(self.session))

    def _identify(self, path: str) -> FileIdentified:
        from shazamlet.audio.decode import AudioError

        if self.recognizer is None:
            return FileIdentified(path, None, "the model and library are not ready yet")
        try:
            with self.lock:
                return FileIdentified(path, self.recognizer.identify_file(path))
        except AudioError as exc:
            return FileIdentified(path, None, str(exc))
        except Exception as exc:
            return FileIdentified(path, None, f"{path}: {str(exc).splitlines()[0]}")

    @Slot(str)
    def identify_file(self, path: str) -> None:
        msg = self._identify(path)
        self.file_done.emit(self._with_spectrogram(msg) if msg.answer is not None else msg)

    @Slot(str)
    def identify_folder(self, folder: str) -> None:
        """Identify every recording under `folder` into the history, one file per turn of the event loop."""
        from shazamlet.gui.folder_batch import recordings

        try:
            files = recordings(folder)
        except OSError as exc:
            self.folder_done.emit(FolderIdentified(folder, 0, 0, error=str(exc).splitlines()[0]))
            return
        self.batch, self.batch_folder, self.batch_rows, self.batch_total = files, folder, [], len(files)
        QTimer.singleShot(0, self._batch_next)

    def _batch_next(self) -> None:
        from shazamlet.gui.folder_batch import not_found_row, write_not_found

        if self.batch:
            msg = self._identify(self.batch.pop(0))
            msg.batch = self.batch_folder
            row = not_found_row(msg.path, msg.answer, msg.error)
            if row is not None:
                self.batch_rows.append(row)
            self.file_done.emit(msg)
            QTimer.singleShot(0, self._batch_next)
            return
        done = FolderIdentified(self.batch_folder, self.batch_total, self.batch_total - len(self.batch_rows))
        if self.batch_rows:
            try:
                done.csv_path = write_not_found(self.batch_folder, self.batch_rows)
            except OSError as exc:
                done.error = str(exc)
        self.folder_done.emit(done)

    def _with_spectrogram(self, msg: FileIdentified) -> FileIdentified:
        """Add the spectrogram of the file's first window (what `identify_file` hears first), so the window
        shows the file that was identified rather than the microphone's last seconds."""
        from shazamlet.audio.decode import load_audio
        from shazamlet.gui.spectrogram import StreamingMel
        from shazamlet.recognition import QueryConfig

        features = self.recognizer.features
        try:
            wave = load_audio(msg.path, features.sample_rate, max_seconds=QueryConfig().file_window_s)
        except Exception:
            return msg  # it was identified: a picture that cannot be made is no error
        mel = StreamingMel(features, features.sample_rate)
        msg.spectrogram = mel.push(wave)
        msg.frame_seconds = mel.frame_seconds
        msg.window_s = len(wave) / features.sample_rate
        return msg
