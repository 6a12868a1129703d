"""The user's music library: SQLite catalog, per-song fingerprints and an ANNOY index."""

from shazamlet.library.catalog import Song
from shazamlet.library.importer import AddProgress, AddReport, collect_audio_files
from shazamlet.library.library import Library, LibraryError, ModelMismatch, default_library_dir

__all__ = ["AddProgress", "AddReport", "Library", "LibraryError", "ModelMismatch", "Song", "collect_audio_files",
           "default_library_dir"]
