"""Synthetic music for tests: distinct "songs" in a few "genres", made from a seed.

Each song is a random melody (harmonic notes with envelopes) over a bass line and noise-burst drums.
Genres differ in tempo, timbre (harmonic roll-off), drum pattern and register, so a vote of genres
has something real to find; songs differ in everything random.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22_050


@dataclass(frozen=True)
class Style:
    name: str
    bpm: tuple[int, int]
    rolloff: float  # harmonic amplitude ratio: high = bright
    octave: int  # MIDI base note
    kick_every: int  # beats
    hat_density: float


STYLES = [
    Style("techno", (124, 132), 0.75, 48, 1, 0.9),
    Style("ballad", (66, 76), 0.35, 60, 2, 0.2),
    Style("rock", (100, 112), 0.6, 52, 2, 0.6),
    Style("chiptune", (140, 160), 0.9, 72, 1, 0.5),
]


def _note(freq: float, dur: float, rolloff: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(dur * SR)) / SR
    tone = sum((rolloff ** h) * np.sin(2 * np.pi * freq * (h + 1) * t + rng.uniform(0, 6.28)) for h in range(6))
    env = np.minimum(1.0, t / 0.01) * np.exp(-t * rng.uniform(2.0, 6.0))
    return (tone * env).astype(np.float32)


def _drum(kind: str, rng: np.random.Generator) -> np.ndarray:
    n = int((0.25 if kind == "kick" else 0.08) * SR)
    t = np.arange(n) / SR
    if kind == "kick":
        return (np.sin(2 * np.pi * (50 + 80 * np.exp(-t * 30)) * t) * np.exp(-t * 12)).astype(np.float32)
    return (rng.standard_normal(n) * np.exp(-t * 60) * 0.4).astype(np.float32)


def make_song(seed: int, style: Style, seconds: float = 24.0) -> np.ndarray:
    """A mono song at 22.05 kHz in [-1, 1]."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n + SR, np.float32)
    beat = 60.0 / rng.uniform(*style.bpm)
    scale = np.array([0, 2, 3, 5, 7, 8, 10, 12]) + rng.integers(0, 12)
    motif = rng.choice(scale, size=8) + style.octave
    t, i = 0.0, 0
    while t < seconds:
        note = motif[i % 8] + (12 if rng.random() < 0.15 else 0)
        if i % 16 == 8:
            motif = rng.choice(scale, size=8) + style.octave  # a new phrase
        dur = beat * rng.choice([0.5, 1.0, 1.0, 2.0])
        s = int(t * SR)
        x = _note(440.0 * 2 ** ((note - 69) / 12), dur * 1.3, style.rolloff, rng)
        out[s : s + len(x)] += 0.3 * x[: len(out) - s]
        t += dur
        i += 1
    for b in range(int(seconds / beat)):  # drums and bass on the beat grid
        s = int(b * beat * SR)
        if b % style.kick_every == 0:
            k = _drum("kick", rng)
            out[s : s + len(k)] += 0.6 * k[: len(out) - s]
        if rng.random() < style.hat_density:
            h = _drum("hat", rng)
            s2 = s + int(beat * SR / 2)
            out[s2 : s2 + len(h)] += h[: max(0, len(out) - s2)]
        if b % 2 == 0:
            x = _note(440.0 * 2 ** ((motif[0] - 12 - 69) / 12), beat * 2, 0.2, rng)
            out[s : s + len(x)] += 0.25 * x[: len(out) - s]
    out = out[:n] + 0.003 * rng.standard_normal(n).astype(np.float32)
    return (0.9 * out / np.abs(out).max()).astype(np.float32)


def write_library(root: Path, n_per_style: int = 5, seconds: float = 24.0, styles=STYLES,
                  seed: int = 0, fmt: str = "wav") -> list[Path]:
    """ROOT/<style>/song_XX.<fmt> for each style; returns the paths."""
    paths = []
    for si, style in enumerate(styles):
        (root / style.name).mkdir(parents=True, exist_ok=True)
        for j in range(n_per_style):
            p = root / style.name / f"{style.name}_song_{j:02d}.{fmt}"
            sf.write(p, make_song(seed + 1000 * si + j, style, seconds), SR)
            paths.append(p)
    return paths


def add_noise(x: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(x)).astype(np.float32)
    p_sig = np.mean(x ** 2)
    noise *= np.sqrt(p_sig / (10 ** (snr_db / 10)) / np.mean(noise ** 2))
    return (x + noise).astype(np.float32)


def speech(text: str, path: Path) -> np.ndarray | None:
    """espeak-ng speech at 22.05 kHz, or None when espeak-ng is not installed."""
    if not shutil.which("espeak-ng"):
        return None
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    data, rate = sf.read(path, dtype="float32")
    from shazamlet.audio.decode import resample

    return resample(data if data.ndim == 1 else data.mean(1), rate, SR)


def make_random_model(path: Path, seed: int = 0, name: str = "random-test") -> Path:
    """A model file with fixed random weights whose BatchNorm statistics are estimated on synthetic
    tiles: no trained ear, but clips cut exactly at library tiles match it with cosine ~1."""
    import torch

    from shazamlet.features import LogMelFrontEnd
    from shazamlet.model import Encoder, ModelMeta, save_model

    torch.manual_seed(seed)
    enc = Encoder(1024, None)
    enc.train()
    for m in enc.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
            m.reset_running_stats()
    fe = LogMelFrontEnd()
    tiles = torch.cat([fe.tiles(make_song(7000 + i, STYLES[i % len(STYLES)], 8.0), 8).tiles for i in range(6)])
    with torch.no_grad():
        enc(tiles)
    enc.eval()
    save_model(path, enc, ModelMeta(name=name, objective="none", fingerprint_dim=None, threshold=0.5))
    return path
