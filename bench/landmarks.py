"""Landmarks (shazamlet/landmarks.py): what keeping each song's spectral peaks costs at indexing, on
disk and per answer.

    python -m bench.landmarks [--model resources/shazamlet-default.pt] [--songs 4] [--rounds 3]

One thread, CPU time, libraries with and without peaks built interleaved round by round (both with the
app's other defaults, in-between tiles included), so the ratio shares the machine's load:

A. `Library.add` of the same songs into a fresh library: CPU ms per second of audio, and the
   fingerprint store's bytes per second of music, projected to issue 6's 10 000 songs of 4 min.
B. A 3-s clip to an answer (`Recognizer.identify_wave`): without peaks the fingerprints alone rank;
   with them the landmark check runs on the re-scored candidates, their peaks read from the song files
   (first answer) or from the library's cache (the listener's case).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from bench.between import add_once, answer_cpu_ms
from bench.common import OUT, Results
from bench.throughput import make_songs

SECONDS_10K = 10_000 * 240.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(Path(__file__).resolve().parent.parent / "resources" / "shazamlet-default.pt"))
    ap.add_argument("--songs", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=45.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clips", type=int, default=20)
    args = ap.parse_args()
    from shazamlet.config import IndexConfig
    from shazamlet.model import TileEmbedder

    embedder = TileEmbedder(args.model)
    res = Results("landmarks", "6c. Landmarks: indexing, disk, answers")
    res.note(f"Model {embedder.model.meta.name} ({Path(args.model).name}), one thread, CPU time; "
             f"{args.songs} synthesised songs of {args.seconds:.0f} s; {args.rounds} interleaved rounds (median).")
    torch.set_num_threads(1)
    label = {False: "without peaks", True: "with peaks (the app's default)"}
    with tempfile.TemporaryDirectory(dir=OUT if OUT.exists() else None) as d:
        paths = make_songs(Path(d) / "songs", args.songs, args.seconds)
        runs = {False: [], True: []}
        for r in range(args.rounds + 1):  # round 0 warms up (oneDNN builds its kernels per batch shape)
            for peaks in (False, True):
                got = add_once(paths, embedder, IndexConfig(landmarks=peaks), Path(d) / f"lib-{r}-{peaks}")
                if r:
                    runs[peaks].append(got)
        med = {p: {k: statistics.median(x[k] for x in v) for k in v[0]} for p, v in runs.items()}
        rows = []
        for peaks, m in med.items():
            per_s = m["store_bytes"] / m["audio_s"]
            rows.append([label[peaks], m["cpu_s"] / m["audio_s"] * 1000, m["cpu_s"] / med[False]["cpu_s"], per_s,
                         per_s * SECONDS_10K / 2**30])
        res.table("A. Library.add, one thread: CPU ms per second of audio, against the library without peaks (same "
                  "run); fingerprint store per second of music, and for 10 000 songs of 4 min",
                  ["library", "CPU ms per s of audio", "CPU vs without", "store bytes per s of music",
                   "store GiB at 10 000 songs"], rows)
        res.value("add_runs", {str(k): v for k, v in runs.items()})
        ans = {p: answer_cpu_ms(paths, embedder, IndexConfig(landmarks=p), Path(d) / f"lib-1-{p}", args.clips)
               for p in (False, True)}
        res.table(f"B. A 3-s clip to an answer, one thread, CPU ms (median of {args.clips} clips): peaks read from "
                  "the song files (first answer) or from the cache",
                  ["library", "first answer ms", "next answers ms"],
                  [[label[p], a["cold_ms"], a["warm_ms"]] for p, a in ans.items()])
        res.value("answers", {str(k): v for k, v in ans.items()})
    res.save()


if __name__ == "__main__":
    main()
