"""The chance gate and the threshold, swept on the evaluation's own queries (both draws, all conditions).

    python research/gate_sweep.py RUN LIBDIR OUT.json [--gates 4.0/3.5 none ...]

RUN is a run folder with the shipped model's split (`research/false_accepts.py` recreates one); LIBDIR/lib<draw>
are (or become) the evaluation's libraries of that draw. Every query of `trainer.evaluate` is answered once per
gate setting (`DecideConfig.accept_landmarks` / `accept_presence`, or `none`), recording its raw score, whether it
was right and whether it is a library song, so that thresholds can be swept offline: `--report OUT.json` prints,
per gate, the threshold that keeps unknown clips accepted <= 0.5% pooled and what it names per condition.
Research tool: not part of the product (docs/decisions.md).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def answer_all(run_dir: str, libdir: str, gates: list[str]) -> list[dict]:
    from shazamlet.audio.decode import load_audio
    from shazamlet.config import IndexConfig
    from shazamlet.library import Library
    from shazamlet.model import TileEmbedder, load_model
    from shazamlet.recognition import RecognitionConfig, Recognizer
    from trainer.evaluate import CONDITIONS, EvalConfig, eval_queries, make_query, pick_sets
    from trainer.loop import Run

    run = Run(run_dir)
    emb = TileEmbedder(load_model(None))
    rate = emb.features.sample_rate
    data_root = Path(run.config.data).resolve()
    out = []
    for draw in (0, 1):
        cfg = EvalConfig(seed=draw)
        lib_songs, unknown = pick_sets(run, cfg)
        waves = {s.rel: load_audio(data_root / s.rel, rate) for s in lib_songs + unknown}
        lib = Library.open(Path(libdir) / f"lib{draw}", emb, create=True, index_cfg=IndexConfig())
        if lib.catalog.count() != len(lib_songs):
            lib.add([str(data_root / s.rel) for s in lib_songs], genre_from="folder", root=str(data_root))
        recs = {}
        for g in gates:
            decide = RecognitionConfig().decide
            if g == "none":
                decide = replace(decide, accept_landmarks=float("-inf"), accept_presence=float("-inf"))
            else:
                lm, pr = (float(x) for x in g.split("/"))
                decide = replace(decide, accept_landmarks=lm, accept_presence=pr)
            recs[g] = Recognizer(lib, emb, config=replace(RecognitionConfig(), decide=decide))
        rirs, babble, plan = eval_queries(run, lib_songs, unknown, waves, cfg, emb.features)
        started = time.time()
        for cond, seconds in CONDITIONS:
            crng = np.random.default_rng([cfg.seed, len(cond)])
            for rel, start, known in plan:
                q, _ = make_query(cond, seconds, waves[rel], start, rate, rirs, babble, crng)
                truth = str((data_root / rel).resolve())
                for g, rec in recs.items():
                    a = rec.identify_wave(q)
                    top = str(Path(a.candidates[0].path).resolve()) if a.candidates else None
                    out.append({"draw": draw, "cond": cond, "gate": g, "known": known, "right": top == truth,
                                "raw": float(a.raw_score), "accepted": a.song is not None})
            print(f"draw {draw} {cond} ({time.time() - started:.0f} s)", flush=True)
        lib.close()
    return out


def report(records: list[dict], budget: float = 0.005) -> None:
    conds = list(dict.fromkeys(r["cond"] for r in records))
    for g in dict.fromkeys(r["gate"] for r in records):
        rs = [r for r in records if r["gate"] == g]
        unk = np.array([r["raw"] for r in rs if not r["known"]])
        # the lowest threshold that keeps unknown clips accepted within the budget, pooled over both draws
        cands = np.unique(np.concatenate([unk, [1.0]]))
        t = next(x for x in cands if np.mean(unk >= x) <= budget)
        for label, thr in (("as shipped", None), (f"t={t:.3f}", t)):
            cells = []
            for c in conds:
                k = [r for r in rs if r["cond"] == c and r["known"]]
                u = [r for r in rs if r["cond"] == c and not r["known"]]
                ok = (lambda r: r["accepted"]) if thr is None else (lambda r: r["raw"] >= thr)
                cells.append(f"{c} {100 * np.mean([r['right'] and ok(r) for r in k]):.1f}/{sum(ok(r) for r in u)}")
            acc = [r for r in rs if not r["known"]]
            ok = (lambda r: r["accepted"]) if thr is None else (lambda r: r["raw"] >= thr)
            print(f"gate {g:8s} {label:11s} unknown accepted {sum(ok(r) for r in acc)}/{len(acc)} | " + " | ".join(cells))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="?")
    ap.add_argument("libdir", nargs="?")
    ap.add_argument("out")
    ap.add_argument("--gates", nargs="+", default=["4.0/3.5", "none"])
    ap.add_argument("--report", action="store_true", help="only print the table of OUT")
    a = ap.parse_args()
    if not a.report:
        Path(a.out).write_text(json.dumps(answer_all(a.run, a.libdir, a.gates)))
    report(json.loads(Path(a.out).read_text()))
