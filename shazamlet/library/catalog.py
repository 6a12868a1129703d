"""The SQLite catalog: songs, library metadata, and which index files are current.

SQLite gives us atomic commits for free: a song row is committed only after its embeddings file is
on disk, and the current index generation is switched in one transaction after its files were
renamed into place. A crash at any point leaves a consistent catalog.

A file name that is not valid UTF-8 (Python decodes it to lone surrogates, which SQLite refuses) is
stored as its file-system bytes (a BLOB in the same column) and read back to the same str, so the
song round-trips; its title and genre, shown to people, carry U+FFFD where the name was not UTF-8.
A catalog that SQLite cannot read raises `CatalogDamaged` on opening (a quick check of every page).
A catalog on a read-only mount, or in a folder the user may not write, is opened read-only: reading
works, and the library says so before any write.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
import urllib.parse
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


class CatalogDamaged(Exception):
    """The catalog file is not a readable SQLite database (truncated, overwritten, a damaged page)."""


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

    def __init__(self, db_path: Path, read_only: bool = False) -> None:
        self.path = db_path
        self.read_only = read_only
        self.db = _connect(db_path, read_only)
        try:
            self._check_readable()
            if not read_only:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.executescript(SCHEMA)
                if self.get_meta("schema_version") is None:  # created now (or found empty)
                    self.set_meta("schema_version", str(SCHEMA_VERSION))
                    self.set_meta("created", str(time.time()))
        except sqlite3.DatabaseError as exc:
            self.db.close()
            if not _is_damage(exc):
                raise
            raise CatalogDamaged(str(exc)) from None
        except CatalogDamaged:
            self.db.close()
            raise

    def _check_readable(self) -> None:
        """Raise CatalogDamaged unless SQLite's quick check of every page passes (~1 ms per MB): a damaged
        page must be found here, not as a traceback halfway through some later command."""
        problems = [row[0] for row in self.db.execute("PRAGMA quick_check(1)")]
        if problems != ["ok"]:  # e.g. "*** in database main ***\nPage 4: btreeInitPage() returns error code 11"
            detail = problems[0].strip().splitlines()[-1] if problems else "no answer"
            raise CatalogDamaged(f"database disk image is malformed: {detail}")

    def close(self) -> None:
        self.db.close()

    # -- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.set_many({key: value})

    def set_many(self, meta: dict[str, str]) -> None:
        """Several meta values in one transaction."""
        with self.db:
            self.db.executemany(_SET_META, list(meta.items()))

    def get_json(self, key: str) -> dict | None:
        raw = self.get_meta(key)
        return json.loads(raw) if raw else None

    def set_json(self, key: str, value: dict) -> None:
        self.set_meta(key, json.dumps(value, sort_keys=True))

    # -- songs ------------------------------------------------------------------------------
    def songs(self) -> list[Song]:
        rows = self.db.execute(f"SELECT {_COLS} FROM songs ORDER BY artist, title, path").fetchall()
        return [_song(r) for r in rows]

    def song(self, song_id: int) -> Song | None:
        row = self.db.execute(f"SELECT {_COLS} FROM songs WHERE id=?", (song_id,)).fetchone()
        return _song(row) if row else None

    def song_by_path(self, path: str) -> Song | None:
        row = self.db.execute(f"SELECT {_COLS} FROM songs WHERE path=?", (_path_to_db(path),)).fetchone()
        return _song(row) if row else None

    def song_by_hash(self, content_hash: str) -> Song | None:
        row = self.db.execute(f"SELECT {_COLS} FROM songs WHERE content_hash=?", (content_hash,)).fetchone()
        return _song(row) if row else None

    def upsert_song(self, s: Song) -> int:
        """Insert a song, or replace the row of the same path; returns its id (kept on replace)."""
        with self.db:
            old = self.db.execute("SELECT id FROM songs WHERE path=?", (_path_to_db(s.path),)).fetchone()
            if old:
                self.db.execute(f"UPDATE songs SET {_SET_COLS} WHERE id=?", _values(s) + (old[0],))
                return int(old[0])
            cur = self.db.execute(
                f"INSERT INTO songs({_COLS.replace('id, ', '', 1)}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", _values(s))
            return int(cur.lastrowid)

    def update_songs_and_meta(self, songs: list[Song], meta: dict[str, str]) -> None:
        """Rewrite these songs' rows (by id) and these meta values in one transaction: a reindex to
        another model switches every song's fingerprint file, and the model, at once."""
        with self.db:
            self.db.executemany(f"UPDATE songs SET {_SET_COLS} WHERE id=?", [_values(s) + (s.id,) for s in songs])
            self.db.executemany(_SET_META, list(meta.items()))

    def delete_songs(self, ids: list[int]) -> None:
        with self.db:
            self.db.executemany("DELETE FROM songs WHERE id=?", [(i,) for i in ids])

    def genre_of_song(self) -> dict[int, str | None]:
        return {int(i): g for i, g in self.db.execute("SELECT id, genre FROM songs")}

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM songs").fetchone()[0])


_COLS = ("id, path, title, artist, album, genre, duration_s, content_hash, file_size, file_mtime, added, "
         "n_tiles, emb_file")
_SET_COLS = ("path=?, title=?, artist=?, album=?, genre=?, duration_s=?, content_hash=?, file_size=?, file_mtime=?,"
             " added=?, n_tiles=?, emb_file=?")
_SET_META = "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)"
_SURROGATES = re.compile("[\ud800-\udfff]")


def _connect(db_path: Path, read_only: bool) -> sqlite3.Connection:
    """A connection to the catalog. Read-only: `mode=ro`, or where SQLite cannot make its WAL index
    beside the file (a folder nobody may write), `immutable=1` (no locks, no WAL: a read-only mount
    cannot change under us)."""
    if not read_only:
        return sqlite3.connect(str(db_path), timeout=30, check_same_thread=False)
    uri = "file:" + urllib.parse.quote(str(db_path.resolve()))
    db = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=30, check_same_thread=False)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        db.close()
        return sqlite3.connect(uri + "?immutable=1", uri=True, timeout=30, check_same_thread=False)


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    """Whether SQLite says the file is damaged (not, say, locked by another process)."""
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) \
        or "malformed" in str(exc)


def _path_to_db(path: str) -> str | bytes:
    """A path as SQLite can keep it: the text itself when it is valid UTF-8, else its file-system bytes."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


def displayable(text: str | None) -> str | None:
    """`text` with the lone surrogates of a non-UTF-8 file name shown as U+FFFD (a title made from it)."""
    return None if text is None else _SURROGATES.sub("\ufffd", text)


def _values(s: Song) -> tuple:
    """A song's columns after the id, as SQLite stores them."""
    return (_path_to_db(s.path), displayable(s.title), displayable(s.artist), displayable(s.album),
            displayable(s.genre), s.duration_s, s.content_hash, s.file_size, s.file_mtime, s.added, s.n_tiles,
            s.emb_file)


def _song(row: tuple) -> Song:
    """A row as a Song; a path stored as bytes (not UTF-8) comes back as the str Python gave for it."""
    path = row[1]
    return Song(row[0], os.fsdecode(path) if isinstance(path, bytes) else path, *row[2:])
