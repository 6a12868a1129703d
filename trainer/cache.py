"""Spectrogram cache: decode every file ONCE, keep its mel power in dB as float16 on disk.

Layout (`cache_dir/<features-hash>/`): `music/<key>.npy` `(n_mels, frames)` float16 dB, one per song,
memory-mapped when read; `noise/<key>.npy` the same for noise recordings; `rir/<key>.npy` per-band
energy envelopes `(n_mels, K)` of impulse responses (reverb in the mel power domain); `index.json`
lists what is there. A file is recomputed only when its size or mtime changed, so the cache can be
filled while the corpus is still being built and topped up later.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from shazamlet.audio.decode import AudioError, is_audio_file, load_audio
from shazamlet.config import FeatureConfig
from shazamlet.features import LogMelFrontEnd, power_to_db
from trainer.atomic import write_json

RIR_FRAMES = 24  # reverb envelope length in frames (24 x 46 ms = 1.1 s)
RIR_VERSION = "2"  # bump when rir_envelope / eq_curve change: those entries are recomputed
RIR_CATEGORIES = ("rir_real", "rir_sparse_approx")
EQ_CATEGORIES = ("cabinet_ir",)


def rir_room(rel: str) -> str:
    """The room an impulse response was measured in: the channels of a stereo pair (`StairwellL`,
    `StairwellR`, `street2-L`) share it, so holding out one channel must keep the other out too."""
    return re.sub(r"[-_ ]?[LR]$", "", Path(rel).stem)


def features_key(cfg: FeatureConfig) -> str:
    return hashlib.sha1(json.dumps(cfg.to_dict(), sort_keys=True).encode()).hexdigest()[:10]


def file_key(rel: str) -> str:
    return hashlib.sha1(rel.encode()).hexdigest()[:16]


def _stamp(path: str) -> str:
    st = os.stat(path)
    return f"{st.st_size}:{int(st.st_mtime)}"


def mel_db(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Mel power in dB `(n_mels, frames)` float16, computed with the app's front end."""
    fe = LogMelFrontEnd(cfg)
    with torch.no_grad():
        p = fe(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)))
    return power_to_db(p).numpy().astype(np.float16)


def rir_envelope(ir: np.ndarray, cfg: FeatureConfig, frames: int = RIR_FRAMES) -> np.ndarray:
    """Per-band energy of an impulse response per frame lag `(n_mels, frames)`, float32.

    Convolving a mel power spectrogram along time with this kernel approximates convolving the
    waveform with the response (energies add for uncorrelated reflections). The bands keep their
    relative gains (a room colours the sound as much as it smears it); the mean band sums to 1.
    """
    start = int(np.argmax(np.abs(ir)))
    ir = ir[max(0, start - 32):]
    pad = np.concatenate([np.zeros(cfg.n_fft - cfg.hop_length, np.float32), ir.astype(np.float32),
                          np.zeros(cfg.n_fft, np.float32)])
    fe = LogMelFrontEnd(cfg)
    with torch.no_grad():
        p = fe(torch.from_numpy(pad)).numpy()[:, :frames]
    if p.shape[1] < frames:
        p = np.pad(p, ((0, 0), (0, frames - p.shape[1])))
    p = p + 1e-12
    return (p / p.sum(axis=1).mean()).astype(np.float32)


