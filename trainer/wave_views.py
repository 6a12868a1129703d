"""Room-degraded copies of the training songs, made on the WAVEFORM once and cached as mel dB.

The mel-domain shortcut (`trainer.augment`) is cheap enough to run on every batch, but it models
energies only: reverb as smooth per-band envelopes, noise as smooth added powers. A real room and a
real microphone also add the fine structure of interference (the random ripple of
`|S + N|^2 = |S|^2 + |N|^2 + 2 Re(S N*)`, and of overlapping reflections), which `evaluate`'s
waveform chain has and the shortcut has not (research/shortcut_check.py: the two degraded tiles differ by
about half as much as each differs from the clean one). A model trained on the shortcut alone
learns invariance to the smooth part only.

So, like `evaluate` but with training material only, each training song is passed through a
waveform microphone chain `views` times, in chunks of ~10 s that each draw their own room (a real
impulse response of a training room or a synthetic one), noise (several people talking, recorded
environments, pink noise at 0-20 dB SNR), band limits and gain with clipping. The result goes
through the app's front end into the cache beside the clean spectrogram, frame for frame aligned
with it, and `TileSampler` draws positives from it (`TrainConfig.p_room`). Computing a view costs
about as much as decoding the song; it is done once, in worker processes, resumable (a view file is
written under a temp name and renamed).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from shazamlet.audio.decode import AudioError, is_audio_file, load_audio
from shazamlet.config import FeatureConfig
from shazamlet.features import FLOOR_DB
from trainer.cache import EQ_CATEGORIES, RIR_CATEGORIES, SpectrogramCache, file_key, mel_db, rir_room
from trainer.degrade_wave import band_limit, gain_and_clip, looped, mix_at_snr, pink_noise, reverberate, rms

CHUNK_S = 10.0  # each chunk of a song gets its own room and noise
PRE_S = 1.0  # sound before a chunk that feeds its reverb tail
NOISE_SECONDS = 60  # at most this much of each noise recording is kept in memory
MAX_NOISE_FILES = 120  # per pool (speech / other), chosen at random


def synthetic_rir(rate: int, rng: np.random.Generator) -> np.ndarray:
    """A room impulse response: direct sound, a few early reflections, then a diffuse tail of
    noise decaying at a band-dependent rate (longer in the bass), at a random direct-to-reverberant
    ratio. RT60 0.2-1.6 s covers living rooms to halls."""
    rt60 = rng.uniform(0.2, 1.6)
    n = int(rate * min(2.5, rt60 * 1.3 + 0.05))
    t = np.arange(n) / rate
    tail = np.zeros(n)
    edges = [60, 250, 1000, 4000, min(10000, rate / 2 * 0.95)]
    for lo, hi in zip(edges[:-1], edges[1:]):  # octave-ish bands, each its own decay
        band_rt = rt60 * (1.3 if hi <= 250 else 1.0 if hi <= 1000 else 0.85 if hi <= 4000 else 0.6)
        tail += band_limit(rng.standard_normal(n), rate, lo, hi, order=2) * np.exp(-6.91 * t / band_rt) * rng.uniform(0.5, 1.5)
    onset = int(rate * rng.uniform(0.003, 0.02))
    tail[:onset] = 0.0
    h = np.zeros(n)
    h[0] = 1.0
    for _ in range(int(rng.integers(2, 7))):  # early reflections
        h[int(rate * rng.uniform(0.002, 0.05))] += rng.uniform(-0.7, 0.7)
    drr_db = rng.uniform(-10.0, 10.0)
    tail *= np.sqrt(np.sum(h ** 2) / max(np.sum(tail ** 2), 1e-20) * 10 ** (-drr_db / 10))
    return (h + tail).astype(np.float32)


class WaveChain:
    """A laptop microphone in a room, on waveforms, with the training side of the noise corpus."""

    def __init__(self, noise_dir: str | Path | None, exclude_rooms: set[str], rate: int, seed: int = 0) -> None:
        self.rate = rate
        self.rirs: list[np.ndarray] = []
        self.speech: list[np.ndarray] = []
        self.other: list[np.ndarray] = []
        if not noise_dir:
            return
        rng = np.random.default_rng(seed)
        root = Path(noise_dir)
        speech, other = [], []
        for cat in sorted(p for p in root.iterdir() if p.is_dir()):
            files = sorted(f for f in cat.rglob("*") if f.is_file() and is_audio_file(f))
            if cat.name in RIR_CATEGORIES:
                self.rirs += [self._load(f, 3.0) for f in files if rir_room(str(f.relative_to(root))) not in exclude_rooms]
            elif cat.name not in EQ_CATEGORIES:
                (speech if cat.name.startswith("speech") else other).extend(files)
        for files, pool in ((speech, self.speech), (other, self.other)):
            if len(files) > MAX_NOISE_FILES:
                files = [files[i] for i in sorted(rng.choice(len(files), MAX_NOISE_FILES, replace=False))]
            for f in files:
                w = self._load(f, NOISE_SECONDS)
                if w is not None and len(w) > rate and rms(w) > 1e-5:
                    pool.append(w / rms(w))
        self.rirs = [r for r in self.rirs if r is not None and len(r) > 16]

    def _load(self, path: Path, seconds: float) -> np.ndarray | None:
        try:
            return load_audio(path, self.rate)[: int(seconds * self.rate)]
        except AudioError:
            return None

    def _noise(self, pool: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
        return looped(pool[int(rng.integers(len(pool)))], n, rng)

    def degrade(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The whole song through the chain, chunk by chunk; same length as `wave`."""
        rate = self.rate
        chunk, pre = int(CHUNK_S * rate), int(PRE_S * rate)
        out = np.zeros_like(wave, dtype=np.float32)
        for start in range(0, len(wave), chunk):
            lo = max(0, start - pre)
            music = wave[lo : start + chunk]
            if len(music) == 0 or rms(music) < 1e-5:
                out[start : start + chunk] = music[start - lo :]
                continue
            rir = self.rirs[int(rng.integers(len(self.rirs)))] if self.rirs and rng.random() < 0.4 else synthetic_rir(rate, rng)
            y = reverberate(music, rir) if rng.random() < 0.9 else music.copy()
            n = len(y)
            if self.speech and rng.random() < 0.5:  # several people talking
                voices = sum(self._noise(self.speech, n, rng) * rng.uniform(0.5, 1.5) for _ in range(int(rng.integers(2, 5))))
                y = mix_at_snr(y, reverberate(voices, rir), rng.uniform(-3.0, 15.0))
            if self.other and rng.random() < 0.5:
                y = mix_at_snr(y, self._noise(self.other, n, rng), rng.uniform(0.0, 20.0))
            if rng.random() < 0.6:
                y = mix_at_snr(y, pink_noise(n, rng), rng.uniform(0.0, 25.0))
            hp, lp = rng.uniform(60.0, 300.0), rng.uniform(3000.0, 9000.0)
            y = gain_and_clip(band_limit(y, rate, hp, lp, order=int(rng.integers(1, 5))), rng)
            out[start : start + chunk] = y[start - lo :]
        return out


