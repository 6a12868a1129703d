"""The window's two worker threads: the core (model, library, indexing) and listening (capture, answers).

This is where they are made, where the window's requests reach them and where they are shut down in
order; what the window does with their answers stays in `main_window.py`. Requests are signals of this
object, which lives on the GUI thread, connected to slots of workers moved to their own threads, so
each one is queued and emitting never waits.
"""

from __future__ import annotations

from PySide6.QtCore import QMetaObject, QObject, Qt, QThread, Signal

from shazamlet.gui.core_worker import CoreState, CoreWorker
from shazamlet.gui.listen_worker import ListenWorker
from shazamlet.gui.sources import DeviceLister, SourceLister, StreamFactory


class Workers(QObject):
    # requests to the workers (queued: they run in the workers' threads)
    # (PySide6 mishandles None passed through an `object` argument of a queued signal: a refcount
    # error that crashes the interpreter. Nothing below ever carries None; "" and -1 mean "default".)
    load = Signal(str, str)  # library folder, model file
    add = Signal(object, str)  # paths, where genres come from
    remove = Signal(object)  # paths
    reindex = Signal()
    start = Signal(int, str, bool, int)  # device, PulseAudio source, continuous, session
    stop = Signal(int)  # session
    identify = Signal(str)  # path
    identify_folder = Signal(str)  # a folder of recordings
    recognizer = Signal(object)  # (Recognizer,)
    continuous = Signal(bool)
    list_inputs = Signal()

    def __init__(self, open_stream: StreamFactory, list_devices: DeviceLister, list_sources: SourceLister,
                 parent: QObject) -> None:
        super().__init__(parent)
        self.state = CoreState()
        self.core_thread = QThread(self)
        self.core_thread.setObjectName("core")
        self.core = CoreWorker(self.state)
        self.core.moveToThread(self.core_thread)
        self.load.connect(self.core.load)
        self.add.connect(self.core.add)
        self.remove.connect(self.core.remove)
        self.reindex.connect(self.core.reindex)

        self.listen_thread = QThread(self)
        self.listen_thread.setObjectName("listen")
        self.listen = ListenWorker(open_stream, list_devices, list_sources, self.state.lock)
        self.listen.moveToThread(self.listen_thread)
        self.start.connect(self.listen.start)
        self.stop.connect(self.listen.stop)
        self.identify.connect(self.listen.identify_file)
        self.identify_folder.connect(self.listen.identify_folder)
        self.recognizer.connect(self.listen.set_recognizer)
        self.continuous.connect(self.listen.set_continuous)
        self.list_inputs.connect(self.listen.list_inputs)

    def run(self) -> None:
        """Start both threads (after the window has connected to the workers' answers)."""
        self.core_thread.start()
        self.listen_thread.start()

    def cancel(self) -> None:
        """Ask a running indexing job to stop at its next file."""
        self.state.cancel.set()

    def shutdown(self) -> None:
        """Stop both threads; blocking calls into the workers' own threads, where the stream and the
        library are closed."""
        self.cancel()
        QMetaObject.invokeMethod(self.listen, "shutdown", Qt.BlockingQueuedConnection)
        self.listen_thread.quit()
        self.listen_thread.wait(5000)
        QMetaObject.invokeMethod(self.core, "close", Qt.BlockingQueuedConnection)
        self.core_thread.quit()
        self.core_thread.wait(5000)
