"""Identifying a folder of recordings: which files, and the CSV of those that were not found.

The listen worker identifies the files one per turn of its event loop (so Listen and Stop still get
through between them); this module holds what does not need Qt: listing the files and writing the list
of the ones that named no song, next to them or, when that folder cannot be written, in the user's
data folder.
"""

from __future__ import annotations

import csv
from pathlib import Path

from shazamlet.config import data_dir
from shazamlet.names import song_line

NOT_FOUND_CSV = "shazamlet-not-found.csv"
FIELDS = ("file", "reason", "closest", "confidence", "genre")


def recordings(folder: str) -> list[str]:
    """Every audio file under `folder` (recursive), sorted; the list we write ourselves is no recording."""
    from shazamlet.audio.decode import is_audio_file

    root = Path(folder)
    return [str(p) for p in sorted(root.rglob("*")) if p.is_file() and is_audio_file(p)]


def not_found_row(path: str, answer, error: str | None) -> list[str] | None:
    """The CSV row of a file that named no song, None for one that did."""
    if answer is not None and answer.song is not None:
        return None
    if answer is None:
        return [path, f"could not be read: {error or 'unknown error'}", "", "", ""]
    if answer.silent:
        return [path, "silence", "", "", ""]
    best = answer.candidates[0] if answer.candidates else None
    return [path, "not in your library", song_line(best.title, best.artist, best.path) if best else "",
            f"{best.score:.3f}" if best else "", answer.genre.label if answer.genre else ""]


def write_not_found(folder: str, rows: list[list[str]]) -> str:
    """Write the rows into `folder`/NOT_FOUND_CSV, or the data folder if that fails; returns the path."""
    for target in (Path(folder) / NOT_FOUND_CSV,
                   data_dir() / NOT_FOUND_CSV):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(FIELDS)
                w.writerows(rows)
            return str(target)
        except OSError:
            continue
    raise OSError(f"could not write {NOT_FOUND_CSV}")
