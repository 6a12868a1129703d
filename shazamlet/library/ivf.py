"""An inverted-file index of int8 fingerprints: what takes over from ANNOY in large libraries.

ANNOY stores every tile as a float32 tree node (4 bytes per dimension plus its header) and a
search ends up paging in the whole file: at 10 000 songs that alone is over 1 GiB resident
(bench/RESULTS.md, goal 4b). This index is the first step of FAISS's IVF-SQ8, small enough to
write here with numpy: spherical k-means centroids split the fingerprints into `nlist` lists,
every fingerprint is stored as int8 (one byte per dimension; fingerprints are unit vectors, so
each component is in [-1, 1] and `round(127 x)` moves a 64-d cosine by ~0.002, at most ~0.01,
against score margins of tenths between the right song and the next), and a search scans
only the `nprobe` lists whose centroids are nearest the query. 64-d fingerprints cost 64 bytes
of codes + 8 of item map + 4 of song order per tile: ~340 MiB at 10 000 songs, of which a
search touches only the lists it probes.

Files (written under temp names by the caller's rules: see `index.build_index`):
- codes (`.codes.npy`): int8 (n, dim), grouped list by list, memory-mapped when searched;
- lists (`.lists.npz`): `centroids` (nlist, dim) float32, `offsets` (nlist + 1) where list c is
  rows offsets[c]:offsets[c+1], and `order`, the rows in the order the tiles came in (each song's
  together, in start order), so one song's tiles can be read back for re-scoring without a sort
  at load time.
The item map (song id, start frame per row) is the same kind of `.map.npy` as ANNOY's, in row order.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

SCALE = 127.0
KMEANS_ITERS = 10
SAMPLES_PER_LIST = 64  # k-means is trained on at most this many fingerprints per centroid
BLOCK = 65_536  # rows assigned per matrix product while building


def default_nlist(n_items: int) -> int:
    """~sqrt(n) lists (FAISS's rule of thumb is 1-16 sqrt(n)): 2 048 at 10 000 songs of 4 min."""
    return max(1, min(n_items, 2 ** round(math.log2(max(1.0, math.sqrt(n_items))))))


def quantise(fingerprints: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(unit_rows(fingerprints) * SCALE), -127, 127).astype(np.int8)


def unit_rows(rows: np.ndarray) -> np.ndarray:
    """Each row scaled to unit length, as float32 (int8 codes or floats alike)."""
    v = np.asarray(rows, np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def train_centroids(codes: np.ndarray, nlist: int, seed: int = 0) -> np.ndarray:
    """Spherical k-means on a sample of the (quantised) fingerprints; an emptied list keeps its centroid."""
    rng = np.random.default_rng(seed)
    n = len(codes)
    sample = unit_rows(codes[np.sort(rng.choice(n, min(n, nlist * SAMPLES_PER_LIST), replace=False))])
    cent = sample[rng.choice(len(sample), nlist, replace=False)].copy()
    for _ in range(KMEANS_ITERS):
        assign = np.argmax(sample @ cent.T, axis=1)
        new = np.zeros_like(cent)
        np.add.at(new, assign, sample)
        norms = np.linalg.norm(new, axis=1, keepdims=True)
        cent = np.where(norms > 0, new / np.maximum(norms, 1e-12), cent)
    return cent.astype(np.float32)


def assign_lists(codes: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    return np.concatenate([np.argmax(unit_rows(codes[i:i + BLOCK]) @ centroids.T, axis=1)
                           for i in range(0, len(codes), BLOCK)]) if len(codes) else np.zeros(0, np.int64)


def write_ivf(codes: np.ndarray, codes_file: Path, lists_file: Path, nlist: int | None = None) -> np.ndarray:
    """Cluster `codes` (int8, each song's tiles together and in start order), write them list by
    list and the lists file; returns the input row of each written row (the caller writes the item
    map in that order and renames all three files into place)."""
    nlist = nlist or default_nlist(len(codes))
    centroids = train_centroids(codes, nlist) if len(codes) else np.zeros((1, codes.shape[1]), np.float32)
    assign = assign_lists(codes, centroids)
    by_list = np.argsort(assign, kind="stable")  # rows of the input, list by list
    counts = np.bincount(assign, minlength=len(centroids))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    out = np.lib.format.open_memmap(codes_file, mode="w+", dtype=np.int8, shape=codes.shape)
    for i in range(0, len(codes), BLOCK):
        out[i:i + BLOCK] = codes[by_list[i:i + BLOCK]]
    out.flush()
    del out
    # where each input row went: read in input order, the rows give every song's tiles together and
    # in start order, which is what re-scoring looks up
    order = np.empty(len(by_list), np.int32)
    order[by_list] = np.arange(len(by_list), dtype=np.int32)
    with open(lists_file, "wb") as f:
        np.savez(f, centroids=centroids, offsets=offsets, order=order)
        f.flush()
        os.fsync(f.fileno())
    with open(codes_file, "rb+") as f:
        os.fsync(f.fileno())
    return by_list


class IvfVectors:
    """A loaded IVF index: the codes memory-mapped, the centroids and list bounds in memory."""

    def __init__(self, codes_file: Path, lists_file: Path) -> None:
        self.codes = np.load(codes_file, mmap_mode="r", allow_pickle=False)
        with np.load(lists_file, allow_pickle=False) as z:
            self.centroids = z["centroids"]
            self.offsets = z["offsets"]
            self.order = z["order"]

    def search(self, v: np.ndarray, k: int, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the k nearest codes among the `nprobe` nearest lists, and their cosines."""
        v = np.asarray(v, np.float32)
        v = v / max(float(np.linalg.norm(v)), 1e-12)
        c_sims = self.centroids @ v
        nprobe = min(nprobe, len(c_sims))
        lists = np.argpartition(-c_sims, nprobe - 1)[:nprobe]
        rows = np.concatenate([np.arange(self.offsets[c], self.offsets[c + 1]) for c in lists])
        if not len(rows):
            return rows, np.zeros(0, np.float32)
        sims = np.concatenate([self.codes[self.offsets[c]:self.offsets[c + 1]] @ v for c in lists]) / SCALE
        top = np.argpartition(-sims, min(k, len(sims)) - 1)[:k]
        top = top[np.argsort(-sims[top], kind="stable")]
        return rows[top], sims[top].astype(np.float32)

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        return self.codes[np.asarray(rows, np.int64)].astype(np.float32) / SCALE

    def unload(self) -> None:
        # Dropping the reference unmaps the file once no view of it is left (searches return copies);
        # closing the map by hand could pull it from under a caller that still holds a view.
        self.codes = np.zeros((0, self.codes.shape[1]), np.int8)
