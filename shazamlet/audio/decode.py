"""Decode audio files (anything libsndfile reads) to mono float32 at the front end's rate.

Files are untrusted input: every failure becomes an `AudioError` with one line a user can act on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64", ".caf"}
)


class AudioError(Exception):
    """An audio file that cannot be used; the message is one line for the user."""


def is_audio_file(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith(".")


def to_mono(data: np.ndarray) -> np.ndarray:
    """`(frames, channels)` or `(frames,)` -> `(frames,)` by averaging channels."""
    if data.ndim == 1:
        return data.astype(np.float32, copy=False)
    return data.mean(axis=1, dtype=np.float32)


def resample(wave: np.ndarray, orig_rate: int, rate: int) -> np.ndarray:
    if orig_rate == rate or len(wave) == 0:
        return wave.astype(np.float32, copy=False)
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)), orig_rate, rate)
    return out.numpy()


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the header alone (cheap), or AudioError."""
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises several types
        raise AudioError(f"{path}: cannot read audio ({_short(exc)})") from None
    return info.frames / info.samplerate if info.samplerate else 0.0


def load_audio(path: str | Path, rate: int, max_seconds: float | None = None) -> np.ndarray:
    """Mono float32 samples of `path` at `rate` Hz.

    Raises AudioError for a missing, unreadable, corrupt or empty file.
    """
    p = Path(path)
    if not p.exists():
        raise AudioError(f"{path}: no such file")
    if p.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    try:
        with sf.SoundFile(str(p)) as f:
            orig_rate = f.samplerate
            frames = -1 if max_seconds is None else int(max_seconds * orig_rate)
            data = f.read(frames=frames, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(f"{path}: cannot decode audio ({_short(exc)})") from None
    if data.size == 0:
        raise AudioError(f"{path}: the file holds no audio")
    wave = to_mono(data)
    if not np.all(np.isfinite(wave)):
        wave = np.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0)
    return resample(wave, orig_rate, rate)


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    msg = text[-1] if text else type(exc).__name__
    return msg.replace(str(Path.cwd()) + "/", "")[:200]
