"""Synthetic libraries at the embeddings level: thousands of songs without decoding or embedding.

A library of 1 000 real songs takes hours to embed on two CPU cores, and the index, the catalog and
the voting only ever see fingerprints. So songs are made directly as fingerprints with the shape of
real ones: unit vectors that drift slowly along a song (consecutive tiles overlap by 80 %, so their
fingerprints are close: an AR(1) walk around a per-song centre) and are unrelated across songs.
They are written through the product's own code: `EmbeddingStore.write` (fp16 .npz per song),
`Catalog.upsert_song` (a row per song) and `Library.rebuild_index` (ANNOY build, sha256, rename).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shazamlet.config import FeatureConfig, IndexConfig
from shazamlet.features import tile_starts

GENRES = ["techno", "ballad", "rock", "chiptune", "jazz", "metal", "folk", "classical"]
RHO = 0.9  # tile-to-tile correlation of the walk (cosine of neighbours ~0.95)
CENTRE = 1.0  # weight of the song centre against the walk


def tiles_per_song(seconds: float, hop_frames: int, cfg: FeatureConfig = FeatureConfig()) -> int:
    n_frames = (int(seconds * cfg.sample_rate) - cfg.n_fft) // cfg.hop_length + 1
    return len(tile_starts(n_frames, cfg.tile_frames, hop_frames))


def song_fingerprints(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """`(n, dim)` float32 unit vectors: a per-song centre plus a slow AR(1) walk."""
    eps = rng.standard_normal((n, dim)).astype(np.float32)
    z = np.empty_like(eps)
    z[0] = eps[0]
    a, b = RHO, np.sqrt(1 - RHO**2)
    for t in range(1, n):
        z[t] = a * z[t - 1] + b * eps[t]
    v = CENTRE * rng.standard_normal(dim).astype(np.float32) + z
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def query_from(fps: np.ndarray, t: int, rng: np.random.Generator, noise: float = 0.5) -> np.ndarray:
    """A query tile that falls between library tiles t and t+1, plus noise (room, microphone)."""
    v = fps[t] + fps[min(t + 1, len(fps) - 1)]
    v = v / np.linalg.norm(v)
    v = v + noise * rng.standard_normal(len(v)).astype(np.float32) / np.sqrt(len(v))
    return (v / np.linalg.norm(v)).astype(np.float32)


@dataclass
class SynthLibrary:
    folder: Path
    n_songs: int
    seconds: float
    hop_frames: int
    dim: int
    n_items: int
    store_s: float  # writing fingerprints + catalog rows (wall)
    index_s: float  # Library.rebuild_index (read store, ANNOY add + build, sha256, rename) (wall)
    store_cpu: float = float("nan")  # the same in CPU seconds of all threads
    index_cpu: float = float("nan")


def build_library(folder: Path, model_path: Path, n_songs: int, seconds: float = 240.0, hop_frames: int = 11,
                  n_trees: int = 16, seed: int = 0) -> SynthLibrary:
    """Create (or reuse, if complete) a synthetic library in `folder` through the Library's code."""
    from shazamlet.library import Library
    from shazamlet.library.catalog import Song
    from shazamlet.model import TileEmbedder

    emb = TileEmbedder(str(model_path))
    cfg = IndexConfig(library_hop_frames=hop_frames, query_hop_frames=11, n_trees=n_trees)
    lib = Library.open(folder, emb, index_cfg=cfg)
    n_tiles = tiles_per_song(seconds, hop_frames)
    done = lib.catalog.count()
    rec = lib.index_record()
    timing = folder / "build-times.json"  # so that a reused library still reports how long it took
    if done == n_songs and rec is not None and rec.n_items == n_songs * n_tiles and timing.exists():
        lib.close()
        t = json.loads(timing.read_text())
        return SynthLibrary(folder, n_songs, seconds, hop_frames, emb.dim, rec.n_items, t["store_s"], t["index_s"],
                            t["store_cpu"], t["index_cpu"])
    rng = np.random.default_rng(seed)
    starts = (np.arange(n_tiles) * hop_frames).astype(np.int32)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n_songs):
        fps = song_fingerprints(np.random.default_rng(seed * 1_000_003 + i), n_tiles, emb.dim)
        name = f"synth-{seed}-{i:06d}"
        emb_file = lib.store.write(f"{name}.npz", fps, starts)
        lib.catalog.upsert_song(Song(0, f"/synthetic/{GENRES[i % len(GENRES)]}/{name}.flac", f"Song {i}",
                                     f"Artist {i // 10}", f"Album {i // 12}", GENRES[i % len(GENRES)],
                                     seconds, name, 8_000_000, 0.0, time.time(), n_tiles, emb_file))
    t1, c1 = time.perf_counter(), time.process_time()
    rec = lib.rebuild_index()
    t2, c2 = time.perf_counter(), time.process_time()
    lib.close()
    del rng
    timing.write_text(json.dumps({"store_s": t1 - t0, "index_s": t2 - t1, "store_cpu": c1 - c0, "index_cpu": c2 - c1,
                                  "load_before": os.getloadavg()}))
    return SynthLibrary(folder, n_songs, seconds, hop_frames, emb.dim, rec.n_items, t1 - t0, t2 - t1, c1 - c0, c2 - c1)


def song_fps(seed: int, song_index: int, n_tiles: int, dim: int) -> np.ndarray:
    """The fingerprints `build_library` wrote for song number `song_index` (recomputed, not read)."""
    return song_fingerprints(np.random.default_rng(seed * 1_000_003 + song_index), n_tiles, dim)


def library_folder(n_songs: int, hop_frames: int = 11, dim: int = 128) -> Path:
    from bench.common import OUT

    return OUT / f"lib-{n_songs}-h{hop_frames}-d{dim}"


def ensure_library(n_songs: int, hop_frames: int = 11, dim: int = 128, seconds: float = 240.0) -> SynthLibrary:
    """The shared synthetic library of `n_songs` (built once under bench/out/, then reused)."""
    from bench.common import random_model_path

    return build_library(library_folder(n_songs, hop_frames, dim), random_model_path(dim), n_songs, seconds,
                         hop_frames)
