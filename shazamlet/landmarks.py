"""Spectral-peak landmarks (Wang 2003; audfprint): an exact second check of a candidate's alignment.

The neural fingerprint nominates the right song for most microphone queries, but through room noise or
people talking a look-alike sometimes scores a little higher. A landmark is a pair of spectral peaks
(frequency of the first, frequency step, time step). A peak that stands out of the noise lands at the
same place in the library song and in the query, so the right song shares many landmarks with the
query *at one common time offset*, while a look-alike shares only chance ones, spread over all
offsets. Only the few nominated candidates, and only a few seconds of each around the place the neural
match aligned the query to, are compared, so the check costs a few milliseconds.

Measured on the evaluation's queries (trainer/README.md): reverb is what destroys landmarks (a room
leaves ~4 of a 3-s clip's sparse landmarks where clean audio keeps ~70), so peaks are dense (~100 a
second, local maxima over +-3 bins and frames) and the hash is coarse (2 bins, 2 frames); chance
matches rise with density, and are judged against the background of the other offsets (`Evidence`).

The library keeps each song's peaks (packed int64 here; deflated time steps and bins on disk, ~130 bytes
per second of music), not its landmarks: the landmarks of the few seconds compared are paired again at
query time. numpy, and torch's FFT; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from shazamlet.audio.frames import FramedStream
from shazamlet.config import LandmarkConfig

BIN_BITS = 10  # a packed peak: frame << BIN_BITS | bin
SILENT_LOG = float(np.log(1e-3))  # a bin's magnitude under ~-110 dB of a full-scale sine: digital silence


def unpack(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Packed peaks (`frame << BIN_BITS | bin`) -> (frames, bins), int64."""
    p = np.asarray(packed, np.int64)
    return p >> BIN_BITS, p & ((1 << BIN_BITS) - 1)


@dataclass
class Landmarks:
    times: np.ndarray  # (n,) int32: frame of the anchor peak (in time order from `pair`)
    hashes: np.ndarray  # (n,) int32: anchor bin, bin step and frame step, quantised and packed (20 bits)

    def __len__(self) -> int:
        return len(self.times)

    def by_hash(self) -> "Landmarks":
        """The same landmarks in hash order, as a query's are kept: `evidence` finds sorted hashes in a
        song's in ~60% of the CPU (each binary search starts where the last one ended)."""
        order = np.argsort(self.hashes, kind="stable")
        return Landmarks(self.times[order], self.hashes[order])


@dataclass
class Evidence:
    """How strongly a query's landmarks agree with a song at one offset near the expected one."""

    count: int  # landmarks found at the best offset (+-1 frame pooled)
    background: float  # the mean count over the other offsets searched: chance matches
    offset: int  # the best offset (frames, song minus query)

    @property
    def excess(self) -> float:
        """Matches above chance, in units of its spread (Poisson): ~0-3 for a wrong song."""
        return max(0.0, (self.count - self.background) / np.sqrt(self.background + 1.0))


def peaks(wave: np.ndarray, cfg: LandmarkConfig = LandmarkConfig(), chunk_frames: int = 2_048) -> np.ndarray:
    """The spectral peaks of a mono waveform, packed (frame << BIN_BITS | bin, int64: a 13.5-h file
    would overflow int32) and sorted by time (`PeakPicker`, given the waveform at once)."""
    picker = PeakPicker(cfg, chunk_frames)
    picker.push(wave)
    return picker.finish()


