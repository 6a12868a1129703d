"""The Shazamlet window: PySide6 + pyqtgraph on top of the headless core.

Threads (SongRec habit: every message between them is declared in `messages.py`):
- the GUI thread draws and pulls new samples from the capture ring on a timer (Friture habit);
- the *core* thread (`core_worker.CoreWorker`) owns the model, the library and every write to it:
  loading, adding, removing, reindexing, and the library map;
- the *listen* thread (`listen_worker.ListenWorker`) opens the input, feeds `shazamlet.listen.Listener`
  and identifies dropped files. Reads of the library from here are serialised with the core thread's
  writes by one lock (`core_worker.CoreState.lock`).
The audio callback only copies into the ring (`shazamlet.audio.capture`).
"""
