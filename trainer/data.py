"""Training batches: tiles sampled uniformly over songs from the spectrogram cache.

Each sample is a segment of mel dB frames around a tile: `context` frames before it (so reverb tails
from earlier sound reach the tile) and `shift` frames on both sides (the positive view of a contrastive
pair starts up to +-shift frames away from the anchor).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shazamlet.features import FLOOR_DB
from trainer.cache import SpectrogramCache
from trainer.songs import Song

QUIET_DB = -70.0  # a tile whose loudest bin is below this is (near) silence: draw again


@dataclass
class Batch:
    segments: torch.Tensor  # (B, n_mels, T) mel power (linear)
    labels: torch.Tensor  # (B,) genre index, -1 when the song has no style label
    songs: np.ndarray  # (B,) index into the sampler's songs
    anchor: int  # first frame of the anchor tile inside the segment
    max_shift: int  # the segment holds +-max_shift frames around the anchor tile
    # the same frames of a waveform-degraded copy of the song (`trainer.wave_views`), where there is one
    room: torch.Tensor | None = None  # (B, n_mels, T) mel power
    has_room: torch.Tensor | None = None  # (B,) bool


class TileSampler:
    def __init__(self, cache: SpectrogramCache, songs: list[Song], genres: list[str], tile_frames: int = 64,
                 context: int = 24, shift: int = 11, in_memory: bool = True, views: int = 0) -> None:
        if not songs:
            raise ValueError("no songs in this part of the split (too few songs, or too few song groups)")
        self.songs = [s for s in songs if cache.has_song(s.rel)]
        if not self.songs:
            raise ValueError(f"none of the {len(songs)} songs is in the spectrogram cache: the cache step skipped "
                             "them all (unreadable, or shorter than one 3-s tile), or has not run")
        arrays = [cache.song(s.rel) for s in self.songs]
        self.arrays = [np.asarray(a) for a in arrays] if in_memory else arrays
        self.labels = np.array([genres.index(s.genre) if s.genre in genres else -1 for s in self.songs])
        self.tile = tile_frames
        self.context = context
        self.shift = shift
        self.length = context + shift + tile_frames + shift
        # waveform-degraded copies, frame-aligned with the clean spectrograms (may be missing)
        from trainer.wave_views import view_path

        root = Path(cache.root)
        self.views = [[np.load(p, mmap_mode="r") for v in range(views) if (p := view_path(root, s.rel, v)).exists()]
                      for s in self.songs]
        self.views = [[np.asarray(a) for a in vs] for vs in self.views] if in_memory else self.views

    def __len__(self) -> int:
        return len(self.songs)

    def sample(self, n: int, rng: np.random.Generator) -> Batch:
        segs, rooms, has_room, idx = [], [], [], rng.integers(0, len(self.songs), size=n)
        a0 = self.context + self.shift
        for i in idx:
            arr = self.arrays[i]
            frames = arr.shape[-1]
            for _ in range(4):
                s = int(rng.integers(0, max(1, frames - self.length + 1)))
                seg = np.asarray(arr[:, s : s + self.length], dtype=np.float32)
                if seg[:, a0 : a0 + self.tile].max() > QUIET_DB:
                    break
            views = self.views[i]
            room = np.asarray(views[int(rng.integers(len(views)))][:, s : s + self.length], np.float32) if views else seg
            has_room.append(bool(views))
            segs.append(_fit(seg, self.length))
            rooms.append(_fit(room, self.length))
        power = torch.from_numpy(10.0 ** (np.stack(segs) / 10.0))
        room = torch.from_numpy(10.0 ** (np.stack(rooms) / 10.0)) if any(has_room) else None
        return Batch(power, torch.from_numpy(self.labels[idx]).long(), idx, a0, self.shift, room,
                     torch.tensor(has_room) if room is not None else None)


def _fit(seg: np.ndarray, length: int) -> np.ndarray:
    """Pad a segment cut at the end of a song with silence."""
    if seg.shape[-1] < length:
        seg = np.pad(seg, ((0, 0), (0, length - seg.shape[-1])), constant_values=FLOOR_DB)
    return seg