class PeakPicker:
    """`peaks` of a signal given as consecutive sample blocks (a long file decoded a block at a time):
    the same peaks as of the whole signal, in tens of MB whatever its length.

    The spectrogram is made `chunk_frames` (~48 s) at a time and only the peak neighbourhood's frames
    around what is searched are kept (10 min of noise: 28 against 202 MiB at once); the silence floor and
    the strongest-of-each-second choice need the whole song, so they are applied to the candidates (the
    local maxima, a few hundred a second) at the end.
    """

    def __init__(self, cfg: LandmarkConfig = LandmarkConfig(), chunk_frames: int = 2_048) -> None:
        self.cfg = cfg
        self.frames = FramedStream(cfg.n_fft, cfg.hop, chunk_frames)
        lo, hi = band_bins(cfg)
        self.logs = np.zeros((0, hi - lo), np.float32)  # log magnitudes of frames [logs_first, ...): not searched yet,
        self.logs_first = 0  # and the peak radius' frames before them
        self.searched = 0  # frames [0, searched) are searched
        self.found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.loudest = -np.inf

    def push(self, block: np.ndarray) -> None:
        for segment in self.frames.push(block):
            self.logs = np.concatenate([self.logs, log_band(stft_frames(segment, self.cfg), self.cfg)])
            self._search(final=False)

    def finish(self) -> np.ndarray:
        """The packed peaks of everything pushed, sorted by time."""
        last, done = self.frames.finish()
        if len(last):
            self.logs = np.concatenate([self.logs, log_band(stft_frames(last, self.cfg), self.cfg)[done:]])
        self._search(final=True)
        cfg = self.cfg
        if not self.found:
            return np.zeros(0, np.int64)
        t, f, v = (np.concatenate(x) for x in zip(*self.found))
        audible = v > max(self.loudest - cfg.silence_nats, SILENT_LOG)
        t, f, v = t[audible], f[audible], v[audible]
        if len(t) == 0:
            return np.zeros(0, np.int64)
        # the strongest of each second, so that a dense passage does not crowd a quiet one out
        block = t // max(1, int(round(1.0 / cfg.frame_seconds)))
        order = np.lexsort((-v, block))  # by block, strongest first
        first_of_block = np.r_[0, np.flatnonzero(np.diff(block[order])) + 1]
        rank = np.arange(len(order)) - np.repeat(first_of_block, np.diff(np.r_[first_of_block, len(order)]))
        keep = order[rank < cfg.peaks_per_second]
        return np.sort((t[keep].astype(np.int64) << BIN_BITS) | (f[keep] + band_bins(cfg)[0]))

    def _search(self, final: bool) -> None:
        """Local maxima of the frames whose neighbourhood is complete (all of them at the end): a frame's
        maximum over +-radius frames is taken over what there is only at the signal's two ends."""
        r = self.cfg.peak_radius_frames
        have = self.logs_first + len(self.logs)
        upto = have if final else have - r
        if upto <= self.searched:
            return
        logs = self.logs[: upto + r - self.logs_first]
        local = _running_max(_running_max(logs, self.cfg.peak_radius_bins, 1), r, 0)
        inner = slice(self.searched - self.logs_first, upto - self.logs_first)
        t, f = np.nonzero(logs[inner] == local[inner])
        if len(logs[inner]):
            self.found.append(((t + self.searched).astype(np.int32), f.astype(np.int16), logs[inner][t, f]))
            self.loudest = max(self.loudest, float(logs[inner].max()))
        self.searched = upto
        drop = max(0, upto - r - self.logs_first)
        self.logs, self.logs_first = self.logs[drop:], self.logs_first + drop


def band_bins(cfg: LandmarkConfig) -> tuple[int, int]:
    """The STFT bins [lo, hi) that peaks are looked for in (min_hz to max_hz)."""
    return int(np.ceil(cfg.min_hz * cfg.n_fft / cfg.sample_rate)), int(cfg.max_hz * cfg.n_fft / cfg.sample_rate) + 1


def stft_frames(wave: np.ndarray, cfg: LandmarkConfig) -> np.ndarray:
    """The waveform's STFT frames `(n, n_fft)`, a view (no copy)."""
    return np.lib.stride_tricks.sliding_window_view(np.asarray(wave, np.float32), cfg.n_fft)[:: cfg.hop]


def log_band(frames: np.ndarray, cfg: LandmarkConfig) -> np.ndarray:
    """Log magnitudes `(n, hi - lo)` float32 of STFT frames, over the band peaks are looked for in."""
    lo, hi = band_bins(cfg)
    # torch's FFT: as fast as scipy's, and torch is loaded already (scipy.fft took 0.3 s to import)
    if not len(frames):  # (MKL's FFT refuses an empty batch)
        return np.zeros((0, hi - lo), np.float32)
    windowed = torch.from_numpy(frames * np.hanning(cfg.n_fft).astype(np.float32))
    spec = torch.fft.rfft(windowed, dim=1)[:, lo:hi].abs().numpy()  # float32; the band's magnitudes only
    return np.log(spec + 1e-6).astype(np.float32)


