"""The ANNOY index over all library tiles, built atomically and verified on load.

An index generation is two files: `index-<gen>.ann` (ANNOY, angular) and `index-<gen>.map.npy`
(song id and start frame of each ANNOY item). A new generation is written under temp names, renamed
into place, and only then made current in the catalog, so the previous index answers until the
moment the new one is complete. The catalog records each file's size and sha256: ANNOY memory-maps
whatever it is given, so a truncated or altered file must be caught before it is loaded.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from annoy import AnnoyIndex

from shazamlet.matcher import Neighbours


class IndexCorrupt(Exception):
    """The index files on disk do not match what the catalog recorded."""


@dataclass
class IndexRecord:
    """What the catalog stores about the current index generation."""

    generation: int
    dim: int
    n_items: int
    n_trees: int
    ann_file: str
    ann_size: int
    ann_sha256: str
    map_file: str
    map_size: int
    map_sha256: str
    song_ids: list[int]  # songs covered by this generation


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def build_index(
    folder: Path,
    generation: int,
    dim: int,
    chunks: Iterable[tuple[int, np.ndarray, np.ndarray]],
    n_trees: int,
    progress: Callable[[int], None] | None = None,
) -> IndexRecord:
    """Write a new generation from `(song_id, fingerprints, start_frames)` chunks; returns its record.

    Nothing existing is touched: the caller makes the record current, then removes old files.
    """
    ann = AnnoyIndex(dim, "angular")
    fd, tmp_ann = tempfile.mkstemp(prefix=".tmp-index-", suffix=".ann", dir=folder)
    os.close(fd)
    ann.on_disk_build(tmp_ann)
    songs, starts, song_ids = [], [], []
    item = 0
    try:
        for song_id, fps, st in chunks:
            for v in fps.astype(np.float32):
                ann.add_item(item, v)
                item += 1
            songs.append(np.full(len(st), song_id, np.int32))
            starts.append(st.astype(np.int32))
            song_ids.append(int(song_id))
            if progress:
                progress(1)
        ann.build(n_trees if item else 1, n_jobs=-1)
        ann.unload()
        mapping = np.stack([np.concatenate(songs) if songs else np.zeros(0, np.int32),
                            np.concatenate(starts) if starts else np.zeros(0, np.int32)])
        fd, tmp_map = tempfile.mkstemp(prefix=".tmp-index-", suffix=".map.npy", dir=folder)
        with os.fdopen(fd, "wb") as f:
            np.save(f, mapping, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        ann_file, map_file = f"index-{generation}.ann", f"index-{generation}.map.npy"
        os.replace(tmp_ann, folder / ann_file)
        os.replace(tmp_map, folder / map_file)
    finally:
        for t in (tmp_ann,):
            if os.path.exists(t):
                os.unlink(t)
    return IndexRecord(
        generation, dim, item, n_trees, ann_file, (folder / ann_file).stat().st_size, sha256_of(folder / ann_file),
        map_file, (folder / map_file).stat().st_size, sha256_of(folder / map_file), song_ids,
    )


class LibraryIndex:
    """A loaded (memory-mapped) index generation, verified against its record."""

    def __init__(self, folder: Path, record: IndexRecord, verify: bool = True) -> None:
        self.record = record
        ann_path, map_path = folder / record.ann_file, folder / record.map_file
        for path, size, digest in ((ann_path, record.ann_size, record.ann_sha256),
                                   (map_path, record.map_size, record.map_sha256)):
            if not path.exists():
                raise IndexCorrupt(f"{path.name} is missing")
            if path.stat().st_size != size:
                raise IndexCorrupt(f"{path.name} has {path.stat().st_size} bytes, expected {size}")
            if verify and sha256_of(path) != digest:
                raise IndexCorrupt(f"{path.name} does not match its recorded checksum")
        self.map = np.load(map_path, allow_pickle=False)
        self.ann = AnnoyIndex(record.dim, "angular")
        if record.n_items:
            self.ann.load(str(ann_path))  # memory-mapped

    def __len__(self) -> int:
        return self.record.n_items

    def query(self, fingerprints: np.ndarray, query_starts: np.ndarray, k: int, search_k: int = -1) -> Neighbours:
        q = len(fingerprints)
        ids = np.full((q, k), -1, np.int64)
        starts = np.zeros((q, k), np.int64)
        sims = np.zeros((q, k), np.float32)
        if self.record.n_items:
            for i, v in enumerate(fingerprints):
                items, dist = self.ann.get_nns_by_vector(v.astype(np.float32), k, search_k=search_k,
                                                         include_distances=True)
                n = len(items)
                ids[i, :n] = self.map[0, items]
                starts[i, :n] = self.map[1, items]
                sims[i, :n] = 1.0 - np.square(dist) / 2.0  # angular distance -> cosine
        return Neighbours(ids, starts, sims, np.asarray(query_starts, np.int64))

    def unload(self) -> None:
        self.ann.unload()
