"""Peak presence, wider nomination and the presence search (shazamlet/presence.py, IndexConfig.k,
NominateConfig.rescore_top, NominateConfig.presence_search_top): what each step of the ranking costs per answer.

    python -m bench.presence [--model shazamlet/model/shazamlet-default.pt] --songs 30 --seconds 60 --rounds 2

(with fewer songs than candidates, 20 candidates cost what 10 do: bench/all.py runs it as above)

One library of synthesised songs with the app's defaults (in-between tiles and peaks), one thread, CPU
time. A 3-s clip to an answer (`Recognizer.identify_wave`) is ranked five ways, interleaved round by
round so the ratios share the machine's load: the fingerprints alone; with the landmark check (stop
16: 10 neighbours, 10 candidates); with presence too; with 30 neighbours nominating and 20 candidates
(stop 17); and the app's default, where the presence search also nominates while an answer is
not yet accepted (most clean clips here are accepted without it). The search reads every
peak of every song (up to `presence_search_songs` songs), so its cost grows with the hours of music
in the library, unlike the rest. The first answer about its songs reads their extras from
the song files, the next ones from the library's caches (the listener's case).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from bench.between import add_once, answers_table, bench_args, interleaved_answers
from bench.common import OUT, Results
from bench.throughput import make_songs


def main() -> None:
    args = bench_args(__doc__)
    from shazamlet.config import IndexConfig
    from shazamlet.recognition import NominateConfig, RecognitionConfig, VerifyConfig
    from shazamlet.model import TileEmbedder

    embedder = TileEmbedder(args.model)
    res = Results("presence", "6d. Peak presence, wider nomination and the presence search: CPU per answer")
    res.note(f"Model {embedder.model.meta.name} ({Path(args.model).name}), one thread, CPU time; "
             f"{args.songs} synthesised songs of {args.seconds:.0f} s; {args.clips} clips x {args.rounds} rounds (median).")
    torch.set_num_threads(1)
    app_i, app_m = IndexConfig(), RecognitionConfig()

    def with_(rescore_top=20, presence_search_top=3, **verify) -> RecognitionConfig:
        return RecognitionConfig(nominate=NominateConfig(rescore_top=rescore_top, presence_search_top=presence_search_top),
                                 verify=replace(VerifyConfig(), **verify))

    before = with_(rescore_top=10, landmark_weight=0.35, presence_weight=0.0)
    ways = {
        "fingerprints only (k 10, 10 candidates)": (replace(app_i, k=10), with_(rescore_top=10, presence_search_top=3, landmark_weight=0.0, presence_weight=0.0)),
        "+ landmarks (stop 16)": (replace(app_i, k=10), before),
        "+ presence (k 10, 10 candidates)": (replace(app_i, k=10), with_(rescore_top=10, presence_search_top=0)),
        "+ presence, k 30, 20 candidates (previous release)": (app_i, with_(presence_search_top=0)),
        "+ presence search (the app's default)": (app_i, app_m),
    }
    with tempfile.TemporaryDirectory(dir=OUT if OUT.exists() else None) as d:
        paths = make_songs(Path(d) / "songs", args.songs, args.seconds)
        add_once(paths, embedder, app_i, Path(d) / "lib")
        med = interleaved_answers(paths, Path(d) / "lib", {label: (embedder, icfg, mcfg) for label, (icfg, mcfg) in ways.items()},
                                  args.clips, args.rounds)
        answers_table(res, med, "the fingerprints alone", "ranking", "fingerprints only")
        # songs not in the library: no answer is accepted, so every one pays the whole search (the
        # listener's case while an unknown song plays)
        unknown = make_songs(Path(d) / "unknown", max(4, args.songs // 5), args.seconds, first_seed=1000)
        unsure = {label: ways[label] for label in ("+ presence, k 30, 20 candidates (previous release)",
                                                    "+ presence search (the app's default)")}
        med_u = interleaved_answers(unknown, Path(d) / "lib", {label: (embedder, icfg, mcfg) for label, (icfg, mcfg) in unsure.items()},
                                    args.clips, args.rounds)
        base = med_u[next(iter(med_u))]
        hours = args.songs * args.seconds / 3600
        res.table(f"A 3-s clip of a song not in the library (every answer unsure), one thread, CPU ms (median); "
                  f"the search reads {hours * 60:.0f} min of music",
                  ["ranking", "next answers ms", "vs without the search", "extra ms per hour of music searched"],
                  [[k, m["warm_ms"], m["warm_ms"] / base["warm_ms"], (m["warm_ms"] - base["warm_ms"]) / hours]
                   for k, m in med_u.items()])
        res.value("unsure_answers", med_u)
    res.save()


if __name__ == "__main__":
    main()
