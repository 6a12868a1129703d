"""Song metadata: title, artist, album, genre from the file's tags (mutagen), with sane fallbacks."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

# "Artist - Title", also with an en or em dash; spaces around it keep "Jay-Z" or "Hi-Fi" whole
_SPACED_DASH = re.compile(r"\s+[-\u2013\u2014]\s+")
_TRACK_NUMBER = re.compile(r"^(?:\d{1,3}|[A-D]\d{1,2})(?:\s*[-.)_]\s*|\s+)(?=\D)")  # "01 - ", "07. ", "A2 "
_LETTER_DIGIT = re.compile(r"(?<=[A-Za-z])(?=\d)")  # "Battlescape01" -> "Battlescape 01"


@dataclass
class SongTags:
    title: str
    artist: str = ""
    album: str = ""
    genre: str | None = None


def tidy_name(text: str) -> str:
    """A file name's words as a person would write them: underscores and runs of spaces made single
    spaces, a number glued to a word set apart ("Battlescape01" -> "Battlescape 01")."""
    text = re.sub(r"[_\s]+", " ", text).strip(" .-")
    return _LETTER_DIGIT.sub(" ", text)


def names_from_file_name(stem: str) -> tuple[str, str]:
    """(title, artist) read from an untagged file's name, artist "" when it names none.

    Most untagged files are named "Artist - Title" (often after a track number), so a dash with spaces
    around it splits them; a single dash with no spaces in the name ("Crystan-Battlescape01") does too
    when both sides are words of three letters or more, so "Jay-Z" or "Hi-Fi" stay whole.
    """
    name = _TRACK_NUMBER.sub("", stem.replace("_", " ").strip()) or stem
    parts = _SPACED_DASH.split(name, maxsplit=1)
    if len(parts) == 1 and " " not in name and name.count("-") == 1:
        left, right = name.split("-")
        if len(left) >= 3 and len(right) >= 3 and left[0].isalpha() and right[0].isalpha():
            parts = [left, right]
    if len(parts) == 2 and tidy_name(parts[0]) and tidy_name(parts[1]):
        return tidy_name(parts[1]), tidy_name(parts[0])
    return tidy_name(name) or stem, ""


def read_tags(path: Path) -> SongTags:
    """Tags of an audio file; without them, title and artist come from the file name
    (`names_from_file_name`). Never raises."""
    title, artist = names_from_file_name(path.stem)
    album, genre = "", None
    named_artist = artist
    try:
        import mutagen

        f = mutagen.File(str(path), easy=True)
        tags = getattr(f, "tags", None) or {}
        first = lambda key: (tags.get(key) or [""])[0].strip() if hasattr(tags, "get") else ""  # noqa: E731
        tagged_title = first("title")
        title = tagged_title or title
        # a file name's artist only goes with the file name's title
        artist = first("artist") or first("albumartist") or ("" if tagged_title else named_artist)
        album = first("album")
        genre = first("genre") or None
    except Exception:
        pass  # unreadable tags are not an error: the audio may still be fine
    return SongTags(title, artist, album, genre)


def genre_from_folder(path: Path, root: Path) -> str | None:
    """Name of the folder directly under `root` that holds `path` (ROOT/Jazz/album/x.flac -> "Jazz");
    a file lying directly in `root` takes root's own name (the GTZAN layout, ROOT = genres/jazz)."""
    # as found under root first (a linked folder `ROOT/Jazz -> /nas/jazz` names its songs "Jazz"), then resolved
    for p, r in ((Path(os.path.abspath(path)), Path(os.path.abspath(root))), (path.resolve(), root.resolve())):
        try:
            rel = p.relative_to(r)
        except ValueError:
            continue
        return rel.parts[0] if len(rel.parts) > 1 else (r.name or None)
    return path.parent.name or None
