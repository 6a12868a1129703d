"""Recognition settings compared on the evaluation's own queries (both draws, every condition), with the CPU
each costs: whether a stage can go is decided here (docs/decisions.md).

    python research/sweep.py RUN LIBDIR OUT.json [--model M.pt] \
        --variant shipped \
        --variant "no-presence-search:nominate.presence_search_top=0" \
        --variant "no-speeds:verify.speeds=()" \
        --variant "gate-off:decide.accept_landmarks=-inf,decide.accept_presence=-inf"
    python research/sweep.py --report OUT.json

RUN is a run folder whose split the model was evaluated on (its `eval.json` draws; `research/false_accepts.py`
recreates one); LIBDIR/lib<draw> are (or become) the evaluation's libraries of that draw for this model.
Every query of `trainer.evaluate` is answered once per variant, recording its raw score, whether the top
candidate was right, whether it is a library song and the thread CPU of the answer, so thresholds can be
swept offline: the report prints, per variant, the shipped threshold's row and the row of the threshold that
keeps unknown clips accepted <= 0.5% pooled. Research tool: not part of the product.
"""

from __future__ import annotations

import argparse
import ast
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def parse_variant(text: str):
    """`NAME[:stage.key=value,...]` -> (name, RecognitionConfig). Values are Python literals (`()`, `0.5`,
    `-inf`); a bare word is taken as a string."""
    from shazamlet.recognition import RecognitionConfig

    name, _, settings = text.partition(":")
    config = RecognitionConfig()
    for item in filter(None, settings.split(",")):
        key, value = item.split("=", 1)
        stage, field = key.strip().split(".")
        part = getattr(config, stage)
        if not hasattr(part, field):
            raise SystemExit(f"no setting {stage}.{field}")
        value = value.strip()
        parsed = float(value) if value in ("inf", "-inf") else _literal(value)
        config = replace(config, **{stage: replace(part, **{field: parsed})})
    return name, config


def _literal(value: str):
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def answer_all(run_dir: str, libdir: str, variants: list[str], model: str | None) -> list[dict]:
    import torch

    from shazamlet.audio.decode import load_audio
    from shazamlet.config import IndexConfig
    from shazamlet.library import Library
    from shazamlet.model import TileEmbedder, load_model
    from shazamlet.recognition import Recognizer
    from trainer.evaluate import CONDITIONS, EvalConfig, eval_queries, make_query, pick_sets
    from trainer.loop import Run

    torch.set_num_threads(1)  # as the listener answers, and CPU per answer means one core
    run = Run(run_dir)
    emb = TileEmbedder(load_model(model))
    rate = emb.features.sample_rate
    data_root = Path(run.config.data).resolve()
    configs = dict(parse_variant(v) for v in variants)
    out = []
    for draw in (0, 1):
        cfg = EvalConfig(seed=draw)
        lib_songs, unknown = pick_sets(run, cfg)
        waves = {s.rel: load_audio(data_root / s.rel, rate) for s in lib_songs + unknown}
        lib = Library.open(Path(libdir) / f"lib{draw}", emb, create=True, index_cfg=IndexConfig())
        if lib.catalog.count() != len(lib_songs):
            lib.add([str(data_root / s.rel) for s in lib_songs], genre_from="folder", root=str(data_root))
        recs = {name: Recognizer(lib, emb, config=c) for name, c in configs.items()}
        rirs, babble, plan = eval_queries(run, lib_songs, unknown, waves, cfg, emb.features)
        started = time.time()
        for cond, seconds in CONDITIONS:
            crng = np.random.default_rng([cfg.seed, len(cond)])
            for rel, start, known in plan:
                q, _ = make_query(cond, seconds, waves[rel], start, rate, rirs, babble, crng)
                truth = str((data_root / rel).resolve())
                for name, rec in recs.items():
                    c0 = time.thread_time()
                    a = rec.identify_wave(q)
                    cpu_ms = (time.thread_time() - c0) * 1000
                    top = str(Path(a.candidates[0].path).resolve()) if a.candidates else None
                    out.append({"draw": draw, "cond": cond, "variant": name, "song": rel, "known": known, "right": top == truth,
                                "raw": float(a.raw_score), "accepted": a.song is not None, "cpu_ms": cpu_ms})
            print(f"draw {draw} {cond} ({time.time() - started:.0f} s)", flush=True)
        lib.close()
    return out


def report(records: list[dict], budget: float = 0.005) -> None:
    conds = list(dict.fromkeys(r["cond"] for r in records))
    print("cells: named (accepted and right) % of known clips / top-1 % / unknown clips accepted; CPU ms median / p95")
    for v in dict.fromkeys(r["variant"] for r in records):
        rs = [r for r in records if r["variant"] == v]
        shared = [r for r in rs if r["known"] is None]  # a library song's audio: not scored, shown apart
        if shared:
            print(f"{v:20s} queries of unknown songs made of a library song's audio: {len(shared)}, "
                  f"accepted {sum(r['accepted'] for r in shared)} (not counted below)")
        rs = [r for r in rs if r["known"] is not None]
        unk = np.array([r["raw"] for r in rs if not r["known"]])
        # the lowest threshold that keeps unknown clips accepted within the budget, pooled over both draws
        cands = np.unique(np.concatenate([unk, [1.0]]))
        t = next(x for x in cands if np.mean(unk >= x) <= budget)
        cpu = [r["cpu_ms"] for r in rs]
        cost = f"CPU {np.median(cpu):.0f} / {np.percentile(cpu, 95):.0f} ms"
        for label, thr in (("as shipped", None), (f"t={t:.3f}", t)):
            ok = (lambda r: r["accepted"]) if thr is None else (lambda r: r["raw"] >= thr)
            cells = []
            for c in conds:
                k = [r for r in rs if r["cond"] == c and r["known"]]
                u = [r for r in rs if r["cond"] == c and not r["known"]]
                cells.append(f"{c} {100 * np.mean([r['right'] and ok(r) for r in k]):.1f}/"
                             f"{100 * np.mean([r['right'] for r in k]):.1f}/{sum(ok(r) for r in u)}")
            acc = [r for r in rs if not r["known"]]
            print(f"{v:20s} {label:11s} unknown accepted {sum(ok(r) for r in acc)}/{len(acc)} | "
                  + " | ".join(cells) + (f" | {cost}" if label == "as shipped" else ""))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="?")
    ap.add_argument("libdir", nargs="?")
    ap.add_argument("out")
    ap.add_argument("--model", help="the model file (default: the bundled one)")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME[:stage.key=value,...] (repeat); default: the shipped settings only")
    ap.add_argument("--report", action="store_true", help="only print the table of OUT")
    a = ap.parse_args()
    if not a.report:
        for v in a.variant:
            parse_variant(v)  # a typo fails before an hour of answers
        Path(a.out).write_text(json.dumps(answer_all(a.run, a.libdir, a.variant or ["shipped"], a.model)))
    report(json.loads(Path(a.out).read_text()))
