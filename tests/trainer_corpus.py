"""A tiny GTZAN-style corpus for the trainer's tests: gated-sine songs in genre folders, a noise
folder (speech, crowd, room impulse responses) and their spectrogram cache; and runs made on it
(`make_run`: one step of one epoch, batches of 4, so training, export and tuning are fast on 2 cores)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from trainer.cache import build_cache
from trainer.loop import Run
from trainer.settings import TrainConfig

RATE = 22_050


def song(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Four sines switched on and off at their own slow rates: distinct songs for each draw."""
    t = np.arange(int(seconds * RATE)) / RATE
    f = rng.uniform(100, 3000, 4)
    gate = [(np.sin(2 * np.pi * rng.uniform(0.5, 3) * t) > 0) for _ in f]
    return (0.1 * sum(np.sin(2 * np.pi * fi * t) * g for fi, g in zip(f, gate))).astype(np.float32)


def write_corpus(root: Path) -> dict:
    """jazz/rock/mixed folders of 3 songs of 9 s, 3 recordings per noise category, and their cache."""
    data, noise = root / "data", root / "noise"
    rng = np.random.default_rng(0)
    for g in ("jazz", "rock", "mixed"):
        (data / g).mkdir(parents=True)
        for i in range(3):
            sf.write(data / g / f"{g}{i}.wav", song(rng, 9.0), RATE)
    for cat in ("speech_en", "crowd", "rir_real"):
        (noise / cat).mkdir(parents=True)
        for i in range(3):
            n = rng.standard_normal(RATE // 2 if cat == "rir_real" else RATE * 3)
            if cat == "rir_real":
                n *= np.exp(-np.arange(len(n)) / 1500)
            sf.write(noise / cat / f"n{i}.wav", (0.1 * n).astype(np.float32), RATE)
    cache = build_cache(data, noise, root / "cache", progress=False)
    return {"root": root, "data": data, "noise": noise, "cache": cache}


def make_run(corpus: dict, objective: str, name: str, **kw) -> Run:
    settings = {"epochs": 1, "steps_per_epoch": 1, "batch": 4, "val_pairs": 8, "warmup": 1, **kw}
    cfg = TrainConfig(data=str(corpus["data"]), noise=str(corpus["noise"]), objective=objective,
                      out=str(corpus["root"] / "runs" / name), cache=str(corpus["root"] / "cache"), **settings)
    return Run.create(cfg, progress=False)
