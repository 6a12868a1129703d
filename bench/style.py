"""The style head (shazamlet/model/style.py): what naming the genre with it costs per answer.

    python -m bench.style [--model resources/shazamlet-default.pt] --songs 30 --seconds 60 --rounds 2

One library of synthesised songs with the app's defaults, one thread, CPU time. A 3-s clip to an answer
(`Recognizer.identify_wave`) with the model file as shipped (the style head names the genre) and with
the same encoder without its style head (the genre head on the embedding does), interleaved round by
round so the ratio shares the machine's load. The fingerprints are the same, so one library serves both.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import torch

from bench.between import add_once, answer_cpu_ms, bench_args
from bench.common import OUT, Results
from bench.throughput import make_songs


def main() -> None:
    args = bench_args(__doc__)
    from shazamlet.config import IndexConfig
    from shazamlet.model import TileEmbedder, load_model

    shipped = TileEmbedder(args.model)
    if shipped.model.encoder.style_head is None:
        raise SystemExit(f"{args.model} has no style head: nothing to compare")
    without = load_model(args.model)
    without.encoder.attach_style_head(None)
    ways = {"genre head on the embedding (no style head)": TileEmbedder(without),
            "style head (the shipped file)": shipped}
    res = Results("style", "6e. Style head: CPU per answer")
    res.note(f"Model {shipped.model.meta.name} ({Path(args.model).name}), one thread, CPU time; "
             f"{args.songs} synthesised songs of {args.seconds:.0f} s; {args.clips} clips x {args.rounds} rounds (median).")
    torch.set_num_threads(1)
    icfg = IndexConfig()
    with tempfile.TemporaryDirectory(dir=OUT if OUT.exists() else None) as d:
        paths = make_songs(Path(d) / "songs", args.songs, args.seconds)
        add_once(paths, shipped, icfg, Path(d) / "lib")
        runs = {label: [] for label in ways}
        for r in range(args.rounds + 1):  # round 0 warms up
            for label, embedder in ways.items():
                got = answer_cpu_ms(paths, embedder, icfg, Path(d) / "lib", args.clips)
                if r:
                    runs[label].append(got)
        med = {label: {k: statistics.median(x[k] for x in v) for k in v[0]} for label, v in runs.items()}
        base = med[next(iter(ways))]
        res.table("A 3-s clip to an answer, one thread, CPU ms (median); against the genre head (same run)",
                  ["genre from", "first answer ms", "next answers ms", "next vs genre head"],
                  [[k, m["cold_ms"], m["warm_ms"], m["warm_ms"] / base["warm_ms"]] for k, m in med.items()])
        res.value("answers", med)
    res.save()


if __name__ == "__main__":
    main()
