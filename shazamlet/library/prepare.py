"""Decoding and tiling of library files, run in decoder threads.

While the main thread runs the encoder in batches, a decoder thread decodes, hashes, resamples and
tiles the next files (libsndfile, hashlib and torch all release the GIL), so the encoder never waits
on the codec. Threads rather than processes: no start-up cost, no pickling of tiles, and it works
from any entry point (a `spawn` pool cannot start from a script read on stdin).

A file is decoded a block at a time, and each block goes through the front end and the peak picker
before the next is read: what is kept is the song's dB spectrogram (~20 KB a second) and its peaks,
never its waveform, and the tiles are cut from the spectrogram a batch at a time as the encoder asks
(`features.TileBatches`). A 2-hour mix decoded whole took 15.9 GB; the result is the same either way.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shazamlet.audio.decode import DECODE_BLOCK_FRAMES, AudioError, decode_blocks, open_source
from shazamlet.config import FeatureConfig, LandmarkConfig
from shazamlet.features import LogMelFrontEnd, TileBatches, mel_power_stream, power_to_db, tile_starts
from shazamlet.landmarks import PeakPicker
from shazamlet.library.tags import SongTags, genre_from_folder, read_tags
from shazamlet.memory import release_freed_memory


@dataclass
class PreparedSong:
    path: str
    content_hash: str
    file_size: int
    file_mtime: float
    duration_s: float
    tags: SongTags
    tiles: TileBatches  # (n, n_mels, tile_frames) float32 tiles, audible ones only, cut as sliced
    start_frames: np.ndarray  # (n,)
    # the audible tiles halfway between them (`shazamlet.library.between`); None when not asked for
    between_tiles: TileBatches | None = None
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
                 genre: str | None = None, between: bool = False, peaks: dict | None = None,
                 block_frames: int = DECODE_BLOCK_FRAMES) -> PreparedSong | FailedSong:
    """Decode and tile one file; any failure comes back as a FailedSong with one line.

    With `between`, also the tiles starting halfway between the indexed ones (from the same
    spectrogram: the front end runs once); with `peaks` (a LandmarkConfig as a dict, the library's), the
    song's spectral peaks (the file is decoded once). The file is decoded `block_frames` at a time."""
    cfg = FeatureConfig.from_dict(features)
    p = Path(path)
    try:
        stat = p.stat()
        picker = PeakPicker(LandmarkConfig(**peaks)) if peaks is not None else None

        def blocks():  # each decoded block feeds the peak picker too, then is dropped
            for i, block in enumerate(decode_blocks(open_source(p), path, cfg.sample_rate, block_frames=block_frames)):
                if picker is not None:
                    picker.push(block)
                if i % TRIM_EVERY_BLOCKS == TRIM_EVERY_BLOCKS - 1:
                    release_freed_memory()  # 1-h file: 700-920 -> ~460 MB while analysed
                yield block

        frontend = LogMelFrontEnd(cfg)
        power, samples = mel_power_stream(blocks(), frontend)
        duration = samples / cfg.sample_rate
        if samples < cfg.tile_samples:
            raise AudioError(f"{path}: too short ({duration:.2f} s; a song needs at least {cfg.tile_seconds:.2f} s)")
        db = power_to_db(power)
        del power
        tiles = TileBatches(db, tile_starts(db.shape[-1], cfg.tile_frames, hop_frames), cfg)
        tiles = tiles.subset(tiles.audible())
        if not len(tiles):
            raise AudioError(f"{path}: silent (no tile above {cfg.silence_db:.0f} dB)")
        tags = read_tags(p)
        if genre:
            tags.genre = genre
        elif genre_from == "folder" or not tags.genre:
            tags.genre = genre_from_folder(p, Path(root)) if root else p.parent.name
        mid = None
        if between and hop_frames >= 2:
            mid = TileBatches(db, tile_starts(db.shape[-1], cfg.tile_frames, hop_frames, hop_frames // 2), cfg)
            mid = mid.subset(mid.audible())
        return PreparedSong(str(p), content_hash(p), stat.st_size, stat.st_mtime, duration, tags,
                            tiles, tiles.starts, mid, None if mid is None else mid.starts,
                            picker.finish() if picker is not None else None)
    except AudioError as exc:
        return FailedSong(path, str(exc))
    except OSError as exc:
        return FailedSong(path, f"{path}: {exc.strerror or exc}")
    except Exception as exc:  # a bad file must never stop the whole import
        return FailedSong(path, f"{path}: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}")


# How often (in decoded blocks: 48 s at 44.1 kHz) the C heap gives freed memory back while a file is analysed.
TRIM_EVERY_BLOCKS = 16


def default_workers() -> int:
    """One decoder thread per two cores keeps the encoder fed without starving it."""
    return max(1, (os.cpu_count() or 2) // 2)
