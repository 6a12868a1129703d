"""The style head (shazamlet/model/style.py): what naming the genre with it costs per answer.

    python -m bench.style [--model shazamlet/model/shazamlet-default.pt] --songs 30 --seconds 60 --rounds 2

One library of synthesised songs with the app's defaults, one thread, CPU time. A 3-s clip to an answer
(`Recognizer.identify_wave`) with the model file as shipped (the style head names the genre) and with
the same encoder without its style head (the genre head on the embedding does), interleaved round by
round so the ratio shares the machine's load. The fingerprints are the same, so one library serves both.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from bench.between import add_once, answers_table, bench_args, interleaved_answers
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
        med = interleaved_answers(paths, Path(d) / "lib", {label: (e, icfg, None) for label, e in ways.items()},
                                  args.clips, args.rounds)
        answers_table(res, med, "the genre head", "genre from", "genre head")
    res.save()


if __name__ == "__main__":
    main()
