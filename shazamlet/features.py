"""Log-mel front end and tiling: the one place where audio becomes 64x64 tiles.

Functional core (stateless functions with every parameter explicit) plus a thin `LogMelFrontEnd`
module that keeps the window and the mel filterbank as buffers. The app and the trainer both call
this code, so a tile in the library, a live microphone tile and a training tile are computed
identically.

Shapes follow torchaudio: waveforms `(..., time)`, spectrograms `(..., n_mels, frames)`, tiles
`(n_tiles, n_mels, tile_frames)`.

Framing uses `center=False`: frame `i` covers samples `[i*hop, i*hop + n_fft)`, so a tile cut from a
long file is bit-for-bit the tile of the same excerpt decoded alone. Normalisation is per tile
(relative to its loudest bin, fixed dynamic range), never per file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
import torchaudio.functional as AF

from shazamlet.audio.frames import FramedStream
from shazamlet.config import FeatureConfig
from shazamlet.memory import release_freed_memory


def mel_filterbank(cfg: FeatureConfig) -> torch.Tensor:
    """Triangular mel filters `(n_fft // 2 + 1, n_mels)` (HTK scale, unit peak).

    A model file may record a front end whose top bands hold no FFT bin (a lower sample rate than
    `f_max` assumes): those bands are simply always empty, so torchaudio's warning about it, two lines
    of its source on the user's terminal, is not passed on.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="At least one mel filterbank has all zero values")
        return AF.melscale_fbanks(
            n_freqs=cfg.n_fft // 2 + 1,
            f_min=cfg.f_min,
            f_max=cfg.f_max,
            n_mels=cfg.n_mels,
            sample_rate=cfg.sample_rate,
            norm=None,
            mel_scale="htk",
        )


def mel_power(
    wave: torch.Tensor, window: torch.Tensor, fbanks: torch.Tensor, n_fft: int, hop_length: int
) -> torch.Tensor:
    """Mel power spectrogram `(..., n_mels, frames)` of `wave (..., time)`.

    Scaled so that a full-scale sine has power ~1 (0 dB) in its band: absolute levels then mean
    something (silence detection) while tiles stay level-invariant after normalisation.
    """
    shape = wave.shape
    flat = wave.reshape(-1, shape[-1])
    if flat.shape[-1] < n_fft:
        return torch.zeros(*shape[:-1], fbanks.shape[1], 0, dtype=wave.dtype)
    spec = torch.stft(
        flat, n_fft=n_fft, hop_length=hop_length, window=window, center=False, return_complex=True
    )
    scale = 2.0 / window.sum()
    power = (spec.abs() * scale) ** 2  # (batch, freq, frames)
    mel = torch.matmul(power.transpose(-1, -2), fbanks).transpose(-1, -2)
    return mel.reshape(*shape[:-1], mel.shape[-2], mel.shape[-1])


POWER_FLOOR = 1e-12  # mel power below this is silence
FLOOR_DB = -120.0  # its dB: what a silent (or padded) frame holds


def power_to_db(power: torch.Tensor, floor: float = POWER_FLOOR) -> torch.Tensor:
    return 10.0 * torch.log10(torch.clamp(power, min=floor))


def tile_starts(n_frames: int, tile_frames: int, hop_frames: int, first_frame: int = 0) -> np.ndarray:
    """Start frames of every whole tile that fits in `n_frames` frames, from `first_frame` on."""
    if n_frames < tile_frames + first_frame:
        return np.zeros(0, dtype=np.int64)
    return np.arange(first_frame, n_frames - tile_frames + 1, hop_frames, dtype=np.int64)


def cut_tiles(spec: torch.Tensor, starts: np.ndarray, tile_frames: int) -> torch.Tensor:
    """Tiles `(n, n_mels, tile_frames)` from a spectrogram `(n_mels, frames)` at `starts`."""
    if len(starts) == 0:
        return spec.new_zeros(0, spec.shape[0], tile_frames)
    windows = spec.unfold(-1, tile_frames, 1)  # (n_mels, n_windows, tile_frames)
    return windows[:, torch.as_tensor(starts)].permute(1, 0, 2).contiguous()


def normalise_tiles(db_tiles: torch.Tensor, top_db: float) -> torch.Tensor:
    """Map dB tiles `(..., n_mels, tile_frames)` to [0, 1] against each tile's own maximum."""
    peak = db_tiles.amax(dim=(-2, -1), keepdim=True)
    return torch.clamp((db_tiles - peak + top_db) / top_db, 0.0, 1.0)


def quiet_frame_counts(tiles: torch.Tensor, top_db: float, below_db: float) -> np.ndarray:
    """How many frames of each normalised tile `(n, n_mels, frames)` have their loudest band more than
    `below_db` under the tile's own peak: the part of the tile that is silence."""
    if len(tiles) == 0:
        return np.zeros(0, np.int64)
    return (tiles.amax(dim=-2) < 1.0 - below_db / top_db).sum(dim=-1).numpy()


def answerable(tiles: torch.Tensor, audible: np.ndarray, top_db: float, max_quiet_frames: int,
               quiet_below_db: float) -> np.ndarray:
    """Which normalised tiles a query is matched and classified on: audible ones that are not partly
    silence (more than `max_quiet_frames` frames `quiet_below_db` under their peak). A sound starting
    or stopping says nothing of which song, or which style, it is."""
    return audible & (quiet_frame_counts(tiles, top_db, quiet_below_db) <= max_quiet_frames)


