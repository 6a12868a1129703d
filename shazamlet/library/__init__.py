"""The user's music library: SQLite catalog, per-song fingerprints and an ANNOY index."""

from shazamlet.library.catalog import Song
from shazamlet.library.library import (AddProgress, AddReport, Library, LibraryError, ModelMismatch,
                                       collect_audio_files, default_library_dir)

__all__ = ["AddProgress", "AddReport", "Library", "LibraryError", "ModelMismatch", "Song", "collect_audio_files",
           "default_library_dir"]
