"""The user's music library: SQLite catalog, per-song fingerprints and an ANNOY index."""

from shazamlet.library.catalog import Song
from shazamlet.library.importer import AddProgress, AddReport, collect_audio_files
from shazamlet.library.errors import DiskFull, LibraryError, LibraryReadOnly, ModelMismatch
from shazamlet.library.library import Library, default_library_dir

__all__ = ["AddProgress", "AddReport", "DiskFull", "Library", "LibraryError", "LibraryReadOnly", "ModelMismatch", "Song",
           "collect_audio_files", "default_library_dir"]
