"""Goal 4 - scale: synthetic libraries of 1k, 10k and 50k songs of 4 min (embeddings only).

    python -m bench.scale [--large 10000,50000] [--configs 22x64,11x128]
    python -m bench.scale --trees 16,8,4 [--trees-songs 10000]   # only the n_trees sweep (goal 4b)

Per library: index size on disk (ANNOY file, item map, per-song fingerprints, catalog), build
time, memory once loaded (in a fresh child process: RSS after loading and after 500 queries), the
load time with and without the full sha256 check, ANNOY query time per tile, recall@10 against
exact search and song hit@10 (the right song among the 10 neighbours) for near-duplicate queries.

Measured in full: 1 000 songs at each `--configs` setting (hop frames x fingerprint dimension; the
first is the product's: 1.02-s hop, 64-d). The `--large` sizes are built at the product's settings
straight through `build_index` (index and item map measured; per-song fingerprint files and catalog
taken from the 1 000-song library, linearly). Sizes not built are extrapolated from the 1 000-song
rows (sizes linear in items, tree build n log n) and marked as such. Searches use the product's
`IndexConfig.search_k`; the sweep table shows the others.

`--trees` is a separate run (bench/out/scale_trees.json): one library size at the product's
settings built index-only with each n_trees, to split the ANNOY file into item vectors and trees
and see what the trees cost in resident memory and buy in recall. Each library is deleted once
measured (1 GiB at 10 000 songs) unless `--keep`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import Results, dir_size_mb
from shazamlet.config import IndexConfig
from bench.synthlib import build_library, library_folder, query_from, song_fps, tiles_per_song

SECONDS = 240.0
SEARCH_K = IndexConfig().search_k  # the product's
NPROBE = IndexConfig().nprobe

LOAD_PROBE = r"""
import json, sys, time, numpy as np
from pathlib import Path
from bench.common import proc_status_mb, rss_mb
from shazamlet.library.index import IndexRecord, LibraryIndex
folder, n_q, search_k, nprobe = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
import sqlite3
rec = IndexRecord(**json.loads(sqlite3.connect(str(folder / "catalog.sqlite")).execute(
    "SELECT value FROM meta WHERE key='index'").fetchone()[0]))
r0 = rss_mb()
anon0 = proc_status_mb("RssAnon")
t = time.perf_counter(); idx = LibraryIndex(folder, rec, verify="none"); load_fast = time.perf_counter() - t
idx.unload(); del idx
t = time.perf_counter(); idx = LibraryIndex(folder, rec, verify="sampled"); load_sampled = time.perf_counter() - t
idx.unload(); del idx
t = time.perf_counter(); c = time.process_time()
idx = LibraryIndex(folder, rec, verify="full"); load_full = time.perf_counter() - t; load_full_cpu = time.process_time() - c
r1 = rss_mb()
rng = np.random.default_rng(5)
q = rng.standard_normal((n_q, rec.dim)).astype(np.float32)
t = time.perf_counter()
for i in range(n_q):
    idx.query(q[i:i+1], np.zeros(1), 10, search_k, nprobe)
qt = (time.perf_counter() - t) / n_q
r2 = rss_mb()
anon2, file2 = proc_status_mb("RssAnon"), proc_status_mb("RssFile")
print(json.dumps({"rss_anon_base": anon0, "rss_anon_after_queries": anon2, "rss_file_after_queries": file2, "rss_base": r0, "rss_loaded": r1, "rss_after_queries": r2, "load_s_no_verify": load_fast, "load_s_sampled": load_sampled,
                  "load_s_sha256": load_full, "load_cpu_sha256": load_full_cpu, "query_ms_random": qt * 1e3}))
