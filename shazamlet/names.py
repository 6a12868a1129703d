"""How the app names a song and a place in it, in the window and on the command line: title and artist
as a person would write them, times as a player shows them.

Songs added before file names were read (`library.tags.names_from_file_name`) have their file's raw
name as title and no artist; they are read the same way when shown, so an existing library looks
right without being added again.
"""

from __future__ import annotations

from pathlib import Path

from shazamlet.library.tags import names_from_file_name


def display_names(title: str, artist: str, path: str = "") -> tuple[str, str]:
    """(title, artist) to show; the artist is "" when nobody knows it (never "unknown artist")."""
    if not artist and path and title == Path(path).stem:
        return names_from_file_name(title)
    return title, artist


def clock(seconds: float) -> str:
    """A place in a song or a song's length as a player shows it: "3:07"."""
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}"


def song_line(title: str, artist: str, path: str = "") -> str:
    """"Artist – Title" (what people paste into a message or a search), or the title alone."""
    title, artist = display_names(title, artist, path)
    return f"{artist} \u2013 {title}" if artist else title
