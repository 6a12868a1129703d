"""`python -m trainer export RUN`: the run's encoder as the app's model file.

With the tile fingerprint `tune-tiles` trained appended (`--tile-dim`, `--tile-weight`, `--tile-residual`).
The thresholds calibrated by `evaluate` of the same encoder (RUN/eval<variant>/eval.json) go into
ModelMeta: `threshold` for answers the fingerprints rank alone, `landmark_threshold` for those the
landmark check ranked. Weights are stored as float16 by default (half the size), checked against the
float32 encoder's fingerprints (`half_precision_check`). The file holds the encoder's ONNX graph, which
the app runs on a CPU (`shazamlet.model.graph`; `add_graph` writes one into an existing file).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from shazamlet.model import save_model
from trainer.evaluate import encoder_from_run, eval_folder
from trainer.loop import Run
from trainer.variant import Variant


def export_run(run_dir: str | Path, to: str | Path, half: bool = True,
               variant: Variant = Variant(), graph: bool = True) -> Path:
    """Write the model file; the threshold comes from the evaluation of the same variant of the
    encoder (run `evaluate` with the same `--tile-dim`, `--tile-weight` and `--tile-residual` first).
    With `graph` (~15 s) it holds the encoder's ONNX graph, which the app runs on a CPU."""
    run = Run(run_dir)
    encoder, meta = encoder_from_run(run, variant)
    ev = eval_folder(run, None, variant) / "eval.json"
    threshold = 0.5
    meta_extra = {}
    if ev.exists():
        result = json.loads(ev.read_text())
        measured, now = _tuned_steps(result), meta.extra.get("tile_projection", {}).get("tuned_steps")
        if variant.tile_dim and measured != now:
            raise StaleEvaluation(
                f"{ev} measured the tile projection after {measured or 'an unknown number of'} steps of "
                f"`tune-tiles`, it has {now} now: evaluate again (the threshold is calibrated on what was evaluated)")
        if result.get("step") is not None and result["step"] != meta.extra.get("step"):
            raise StaleEvaluation(f"{ev} measured step {result['step']}, the run is at step {meta.extra.get('step')} "
                                  "now: evaluate again (the threshold is calibrated on what was evaluated)")
        threshold = result["threshold"]
        if "fingerprint_threshold" in result:  # evaluated with the peak checks (the app's default)
            threshold, meta.landmark_threshold = result["fingerprint_threshold"], result["threshold"]
            meta.extra["ranking"] = result.get("ranking", "")  # what the evaluation's scores were
        meta_extra = {"eval": {c: {k: v for k, v in m.items() if not k.startswith("n_")}
                               for c, m in result["conditions"].items()}}
    else:
        others = sorted(p.parent.name for p in Path(run.folder).glob("eval*/eval.json"))
        hint = f"; this run's evaluations: {', '.join(others)}" if others else ""
        print(f"warning: {ev} does not exist; threshold left at {threshold} (run `evaluate` first){hint}")
    meta.threshold = float(threshold)
    meta.extra.update(meta_extra)
    meta.extra["precision"] = "float16" if half else "float32"
    if half:  # the check reads the float16 file
        save_model(to, encoder, meta, half=half)
        check = half_precision_check(run, encoder, to)
        print("float16 check:", json.dumps(check))
        meta.extra["fp16_check"] = check
    save_model(to, encoder, meta, half=half, graph=graph)
    return Path(to)


def add_graph(model: Path, to: Path | None = None) -> Path:
    """Rewrite a model file with its encoder's ONNX graph: the same weights and description, so the same
    fingerprints (`fingerprints_sha256`) and libraries."""
    from shazamlet.model import load_model

    loaded = load_model(model)
    save_model(to or model, loaded.encoder, loaded.meta, half=loaded.half, graph=True)
    return to or model


class StaleEvaluation(ValueError):
    """The evaluation that would give the threshold measured another state of the encoder."""


def _tuned_steps(result: dict) -> int | None:
    return (result.get("tile_projection") or {}).get("tuned_steps")


@torch.no_grad()
def half_precision_check(run: Run, encoder, path: str | Path, n: int = 256) -> dict:
    """Fingerprints of the saved float16 file vs the float32 encoder on tiles of test songs."""
    from shazamlet.model import load_model

    tiles = run_tiles(run, n, side="test")
    encoder.eval()
    f32 = encoder.fingerprint(tiles)
    f16 = load_model(path).encoder.fingerprint(tiles)
    cos = (f32 * f16).sum(1)
    same = ((f16 @ f32.t()).argmax(1) == (f32 @ f32.t()).argmax(1)).float().mean()  # same nearest tile
    return {"tiles": n, "min_cosine": round(float(cos.min()), 5), "mean_cosine": round(float(cos.mean()), 6),
            "nearest_tile_agreement": float(same)}


def run_tiles(run, n: int, seed: int = 0, side: str = "train") -> torch.Tensor:
    """`n` clean tiles of the run's songs of one split side, the same ones for the same seed."""
    from trainer.augment import to_tiles
    from trainer.cache import SpectrogramCache
    from trainer.data import TileSampler

    cache = SpectrogramCache(run.info["cache"])
    songs = run.songs(side) or run.songs("train")
    sampler = TileSampler(cache, songs, run.genres, cache.features.tile_frames, context=0, shift=0)
    return to_tiles(sampler.sample(n, np.random.default_rng(seed)).segments, cache.features.top_db)
