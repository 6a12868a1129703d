"""Goal 2 - query latency: a 3-s clip to an answer, end to end and per stage, 1 000-song library.

    python -m bench.query [--songs 1000] [--repeat 30] [--attempts 5]

The library is synthetic at the embeddings level (see bench/synthlib.py): 1 000 songs of 4 min at
the product's settings (library hop 1.02 s, 64-d fingerprints) written through the product's store,
catalog and index build. The clip is 3.1 s of synthesized music at 44.1 kHz (a microphone rate), so
every stage of the app runs: resample to 22.05 kHz, front end, encoder, ANNOY search, votes,
re-scoring of the leading songs, catalog lookups. The stages are timed one by one with the same
functions `Recognizer.identify_wave` calls, and end to end through `Recognizer.identify_wave`
itself. Baseline in the same run: the bare ResNet18 forward of one tile.

Listening: whole attempts of the product's `Listener` (answers at 3.1, 4.1, ... 10.1 s of audio)
against what the listener did before it kept the window's fingerprints: resample the newest 10 s
and run `Recognizer.identify_wave` on all of it at every answer, with the app's default threads and
with one.

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
from shazamlet.config import IndexConfig

DIM = 64  # the shipped model's fingerprints


def listening(rec, mic_rate: int, attempts: int, default_threads: int) -> tuple[list, dict]:
    """Per-answer cost of whole listening attempts: the product's Listener against re-embedding the
    newest 10 s at every answer (what the listener did before it kept the window's fingerprints), with the default threads and with one."""
    from shazamlet.audio.decode import resample
    from shazamlet.listen import Listener, ListenPolicy
    from tests.synth import STYLES, make_song

    audio = resample(make_song(11, STYLES[0], 11.0), 22_050, mic_rate)
    chunk = mic_rate // 10
    policy = ListenPolicy(sure_score=2.0, confirm_score=2.0)  # never sure: every answer up to 10 s

    def incremental() -> tuple[list, list, int]:
        listener = Listener(rec, mic_rate, policy)
        walls, cpus = [], []
        w = c = 0.0
        for i in range(0, len(audio), chunk):
            t0, c0 = time.perf_counter(), time.process_time()
            ev = listener.push(audio[i : i + chunk])
            w, c = w + time.perf_counter() - t0, c + time.process_time() - c0
            if ev is not None:
                walls.append(w)
                cpus.append(c)
                w = c = 0.0
            if listener.done:
                break
        return walls, cpus, listener.fingerprints.embedded

    def whole_window(threads: int) -> tuple[list, list, int]:
        torch.set_num_threads(threads)
        walls, cpus, tiles = [], [], 0
        for heard_s in np.arange(3.1, 10.15, 1.0):
            end = int(round(heard_s * mic_rate))
            t0, c0 = time.perf_counter(), time.process_time()
            a = rec.identify_wave(resample(audio[max(0, end - 10 * mic_rate) : end], mic_rate, 22_050))
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            tiles += a.n_tiles
        torch.set_num_threads(1)
        return walls, cpus, tiles

    ways = {"Listener (new tiles only, one thread)": lambda: incremental(),
            f"before: the newest 10 s re-embedded, {default_threads} threads (the window's default)":
                lambda: whole_window(default_threads),
            "before: the newest 10 s re-embedded, 1 thread (the CLI's)": lambda: whole_window(1)}
    got = {k: [] for k in ways}
    incremental()  # warm-up
    for _ in range(attempts):
        for name, fn in ways.items():
            got[name].append(fn())
    rows, out = [], {}
    for name, runs in got.items():
        n = len(runs[0][0])
        wall = float(np.median([sum(w) / len(w) for w, _, _ in runs])) * 1e3
        cpu = float(np.median([sum(c) / len(c) for _, c, _ in runs])) * 1e3
        last = float(np.median([c[-1] for _, c, _ in runs])) * 1e3
        tiles = runs[0][2]
        rows.append([name, n, tiles, wall, cpu, last])
        out[name] = {"answers": n, "tiles": tiles, "wall_ms_per_answer": wall, "cpu_ms_per_answer": cpu,
                     "cpu_ms_last_answer": last}
    return rows, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--attempts", type=int, default=5, help="listening attempts of 8 answers per way")
    args = ap.parse_args()
    from shazamlet.audio.decode import resample
    from shazamlet.library import Library
    from shazamlet.recognition import DecideConfig
    from shazamlet.recognition.decide import vote_for_genre
    from shazamlet.recognition.nominate import rescore_aligned, vote_for_song
    from shazamlet.model import TileEmbedder
    from shazamlet.recognition import Recognizer
    from tests.synth import STYLES, make_song

    res = Results("query", "2. Query latency")
    t = time.perf_counter()
    cfg = IndexConfig()
    built = ensure_library(args.songs, cfg.library_hop_frames, DIM)
    build_s = time.perf_counter() - t
    res.note(f"Library: {args.songs:,} synthetic songs of 4 min at the embeddings level ({built.n_items:,} tiles, "
             f"{DIM}-d, {cfg.library_hop_frames * 1024 / 22050:.2f} s hop, search_k {cfg.search_k}: the product's "
             f"settings) written through EmbeddingStore / Catalog.upsert_song / Library.rebuild_index "
             f"(built in {built.store_s + built.index_s:.0f} s wall on this busy machine; opening or building it "
             f"took this run {build_s:.1f} s). Random-weight model of the product's architecture ({DIM}-d head).")
    emb = TileEmbedder(str(random_model_path(DIM)))
    t = time.perf_counter()
    lib = Library.open(built.folder, emb)
    index = lib.index()  # loads the ANNOY file (mmap) after the size + sampled-hash check
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
        out[f"ANNOY search (k={lib.cfg.k} per tile)"] = timed(lambda: lib.neighbours(fps, tiles.start_frames), r)
        nb = lib.neighbours(fps, tiles.start_frames)
        genres = lib.genres()
        out["votes (song + alignment, genre)"] = timed(
            lambda: (vote_for_song(nb, rec.cfg.nominate.align_bin_frames), vote_for_genre(nb.nearest(DecideConfig().genre_k), genres)), r)
        votes = vote_for_song(nb, rec.cfg.nominate.align_bin_frames)
        out["re-scoring the top candidates over the whole query"] = timed(
            lambda: rescore_aligned(votes, fps, nb.query_starts, lib.song_tiles, rec.cfg.nominate.rescore_tolerance_frames,
                                    rec.cfg.nominate.rescore_top), r)
        votes = votes[: rec.cfg.decide.max_candidates]
        out["catalog lookups (songs + genres)"] = timed(
            lambda: ([lib.song(v.song_id) for v in votes], lib.genres()), r)
        out["_sum"] = {"median": sum(v["median"] for v in out.values()), "cpu": sum(v["cpu"] for v in out.values())}
        out["end to end: resample + Recognizer.identify_wave"] = timed(
            lambda: rec.identify_wave(resample(wave_mic, mic_rate, 22_050)), r)
        out["_tiles"] = len(tiles)
        return out

    s3 = stages(clip)
    s10 = stages(window)
    rows = []
    for k in s3:
        if k.startswith("_") and k != "_sum":
            continue
        name = "sum of the stages" if k == "_sum" else k
        rows.append([name, s3[k]["median"] * 1e3, s3[k]["cpu"] * 1e3, s10[k]["median"] * 1e3, s10[k]["cpu"] * 1e3])
    rows.append(["baseline: bare ResNet18 forward, 1 tile", base1["median"] * 1e3, base1["cpu"] * 1e3, "", ""])
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
    listen_rows, listen = listening(rec, mic_rate, args.attempts, default_threads)
    res.table(f"Listening: whole attempts (answers at 3.1, 4.1, ... 10.1 s of 44.1-kHz audio, 0.1-s chunks; "
              f"{args.attempts} attempts per way, interleaved). Per answer = everything `Listener.push` does, "
              f"summed over the attempt and divided by its answers", ["way", "answers per attempt",
              "tiles embedded per attempt", "wall ms per answer (loaded)", "CPU ms per answer",
              "CPU ms of the last answer (10-s window)"], listen_rows)
    res.value("listening", listen)
    e2e = s3["end to end: resample + Recognizer.identify_wave"]
    e2e10 = s10["end to end: resample + Recognizer.identify_wave"]
    res.value("e2e_3s_ms_wall", e2e["median"] * 1e3)
    res.value("e2e_3s_ms_cpu", e2e["cpu"] * 1e3)
    res.value("e2e_10s_ms_wall", e2e10["median"] * 1e3)
    res.value("e2e_10s_ms_cpu", e2e10["cpu"] * 1e3)
    res.value("e2e_over_baseline_cpu", e2e["cpu"] / base1["cpu"])
    res.value("open_s", open_s)
    res.value("stages_3s", s3)
    res.value("stages_10s", s10)

    # a song that is in the library: near-duplicate fingerprints of song s at a random moment
    rng = np.random.default_rng(1)
    n_tiles = tiles_per_song(240.0, cfg.library_hop_frames)
    hits, ann_ms, vote_ms = 0, [], []
    n_q = 50
    song_ids = {s.path.rsplit("/", 1)[-1].split(".")[0]: s.id for s in lib.songs()}
    for j in range(n_q):
        i = int(rng.integers(args.songs))
        fps_song = song_fps(0, i, n_tiles, DIM)
        t0 = int(rng.integers(n_tiles - 14))
        q = np.stack([query_from(fps_song, t0 + m, rng) for m in range(6)])  # 6 tiles ~ an 8-s window
        qs = np.arange(6) * cfg.library_hop_frames
        t = time.process_time()
        nb = lib.neighbours(q, qs)
        t1 = time.process_time()
        votes = vote_for_song(nb, rec.cfg.nominate.align_bin_frames)
        votes = rescore_aligned(votes, q, nb.query_starts, lib.song_tiles, rec.cfg.nominate.rescore_tolerance_frames,
                                rec.cfg.nominate.rescore_top)
        vote_for_genre(nb.nearest(DecideConfig().genre_k), lib.genres())
        t2 = time.process_time()
        ann_ms.append((t1 - t) * 1e3)
        vote_ms.append((t2 - t1) * 1e3)
        hits += int(votes and votes[0].song_id == song_ids[f"synth-0-{i:06d}"])
    res.table("Songs that are in the library (synthetic near-duplicate fingerprints, 6 query tiles)",
              ["queries", "top-1 song correct", "ANNOY CPU ms (median)", "votes + re-scoring + genres CPU ms (median)"],
              [[n_q, hits / n_q, float(np.median(ann_ms)), float(np.median(vote_ms))]])
    res.value("in_library_top1", hits / n_q)
    res.table("Opening the library", ["what", "s"], [["Library.open + index load (size + sampled hash, as the app opens it)",
                                                      open_s]])
    lib.close()
    del index
    res.save()


if __name__ == "__main__":
    main()