def view_path(root: Path, rel: str, view: int) -> Path:
    return root / "wave" / f"v{view}" / f"{file_key('music/' + rel)}.npy"


_CHAIN: WaveChain | None = None


def _init(noise_dir: str | None, exclude_rooms: set[str], rate: int) -> None:
    global _CHAIN
    torch.set_num_threads(1)
    _CHAIN = WaveChain(noise_dir, exclude_rooms, rate)


def _work(args) -> str | None:
    path, rel, outs, frames, cfg_d, seed = args
    cfg = FeatureConfig.from_dict(cfg_d)
    try:
        wave = load_audio(path, cfg.sample_rate)
    except AudioError as exc:
        return str(exc)
    for view, out in outs:
        rng = np.random.default_rng([seed, view, int(file_key(rel), 16) % (2 ** 31)])
        arr = mel_db(_CHAIN.degrade(wave, rng), cfg)[:, :frames]
        if arr.shape[1] < frames:  # never expected (same samples, same framing); keep the shapes equal
            arr = np.pad(arr, ((0, 0), (0, frames - arr.shape[1])), constant_values=FLOOR_DB)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp.npy")
        np.save(tmp, arr)
        os.replace(tmp, out)
    return None


def build_wave_views(cache_root: str | Path, songs, noise_dir: str | None, exclude_rirs: list[str], views: int,
                     seed: int = 0, workers: int = 2, progress: bool = True) -> int:
    """Make the missing `views` degraded copies of `songs` (a list of `Song`); returns how many songs
    needed work. `exclude_rirs` are the evaluation's impulse responses: their rooms stay out."""
    from tqdm import tqdm

    root = Path(cache_root)
    cache = SpectrogramCache(root)
    jobs = []
    for s in songs:
        if not cache.has_song(s.rel):
            continue
        outs = [(v, view_path(root, s.rel, v)) for v in range(views)]
        outs = [(v, p) for v, p in outs if not p.exists()]
        if outs:
            jobs.append((s.path, s.rel, outs, int(cache.index["music"][s.rel]["frames"]), cache.features.to_dict(), seed))
    if not jobs:
        return 0
    jobs.sort(key=lambda j: -j[3])
    rooms = {rir_room(r) for r in exclude_rirs}
    with ProcessPoolExecutor(max_workers=workers, initializer=_init,
                             initargs=(noise_dir, rooms, cache.features.sample_rate)) as ex:
        for err in tqdm(ex.map(_work, jobs), total=len(jobs), desc=f"room views ({views} per song)", disable=not progress):
            if err:
                print("skipped:", err)
    return len(jobs)
