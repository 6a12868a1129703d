"""What takes over when ANNOY's float32 trees outgrow a laptop: an IVF index of int8 fingerprints.

    python -m bench.ivf [--songs 1000] [--nlist 1024]

The first step of FAISS's IVF-SQ8 / IVF-PQ, in 60 lines of torch, on the synthetic 1 000-song
library of bench/synthlib.py (its stored fp16 fingerprints, read through `EmbeddingStore`):
spherical k-means centroids (the coarse quantiser), every fingerprint filed under its nearest
centroid and stored as int8 (one byte per dimension instead of ANNOY's four, and no tree nodes);
a query scans the `nprobe` nearest lists. Measured against exact search and against the product's
ANNOY index on the same vectors: bytes per tile, build time, CPU ms per query tile, recall@10 and
song hit@10. One thread, CPU time (see bench/throughput.py).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench.common import Results
from bench.synthlib import ensure_library, query_from, song_fps, tiles_per_song

SCALE = 127.0  # unit vectors: every component is in [-1, 1]


class IVFInt8:
    def __init__(self, data: torch.Tensor, nlist: int, iters: int = 8, sample: int = 100_000, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        train = data[torch.randperm(len(data), generator=g)[:sample]]
        cent = train[torch.randperm(len(train), generator=g)[:nlist]].clone()
        for _ in range(iters):  # spherical k-means
            assign = (train @ cent.T).argmax(1)
            new = torch.zeros_like(cent).index_add_(0, assign, train)
            empty = new.norm(dim=1) == 0
            new[empty] = cent[empty]
            cent = new / new.norm(dim=1, keepdim=True)
        assign = torch.cat([(data[i:i + 65536] @ cent.T).argmax(1) for i in range(0, len(data), 65536)])
        order = torch.argsort(assign, stable=True)
        self.centroids = cent
        self.codes = torch.clamp(torch.round(data[order] * SCALE), -127, 127).to(torch.int8)
        self.ids = order.to(torch.int32)
        counts = torch.bincount(assign, minlength=nlist)
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts, 0)])

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.centroids, self.codes, self.ids, self.offsets))

    def search(self, q: torch.Tensor, k: int, nprobe: int) -> np.ndarray:
        lists = torch.topk(self.centroids @ q, nprobe).indices.tolist()
        idx = torch.cat([torch.arange(self.offsets[c], self.offsets[c + 1]) for c in lists])
        sims = self.codes[idx].float() @ q
        top = torch.topk(sims, min(k, len(sims))).indices
        return self.ids[idx[top]].numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=1000)
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from shazamlet.library import Library
    from shazamlet.library.index import LibraryIndex
    from shazamlet.model import TileEmbedder
    from bench.common import random_model_path

    res = Results("ivf", "4b. The next index: IVF over int8 fingerprints (first step of FAISS IVF-SQ8 / IVF-PQ)")
    built = ensure_library(args.songs)
    lib = Library.open(built.folder, TileEmbedder(str(random_model_path())))
    songs = sorted(lib.songs(), key=lambda s: s.id)  # id order = creation order = song number
    n_tiles = tiles_per_song(240.0, 11)
    data = torch.from_numpy(np.concatenate([lib.store.read(s.emb_file)[0] for s in songs]).astype(np.float32))
    data = data / data.norm(dim=1, keepdim=True)
    c = time.process_time()
    ivf = IVFInt8(data, args.nlist)
    build_cpu = time.process_time() - c
    rec = lib.index_record()
    index = LibraryIndex(built.folder, rec, verify=False)
    ann = index.ann
    # ANNOY item -> row of `data` (songs in id order; the index holds them in catalog order)
    row_of_song = {}
    for s in songs:
        row_of_song[s.id] = len(row_of_song) * n_tiles
    row_of_item = np.array([row_of_song[int(sid)] for sid in index.map[0]]) + index.map[1] // 11
    ann_bytes = (built.folder / rec.ann_file).stat().st_size
    rng = np.random.default_rng(11)
    qs, truth = [], []
    for _ in range(args.queries):
        i = int(rng.integers(args.songs))
        t = int(rng.integers(n_tiles - 1))
        qs.append(query_from(song_fps(0, i, n_tiles, 128), t, rng))
        truth.append(i)
    exact = [set(torch.topk(data @ torch.from_numpy(q), 10).indices.tolist()) for q in qs]
    rows = []

    def evaluate(label: str, fn, nbytes: float, build: float) -> None:
        c = time.process_time()
        found = [fn(torch.from_numpy(q)) for q in qs]
        ms = (time.process_time() - c) / len(qs) * 1e3
        r10 = float(np.mean([len(set(map(int, f)) & e) / 10 for f, e in zip(found, exact)]))
        hit = float(np.mean([any(int(x) // n_tiles == s for x in f) for f, s in zip(found, truth)]))
        rows.append([label, nbytes / len(data), nbytes / 2**20, build, ms, r10, hit,
                     nbytes / len(data) * 4.64e6 / 2**30])

    evaluate("ANNOY angular, 16 trees, search_k=-1 (the product)",
             lambda q: row_of_item[ann.get_nns_by_vector(q.numpy(), 10)], ann_bytes, float("nan"))
    for nprobe in (8, 16, 32):
        evaluate(f"IVF int8, nlist {args.nlist}, nprobe {nprobe}", lambda q, p=nprobe: ivf.search(q, 10, p),
                 ivf.nbytes(), build_cpu)
    evaluate("exact, float32 brute force (torch)", lambda q: torch.topk(data @ q, 10).indices.numpy(),
             data.numel() * 4, 0.0)
    res.table(f"{len(data):,} tiles of {args.songs:,} synthetic songs (128-d), {args.queries} near-duplicate queries, "
              f"one thread, CPU time; last column: the same bytes per tile at 10 000 songs (4.64 M tiles)",
              ["index", "bytes per tile", "MiB", "build CPU s", "CPU ms per query tile", "recall@10",
               "song hit@10", "GiB at 10k songs"], rows)
    res.value("rows", rows)
    lib.close()
    res.save()


if __name__ == "__main__":
    main()