"""


def load_probe(folder: Path, n_q: int = 500) -> dict:
    out = subprocess.run([sys.executable, "-c", LOAD_PROBE, str(folder), str(n_q), str(SEARCH_K), str(NPROBE)],
                         capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def sizes(folder: Path) -> dict:
    """MiB on disk; `ann_mb` is the index's vectors whatever its kind (ANNOY forest, or IVF codes + lists)."""
    ann = sum(p.stat().st_size for pat in ("index-*.ann", "index-*.codes.npy", "index-*.lists.npz")
              for p in folder.glob(pat)) / 2**20
    mp = sum(p.stat().st_size for p in folder.glob("index-*.map.npy")) / 2**20
    return {"ann_mb": ann, "map_mb": mp, "fps_mb": dir_size_mb(folder / "fingerprints"),
            "catalog_mb": dir_size_mb(folder, "catalog.sqlite*")}


def record_of(folder: Path):
    """The current IndexRecord of a library folder (or of an index-only folder's stand-in catalog)."""
    import sqlite3

    from shazamlet.library.index import IndexRecord

    db = sqlite3.connect(str(folder / "catalog.sqlite"))
    try:
        return IndexRecord(**json.loads(db.execute("SELECT value FROM meta WHERE key='index'").fetchone()[0]))
    finally:
        db.close()


