"""Frozen configuration shared by the app and the trainer.

No Qt and no torch here: these dataclasses are read by every layer, and a model file records the
`FeatureConfig` it was trained with so that a library tile and a live tile are always computed the
same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np


def data_dir() -> Path:
    """Where the app keeps the user's data (the default library, the window's history): the platform's
    user data folder."""
    import platformdirs

    return Path(platformdirs.user_data_dir("shazamlet", appauthor=False))


def htk_mel(hz):
    """The front end's mel scale (HTK, torchaudio's `mel_scale="htk"`) of Hz: a float, numpy array or tensor."""
    x = 1.0 + hz / 700.0
    return 2595.0 * (x.log10() if hasattr(x, "log10") else np.log10(x))  # a tensor keeps its device


def htk_hz(mel):
    """The inverse of `htk_mel`."""
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@dataclass(frozen=True)
class FeatureConfig:
    """The log-mel front end (the paper's: 22.05 kHz, n_fft 2048, hop 1024, 64 bands, 64x64 tiles).

    Tiles are normalised *per tile* against their own loudest bin with a fixed dynamic range, so a
    tile does not depend on what surrounds it in the file and a gain change does not move it.
    """

    sample_rate: int = 22_050
    n_fft: int = 2048
    hop_length: int = 1024
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float = 11_025.0
    tile_frames: int = 64
    top_db: float = 80.0
    # A tile whose loudest mel bin is below this power (dB re full scale) is silence.
    silence_db: float = -90.0

    @property
    def frame_seconds(self) -> float:
        return self.hop_length / self.sample_rate

    @property
    def tile_seconds(self) -> float:
        """Duration of audio one tile covers (64 frames = 2.97 s)."""
        return ((self.tile_frames - 1) * self.hop_length + self.n_fft) / self.sample_rate

    @property
    def tile_samples(self) -> int:
        return (self.tile_frames - 1) * self.hop_length + self.n_fft

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class IndexConfig:
    """How a library is tiled, what its songs keep, and how it is searched (docs/decisions.md has the
    numbers behind each value)."""

    # 1.02 s: a query is at most 0.51 s from a library tile (training shifts views by up to 0.5 s); half
    # the index and twice the indexing speed of 0.51 s, for the same song-ID
    library_hop_frames: int = 22
    # with a tile projection, the tiles halfway between the indexed ones are kept for re-scoring (not indexed)
    between_tiles: bool = True
    # each song keeps its spectral peaks for the verify stage (~130 bytes per second of music)
    landmarks: bool = True
    query_hop_frames: int = 11  # query tiles at half the library's hop: more votes at more alignments
    n_trees: int = 16
    k: int = 30  # neighbours per query tile that nominate songs (10 left the right song out of 13% more clips)
    search_k: int = 3000  # ANNOY nodes visited per query tile: keeps 96% of the exact 10 nearest tiles
    ivf_min_items: int = 1_000_000  # past this (~4 300 songs) int8 IVF lists: ANNOY would take > 1 GiB
    nprobe: int = 16  # IVF lists scanned per query tile

    def index_kind(self, n_items: int) -> str:
        """"annoy" (the paper's index) for libraries up to `ivf_min_items` tiles, "ivf" past that."""
        return "ivf" if n_items and n_items >= self.ivf_min_items else "annoy"  # an empty index stays ANNOY


@dataclass(frozen=True)
class LandmarkConfig:
    """Spectral peaks and their pairs for the landmark check (shazamlet/landmarks.py)."""

    sample_rate: int = 22_050
    n_fft: int = 1024
    hop: int = 512  # 23 ms frames
    min_hz: float = 150.0  # a laptop microphone keeps about 120 Hz - 7 kHz
    max_hz: float = 6_500.0
    peak_radius_bins: int = 3  # a peak is the largest value within this many bins ...
    peak_radius_frames: int = 3  # ... and frames
    peaks_per_second: int = 100  # at most, the strongest of each second
    fan_out: int = 5  # landmarks per anchor peak: the next peaks in time
    max_dt: int = 63  # frames between a landmark's two peaks (1.46 s)
    max_df: int = 31  # bins
    bin_step: int = 2  # the hash's resolution: a reverberant room moves peaks by a bin or a frame
    frame_step: int = 2
    silence_nats: float = 8.0  # bins more than ~70 dB under the loudest one hold no peaks

    @property
    def frame_seconds(self) -> float:
        return self.hop / self.sample_rate

    def to_dict(self) -> dict:
        return asdict(self)
