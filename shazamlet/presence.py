"""Peak presence: a candidate song's spectral peaks looked up in the query's spectrogram.

The landmark check (`shazamlet.landmarks`) needs peaks of the *query*: with people talking as loud as
the music, the strongest peaks of a 3-s clip are the voices', and few of the music's landmarks survive.
Yet the music's energy is still in the clip, because sounds add. This check asks the reverse question,
and needs no peak of the query: where the library song has its peaks, is the query loud *for that
frequency bin*, at one common offset? Each bin of the query's log spectrum is standardised over the
clip's frames (a bin that voices or a room's resonance fill is loud everywhere, so it gains nothing),
the song's peaks in the window are read off at every offset near the fingerprints' alignment, and the
best offset's mean is judged against the other offsets'. With voices it separates the right song from
wrong ones more often than the landmarks do.

The same reading also *nominates* (`presence_search`): every offset of every library song (or, in a
large library, of the songs nearest the query's fingerprints) is scored at once, each against the
offsets around it, and while the answer is unsure the songs whose peaks stand out most join the
candidates the fingerprints nominated: under voices or a room the fingerprint of a 3-s clip sometimes
lands nowhere near the right song, while its peaks are still loud in the clip (docs/decisions.md has
what each step gains).

numpy, and torch's embedding bag for the search; the query's map is made once and read for every candidate.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from shazamlet.config import LandmarkConfig
from shazamlet.landmarks import band_bins, log_band, peaks_between, stft_frames, unpack

MIN_PEAKS = 5  # an offset that covers fewer of the song's peaks says nothing
SEARCH_FRAMES = 130  # the query frames `presence_search` reads (~3 s)
QUERY_BLOCK_FRAMES = 512  # query frames `presence` reads at a time (~12 s): a whole file's map needs MBs, not GBs
SEARCH_BLOCK_FRAMES = 2048  # song frames whose reads (~1 MB) are summed at a time: fewer calls, still in the cache
SEARCH_GROUP_OFFSETS = 1 << 17  # songs' offsets searched in one pass (~50 min of music, ~15 MB at a time)


@dataclass
class PresenceMap:
    """A query's log spectrum over the peak band, each bin standardised over the query's frames."""

    z: np.ndarray  # (frames, bins) float32
    first_bin: int  # the STFT bin of column 0 (the band's lowest)

    @property
    def frames(self) -> int:
        return self.z.shape[0]

    @functools.cached_property
    def zt(self) -> np.ndarray:
        """The map `(bins, frames)`, contiguous: the rows an embedding bag sums (`_offset_totals`)."""
        return np.ascontiguousarray(self.z.T)


@dataclass
class Presence:
    score: float  # how far the best offset's mean stands above the other offsets', in their standard deviations
    offset: int  # the best offset (frames, song minus query)


def presence_map(wave: np.ndarray, cfg: LandmarkConfig = LandmarkConfig()) -> PresenceMap:
    lo, hi = band_bins(cfg)
    if len(wave) < cfg.n_fft:
        return PresenceMap(np.zeros((0, hi - lo), np.float32), lo)
    logs = log_band(stft_frames(wave, cfg), cfg)
    # bins far under the clip's loudest hold no music (digital silence, a fade): a floor keeps their
    # log's huge negative swings from drowning out the rest, as for the peaks themselves
    logs = np.maximum(logs, float(logs.max()) - cfg.silence_nats)  # relative: a gain changes nothing
    z = (logs - logs.mean(0)) / (logs.std(0) + 1e-3)
    # a knock, a click or a door is loud in every bin of its frames at once: without taking each frame's
    # mean out, any song whose peaks happen to fall on those frames would look present
    z -= z.mean(1, keepdims=True)
    return PresenceMap(z.astype(np.float32), lo)


def presence(query: PresenceMap, song_peaks: np.ndarray, offset: float, slack: float) -> Presence:
    """The song's peaks read off the query's map at each offset within `slack` frames of `offset`
    (song frame minus query frame); 0 where too few offsets cover enough peaks to judge."""
    first, last = int(np.floor(offset - slack)), int(np.ceil(offset + slack))
    none = Presence(0.0, int(round(offset)))
    n = query.frames
    if n == 0 or last < first:
        return none
    t, f = _in_band(peaks_between(song_peaks, first, last + n - 1), query)
    offsets = np.arange(first, last + 1)
    # as in the search: row r holds the song's peaks at frame first + r, and offset first + i reads rows i .. i + n - 1
    cum = np.concatenate([[0], np.cumsum(np.bincount(t - first, minlength=len(offsets) + n))])
    sums = np.zeros(len(offsets))
    for q in range(0, n, QUERY_BLOCK_FRAMES):  # a long map's frames a block at a time: reads stay in MBs
        # query frames q.. read the rows q on: the same peaks (`f` is indexed through `cum`), rows shifted
        sums += _offset_totals(f, cum[q:], len(offsets), np.ascontiguousarray(query.zt[:, q : q + QUERY_BLOCK_FRAMES]))
    counts = cum[n : n + len(offsets)] - cum[: len(offsets)]
    judged = counts >= MIN_PEAKS
    if judged.sum() < MIN_PEAKS:
        return none
    means = sums[judged] / counts[judged]
    at = offsets[judged]
    best = int(np.argmax(means))
    rest = means[np.abs(at - at[best]) > 2]  # without the peak's own shoulders
    if len(rest) < 2:
        return none
    return Presence(float((means[best] - rest.mean()) / (rest.std() + 1e-6)), int(at[best]))


@dataclass
class Nominee:
    song_id: int
    offset: int  # frames (song minus query) where the song's peaks stand out most
    score: float  # how far that offset's mean stands above the offsets around it, in their standard deviations


def presence_search(query: PresenceMap, songs: list[tuple[int, np.ndarray]], top: int, slack: float,
                    min_peaks: int = 20, max_frames: int = SEARCH_FRAMES) -> list[Nominee]:
    """The `top` songs whose peaks stand out most in the query, each at its best offset.

    `presence` judges one offset against the others within `slack` of an expected place. Here every
    offset of every song is judged that way, against the offsets within `slack` around it (not against
    the whole song: a song's loud and quiet passages vary far more than chance does, and with a
    song-wide baseline the wrong songs' best offsets outscored the right one's in 93% of babble3 clips).

    The songs are laid end to end, a group of up to SEARCH_GROUP_OFFSETS offsets at a time, each song
    with empty rows before it (offsets where the query starts before the song) and a gap after it that
    no offset's reads or neighbours cross: one pass reads every offset's total of a group
    (`_offset_totals`) and one scores them (per song, the Python and numpy calls cost as much as the
    sums). Only the query's last `max_frames` (~3 s) are read, which bounds the cost: it is linear in the
    length of the music searched, and its memory in a group's.
    """
    z = query.z[-max_frames:]
    n = z.shape[0]
    cut = query.frames - n  # frames of a longer query left unread: its offsets are the read part's minus these
    if n == 0 or top <= 0:
        return []
    zt = np.ascontiguousarray(z.T)
    w = int(round(slack))
    gap = max(n, w + 3)  # past a song's offsets: its own empty rows, and no neighbour of the next song's
    found = []
    for group in _groups(songs, query, n, gap):
        found += _search_group(group, zt, w, min_peaks, cut)
    found.sort(key=lambda x: x.score, reverse=True)
    return found[:top]


@dataclass
class _Group:
    """Songs laid end to end for one pass of `presence_search`."""

    rows: list[np.ndarray]  # each song's peak frames, moved to its place in the group
    bins: list[np.ndarray]  # their map columns
    spans: list[tuple[int, int, int]]  # (song id, first offset, offsets) of each song
    end: int = 0  # the group's offsets, gaps included


def _groups(songs: list[tuple[int, np.ndarray]], query: PresenceMap, n: int, gap: int):
    """The songs with peaks in the map's band, in groups of up to SEARCH_GROUP_OFFSETS offsets (a longer
    song alone)."""
    group = _Group([], [], [])
    for song_id, packed in songs:
        t, f = _in_band(packed, query)
        if not len(t):
            continue
        offsets = int(t[-1]) + n + 1  # from -n + 1 (the query starting before the song) to the last peak
        if group.spans and group.end + offsets > SEARCH_GROUP_OFFSETS:
            yield group
            group = _Group([], [], [])
        group.rows.append(t + (group.end + n))
        group.bins.append(f)
        group.spans.append((song_id, group.end, offsets))
        group.end += offsets + gap
    if group.spans:
        yield group


def _search_group(group: _Group, zt: np.ndarray, w: int, min_peaks: int, cut: int) -> list[Nominee]:
    """Each song's best offset in one group, scored against the offsets within `w` around it."""
    n, end = zt.shape[1], group.end
    cum = np.zeros(end + n + 1, np.int64)  # sorted by time: also the rows' pointers
    np.cumsum(np.bincount(np.concatenate(group.rows), minlength=end + n), out=cum[1:])
    totals = _offset_totals(np.concatenate(group.bins), cum, end, zt)
    counts = cum[n : end + n] - cum[:end]
    judged = counts >= min_peaks  # the gaps are never judged: they add nothing to their neighbours' baselines
    means = np.where(judged, totals / np.maximum(counts, 1), 0.0)
    k, s1, s2 = _around(judged, means, w)
    mean = s1 / np.maximum(k, 1)
    spread = np.sqrt(np.maximum(s2 / np.maximum(k, 1) - mean * mean, 0.0))
    scores = np.where(judged & (k >= 4 * MIN_PEAKS), (means - mean) / (spread + 1e-6), -np.inf)
    found = []
    for song_id, start, offsets in group.spans:
        best = start + int(np.argmax(scores[start : start + offsets]))
        if np.isfinite(scores[best]):
            found.append(Nominee(song_id, best - start - n - cut, float(scores[best])))
    return found