def _running_max(a: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """The maximum over +-radius along one axis (edges: over what there is); for the small radii used,
    2 x radius vectorised passes are twice as fast as `scipy.ndimage.maximum_filter`, same result."""
    out = a.copy()
    src, dst = np.moveaxis(a, axis, 0), np.moveaxis(out, axis, 0)
    for s in range(1, radius + 1):
        np.maximum(dst[s:], src[:-s], out=dst[s:])
        np.maximum(dst[:-s], src[s:], out=dst[:-s])
    return out


def pair(packed: np.ndarray, cfg: LandmarkConfig = LandmarkConfig(), chunk: int = 20_000) -> Landmarks:
    """Landmarks from packed peaks: each anchor with the next `fan_out` peaks (in time) within
    max_dt frames and max_df bins. Anchors are paired `chunk` at a time (a few MB each), each against
    the `reach` peaks after it seen through a sliding window (views, no gathers: x2.2 faster, the same
    landmarks)."""
    n = len(packed)
    if n < 2:
        return Landmarks(np.zeros(0, np.int32), np.zeros(0, np.int32))
    t, f = unpack(packed)
    reach = 4 * cfg.fan_out  # later peaks looked at per anchor; enough at ~100 peaks a second
    # after the last peak, `reach` stand-ins too late to pair with anything
    t = np.concatenate([t, np.full(reach, t[-1] + cfg.max_dt + 1)]).astype(np.int32)
    f = np.concatenate([f, np.zeros(reach, f.dtype)]).astype(np.int32)
    later_t = np.lib.stride_tricks.sliding_window_view(t, reach + 1)  # row i: peak i and the `reach` after it
    later_f = np.lib.stride_tricks.sliding_window_view(f, reach + 1)
    times, hashes = [], []
    for start in range(0, n, chunk):
        rows = slice(start, min(n, start + chunk))
        dt, df = later_t[rows, 1:] - later_t[rows, :1], later_f[rows, 1:] - later_f[rows, :1]
        ok = (dt > 0) & (dt <= cfg.max_dt) & (np.abs(df) <= cfg.max_df)
        ok &= np.cumsum(ok, axis=1, dtype=np.int16) <= cfg.fan_out
        a, b = np.nonzero(ok)
        anchor = a + start
        times.append(t[anchor])
        hashes.append((((f[anchor] // cfg.bin_step) << 12) | (((df[a, b] + cfg.max_df) // cfg.bin_step) << 6)
                       | (dt[a, b] // cfg.frame_step)).astype(np.int32))
    return Landmarks(np.concatenate(times), np.concatenate(hashes))


def landmarks(wave: np.ndarray, cfg: LandmarkConfig = LandmarkConfig()) -> Landmarks:
    return pair(peaks(wave, cfg), cfg)


def peaks_between(packed: np.ndarray, first: int, last: int) -> np.ndarray:
    """The packed peaks whose frame lies in [first, last]."""
    lo, hi = np.searchsorted(packed, [max(first, 0) << BIN_BITS, (last + 1) << BIN_BITS])
    return packed[lo:hi]


def shared_peaks(a: np.ndarray, a_first: int, b: np.ndarray, b_first: int, frames: int, slack: int = 3) -> float:
    """The share of song a's peaks in `frames` frames from `a_first` that song b also has at the same
    place from `b_first` (within a bin, at the best of +-`slack` frames): ~1 for two files of one
    recording (another encode, another gain), a few percent for different music.

    The recognizer asks this of its leading candidates: a track kept twice (an album and a compilation)
    would otherwise be each other's runner-up, and neither would ever be named.
    """
    pa = peaks_between(a, a_first, a_first + frames - 1)
    pb = peaks_between(b, b_first - slack, b_first + frames - 1 + slack)
    if len(pa) < 10 or len(pb) == 0:
        return 0.0
    (ta, fa), (tb, fb) = unpack(pa), unpack(pb)
    ta, tb = ta - a_first, tb - b_first
    top = (1 << BIN_BITS) - 1
    have = np.unique(np.concatenate([(tb << BIN_BITS) | np.clip(fb + d, 0, top) for d in (-1, 0, 1)]))
    shifts = np.arange(-slack, slack + 1)[:, None]
    wanted = ((ta[None, :] + shifts) << BIN_BITS) | fa[None, :]  # a's peaks at each shift, one row each
    # looked up in the sorted keys at once (one `np.isin` per shift sorted them again: x5 the CPU)
    found = have[np.minimum(np.searchsorted(have, wanted), len(have) - 1)] == wanted
    return float(found.sum(axis=1).max()) / len(pa)


@dataclass
class SongLandmarks:
    """A song's landmarks sorted by hash, for looking a query's up (`evidence`)."""

    hashes: np.ndarray
    times: np.ndarray
    frames: int  # the song's length in frames

    @classmethod
    def of(cls, packed: np.ndarray, cfg: LandmarkConfig = LandmarkConfig()) -> "SongLandmarks":
        lms = pair(packed, cfg)
        order = np.argsort(lms.hashes)  # int32 quicksort: 1 ms for a 3-min song's ~80 000 landmarks
        frames = int(np.asarray(packed[-1:], np.int64).max(initial=0) >> BIN_BITS) + 1 if len(packed) else 0
        return cls(lms.hashes[order], lms.times[order], frames)


def aligned_evidence(query: Landmarks, song_peaks: np.ndarray, offset: float, slack: float,
                     cfg: LandmarkConfig = LandmarkConfig()) -> Evidence:
    """The query's landmarks found in the song at one common offset within `slack` frames of `offset`
    (the neural match's alignment, song frame minus query frame)."""
    if len(query) == 0:
        return Evidence(0, 0.0, int(round(offset)))
    first = int(np.floor(offset - slack)) + int(query.times.min())
    last = int(np.ceil(offset + slack)) + int(query.times.max()) + cfg.max_dt
    song = SongLandmarks.of(peaks_between(song_peaks, first, last), cfg)
    return evidence(query, song, int(np.floor(offset - slack)), int(np.ceil(offset + slack)))


def song_wide_evidence(query: Landmarks, song: SongLandmarks) -> Evidence:
    """The same at any offset of the whole song: where the fingerprints aligned a query to the wrong
    repeat of a looping song, or to a look-alike passage. Chance alone reaches ~3.5 standard deviations
    more over a whole song's offsets than over the 2.4 s `aligned_evidence` searches (measured)."""
    if len(query) == 0:
        return Evidence(0, 0.0, 0)
    return evidence(query, song, -int(query.times.max()), song.frames)


def evidence(query: Landmarks, song: SongLandmarks, first: int, last: int) -> Evidence:
    """Counts of the query's landmarks found in `song` at each offset in [first, last] (song frame minus
    query frame), +-1 frame pooled: the best offset, its count and the mean count elsewhere."""
    none = Evidence(0, 0.0, (first + last) // 2)
    if len(query) == 0 or len(song.hashes) == 0 or last < first:
        return none
    lo = np.searchsorted(song.hashes, query.hashes, "left")
    hi = np.searchsorted(song.hashes, query.hashes, "right")
    hit = hi > lo
    if not hit.any():
        return none
    counts = (hi - lo)[hit]
    starts = np.repeat(lo[hit], counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    deltas = song.times[starts] - np.repeat(query.times[hit], counts)
    width = last - first + 1
    deltas = deltas[(deltas >= first) & (deltas <= last)] - first
    hist = np.bincount(deltas, minlength=width).astype(np.float64)
    pooled = hist + np.r_[hist[1:], 0.0] + np.r_[0.0, hist[:-1]]
    best = int(np.argmax(pooled))
    rest = np.delete(pooled, np.arange(max(0, best - 2), min(width, best + 3)))
    return Evidence(int(pooled[best]), float(rest.mean()) if len(rest) else 0.0, best + first)
