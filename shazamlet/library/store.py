"""Per-song fingerprints on disk: the durable source the ANNOY index is rebuilt from.

One small `.npz` per song (float16 fingerprints + tile start frames; with a model that has a tile
projection, also the int8 projections of the in-between tiles, `shazamlet.library.between`; and the
song's spectral peaks for the landmark check, `shazamlet.landmarks`), written to a temp file and renamed, so a crash never leaves half a file under a real name. ANNOY files are derived data; these
are what a corrupted index is rebuilt from.

A file that cannot be read as one (truncated, overwritten, a bad CRC) raises `FingerprintsDamaged`,
and the library sets it aside (`set_aside`: renamed to `<name>.damaged`), so that everywhere else it
counts as missing: the song is left out of the index until `library add` re-embeds it.

File names come from the catalog, which anyone who can write the folder can edit: a name is used only
if it is one the library makes itself (`<content hash>[.<model hash>].npz`) and names a regular file,
not a link. Anything else (`../../Music/x.flac`, an absolute path, a symlink out) counts as missing,
with one warning line, and is never read, renamed or deleted.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from shazamlet.landmarks import BIN_BITS, unpack
from shazamlet.library.writing import TEMP_PREFIX

# what reading a damaged file raises: truncated or overwritten, BadZipFile or EOFError (garbage without a zip
# directory: ValueError about pickled data); altered inside, zlib.error or BadZipFile (bad CRC); KeyError
# for a member that is not there
_FORMAT_ERRORS = (ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)
DAMAGED_SUFFIX = ".damaged"
# the only names the library gives fingerprint files: a content hash, then a model hash after a reindex
_OWN_NAME = re.compile(r"[0-9a-f]{32}(\.[0-9a-f]{12})?\.npz")
log = logging.getLogger("shazamlet.library")


class FingerprintsDamaged(Exception):
    """A fingerprint file that exists but cannot be read as one; the message names the file."""


def is_own_name(name: str) -> bool:
    """Whether `name` is a fingerprint file name the library makes (a plain name, no path in it)."""
    return isinstance(name, str) and _OWN_NAME.fullmatch(name) is not None


class EmbeddingStore:
    def __init__(self, folder: Path, create: bool = True, read_only: bool = False) -> None:
        self.folder = folder
        self.read_only = read_only  # a damaged file is then only skipped, not set aside
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        self._refused: set[str] = set()  # names already warned about

    def _path(self, name: str) -> Path | None:
        """The file a stored name stands for, or None (with one warning line per name) when the name is
        not one the library makes, or the file there is not a regular file (a link, a folder, a pipe)."""
        if is_own_name(name):
            path = self.folder / name
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                return path
            except OSError:
                mode = 0
            if stat.S_ISREG(mode):
                return path
            why = "not a regular file (a link or a folder)"
        else:
            why = "not a name this library gives its files (a path outside it?)"
        if name not in self._refused:
            self._refused.add(name)
            log.warning(f"warning: the catalog names {name!r} as a fingerprint file: {why}; it is ignored and left "
                        "untouched, and its song is re-embedded by `shazamlet library add` of its file")
        return None

    def _existing(self, name: str) -> Path:
        """The path of a stored name to read; FileNotFoundError when it is missing or refused."""
        path = self._path(name)
        if path is None:
            raise FileNotFoundError(f"{name}: not a fingerprint file of this library")
        return path

    def write(self, name: str, fingerprints: np.ndarray, start_frames: np.ndarray,
              between: np.ndarray | None = None, between_starts: np.ndarray | None = None,
              peaks: np.ndarray | None = None) -> str:
        """Store one song's fingerprints under `name` (a file name), the int8 codes of its in-between
        tiles and its packed spectral peaks when there are any; returns the name."""
        if not is_own_name(name):
            raise ValueError(f"not a fingerprint file name: {name!r}")
        arrays = {"fp": fingerprints.astype(np.float16), "starts": start_frames.astype(np.int32)}
        if between is not None and between_starts is not None:
            arrays.update(between=between.astype(np.int8), between_starts=between_starts.astype(np.int32))
        if peaks is not None:
            # time steps between peaks (mostly 0-3 frames) and bins, deflated: ~130 bytes a second of
            # music, a third of them as packed int32s
            frames, bins = unpack(peaks)
            arrays.update(peak_steps=np.diff(frames, prepend=0).astype(np.uint32), peak_bins=bins.astype(np.uint16))
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".npz", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                _savez(f, arrays, compressed={"peak_steps", "peak_bins"})
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.folder / name)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        (self.folder / (name + DAMAGED_SUFFIX)).unlink(missing_ok=True)  # the damaged copy it replaces
        return name

    @contextmanager
    def _opened(self, name: str) -> Iterator[np.lib.npyio.NpzFile]:
        """The file as an NpzFile; what a damaged file raises while it is read becomes FingerprintsDamaged
        (a missing file stays FileNotFoundError)."""
        try:
            with np.load(self._existing(name), allow_pickle=False) as z:
                yield z
        except _FORMAT_ERRORS as exc:
            raise FingerprintsDamaged(f"{name}: {_what_is_wrong(exc)}") from None

    def read(self, name: str, peaks: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(fingerprints, start frames, and with `peaks` the packed peaks, or None for a file without)."""
        with self._opened(name) as z:
            return z["fp"], z["starts"], _packed_peaks(z) if peaks else None

    def check(self, name: str, full: bool = False) -> None:
        """Raise FingerprintsDamaged unless the file reads: its zip directory, or with `full` every array
        (which checks each member's CRC: ~1 ms for a 4-min song, where the directory takes ~0.1 ms)."""
        with self._opened(name) as z:
            if "fp" not in z.files or "starts" not in z.files:
                raise KeyError("no fingerprints in it")
            if full:
                for key in z.files:
                    z[key]

    def set_aside(self, name: str) -> None:
        """Rename a damaged file to `<name>.damaged`: kept for a look, but from now on the song has no
        fingerprints (it is re-embedded by the next `library add` of its file, which removes this copy)."""
        path = self._path(name)
        if path is None or self.read_only:
            return
        try:
            os.replace(path, self.folder / (name + DAMAGED_SUFFIX))
        except FileNotFoundError:
            pass

    def read_between(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(int8 codes, start frames) of the song's in-between tiles; None for a file written without
        them (an older library, or a model without a tile projection)."""
        with self._opened(name) as z:
            if "between" not in z.files:
                return None
            return z["between"], z["between_starts"].astype(np.int64)

    def read_peaks(self, name: str) -> np.ndarray | None:
        """The song's packed spectral peaks (`shazamlet.landmarks.peaks`); None for a file written
        without them (an older library)."""
        with self._opened(name) as z:
            return _packed_peaks(z)

    def members(self, name: str) -> set[str]:
        """The arrays a fingerprint file holds (its directory only is read)."""
        with self._opened(name) as z:
            return set(z.files)

    def exists(self, name: str) -> bool:
        path = self._path(name)
        return path is not None and path.exists()

    def delete(self, name: str) -> None:
        """Remove a song's file, and the damaged copy set aside under its name if there is one."""
        path = self._path(name)
        if path is None:
            return
        for p in (path, self.folder / (name + DAMAGED_SUFFIX)):
            p.unlink(missing_ok=True)

    def names(self) -> set[str]:
        return {p.name for p in self.folder.glob("*.npz")}


def _packed_peaks(z: np.lib.npyio.NpzFile) -> np.ndarray | None:
    if "peak_steps" not in z.files:
        return None
    frames = np.cumsum(z["peak_steps"].astype(np.int64))
    return (frames << BIN_BITS) | z["peak_bins"].astype(np.int64)


def _what_is_wrong(exc: Exception) -> str:
    """A few words on a damaged file, from what reading it raised."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "pickle" in text:  # numpy's guess for bytes that are neither a zip nor an .npy
        return "not a fingerprint file"
    return text[:100]


def _savez(f, arrays: dict[str, np.ndarray], compressed: set[str]) -> None:
    """`np.savez`, with deflate for the members named in `compressed` only: the float16 fingerprints
    hardly compress and are read on every index rebuild, the peaks shrink to a third of packed int32s."""
    with zipfile.ZipFile(f, "w", allowZip64=True) as zf:
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(key + ".npy")
            info.compress_type = zipfile.ZIP_DEFLATED if key in compressed else zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asanyarray(arr), allow_pickle=False)
