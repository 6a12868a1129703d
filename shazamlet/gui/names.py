"""How the window names a song: title and artist as a person would write them.

Songs added before file names were read (`library.tags.names_from_file_name`) have their file's raw
name as title and no artist; the window reads the name the same way when it shows them, so an
existing library looks right without being added again.
"""

from __future__ import annotations

from pathlib import Path

from shazamlet.library.tags import names_from_file_name


def display_names(title: str, artist: str, path: str = "") -> tuple[str, str]:
    """(title, artist) to show; the artist is "" when nobody knows it (never "unknown artist")."""
    if not artist and path and title == Path(path).stem:
        return names_from_file_name(title)
    return title, artist


def song_line(title: str, artist: str, path: str = "") -> str:
    """"Artist – Title" (what people paste into a message or a search), or the title alone."""
    title, artist = display_names(title, artist, path)
    return f"{artist} \u2013 {title}" if artist else title
