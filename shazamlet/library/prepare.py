"""Decoding and tiling of library files, run in decoder threads.

While the main thread runs the encoder in batches, a decoder thread decodes, hashes, resamples and
tiles the next files (libsndfile, hashlib and torch all release the GIL), so the encoder never waits
on the codec. Threads rather than processes: no start-up cost, no pickling of tiles, and it works
from any entry point (a `spawn` pool cannot start from a script read on stdin).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shazamlet.audio.decode import AudioError, load_audio
from shazamlet.config import FeatureConfig, LandmarkConfig
from shazamlet.features import LogMelFrontEnd
from shazamlet.landmarks import peaks as spectral_peaks
from shazamlet.library.tags import SongTags, genre_from_folder, read_tags


@dataclass
class PreparedSong:
    path: str
    content_hash: str
    file_size: int
    file_mtime: float
    duration_s: float
    tags: SongTags
    tiles: np.ndarray  # (n, n_mels, tile_frames) float32, audible tiles only
    start_frames: np.ndarray  # (n,)
    # the audible tiles halfway between them (`shazamlet.library.between`); None when not asked for
    between_tiles: np.ndarray | None = None
    between_starts: np.ndarray | None = None
    peaks: np.ndarray | None = None  # packed spectral peaks (`shazamlet.landmarks`); None when not asked for


@dataclass
class FailedSong:
    path: str
    error: str


def content_hash(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "blake2b").hexdigest()[:32]


def prepare_song(path: str, features: dict, hop_frames: int, genre_from: str, root: str | None,
                 genre: str | None = None, between: bool = False, peaks: dict | None = None) -> PreparedSong | FailedSong:
    """Decode and tile one file; any failure comes back as a FailedSong with one line.

    With `between`, also the tiles starting halfway between the indexed ones (from the same
    spectrogram: the front end runs once); with `peaks` (a LandmarkConfig as a dict, the library's), the
    song's spectral peaks (the waveform is decoded once)."""
    cfg = FeatureConfig.from_dict(features)
    p = Path(path)
    try:
        stat = p.stat()
        wave = load_audio(p, cfg.sample_rate)
        duration = len(wave) / cfg.sample_rate
        if len(wave) < cfg.tile_samples:
            raise AudioError(f"{path}: too short ({duration:.2f} s; a song needs at least {cfg.tile_seconds:.2f} s)")
        frontend = LogMelFrontEnd(cfg)
        with torch.no_grad():
            power = frontend(torch.as_tensor(np.asarray(wave, dtype=np.float32)))
        tiles = frontend.tiles_from_power(power, hop_frames)
        keep = tiles.audible
        if not keep.any():
            raise AudioError(f"{path}: silent (no tile above {cfg.silence_db:.0f} dB)")
        tags = read_tags(p)
        if genre:
            tags.genre = genre
        elif genre_from == "folder" or not tags.genre:
            tags.genre = genre_from_folder(p, Path(root)) if root else p.parent.name
        mid_tiles = mid_starts = None
        if between and hop_frames >= 2:
            mid = frontend.tiles_from_power(power, hop_frames, first_frame=hop_frames // 2)
            mid_tiles, mid_starts = mid.tiles[torch.as_tensor(mid.audible)].numpy(), mid.start_frames[mid.audible]
        song_peaks = spectral_peaks(wave, LandmarkConfig(**peaks)) if peaks is not None else None
        return PreparedSong(str(p), content_hash(p), stat.st_size, stat.st_mtime, duration, tags,
                            tiles.tiles[torch.as_tensor(keep)].numpy(), tiles.start_frames[keep], mid_tiles, mid_starts,
                            song_peaks)
    except AudioError as exc:
        return FailedSong(path, str(exc))
    except OSError as exc:
        return FailedSong(path, f"{path}: {exc.strerror or exc}")
    except Exception as exc:  # a bad file must never stop the whole import
        return FailedSong(path, f"{path}: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}")


def default_workers() -> int:
    """One decoder thread per two cores keeps the encoder fed without starving it."""
    return max(1, (os.cpu_count() or 2) // 2)
