"""What the main window does with its library: add, remove and reindex songs in the core thread, show
their progress and the songs that result.

A mixin of `MainWindow` (which owns the panels, the workers and the settings it uses), kept apart so
the main window holds the listening flow and this the library's.
"""

from __future__ import annotations

from shazamlet.gui import messages as m


class LibraryActions:
    """The library flows of the main window (see the module's docstring)."""

    def _older_songs(self, n: int) -> None:
        self.banner.show_message("info", f"{n} songs were added by an earlier version: reindexing them makes "
                                 "them a little easier to recognise through a microphone.", "Reindex Library", "reindex")

    def _set_songs(self, songs) -> None:
        self.songs = songs
        self.palette.set_genres(s.genre for s in songs)
        self.history.refresh_colours()
        self.library.set_songs(songs)
        self.listen.set_empty_library(not songs and not self.indexing)
        self.library_changed.emit(songs)

    def add_paths(self, paths: list[str]) -> None:
        # Before the library is open this waits in the core thread's queue, behind the loading.
        self.indexing = True
        self.listen.set_empty_library(False)
        if not self.listening:
            self.listen.show_message("Learning your music…", "Indexing in the background",
                                     detail="You can keep using the window; progress is in the Library tab.")
        self.library.indexing_started()
        self.tabs.setCurrentWidget(self.library)
        self.workers.add.emit(list(paths), self.library.genre_from_value())

    def remove_paths(self, paths: list[str]) -> None:
        self.workers.remove.emit(list(paths))

    def reindex(self) -> None:
        self.banner.clear("reindex")
        self.indexing = True
        self.library.indexing_started()
        self.tabs.setCurrentWidget(self.library)
        self.workers.reindex.emit()

    def _indexing_progress(self, msg: m.IndexProgress) -> None:
        self.statusBar().showMessage(self.library.indexing_progress(msg))

    def _indexing_finished(self, msg: m.IndexFinished) -> None:
        self.indexing = False
        summary = self.library.indexing_finished(msg)
        if msg.recognizer is not None:
            self.workers.recognizer.emit((msg.recognizer,))
        self._set_songs(msg.songs)
        self.statusBar().showMessage(summary, 10000)
        if not self.listening and msg.job != "remove":
            self.listen.show_message(summary, "Ready", detail="Press Listen (Space) or drop an audio file here.")
        self.indexing_done.emit(msg)