def eq_curve(ir: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Per-band power gain `(n_mels,)` of a short filter (e.g. a guitar cabinet), peak 1."""
    n = cfg.n_fft
    spec = np.abs(np.fft.rfft(ir[:n].astype(np.float64), n)) ** 2
    fe = LogMelFrontEnd(cfg)
    g = spec @ fe.fbanks.numpy().astype(np.float64) / np.maximum(fe.fbanks.numpy().sum(0), 1e-9)
    return (g / g.max()).astype(np.float32) if g.max() > 0 else np.ones(cfg.n_mels, np.float32)


def _work(args) -> tuple[str, str | None]:
    kind, path, out, cfg_d = args
    torch.set_num_threads(1)
    cfg = FeatureConfig.from_dict(cfg_d)
    try:
        wave = load_audio(path, cfg.sample_rate)
    except AudioError as exc:
        return out, str(exc)
    if kind == "rir":
        arr = rir_envelope(wave, cfg)
    elif kind == "eq":
        arr = eq_curve(wave, cfg)
    else:
        if kind == "music" and len(wave) < cfg.tile_samples:
            return out, f"{path}: shorter than one tile"
        if len(wave) < 2 * cfg.n_fft:  # short noises (clicks) are tiled later; they need a few frames
            wave = np.pad(wave, (0, 2 * cfg.n_fft - len(wave)))
        arr = mel_db(wave, cfg)
        if kind == "music" and float(arr.max()) <= cfg.silence_db:  # as `shazamlet library add` skips it
            return out, f"{path}: silent (nothing above {cfg.silence_db:.0f} dB)"
    tmp = out + ".tmp.npy"
    np.save(tmp, arr)
    os.replace(tmp, out)
    return out, None


def build_cache(data_dir: str | Path, noise_dir: str | Path | None, cache_dir: str | Path,
                cfg: FeatureConfig = FeatureConfig(), workers: int = 2, progress: bool = True) -> Path:
    """Fill (or top up) the cache for a data folder and an optional noise folder; returns its path."""
    from tqdm import tqdm

    from trainer.songs import scan_songs

    root = Path(cache_dir) / features_key(cfg)
    for sub in ("music", "noise", "rir", "eq"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    index_path = root / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"music": {}, "noise": {}}
    index["features"] = cfg.to_dict()
    jobs, meta = [], {}
    for s in scan_songs(data_dir):
        key = file_key("music/" + s.rel)
        out = str(root / "music" / f"{key}.npy")
        stamp = _stamp(s.path)
        old = index["music"].get(s.rel)
        if old and old.get("stamp") == stamp and os.path.exists(out):
            continue
        jobs.append(("music", s.path, out, cfg.to_dict()))
        meta[out] = ("music", s.rel, key, stamp, s.genre)
    if noise_dir:
        nroot = Path(noise_dir).resolve()
        recordings = 0
        for cat_dir in sorted(p for p in nroot.iterdir() if p.is_dir()):
            for f in sorted(cat_dir.rglob("*")):
                if not f.is_file() or not is_audio_file(f):
                    continue
                recordings += 1
                rel = str(f.relative_to(nroot))
                kind = "rir" if cat_dir.name in RIR_CATEGORIES else "eq" if cat_dir.name in EQ_CATEGORIES else "noise"
                key = file_key("noise/" + rel)
                out = str(root / kind / f"{key}.npy")
                stamp = _stamp(str(f)) + (f":v{RIR_VERSION}" if kind != "noise" else "")
                old = index["noise"].get(rel)
                if old and old.get("stamp") == stamp and os.path.exists(out):
                    continue
                jobs.append((kind, str(f), out, cfg.to_dict()))
                meta[out] = ("noise", rel, key, stamp, cat_dir.name)
        if not recordings:
            loose = sum(1 for f in nroot.iterdir() if f.is_file() and is_audio_file(f))
            hint = f"; {loose} recordings lie in the folder itself" if loose else ""
            raise ValueError(f"no recordings in the category folders of {nroot} (laid out as {nroot}/<category>/<file>, "
                             f"e.g. speech_en, crowd, rir_real: trainer/README.md){hint}")
    # longest files first so the pool ends together
    jobs.sort(key=lambda j: -os.path.getsize(j[1]))
    failed = []
    if jobs:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            bar = tqdm(ex.map(_work, jobs), total=len(jobs), desc="caching spectrograms", disable=not progress)
            for i, (out, err) in enumerate(bar):
                section, rel, key, stamp, cat = meta[out]
                if err:
                    failed.append(err)
                    index[section].pop(rel, None)
                    continue
                arr = np.load(out, mmap_mode="r")
                index[section][rel] = {"key": key, "stamp": stamp, "category": cat,
                                       "kind": Path(out).parent.name, "frames": int(arr.shape[-1]) if arr.ndim == 2 else 0}
                if i % 20 == 0:
                    write_json(index_path, index, indent=0)
    write_json(index_path, index, indent=0)
    for err in failed[:20]:
        print("skipped:", err)
    return root


class SpectrogramCache:
    """Read side of the cache: memory-mapped dB spectrograms of songs, noises, reverb envelopes."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.index = json.loads((self.root / "index.json").read_text())
        self.features = FeatureConfig.from_dict(self.index["features"])

    def has_song(self, rel: str) -> bool:
        return rel in self.index["music"]

    def song(self, rel: str) -> np.ndarray:
        e = self.index["music"][rel]
        return np.load(self.root / "music" / f"{e['key']}.npy", mmap_mode="r")

    def noise_items(self, kind: str = "noise") -> list[tuple[str, str]]:
        """(rel, category) of cached noise entries of a kind: noise, rir or eq."""
        return [(rel, e["category"]) for rel, e in sorted(self.index["noise"].items()) if e.get("kind") == kind]

    def noise(self, rel: str) -> np.ndarray:
        e = self.index["noise"][rel]
        return np.load(self.root / e["kind"] / f"{e['key']}.npy", mmap_mode="r")
