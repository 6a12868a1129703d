"""Song metadata: title, artist, album, genre from the file's tags (mutagen), with sane fallbacks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class SongTags:
    title: str
    artist: str = ""
    album: str = ""
    genre: str | None = None


def read_tags(path: Path) -> SongTags:
    """Tags of an audio file; the file name is the title when there is no tag. Never raises."""
    title, artist, album, genre = path.stem, "", "", None
    try:
        import mutagen

        f = mutagen.File(str(path), easy=True)
        tags = getattr(f, "tags", None) or {}
        first = lambda key: (tags.get(key) or [""])[0].strip() if hasattr(tags, "get") else ""  # noqa: E731
        title = first("title") or title
        artist = first("artist") or first("albumartist")
        album = first("album")
        genre = first("genre") or None
    except Exception:
        pass  # unreadable tags are not an error: the audio may still be fine
    return SongTags(title, artist, album, genre)


def genre_from_folder(path: Path, root: Path) -> str | None:
    """Name of the folder directly under `root` that holds `path` (ROOT/Jazz/album/x.flac -> "Jazz");
    a file lying directly in `root` takes root's own name (the GTZAN layout, ROOT = genres/jazz)."""
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        return path.parent.name or None
    return rel.parts[0] if len(rel.parts) > 1 else (root.resolve().name or None)
