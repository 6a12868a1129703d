"""What a library can refuse to do, each a one-line message for the user."""

from __future__ import annotations


class LibraryError(Exception):
    """A library that cannot be used as asked; one line for the user."""


class ModelMismatch(LibraryError):
    """The library's fingerprints come from another model than the one loaded."""


class LibraryDamaged(LibraryError):
    """The library's catalog cannot be read; the message says what to do."""


class LibraryReadOnly(LibraryError):
    """A write asked of a library this process may only read (a read-only mount, a shared folder)."""


class DiskFull(LibraryError):
    """The disk (or the user's quota) has no room for a write; nothing already stored was lost."""
