"""One colour per genre, the same in every view (map, genre votes, history, library).

The window owns one `GenrePalette`, set from the library's genres whenever the library changes; each
view asks it for a genre's colour instead of choosing its own, so "Rock" is the same green on the map,
in the vote chart and in the tables. Genres the library does not use (the model's own styles, voted
for a song outside the library) get a colour from their name, stable between runs.
"""

from __future__ import annotations

import zlib
from typing import Iterable

from shazamlet.gui import theme


class GenrePalette:
    """Maps genre names to colours: the library's genres, sorted, take the palette in order (so two of
    them never share a colour while there are at most 12), others a colour from their name's hash."""

    def __init__(self, genres: Iterable[str] = ()) -> None:
        self.known: dict[str, str] = {}
        self.set_genres(genres)

    def set_genres(self, genres: Iterable[str]) -> None:
        names = sorted({g for g in genres if g and g != "unknown"}, key=str.lower)
        self.known = {g: theme.GENRES[i % len(theme.GENRES)] for i, g in enumerate(names)}

    def colour(self, genre: str | None) -> str:
        if not genre or genre == "unknown":
            return theme.MUTED  # grey, not a colour another genre could be taken for
        known = self.known.get(genre)
        if known is not None:
            return known
        return theme.GENRES[zlib.crc32(genre.lower().encode("utf-8")) % len(theme.GENRES)]
