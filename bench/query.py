"""Goal 2 - query latency: a 3-s clip to an answer, end to end and per stage, 1 000-song library.

    python -m bench.query [--songs 1000] [--repeat 30]

The library is synthetic at the embeddings level (see bench/synthlib.py): 1 000 songs of 4 min
written through the product's store, catalog and index build. The clip is 3.1 s of synthesized
music at 44.1 kHz (a microphone rate), so every stage of the app runs: resample to 22.05 kHz, front
end, encoder, ANNOY search, votes, catalog lookups. The stages are timed one by one with the same
functions `Recognizer.identify_wave` calls, and end to end through `Recognizer.identify_wave`
itself. Baseline in the same run: the bare ResNet18 forward of one tile.

Timings are taken with one torch thread and given as wall time (on this loaded machine) and as the
process's CPU time, which is what the query costs on an idle core (see bench/throughput.py: a niced
two-thread forward on a busy machine mostly measures the scheduler). A one-tile query gains little
from a second thread anyway.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench.common import Results, random_model_path, timed
from bench.synthlib import ensure_library, query_from, song_fps, tiles_per_song



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    from shazamlet.audio.decode import resample
    from shazamlet.library import Library
    from shazamlet.matcher import rescore_aligned, vote_for_genre, vote_for_song
    from shazamlet.model import TileEmbedder
    from shazamlet.recognizer import Recognizer
    from tests.synth import STYLES, make_song

    res = Results("query", "2. Query latency")
    t = time.perf_counter()
    built = ensure_library(args.songs)
    build_s = time.perf_counter() - t
    res.note(f"Library: {args.songs:,} synthetic songs of 4 min at the embeddings level ({built.n_items:,} tiles, "
             f"128-d, 0.51 s hop) written through EmbeddingStore / Catalog.upsert_song / Library.rebuild_index "
             f"(built in {built.store_s + built.index_s:.0f} s wall on this busy machine; this run reused it: "
             f"{build_s:.1f} s). Random-weight model of the product's architecture.")
    emb = TileEmbedder(str(random_model_path()))
    t = time.perf_counter()
    lib = Library.open(built.folder, emb)
    index = lib.index()  # loads the ANNOY file (mmap) after a full sha256 check
    open_s = time.perf_counter() - t
    rec = Recognizer(lib, emb)
    mic_rate = 44_100
    song = make_song(7, STYLES[2], 12.0)
    clip22 = song[22_050 * 2: 22_050 * 2 + int(3.1 * 22_050)]
    clip = resample(clip22, 22_050, mic_rate)  # what the microphone hands over
    window22 = song[: 10 * 22_050]
    window = resample(window22, 22_050, mic_rate)

    # baseline: the bare ResNet18 on one tile
    default_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    trunk = emb.model.encoder.trunk
    one = torch.rand(1, 1, 64, 64)
    with torch.inference_mode():
        base1 = timed(lambda: trunk(one), repeat=args.repeat, warmup=3)

    def stages(wave_mic: np.ndarray) -> dict[str, dict]:
        out = {}
        r = args.repeat
        out["resample 44.1 -> 22.05 kHz"] = timed(lambda: resample(wave_mic, mic_rate, 22_050), r)
        w = resample(wave_mic, mic_rate, 22_050)
        if len(w) < emb.features.tile_samples:
            w = np.pad(w, (0, emb.features.tile_samples - len(w)))
        hop = lib.cfg.query_hop_frames
        out["front end (log-mel + tiles)"] = timed(lambda: emb.frontend.tiles(w, hop), r)
        tiles = emb.frontend.tiles(w, hop)
        out["encoder"] = timed(lambda: emb.embed(tiles.tiles), r)
        fps = emb.embed(tiles.tiles)
        out["ANNOY search (k=10 per tile)"] = timed(lambda: lib.neighbours(fps, tiles.start_frames), r)
        nb = lib.neighbours(fps, tiles.start_frames)
        genres = lib.genres()
        out["votes (song + alignment, genre)"] = timed(
            lambda: (vote_for_song(nb, rec.cfg.align_bin_frames), vote_for_genre(nb, genres)), r)
        votes = vote_for_song(nb, rec.cfg.align_bin_frames)
        out["re-scoring the top candidates over the whole query"] = timed(
            lambda: rescore_aligned(votes, fps, nb.query_starts, lib.song_tiles, rec.cfg.rescore_tolerance_frames,
                                    rec.cfg.rescore_top), r)
        votes = votes[: rec.cfg.max_candidates]
        out["catalog lookups (songs + genres)"] = timed(
            lambda: ([lib.song(v.song_id) for v in votes], lib.genres()), r)
        out["_sum"] = {"median": sum(v["median"] for v in out.values()), "cpu": sum(v["cpu"] for v in out.values())}
        out["end to end: resample + Recognizer.identify_wave"] = timed(
            lambda: rec.identify_wave(resample(wave_mic, mic_rate, 22_050)), r)
        out["_tiles"] = len(tiles)
        return out

    s3 = stages(clip)
    s10 = stages(window)
    # what an answer would embed if the listener kept the fingerprints of the rolling window: the
    # ~2 tiles that start in the last second (query hop 0.51 s)
    two_tiles = emb.frontend.tiles(window22, lib.cfg.query_hop_frames).tiles[-2:]
    new2 = timed(lambda: emb.embed(two_tiles), args.repeat)
    rows = []
    for k in s3:
        if k.startswith("_") and k != "_sum":
            continue
        name = "sum of the stages" if k == "_sum" else k
        rows.append([name, s3[k]["median"] * 1e3, s3[k]["cpu"] * 1e3, s10[k]["median"] * 1e3, s10[k]["cpu"] * 1e3])
    rows.append(["baseline: bare ResNet18 forward, 1 tile", base1["median"] * 1e3, base1["cpu"] * 1e3, "", ""])
    rows.append(["encoder, only the 2 newest tiles (a listener that keeps the window's fingerprints)", "", "",
                 new2["median"] * 1e3, new2["cpu"] * 1e3])
    res.table(f"Query latency (ms, median of {args.repeat}, one torch thread); 3.1-s clip = {s3['_tiles']} tile, "
              f"10-s window = {s10['_tiles']} tiles; CPU ms = the latency on an idle core",
              ["stage", "3-s clip, wall (loaded)", "3-s clip, CPU ms", "10-s window, wall (loaded)",
               "10-s window, CPU ms"], rows)
    # the app's default: as many torch threads as cores
    torch.set_num_threads(default_threads)
    two = timed(lambda: rec.identify_wave(resample(clip, mic_rate, 22_050)), max(5, args.repeat // 3))
    torch.set_num_threads(1)
    res.table(f"The same 3-s clip end to end with the app's default of {default_threads} torch threads "
              f"(median of {two['n']}) against one thread",
              ["threads", "wall ms (loaded)", "CPU ms (all threads)"],
              [[default_threads, two["median"] * 1e3, two["cpu"] * 1e3],
               [1, s3["end to end: resample + Recognizer.identify_wave"]["median"] * 1e3,
                s3["end to end: resample + Recognizer.identify_wave"]["cpu"] * 1e3]])
    res.value("e2e_3s_default_threads", two)
    e2e = s3["end to end: resample + Recognizer.identify_wave"]
    e2e10 = s10["end to end: resample + Recognizer.identify_wave"]
    res.value("e2e_3s_ms_wall", e2e["median"] * 1e3)
    res.value("e2e_3s_ms_cpu", e2e["cpu"] * 1e3)
    res.value("e2e_10s_ms_wall", e2e10["median"] * 1e3)
    res.value("e2e_10s_ms_cpu", e2e10["cpu"] * 1e3)
    res.value("e2e_over_baseline_cpu", e2e["cpu"] / base1["cpu"])
    res.value("encoder_2_new_tiles", new2)
    res.value("open_s", open_s)
    res.value("stages_3s", s3)
    res.value("stages_10s", s10)

    # a song that is in the library: near-duplicate fingerprints of song s at a random moment
    rng = np.random.default_rng(1)
    n_tiles = tiles_per_song(240.0, 11)
    hits, ann_ms, vote_ms = 0, [], []
    n_q = 50
    song_ids = {s.path.rsplit("/", 1)[-1].split(".")[0]: s.id for s in lib.songs()}
    for j in range(n_q):
        i = int(rng.integers(args.songs))
        fps_song = song_fps(0, i, n_tiles, 128)
        t0 = int(rng.integers(n_tiles - 14))
        q = np.stack([query_from(fps_song, t0 + m, rng) for m in range(6)])  # 6 tiles ~ a 5.6-s window
        qs = np.arange(6) * 11
        t = time.process_time()
        nb = lib.neighbours(q, qs)
        t1 = time.process_time()
        votes = vote_for_song(nb, rec.cfg.align_bin_frames)
        vote_for_genre(nb, lib.genres())
        t2 = time.process_time()
        ann_ms.append((t1 - t) * 1e3)
        vote_ms.append((t2 - t1) * 1e3)
        hits += int(votes and votes[0].song_id == song_ids[f"synth-0-{i:06d}"])
    res.table("Songs that are in the library (synthetic near-duplicate fingerprints, 6 query tiles)",
              ["queries", "top-1 song correct", "ANNOY CPU ms (median)", "votes + genres CPU ms (median)"],
              [[n_q, hits / n_q, float(np.median(ann_ms)), float(np.median(vote_ms))]])
    res.value("in_library_top1", hits / n_q)
    res.table("Opening the library", ["what", "s"], [["Library.open + index load incl. full sha256 of the index files",
                                                      open_s]])
    lib.close()
    del index
    res.save()


if __name__ == "__main__":
    main()
