"""`python -m trainer export RUN`: the run's encoder as the app's model file.

The threshold calibrated by `evaluate` (RUN/eval/eval.json) goes into ModelMeta.threshold. Weights are
stored as float16 by default (half the size; `evaluate --model` checks the accuracy holds).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from shazamlet.model import save_model
from trainer.evaluate import run_meta
from trainer.loop import Run
from trainer.objectives import build_modules


def export_run(run_dir: str | Path, to: str | Path = "resources/shazamlet-default.pt", half: bool = True) -> Path:
    run = Run(run_dir)
    ck = torch.load(run.checkpoint_path, map_location="cpu", weights_only=True)
    mods = build_modules(run.config.objective, len(run.genres))
    mods.load_state_dict(ck["modules"])
    ev = Path(run.folder) / "eval" / "eval.json"
    threshold = 0.5
    meta_extra = {}
    if ev.exists():
        result = json.loads(ev.read_text())
        threshold = result["threshold"]
        meta_extra = {"eval": {c: {k: v for k, v in m.items() if not k.startswith("n_")}
                               for c, m in result["conditions"].items()}}
    else:
        print(f"warning: {run.folder} has no evaluation; threshold left at {threshold} (run `evaluate` first)")
    meta = run_meta(run, ck, threshold)
    meta.extra.update(meta_extra)
    meta.extra["precision"] = "float16" if half else "float32"
    save_model(to, mods["encoder"], meta, half=half)
    return Path(to)