def _offset_totals(f: np.ndarray, cum: np.ndarray, frames: int, zt: np.ndarray, block: int | None = None) -> np.ndarray:
    """Offset o's total (at position o): the sum over query frames q of what the peaks in row o + q
    read at q. A row's reads are the sum of the query map's rows for its peaks' bins (`f`, the rows'
    peaks from `cum[row]` on): an embedding bag over the map, x1.5 faster than scipy's sparse product,
    the same sums to float rounding. The diagonals' sums give every offset's total. Done `block` rows
    at a time (with the n more its diagonals reach into), so the reads (~1 MB) are summed while
    still in the cache, whatever the length of the music."""
    import torch  # loaded already: a query's fingerprints come from the encoder

    n, block = zt.shape[1], block or SEARCH_BLOCK_FRAMES
    table = torch.from_numpy(zt)
    bins = torch.from_numpy(np.asarray(f, np.int64))
    firsts = torch.from_numpy(np.asarray(cum[:-1], np.int64))
    totals = torch.empty(frames, dtype=torch.float32)
    for a in range(0, frames, block):
        b = min(a + block, frames)
        lo, hi = int(cum[a]), int(cum[b + n])
        reads = torch.nn.functional.embedding_bag(bins[lo:hi], table, firsts[a : b + n] - lo, mode="sum")
        # reads[o + q, q] for every o: a strided view lines each diagonal up as a row, summed in place
        totals[a:b] = torch.as_strided(reads, (b - a, n), (n, n + 1)).sum(1)
    return totals.numpy()


def _in_band(packed: np.ndarray, query: PresenceMap) -> tuple[np.ndarray, np.ndarray]:
    """The frames and map columns of the packed peaks that fall within the query map's band."""
    t, f = unpack(packed)
    f = f - query.first_bin
    inside = (f >= 0) & (f < query.z.shape[1])
    return t[inside], f[inside]


def _around(judged: np.ndarray, means: np.ndarray, w: int) -> np.ndarray:
    """For each position, the sums within w of it, leaving out its own +-2 (a peak's shoulders), of
    `judged` (as 0/1), `means` and their squares `(3, positions)`; positions past the ends count as 0. One
    running sum serves both windows; written in place (a search's groups hold ~130 000 positions)."""
    m, w = len(means), max(w, 2)
    c = np.zeros((3, m + 2 * w + 1))
    inner = c[:, w + 1 : w + 1 + m]
    inner[0] = judged
    inner[1] = means
    np.multiply(means, means, out=inner[2])
    np.cumsum(c, axis=-1, out=c)
    out = np.subtract(c[:, 2 * w + 1 :], c[:, :m])
    out -= np.subtract(c[:, w + 3 : w + 3 + m], c[:, w - 2 : w - 2 + m])
    return out
