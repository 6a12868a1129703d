"""Stage 1, query: what is computed once per query, from the waveform.

The tiles the query is matched on, their fingerprints and genre probabilities, and, made only when
the verify stage asks for them, the query's landmarks and presence map (both from its spectral peaks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Protocol, TypeVar

import numpy as np
import torch

from shazamlet.config import FeatureConfig, LandmarkConfig
from shazamlet.features import LogMelFrontEnd, answerable
from shazamlet.landmarks import Landmarks, pair, peaks
from shazamlet.model.checkpoint import LoadedModel
from shazamlet.presence import PresenceMap, presence_map
from shazamlet.recognition.config import QueryConfig
from shazamlet.recognition.speed import Heard, heard_at

T = TypeVar("T")


@dataclass
class Query:
    wave: np.ndarray  # mono, at the front end's rate, padded to one tile
    fingerprints: np.ndarray  # (q, dim) of the tiles that are sound throughout
    starts: np.ndarray  # (q,) where those tiles start in the query (front-end frames)
    probs: np.ndarray | None  # (q, genres) the model's genre probabilities; None without a genre head
    landmark_cfg: LandmarkConfig = field(repr=False, default_factory=LandmarkConfig)
    landmark_frames_per_frame: float = 1.0  # landmark (peak) frames per front-end frame
    _checked: dict[tuple, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def silent(self) -> bool:
        return len(self.starts) == 0

    @cached_property
    def peaks(self) -> np.ndarray:
        """The query's packed spectral peaks, made once and only when asked for."""
        return peaks(self.wave, self.landmark_cfg)

    @cached_property
    def landmarks(self) -> Landmarks:
        """The query's landmarks (pairs of spectral peaks) in hash order, made once and only when asked for."""
        return pair(self.peaks, self.landmark_cfg).by_hash()

    def at_speed(self, speed: float, with_presence: bool) -> Heard:
        """The query's landmarks (and presence map) as if it had been played at 1x, supposing it was played
        at `speed`: made once per speed, shared by every candidate checked (`shazamlet.recognition.speed`)."""
        return self.once(("at speed", speed, with_presence), lambda: heard_at(
            self.peaks, self.presence_map if with_presence else None, speed, self.landmark_cfg))

    def once(self, key: tuple, make: Callable[[], T]) -> T:
        """What `make` computes for this query, made once per `key`: the query heard at another speed, a
        candidate's peak evidence at an offset (the verify stage checks the candidates again after the
        presence search joined a few, and the lead alone before that: most were checked already)."""
        if key not in self._checked:
            self._checked[key] = make()
        return self._checked[key]

    @cached_property
    def presence_map(self) -> PresenceMap:
        """How loud each time-frequency cell of the query is (`shazamlet.presence`), made once when asked for."""
        return presence_map(self.wave, self.landmark_cfg)


class Fingerprinter(Protocol):
    """What recognition needs of the model: a `TileEmbedder`, or the listener's `WindowFingerprints`
    (which remembers the fingerprints of tiles it has seen)."""

    model: LoadedModel
    features: FeatureConfig
    frontend: LogMelFrontEnd

    @property
    def dim(self) -> int: ...

    @property
    def genres(self) -> list[str]: ...

    def encode(self, tiles: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]: ...


class QueryEncoder:
    """Turns a waveform into a `Query`."""

    def __init__(self, embedder: Fingerprinter, hop_frames: int, landmark_cfg: LandmarkConfig, cfg: QueryConfig) -> None:
        self.embedder = embedder
        self.features: FeatureConfig = embedder.features
        self.hop_frames = hop_frames
        self.landmark_cfg = landmark_cfg
        self.cfg = cfg
        self.per_frame = self.features.frame_seconds / landmark_cfg.frame_seconds

    def __call__(self, wave: np.ndarray) -> Query:
        need = self.features.tile_samples
        if len(wave) < need:
            wave = np.pad(wave, (0, need - len(wave)))
        tiles = self.embedder.frontend.tiles(wave, self.hop_frames)
        # without a tile that is sound throughout there is nothing to identify yet
        keep = answerable(tiles.tiles, tiles.audible, self.features.top_db, self.cfg.max_quiet_frames,
                          self.cfg.quiet_below_db)
        if not keep.any():
            return Query(wave, np.zeros((0, self.embedder.dim), np.float32), np.zeros(0, np.int64), None,
                         self.landmark_cfg, self.per_frame)
        fps, probs = self.embedder.encode(tiles.tiles[torch.as_tensor(keep)])
        return Query(wave, fps, tiles.start_frames[keep], probs, self.landmark_cfg, self.per_frame)
