"""Goal 4b: the library's two index kinds at 10 000 songs, side by side in the same run.

    python -m bench.ivf [--songs 10000] [--queries 300] [--nprobe 8,16,32] [--keep]
    python -m bench.ivf --dim 192 --kinds ivf     # the shipped model's fingerprints, IVF only (section 4e)

ANNOY (the paper's index: 16 trees, the product's search_k) and the int8 IVF lists that take over from
`IndexConfig.ivf_min_items` tiles on (shazamlet/library/ivf.py), both built index-only through the
product's `build_index` from the same synthetic fingerprints (bench/synthlib.py) at the product's
1.02-s hop and `--dim` dimensions (64: the network's head, as the sections measured so far; 192: the
shipped model with its tile projection). Per kind: files on disk, build time, and resident memory of a fresh
process after 500 varied searches (bench.scale's load probe); then, through `LibraryIndex.query`
(what the matcher calls), CPU ms per query tile, recall@10 against exact search and song hit@10 on
near-duplicate queries, after a warm-up. App total = index resident + the listening app without its
index (section 5). One thread, CPU time (see bench/throughput.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import Results
from bench.scale import NPROBE, SEARCH_K, app_baseline_mb, index_only_folder, measure_index_only, record_of
from bench.synthlib import query_from, song_fps, tiles_per_song
from shazamlet.config import IndexConfig


def search_probe(folder: Path, n_songs: int, hop: int, dim: int, n_q: int, efforts: list[tuple[int, int]]) -> list[dict]:
    """recall@10, song hit@10 and CPU ms per query tile through `LibraryIndex.query` at each
    (search_k, nprobe); the same queries for every index (same seed)."""
    from shazamlet.library.index import LibraryIndex

    idx = LibraryIndex(folder, record_of(folder), verify="none")
    n_tiles = tiles_per_song(240.0, hop)
    allv = torch.from_numpy(np.concatenate([song_fps(0, i, n_tiles, dim) for i in range(n_songs)]))
    allv = allv / allv.norm(dim=1, keepdim=True)
    warm = np.random.default_rng(4).standard_normal((300, dim)).astype(np.float32)
    for v in warm:  # a long-running app has touched its index; first searches would pay page faults
        idx.query(v[None], np.zeros(1), 10, SEARCH_K, NPROBE)
    rng = np.random.default_rng(3)
    queries = []
    for _ in range(n_q):
        i, t = int(rng.integers(n_songs)), int(rng.integers(n_tiles - 1))
        q = query_from(song_fps(0, i, n_tiles, dim), t, rng)
        exact = set(torch.topk(allv @ torch.from_numpy(q), 10).indices.numpy().tolist())
        queries.append((i, q, exact))
    del allv
    out = []
    for search_k, nprobe in efforts:
        ms, rec, hit = [], [], []
        for i, q, exact in queries:
            c = time.process_time()
            nb = idx.query(q[None], np.zeros(1), 10, search_k, nprobe)
            ms.append((time.process_time() - c) * 1e3)
            found = nb.song_ids[0] * n_tiles + nb.start_frames[0] // hop
            rec.append(len(set(found.tolist()) & exact) / 10)
            hit.append(bool(np.any(nb.song_ids[0] == i)))
        out.append({"search_k": search_k, "nprobe": nprobe, "query_ms": float(np.median(ms)),
                    "recall10": float(np.mean(rec)), "song_hit10": float(np.mean(hit))})
    idx.unload()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--nprobe", default="8,16,32", help="IVF lists scanned per query tile (the product: 16)")
    ap.add_argument("--keep", action="store_true", help="keep the libraries under bench/out/")
    ap.add_argument("--dim", type=int, default=64, choices=(64, 192, 256),
                    help="fingerprint dimensions: 64 (the network's head), 192 (+ the shipped model's 128-d tile "
                         "projection) or 256 (+ a 192-d one)")
    ap.add_argument("--kinds", default="annoy,ivf", help="which indexes to build (annoy, ivf or both)")
    args = ap.parse_args()
    if not args.kinds or set(args.kinds.split(",")) - {"annoy", "ivf"}:
        ap.error(f"--kinds: a comma-separated list of annoy and ivf (got {args.kinds!r})")
    torch.set_num_threads(1)
    hop, dim = IndexConfig().library_hop_frames, args.dim
    app, app_src = app_baseline_mb()
    res = {64: lambda: Results("ivf", "4d. Scale: ANNOY against the int8 IVF index, the same library (goal 4b)"),
           192: lambda: Results("ivf_192d", "4e. Scale at the shipped model's 192-d fingerprints (goals 4a, 4b)"),
           256: lambda: Results("ivf_256d", "4f. Scale at 256-d fingerprints (a 192-d tile projection; goals 4a, 4b)"),
           }[dim]()
    res.note(f"{args.songs:,} synthetic songs of 4 min at the product's settings (hop {hop} frames = 1.02 s, "
             f"{dim}-d), built index-only through build_index as each kind (same vectors, same "
             f"{args.queries} near-duplicate queries). Resident = RSS of a fresh process after 500 varied searches "
             f"above its baseline (the item map, the IVF centroids and song order, and every page of the "
             f"memory-mapped vectors the searches touched). App total = that + the listening app without its index, "
             f"{app:.0f} MiB ({app_src}). The product switches to IVF from {IndexConfig().ivf_min_items:,} tiles.")
    rows, measured = [], []
    for kind in args.kinds.split(","):
        m = measure_index_only(args.songs, hop, dim, kind=kind, n_q=0)
        efforts = [(SEARCH_K, NPROBE)] if kind == "annoy" else [(SEARCH_K, int(p)) for p in args.nprobe.split(",")]
        m["searches"] = search_probe(Path(m["folder"]), args.songs, hop, dim, args.queries, efforts)
        print(json.dumps(m), flush=True)
        measured.append(m)
        index_res = m["rss_after_queries"] - m["rss_base"]
        file_res = m["rss_file_after_queries"] - (m["rss_base"] - m["rss_anon_base"])
        for s in m["searches"]:
            setting = (f"16 trees, search_k {s['search_k']}" if kind == "annoy" else f"nprobe {s['nprobe']}"
                       + (" (the product)" if s["nprobe"] == NPROBE else ""))
            rows.append([kind, setting, m["ann_mb"] + m["map_mb"], (m["ann_mb"] + m["map_mb"]) * 2**20 / m["items"],
                         m["index_s"], file_res, index_res, (index_res + app) / 1024, s["query_ms"], s["recall10"],
                         s["song_hit10"]])
        if not args.keep:
            shutil.rmtree(index_only_folder(args.songs, hop, dim, kind=kind))
    res.value("measured", measured)
    a, best = rows[0], next((r for r in rows if r[0] == "ivf" and "product" in r[1]), None)
    if a[0] == "annoy" and best:
        res.note(f"IVF against ANNOY in this run: {a[2] / best[2]:.1f}x smaller on disk, {a[6] / best[6]:.1f}x less "
                 f"index memory, {best[8] / a[8]:.2f}x the CPU per query tile, recall@10 {a[9]:.2f} -> {best[9]:.2f}.")
    res.table(f"{args.songs:,} songs, {measured[0]['items'] / 1e6:.2f} M tiles: index (vectors + item map) on disk, "
              f"build, resident memory and search (k = 10)",
              ["index", "setting", "index MiB", "bytes per tile", "build s (wall)", "file pages resident MiB",
               "index resident MiB", "app total GiB", "CPU ms/query tile", "recall@10", "song hit@10"], rows)
    res.save()


if __name__ == "__main__":
    main()
