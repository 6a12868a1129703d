"""The SQLite catalog: songs, library metadata, and which index files are current.

SQLite gives us atomic commits for free: a song row is committed only after its embeddings file is
on disk, and the current index generation is switched in one transaction after its files were
renamed into place. A crash at any point leaves a consistent catalog.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS songs (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    artist TEXT NOT NULL DEFAULT '',
    album TEXT NOT NULL DEFAULT '',
    genre TEXT,
    duration_s REAL NOT NULL,
    content_hash TEXT NOT NULL,
    file_size INTEGER NOT NULL,
    file_mtime REAL NOT NULL,
    added REAL NOT NULL,
    n_tiles INTEGER NOT NULL,
    emb_file TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS songs_hash ON songs(content_hash);
"""


@dataclass
class Song:
    id: int
    path: str
    title: str
    artist: str
    album: str
    genre: str | None
    duration_s: float
    content_hash: str
    file_size: int
    file_mtime: float
    added: float
    n_tiles: int
    emb_file: str


class Catalog:
    """Thin typed access to the library's SQLite database."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path
        self.db = sqlite3.connect(str(db_path), timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        if self.get_meta("schema_version") is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
            self.set_meta("created", str(time.time()))

    def close(self) -> None:
        self.db.close()

    # -- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def get_json(self, key: str) -> dict | None:
        raw = self.get_meta(key)
        return json.loads(raw) if raw else None

    def set_json(self, key: str, value: dict) -> None:
        self.set_meta(key, json.dumps(value, sort_keys=True))

    # -- songs ------------------------------------------------------------------------------
    def songs(self) -> list[Song]:
        rows = self.db.execute(f"SELECT {_COLS} FROM songs ORDER BY artist, title, path").fetchall()
        return [Song(*r) for r in rows]

    def song(self, song_id: int) -> Song | None:
        row = self.db.execute(f"SELECT {_COLS} FROM songs WHERE id=?", (song_id,)).fetchone()
        return Song(*row) if row else None

    def song_by_path(self, path: str) -> Song | None:
        row = self.db.execute(f"SELECT {_COLS} FROM songs WHERE path=?", (path,)).fetchone()
        return Song(*row) if row else None

    def song_by_hash(self, content_hash: str) -> Song | None:
        row = self.db.execute(f"SELECT {_COLS} FROM songs WHERE content_hash=?", (content_hash,)).fetchone()
        return Song(*row) if row else None

    def upsert_song(self, s: Song) -> int:
        """Insert a song, or replace the row of the same path; returns its id (kept on replace)."""
        with self.db:
            old = self.db.execute("SELECT id FROM songs WHERE path=?", (s.path,)).fetchone()
            values = (s.path, s.title, s.artist, s.album, s.genre, s.duration_s, s.content_hash, s.file_size,
                      s.file_mtime, s.added, s.n_tiles, s.emb_file)
            if old:
                self.db.execute(
                    "UPDATE songs SET path=?, title=?, artist=?, album=?, genre=?, duration_s=?, content_hash=?,"
                    " file_size=?, file_mtime=?, added=?, n_tiles=?, emb_file=? WHERE id=?", values + (old[0],))
                return int(old[0])
            cur = self.db.execute(
                f"INSERT INTO songs({_COLS.replace('id, ', '', 1)}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", values)
            return int(cur.lastrowid)

    def delete_songs(self, ids: list[int]) -> None:
        with self.db:
            self.db.executemany("DELETE FROM songs WHERE id=?", [(i,) for i in ids])

    def genre_of_song(self) -> dict[int, str | None]:
        return {int(i): g for i, g in self.db.execute("SELECT id, genre FROM songs")}

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM songs").fetchone()[0])


_COLS = ("id, path, title, artist, album, genre, duration_s, content_hash, file_size, file_mtime, added, "
         "n_tiles, emb_file")
