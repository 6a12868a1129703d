"""Per-song fingerprints on disk: the durable source the ANNOY index is rebuilt from.

One small `.npz` per song (float16 fingerprints + tile start frames; with a model that has a tile
projection, also the int8 projections of the in-between tiles, `shazamlet.library.between`), written
to a temp file and renamed, so a crash never leaves half a file under a real name. ANNOY files are derived data; these
are what a corrupted index is rebuilt from.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


class EmbeddingStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, fingerprints: np.ndarray, start_frames: np.ndarray,
              between: np.ndarray | None = None, between_starts: np.ndarray | None = None) -> str:
        """Store one song's fingerprints under `name` (a file name), and the int8 codes of its
        in-between tiles when there are any; returns the name."""
        arrays = {"fp": fingerprints.astype(np.float16), "starts": start_frames.astype(np.int32)}
        if between is not None and between_starts is not None:
            arrays.update(between=between.astype(np.int8), between_starts=between_starts.astype(np.int32))
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.folder / name)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return name

    def read(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        with np.load(self.folder / name, allow_pickle=False) as z:
            return z["fp"], z["starts"]

    def read_between(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(int8 codes, start frames) of the song's in-between tiles; None for a file written without
        them (an older library, or a model without a tile projection)."""
        with np.load(self.folder / name, allow_pickle=False) as z:
            if "between" not in z.files:
                return None
            return z["between"], z["between_starts"].astype(np.int64)

    def exists(self, name: str) -> bool:
        return (self.folder / name).exists()

    def delete(self, name: str) -> None:
        try:
            (self.folder / name).unlink()
        except FileNotFoundError:
            pass

    def names(self) -> set[str]:
        return {p.name for p in self.folder.glob("*.npz")}
