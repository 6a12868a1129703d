"""In-between tiles (shazamlet/library/between.py): what they cost at indexing, on disk and per answer.

    python -m bench.between [--model shazamlet/model/shazamlet-default.pt] [--songs 4] [--rounds 3]

Needs a model with a tile projection (the shipped one): the random bench model has none, and the
in-between tiles are only its projection. Everything is measured with one thread, as CPU time,
with and without in-between tiles interleaved round by round, so the ratio shares the machine's load:

A. `Library.add` of the same songs into a fresh library: CPU seconds per second of audio, and the
   fingerprint store's bytes per indexed tile, projected to issue 6's 10 000 songs of 4 min.
B. A 3-s clip to an answer (`Recognizer.identify_wave`) against that library, in-between tiles read
   from the song files (first answer) and from the library's cache (the listener's case).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import OUT, Results
from shazamlet.model.checkpoint import BUNDLED_MODEL
from bench.throughput import make_songs

TILES_10K = 2_320_000  # 10 000 songs of 4 min at the 1.02-s hop (bench/scale.py)


def add_once(paths: list[Path], embedder, index_cfg, folder: Path) -> dict:
    """One `Library.add` of `paths` into a fresh library: CPU seconds, audio seconds, tiles, store bytes."""
    from shazamlet.library import Library

    lib = Library.open(folder, embedder, index_cfg=index_cfg)
    c = time.process_time()
    report = lib.add([str(p) for p in paths], workers=1)
    cpu = time.process_time() - c
    store = sum(f.stat().st_size for f in (folder / "fingerprints").glob("*.npz"))
    out = {"cpu_s": cpu, "audio_s": report.audio_seconds, "tiles": lib.index_record().n_items, "store_bytes": store}
    lib.close()
    return out


def answer_cpu_ms(paths: list[Path], embedder, index_cfg, folder: Path, clips: int, match_cfg=None) -> dict:
    """Median CPU ms of a 3-s clip to an answer: the first about its songs (their extras read from the
    song files) and the next (from the library's caches). `match_cfg`: the app's RecognitionConfig if None."""
    import soundfile as sf

    from shazamlet.recognition import RecognitionConfig
    from shazamlet.library import Library
    from shazamlet.recognition import Recognizer

    lib = Library.open(folder, embedder, index_cfg=index_cfg)
    rec = Recognizer(lib, embedder, config=match_cfg or RecognitionConfig())
    rng = np.random.default_rng(0)
    waves = [sf.read(p, dtype="float32")[0] for p in paths]
    rec.identify_wave(waves[0][: 3 * 22_050])  # warm-up
    cold, warm = [], []
    for i in range(clips):
        w = waves[i % len(waves)]
        s = int(rng.integers(0, len(w) - 3 * 22_050))
        clip = w[s : s + 3 * 22_050]
        lib.clear_caches()  # the first answer about these songs reads their files
        c = time.process_time()
        rec.identify_wave(clip)
        cold.append((time.process_time() - c) * 1000)
        c = time.process_time()
        rec.identify_wave(clip)
        warm.append((time.process_time() - c) * 1000)
    lib.close()
    return {"cold_ms": statistics.median(cold), "warm_ms": statistics.median(warm)}


def interleaved_answers(paths: list[Path], folder: Path, ways: dict, clips: int, rounds: int) -> dict:
    """`answer_cpu_ms` of each way (label -> (embedder, IndexConfig, RecognitionConfig or None)) on the library in
    `folder`, interleaved round by round so the ratios share the machine's load (round 0 warms up); the
    median of each measure over the rounds, by label."""
    runs = {label: [] for label in ways}
    for r in range(rounds + 1):
        for label, (embedder, icfg, mcfg) in ways.items():
            got = answer_cpu_ms(paths, embedder, icfg, folder, clips, mcfg)
            if r:
                runs[label].append(got)
    return {label: {k: statistics.median(x[k] for x in v) for k in v[0]} for label, v in runs.items()}


def answers_table(res, med: dict, title: str, what: str, baseline: str) -> None:
    """`interleaved_answers`' medians as a table, each against the first way (same run)."""
    base = med[next(iter(med))]
    res.table(f"A 3-s clip to an answer, one thread, CPU ms (median); against {title} (same run)",
              [what, "first answer ms", "next answers ms", f"next vs {baseline}"],
              [[k, m["cold_ms"], m["warm_ms"], m["warm_ms"] / base["warm_ms"]] for k, m in med.items()])
    res.value("answers", med)


def bench_args(doc: str) -> argparse.Namespace:
    """The options of an A/B library bench (this one, bench/landmarks.py)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--model", default=str(BUNDLED_MODEL))
    ap.add_argument("--songs", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=45.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clips", type=int, default=20)
    return ap.parse_args()


def compare_libraries(res: Results, embedder, args: argparse.Namespace, configs: dict[str, object]) -> dict:
    """Libraries of the same synthesised songs under each IndexConfig of `configs` (label -> config; the
    first is the baseline), built interleaved round by round with one thread: table A (indexing CPU and
    store), table B (answer CPU). Returns the median measures per label."""
    res.note(f"Model {embedder.model.meta.name} ({Path(args.model).name}), one thread, CPU time; "
             f"{args.songs} synthesised songs of {args.seconds:.0f} s; {args.rounds} interleaved rounds (median).")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(dir=OUT if OUT.exists() else None) as d:
        paths = make_songs(Path(d) / "songs", args.songs, args.seconds)
        runs = {label: [] for label in configs}
        for r in range(args.rounds + 1):  # round 0 warms up (oneDNN builds its kernels per batch shape)
            for i, (label, cfg) in enumerate(configs.items()):
                got = add_once(paths, embedder, cfg, Path(d) / f"lib-{r}-{i}")
                if r:
                    runs[label].append(got)
        med = {label: {k: statistics.median(x[k] for x in v) for k in v[0]} for label, v in runs.items()}
        base = med[next(iter(configs))]
        rows = []
        for label, m in med.items():
            per_tile, per_s = m["store_bytes"] / m["tiles"], m["store_bytes"] / m["audio_s"]
            rows.append([label, m["cpu_s"] / m["audio_s"] * 1000, m["cpu_s"] / base["cpu_s"], per_tile, per_s,
                         per_tile * TILES_10K / 2**30])
        res.table("A. Library.add, one thread: CPU ms per second of audio, against the first library (same run); "
                  "fingerprint store per indexed tile and per second of music, and for 10 000 songs of 4 min (2.32 M tiles)",
                  ["library", "CPU ms per s of audio", "CPU vs first", "store bytes per tile", "store bytes per s of music",
                   "store GiB at 10 000 songs"], rows)
        res.value("add_runs", runs)
        ans = {label: answer_cpu_ms(paths, embedder, cfg, Path(d) / f"lib-1-{i}", args.clips)
               for i, (label, cfg) in enumerate(configs.items())}
        res.table(f"B. A 3-s clip to an answer, one thread, CPU ms (median of {args.clips} clips): what the library "
                  "keeps besides the index read from the song files (first answer) or from its cache",
                  ["library", "first answer ms", "next answers ms"], [[k, a["cold_ms"], a["warm_ms"]] for k, a in ans.items()])
        res.value("answers", ans)
    res.save()
    return med


def main() -> None:
    args = bench_args(__doc__)
    from shazamlet.config import IndexConfig
    from shazamlet.model import TileEmbedder

    embedder = TileEmbedder(args.model)
    if embedder.tile_layout is None:
        raise SystemExit(f"{args.model} has no tile projection: it keeps no in-between tiles")
    res = Results("between", "6b. In-between tiles: indexing, disk, answers")
    compare_libraries(res, embedder, args, {"without in-between tiles": IndexConfig(between_tiles=False),
                                            "with in-between tiles": IndexConfig(between_tiles=True)})


if __name__ == "__main__":
    main()
