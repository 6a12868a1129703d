"""What a user can do with a named song, from the answer card and from the history: open its folder,
play it, copy "Artist – Title".

Opening goes through `QDesktopServices` (the desktop's file manager and player: no player of our own);
`open_url` is looked up at call time so tests can see what would have been opened.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication

from shazamlet.names import song_line


def open_url(url: QUrl) -> bool:
    return QDesktopServices.openUrl(url)


def open_folder(path: str) -> bool:
    """Open the folder holding the song's file in the file manager."""
    return bool(path) and open_url(QUrl.fromLocalFile(str(Path(path).parent)))


def play(path: str) -> bool:
    """Open the song's file with the desktop's player."""
    return bool(path) and open_url(QUrl.fromLocalFile(path))


def copy_name(title: str, artist: str, path: str = "") -> str:
    """Put "Artist – Title" on the clipboard; returns what was copied."""
    text = song_line(title, artist, path)
    QGuiApplication.clipboard().setText(text)
    return text