def recall_probe(folder: Path, n_songs: int, hop: int, dim: int, n_q: int = 200) -> dict:
    """ANNOY (k=10; search_k: n_trees x k, the product's, 5000) against exact search, near-duplicate queries."""
    import sqlite3

    from shazamlet.library.index import LibraryIndex

    idx = LibraryIndex(folder, record_of(folder), verify="none")
    n_tiles = tiles_per_song(SECONDS, hop)
    # ANNOY item -> synthetic (song number, tile): the catalog orders songs by artist/title, so
    # items are not in creation order; index-only builds use the song number as the song id.
    db = sqlite3.connect(str(folder / "catalog.sqlite"))
    has_songs = db.execute("SELECT name FROM sqlite_master WHERE name='songs'").fetchone()
    number = ({sid: int(path.rsplit("-", 1)[1].split(".")[0]) for sid, path in db.execute("SELECT id, path FROM songs")}
              if has_songs else None)
    db.close()
    song_of_item = np.array([number[int(x)] for x in idx.map[0]] if number else idx.map[0], dtype=np.int64)
    global_of_item = song_of_item * n_tiles + idx.map[1] // hop
    # all library vectors in creation order: global index = song number * n_tiles + tile
    allv = torch.from_numpy(np.concatenate([song_fps(0, i, n_tiles, dim) for i in range(n_songs)]))
    # warm up: a long-running app has touched the whole memory-mapped file (see the RSS columns);
    # without this, the first searches pay page faults, counted in their CPU time
    warm = np.random.default_rng(4).standard_normal((300, dim)).astype(np.float32)
    for v in warm:
        idx.vectors.ann.get_nns_by_vector(v, 10, search_k=5000)
    rng = np.random.default_rng(3)
    sks = tuple(sorted({-1, SEARCH_K, 5000}))
    rec10 = {k: [] for k in sks}
    hit10 = {k: [] for k in sks}
    ms = {k: [] for k in sks}
    for _ in range(n_q):
        i = int(rng.integers(n_songs))
        t = int(rng.integers(n_tiles - 1))
        q = query_from(song_fps(0, i, n_tiles, dim), t, rng)
        exact = set(torch.topk(allv @ torch.from_numpy(q), 10).indices.numpy().tolist())
        for sk in sks:
            t0 = time.process_time()
            items = idx.vectors.ann.get_nns_by_vector(q, 10, search_k=sk)
            ms[sk].append((time.process_time() - t0) * 1e3)
            found = global_of_item[items]
            rec10[sk].append(len(set(found.tolist()) & exact) / 10)
            hit10[sk].append(bool(np.any(found // n_tiles == i)))
    sweep = {sk: {"recall10": float(np.mean(rec10[sk])), "song_hit10": float(np.mean(hit10[sk])),
                  "query_ms": float(np.median(ms[sk]))} for sk in sks}
    idx.unload()
    return {**sweep[SEARCH_K], "search_k_sweep": sweep}


def sha256_rate(path: Path) -> float:
    """MB/s of hashlib's sha256 over `path` (page cache warm)."""
    t = time.perf_counter()
    with open(path, "rb") as f:
        hashlib.file_digest(f, "sha256")
    return path.stat().st_size / 2**20 / (time.perf_counter() - t)


def sampled_sha256(path: Path, blocks: int = 256, block_size: int = 1 << 16) -> tuple[str, float]:
    """sha256 of the size plus `blocks` evenly spread blocks of the file (the first and last block
    included): what a load-time check could read instead of the whole file. Returns (digest, seconds)."""
    t = time.perf_counter()
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        for i in range(blocks):
            f.seek(max(0, min(size - block_size, (size - block_size) * i // max(1, blocks - 1))))
            h.update(f.read(block_size))
    return h.hexdigest(), time.perf_counter() - t


def measure(n_songs: int, hop: int, dim: int) -> dict:
    from bench.common import random_model_path

    folder = library_folder(n_songs, hop, dim)
    t = time.perf_counter()
    b = build_library(folder, random_model_path(dim), n_songs, SECONDS, hop)
    wall = time.perf_counter() - t
    out = {"songs": n_songs, "hop": hop, "dim": dim, "items": b.n_items, "store_s": b.store_s, "index_s": b.index_s,
           "store_cpu": b.store_cpu, "index_cpu": b.index_cpu,
           "build_wall_s": wall, **sizes(folder)}
    out.update(load_probe(folder))
    out.update(recall_probe(folder, n_songs, hop, dim))
    ann = next(folder.glob("index-*.ann"))
    out["sha256_mb_s"] = sha256_rate(ann)
    out["sampled_sha256_s"] = sampled_sha256(ann)[1]
    return out


def ann_split(ann_bytes: int, n_items: int, dim: int) -> dict:
    """The ANNOY file split into item vectors and trees. An angular node is `n_descendants` +
    `children[2]` (int32) + `dim` float32: items are nodes 0..n-1, then each tree's split and leaf
    nodes, then a copy of the roots; every node has the same size."""
    node = 12 + 4 * dim
    items = n_items * node
    return {"node_bytes": node, "ann_items_mb": items / 2**20, "ann_trees_mb": (ann_bytes - items) / 2**20,
            "tree_nodes": (ann_bytes - items) // node}


def index_only_folder(n_songs: int, hop: int, dim: int, n_trees: int = 16, kind: str = "annoy") -> Path:
    base = library_folder(n_songs, hop, dim)
    return base.with_name(base.name + "-indexonly" + ("" if n_trees == 16 else f"-t{n_trees}")
                          + ("" if kind == "annoy" else f"-{kind}"))


def measure_index_only(n_songs: int, hop: int, dim: int, n_trees: int = 16, n_q: int = 100,
                       kind: str = "annoy") -> dict:
    """A large library straight through `build_index` (the product's builder) without per-song files:
    the index and its map are the same, the .npz store and catalog are extrapolated. The ANNOY-only
    probes (tree split, search_k sweep) are skipped for the IVF kind (see bench/index_kinds.py)."""
    from shazamlet.library.index import build_index

    folder = index_only_folder(n_songs, hop, dim, n_trees, kind)
    folder.mkdir(parents=True, exist_ok=True)
    n_tiles = tiles_per_song(SECONDS, hop)
    starts = (np.arange(n_tiles) * hop).astype(np.int32)
    rec_path = folder / "record.json"
    existing = rec_path.exists() and all((folder / f).exists() for f in
                                         (json.loads(rec_path.read_text())[k] for k in ("ann_file", "map_file")))
    if existing:
        rec = json.loads(rec_path.read_text())
        build_s = rec.pop("_build_s")
        build_cpu = rec.pop("_build_cpu")
    else:
        for f in folder.glob("index-*"):
            f.unlink()
        t, c = time.perf_counter(), time.process_time()
        r = build_index(folder, 1, dim, ((i, song_fps(0, i, n_tiles, dim), starts, None) for i in range(n_songs)), n_trees,
                        kind=kind)
        build_s, build_cpu = time.perf_counter() - t, time.process_time() - c
        rec = r.__dict__.copy()
        rec["song_ids"] = []
        rec_path.write_text(json.dumps({**rec, "_build_s": build_s, "_build_cpu": build_cpu}))
    # a catalog holding the record, so the load probe can read it like a library's
    import sqlite3

    db = sqlite3.connect(str(folder / "catalog.sqlite"))
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT OR REPLACE INTO meta VALUES ('index', ?)", (json.dumps(rec),))
    db.commit()
    db.close()
    ann_path = folder / rec["ann_file"]
    out = {"songs": n_songs, "hop": hop, "dim": dim, "kind": kind, "n_trees": rec["n_trees"], "items": rec["n_items"],
           "index_s": build_s, "store_s": float("nan"), "index_cpu": build_cpu, "store_cpu": float("nan"),
           "folder": str(folder), **sizes(folder)}
    out.update(load_probe(folder))
    if kind == "annoy":
        out.update(ann_split(ann_path.stat().st_size, rec["n_items"], dim))
        if n_q:
            out.update(recall_probe(folder, n_songs, hop, dim, n_q=n_q))
    out["sha256_mb_s"] = sha256_rate(ann_path)
    out["sampled_sha256_s"] = sampled_sha256(ann_path)[1]
    return out


def extrapolate(m: dict, n_songs: int) -> dict:
    """Scale a measured 1k-song row to `n_songs`: sizes and store time linear, index build n log n."""
    f = n_songs / m["songs"]
    items = m["items"] * f
    logf = math.log(items) / math.log(m["items"])
    out = {"songs": n_songs, "hop": m["hop"], "dim": m["dim"], "items": int(items), "extrapolated": True}
    for k in ("ann_mb", "map_mb", "fps_mb", "catalog_mb"):
        out[k] = m[k] * f
    out["store_s"] = m["store_s"] * f
    out["index_s"] = m["index_s"] * f * logf
    out["store_cpu"] = m["store_cpu"] * f
    out["index_cpu"] = m["index_cpu"] * f * logf
    # queries: ANNOY's cost grows with tree depth (log n) at a fixed search_k
    out["query_ms"] = m["query_ms"] * logf
    out["load_s_sha256"] = (out["ann_mb"] + out["map_mb"]) / m["sha256_mb_s"]
    out["load_cpu_sha256"] = m["load_cpu_sha256"] * f
    out["load_s_no_verify"] = m["load_s_no_verify"]
    out["load_s_sampled"] = m["load_s_sampled"]
    out["sampled_sha256_s"] = m["sampled_sha256_s"]
    # resident: what the process holds besides the mmap (map array) + the pages queries touch,
    # bounded by the whole file when every page was touched
    out["rss_base"] = m["rss_base"]
    out["rss_loaded"] = m["rss_loaded"] - m["map_mb"] + out["map_mb"]
    out["rss_after_queries"] = float("nan")
    out["recall10"] = float("nan")
    out["song_hit10"] = float("nan")
    return out


def app_baseline_mb() -> tuple[float, str]:
    """RSS of the listening app without its index (Python, torch, model, shared libraries, buffers):
    section 5's last step (bench/out/memory.json: 1 000 songs, every index page touched) less that
    library's ANNOY file and item map; without that file, the 445 MiB it measured with 64-d fingerprints."""
    from bench.common import OUT

    p = OUT / "memory.json"
    if p.exists():
        v = json.loads(p.read_text())["values"]
        last = v["steps"][-1]
        map_1k = 232_000 * 8 / 2**20  # int32 song + int32 start per item, 1 000 songs at the 1.02-s hop
        return last[1] - v["ann_mb"] - map_1k, "bench/out/memory.json"
    return 445.0, "bench.memory with 64-d fingerprints"


def trees_sweep(n_songs: int, trees: list[int], keep: bool, n_q: int) -> None:
    """Goal 4b: the same library at each n_trees; what the trees cost on disk and in RSS, and buy in recall."""
    hop, dim = IndexConfig().library_hop_frames, 64
    res = Results("scale_trees", "4c. Scale: ANNOY n_trees against resident memory (goal 4b)")
    app, app_src = app_baseline_mb()
    res.note(f"{n_songs:,} synthetic songs at the product's settings (hop {hop} frames, {dim}-d, search_k "
             f"{SEARCH_K}), built index-only through build_index with each n_trees (same vectors, same "
             f"queries). Resident = RSS of a fresh process after 500 searches with varied (random) "
             f"fingerprints, above its baseline: the item map (anonymous) plus every page of the .ann file the "
             f"searches touched. App total = that + the listening app without its index, {app:.0f} MiB (Python, "
             f"torch, model, shared libraries; {app_src}).")
    rows = []
    for nt in trees:
        m = measure_index_only(n_songs, hop, dim, nt, n_q=n_q)
        m["app_mb"] = app
        print(json.dumps(m), flush=True)
        rows.append(m)
        if not keep:
            shutil.rmtree(index_only_folder(n_songs, hop, dim, nt))
    res.value("measured", rows)

    def r_(m: dict) -> list:
        idx_res = m["rss_after_queries"] - m["rss_base"]
        file_res = m["rss_file_after_queries"] - (m["rss_base"] - m["rss_anon_base"])
        return [f"{m['songs']:,}", m["n_trees"], m["ann_mb"], m["ann_items_mb"], m["ann_trees_mb"],
                f"{m['ann_trees_mb'] / m['ann_mb']:.0%}", f"{min(file_res / m['ann_mb'], 1):.0%}", file_res, idx_res,
                idx_res + app, (idx_res + app) / 1024, m["song_hit10"], m["recall10"], m["query_ms"],
                m["search_k_sweep"][5000]["recall10"], m["search_k_sweep"][5000]["query_ms"], m["index_s"],
                m["index_cpu"]]

    res.table(f"ANNOY n_trees at {n_songs:,} songs (item vectors: {rows[0]['node_bytes']} bytes per tile, whatever "
              f"n_trees; hit@10, recall@10 and CPU ms per query tile at search_k {SEARCH_K}, near-duplicate queries, "
              f"after a warm-up)",
              ["songs", "n_trees", "ANNOY MiB", "item vectors MiB", "trees MiB", "tree share", "file resident",
               "file pages resident MiB", "index resident MiB", "app total MiB", "app total GiB", "song hit@10", "recall@10", "CPU ms/query tile",
               "recall@10 at 5000", "CPU ms at 5000", "build s (wall)", "build CPU s"],
              [r_(m) for m in rows])
    res.save()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trees", default="", help="only the n_trees sweep, e.g. 16,8,4 (writes scale_trees.json)")
    ap.add_argument("--trees-songs", type=int, default=10_000, help="library size of the n_trees sweep")
    ap.add_argument("--trees-queries", type=int, default=300, help="near-duplicate queries per n_trees")
    ap.add_argument("--keep", action="store_true", help="keep the sweep's libraries under bench/out/")
    ap.add_argument("--configs", default="22x64,11x128",
                    help="hop frames x dim at --base-songs; the first is the product's")
    ap.add_argument("--large", default="10000", help="song counts built at the first setting (index only), '' for none")
    ap.add_argument("--base-songs", type=int, default=1000, help="the fully measured library size")
    args = ap.parse_args()
    if args.trees:
        trees_sweep(args.trees_songs, [int(x) for x in args.trees.split(",")], args.keep, args.trees_queries)
        return
    res = Results("scale", "4. Scale")
    res.note("Synthetic libraries at the embeddings level (bench/synthlib.py), 4-min songs, n_trees=16, written "
             "through the product's code; page cache warm (the files were just written).")
    rows_m = []
    for cfg in args.configs.split(","):
        hop, dim = (int(x) for x in cfg.split("x"))
        m = measure(args.base_songs, hop, dim)
        print(json.dumps(m), flush=True)
        rows_m.append(m)
    hop0, dim0 = rows_m[0]["hop"], rows_m[0]["dim"]
    for n in [int(x) for x in args.large.split(",") if x]:
        m = measure_index_only(n, hop0, dim0)
        print(json.dumps(m), flush=True)
        rows_m.append(m)
    base = rows_m[0]
    for m in rows_m:  # index-only builds have no per-song files: take them from the same settings at 1k
        if "-indexonly" in json.dumps(m) or m["fps_mb"] == 0:
            ref = next((r for r in rows_m if r["songs"] == args.base_songs and r["hop"] == m["hop"]
                        and r["dim"] == m["dim"]), None)
            if ref:
                f = m["songs"] / args.base_songs
                m["fps_mb"] = ref["fps_mb"] * f
                m["catalog_mb"] = ref["catalog_mb"] * f
                m["store_s"] = ref["store_s"] * f
                m["store_cpu"] = ref["store_cpu"] * f
                m["note"] = f"store x{f:g} from {args.base_songs:,}"
    rows_x = []
    for m in [r for r in rows_m if r["songs"] == args.base_songs]:
        for n in (10_000, 50_000):
            if any(r["songs"] == n and r["hop"] == m["hop"] and r["dim"] == m["dim"] for r in rows_m):
                continue
            rows_x.append(extrapolate(m, n))
    res.value("measured", rows_m)
    res.value("extrapolated", rows_x)

    def row(r: dict, how: str) -> list:
        disk = r["ann_mb"] + r["map_mb"] + r["fps_mb"] + r["catalog_mb"]
        return [f"{r['songs']:,}", f"{r['hop'] * 1024 / 22050:.2f} s", r["dim"], f"{r['items'] / 1e6:.2f} M", how,
                r["ann_mb"], r["fps_mb"], disk / 1024, r["index_s"] + (0 if math.isnan(r["store_s"]) else r["store_s"]),
                r["index_cpu"] + (0 if math.isnan(r["store_cpu"]) else r["store_cpu"]),
                r["rss_loaded"] - r["rss_base"], r.get("rss_after_queries", float("nan")) - r["rss_base"],
                r.get("rss_anon_after_queries", float("nan")) - r.get("rss_anon_base", float("nan")), r["query_ms"],
                r.get("recall10", float("nan")), r.get("song_hit10", float("nan")), r["load_s_sha256"],
                r["load_cpu_sha256"], r.get("load_s_sampled", float("nan")), r["load_s_no_verify"]]

    headers = ["songs", "hop", "dim", "tiles", "how", "ANNOY MiB", "fingerprints MiB", "disk GiB", "build s (wall)",
               "build CPU s",
               "index RSS loaded MiB", "index RSS after 500 queries MiB", "of which anonymous MiB", "CPU ms/query tile", "recall@10", "song hit@10",
               "load s (full sha256, wall)", "load CPU s (full sha256)", "load s (size + sampled hash: the product)",
               "load s (no check)"]
    rows = [row(r, f"measured ({r['note']})" if "note" in r else "measured") for r in rows_m]
    rows += [row(r, "EXTRAPOLATED") for r in rows_x]
    res.table("Scale. build = writing the per-song fingerprints and catalog rows + Library.rebuild_index (ANNOY "
              "add, 16 trees on all threads, sha256); index RSS = RSS of a fresh process above its baseline once "
              "LibraryIndex is loaded (the .map.npy is read into memory, the .ann is memory-mapped and counts only "
              f"as far as queries touched it); CPU ms/query tile = one ANNOY search, k=10, search_k={SEARCH_K} (the "
              f"product's), after a warm-up (a 10-s listening window holds 14 tiles); load = LibraryIndex() with "
              f"each kind of check",
              headers, rows)
    res.value("base", base)
    srows = []
    for r in rows_m:
        for sk, v in r["search_k_sweep"].items():
            srows.append([f"{r['songs']:,}", f"{r['hop'] * 1024 / 22050:.2f} s", r["dim"], sk, v["recall10"],
                          v["song_hit10"], v["query_ms"]])
    res.table(f"ANNOY search_k against recall (near-duplicate synthetic queries; -1 = n_trees x k = 160; the "
              f"product uses {SEARCH_K})", ["songs", "hop", "dim", "search_k", "recall@10", "song hit@10", "CPU ms/query tile"], srows)
    res.save()


if __name__ == "__main__":
    main()