def tile_peak_db(db_tiles: torch.Tensor) -> torch.Tensor:
    return db_tiles.amax(dim=(-2, -1))


# While a long file's tiles are embedded, freed C heap is given back every this many batches read.
TRIM_EVERY_BATCHES = 8
# Mel power is computed this many frames at a time when a file comes in blocks (`mel_power_stream`): 47 s.
STREAM_CHUNK_FRAMES = 1_024


def mel_power_stream(blocks: Iterable[np.ndarray], frontend: "LogMelFrontEnd",
                     chunk_frames: int = STREAM_CHUNK_FRAMES) -> tuple[torch.Tensor, int]:
    """The mel power `(n_mels, frames)` of a signal given as consecutive sample blocks, and its length in
    samples: the frames of `frontend(whole signal)`, computed `chunk_frames` at a time at the same
    places whatever the blocks (`FramedStream`), so equal for any blocks, and to ~1e-7 to the frames
    computed all at once. Only the spectrogram (~20 KB a second) is kept, never the signal."""
    stream = FramedStream(frontend.cfg.n_fft, frontend.cfg.hop_length, chunk_frames)
    parts = [torch.zeros(frontend.cfg.n_mels, 0)]
    samples = 0
    with torch.no_grad():
        for block in blocks:
            samples += len(block)
            parts += [frontend(torch.from_numpy(segment)) for segment in stream.push(block)]
        last, done = stream.finish()
        if len(last):
            parts.append(frontend(torch.from_numpy(last))[:, done:])
    return torch.cat(parts, dim=-1), samples


class TileBatches:
    """Normalised tiles of one dB spectrogram `(n_mels, frames)` at given start frames, cut only when
    asked for, a slice at a time: `tiles[i:j]` is the tensor `(j - i, n_mels, tile_frames)` that
    `LogMelFrontEnd.tiles_from_power` gives at those starts. A 2-hour song's 14 000 tiles and in-between
    tiles would take 230 MB cut at once; its spectrogram takes 40 MB, and the encoder reads a batch."""

    def __init__(self, db: torch.Tensor, starts: np.ndarray, cfg: FeatureConfig) -> None:
        self.db, self.starts, self.cfg = db, np.asarray(starts, np.int64), cfg
        self.served = 0

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: slice) -> torch.Tensor:
        self.served += 1
        if self.served % TRIM_EVERY_BATCHES == 0:  # the encoder's freed activations: 2-h file 0.84-0.86 -> 0.75 GB
            release_freed_memory()
        return normalise_tiles(cut_tiles(self.db, self.starts[index], self.cfg.tile_frames), self.cfg.top_db)

    def numpy(self) -> np.ndarray:
        """All the tiles at once (small songs and tests)."""
        return self[:].numpy()

    def audible(self, batch: int = 1024) -> np.ndarray:
        """Which tiles carry sound (their loudest bin above `cfg.silence_db`), `batch` tiles cut at a time."""
        out = [np.zeros(0, bool)] + [
            (tile_peak_db(cut_tiles(self.db, self.starts[i : i + batch], self.cfg.tile_frames)) > self.cfg.silence_db).numpy()
            for i in range(0, len(self.starts), batch)]
        return np.concatenate(out)

    def subset(self, keep: np.ndarray) -> "TileBatches":
        return TileBatches(self.db, self.starts[keep], self.cfg)


@dataclass
class Tiles:
    """Normalised tiles of one signal, where they start, and which ones carry sound."""

    tiles: torch.Tensor  # (n, n_mels, tile_frames), float32 in [0, 1]
    start_frames: np.ndarray  # (n,)
    audible: np.ndarray  # (n,) bool: False for silent tiles
    frame_seconds: float

    def __len__(self) -> int:
        return len(self.start_frames)


class LogMelFrontEnd(torch.nn.Module):
    """Waveform at `cfg.sample_rate` -> mel power, dB, and normalised tiles."""

    def __init__(self, cfg: FeatureConfig = FeatureConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        self.register_buffer("fbanks", mel_filterbank(cfg), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Mel power `(..., n_mels, frames)`."""
        return mel_power(wave, self.window, self.fbanks, self.cfg.n_fft, self.cfg.hop_length)

    def tiles_from_power(self, power: torch.Tensor, hop_frames: int, first_frame: int = 0) -> Tiles:
        """Cut a mel power spectrogram `(n_mels, frames)` into normalised tiles starting at
        `first_frame`, `first_frame + hop_frames`, ..."""
        cfg = self.cfg
        starts = tile_starts(power.shape[-1], cfg.tile_frames, hop_frames, first_frame)
        db = cut_tiles(power_to_db(power), starts, cfg.tile_frames)
        audible = (tile_peak_db(db) > cfg.silence_db).numpy() if len(starts) else np.zeros(0, bool)
        return Tiles(normalise_tiles(db, cfg.top_db), starts, audible, cfg.frame_seconds)

    @torch.no_grad()
    def tiles(self, wave: np.ndarray | torch.Tensor, hop_frames: int) -> Tiles:
        """Tiles of a mono waveform (already at `cfg.sample_rate`)."""
        w = torch.as_tensor(np.asarray(wave, dtype=np.float32))
        return self.tiles_from_power(self.forward(w), hop_frames)
