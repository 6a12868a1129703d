"""The headless listening loop shared by `shazamlet listen` and the window.

`Listener` decides *when* to answer: the first answer after one tile of audio (~3 s), refined as the
window grows to 10 s, final as soon as it is sure (a confident match confirmed by the next window)
or "not in your library" after 10 s. It is fed samples and knows nothing of sounddevice or Qt, so
tests drive it from a file and the GUI drives it from a worker thread.

Each answer embeds only the tiles that are new since the last one (about 2 a second): the stream is
resampled once, chunk by chunk (`StreamResampler`), and every window starts on the query-hop grid
of that stream, so a tile that was in the last window is the same tile, bit for bit, in this one,
and `WindowFingerprints` hands its fingerprint back instead of running the encoder again. Answers
run on one torch thread: a batch of 1 to 3 tiles gains nothing from a second one, which on a busy
machine only waits (`python -m bench.query`).
"""

from __future__ import annotations

import hashlib
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Callable, Iterator

import numpy as np
import torch

from shazamlet.audio.capture import MicrophoneStream
from shazamlet.audio.decode import resample
from shazamlet.model.embedder import TileEmbedder
from shazamlet.presence import Nominee
from shazamlet.recognition import Answer, Recognizer, Trace


@dataclass
class ListenEvent:
    kind: str  # "partial": refining; "final": decided (song or not in library)
    answer: Answer
    heard_s: float  # seconds of audio heard in this attempt
    window_s: float  # seconds of audio the answer is based on


@dataclass(frozen=True)
class ListenPolicy:
    first_after_s: float = 3.1
    step_s: float = 1.0
    max_window_s: float = 10.0
    sure_score: float = 0.8  # calibrated confidence that ends listening at once
    confirm_score: float = 0.5  # the same song twice in a row at this confidence also ends it
    # the presence search reads a window's newest ~3 s: searched again once that much is new, its nominees
    # checked meanwhile (20 streams with voices, 100 songs: named as soon as searching every answer)
    search_every_s: float = 3.0


@contextmanager
def one_torch_thread():
    """Run torch ops of this thread on one intra-op thread, then restore the previous count.

    `torch.set_num_threads` sets the calling thread's OpenMP pool and also a process-wide default
    that a thread picks up at its first torch op, so it is put back at once: a thread that starts
    indexing meanwhile still gets all cores.
    """
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


class StreamResampler:
    """Resample a stream chunk by chunk to the front end's rate; each output sample is computed once.

    A chunk's last samples wait for the next chunk until the resampling filter has input on both
    sides of them, so the output is the resampled stream, not a row of resampled chunks with edges.
    """

    FILTER_WIDTH = 6  # torchaudio's default lowpass_filter_width (zero crossings on each side)

    def __init__(self, orig_rate: int, rate: int) -> None:
        g = math.gcd(orig_rate, rate)
        self.orig_rate, self.rate = orig_rate, rate
        self.down, self.up = orig_rate // g, rate // g  # `down` input samples make `up` output samples
        # the filter reaches FILTER_WIDTH periods of the lower rate plus one block on each side
        # (torchaudio's `width + orig`); keep twice that, in whole blocks
        reach = math.ceil(self.FILTER_WIDTH * self.down / (0.99 * min(self.down, self.up))) + self.down
        self.margin = math.ceil(2 * reach / self.down) * self.down
        self.pending = np.zeros(0, np.float32)
        self.pending_start = 0  # input index of pending[0]; a multiple of `down`
        self.received = 0  # input samples so far
        self.produced = 0  # output samples so far

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Output samples that are final now (float32 at `rate`)."""
        samples = np.asarray(samples, np.float32)
        if self.down == self.up:
            self.received += len(samples)
            self.produced += len(samples)
            return samples
        self.pending = np.concatenate([self.pending, samples])
        self.received += len(samples)
        ready = max(0, self.received - self.margin) * self.up // self.down  # outputs with input beyond them
        if ready <= self.produced:
            return np.zeros(0, np.float32)
        first = self.pending_start * self.up // self.down  # output index of the resampled pending[0]
        out = resample(self.pending, self.orig_rate, self.rate)[self.produced - first : ready - first]
        self.produced = ready
        keep_from = max(self.pending_start, (ready * self.down // self.up - self.margin) // self.down * self.down)
        self.pending = self.pending[keep_from - self.pending_start :]
        self.pending_start = keep_from
        return out


class WindowFingerprints:
    """The encoder of a `TileEmbedder` with a memory of the listening window's fingerprints.

    A fingerprint depends on its tile alone, so it is kept under a hash of the tile's values: a tile
    of the last window comes back from the memory and only tiles never seen run through the encoder.
    The memory holds the tiles of the last call, which is the window: tiles that fell out of it are
    dropped. Stands in for the embedder in the listener's own `Recognizer`, which calls `frontend`
    and `encode`.
    """

    def __init__(self, embedder: TileEmbedder) -> None:
        self.embedder = embedder
        self.model = embedder.model
        self.features = embedder.features
        self.frontend = embedder.frontend
        self.known: dict[bytes, tuple[np.ndarray, np.ndarray | None]] = {}
        self.embedded = 0  # tiles run through the encoder
        self.served = 0  # fingerprints handed out

    @property
    def dim(self) -> int:
        return self.embedder.dim

    @property
    def genres(self) -> list[str]:
        return self.embedder.genres

    def embed(self, tiles: torch.Tensor) -> np.ndarray:
        """Fingerprints `(n, dim)` of tiles `(n, n_mels, tile_frames)`, as `TileEmbedder.embed`."""
        return self.encode(tiles)[0]

    def encode(self, tiles: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """Fingerprints and genre probabilities, as `TileEmbedder.encode`."""
        keys = [hashlib.blake2b(t.numpy().tobytes(), digest_size=16).digest() for t in tiles]
        new: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if key not in self.known and key not in new:
                new[key] = i
        if new:
            fps, probs = self.embedder.encode(tiles[list(new.values())])
            for j, key in enumerate(new):
                self.known[key] = (fps[j], None if probs is None else probs[j])
            self.embedded += len(new)
        self.known = {key: self.known[key] for key in keys}
        self.served += len(keys)
        if not keys:
            return self.embedder.encode(tiles)  # empty arrays of the right shapes
        rows = [self.known[key] for key in keys]
        return np.stack([fp for fp, _ in rows]), (np.stack([pr for _, pr in rows]) if self.genres else None)

    def clear(self) -> None:
        self.known = {}


class Listener:
    """Feed mono samples at `rate`; collect `ListenEvent`s.

    `window` holds the samples (at the front end's rate) the last answer was computed from.
    """

    def __init__(self, recognizer: Recognizer, rate: int, policy: ListenPolicy = ListenPolicy()) -> None:
        self.recognizer = recognizer
        self.rate = rate
        self.policy = policy
        self.target_rate = recognizer.features.sample_rate
        self.fingerprints = WindowFingerprints(recognizer.embedder)
        # the same recognition, with the window's memory in place of the embedder
        self.window_recognizer = Recognizer(recognizer.library, self.fingerprints, recognizer.threshold,
                                            recognizer.cfg, recognizer.landmark_threshold)
        self.reset()

    def reset(self) -> None:
        self.heard = 0  # samples at `rate` in this attempt
        self.incoming: list[np.ndarray] = []  # not resampled yet
        self.resampler = StreamResampler(self.rate, self.target_rate)
        self.wave = np.zeros(0, np.float32)  # at the front end's rate, from stream sample `wave_start`
        self.wave_start = 0
        self.window = self.wave
        self.fingerprints.clear()
        self.next_at = self.policy.first_after_s
        self.previous: Answer | None = None
        # this attempt's last presence search: when (heard_s), on which window (its first sample), what it found
        self.searched: tuple[float, int, list[Nominee]] | None = None
        self.done = False

    @property
    def heard_s(self) -> float:
        return self.heard / self.rate

    def push(self, samples: np.ndarray) -> ListenEvent | None:
        """Add samples; returns an event when it is time to answer."""
        if self.done:
            return None
        self.incoming.append(np.asarray(samples, np.float32))
        self.heard += len(samples)
        if self.heard_s < self.next_at:
            return None
        self.next_at = self.heard_s + self.policy.step_s
        trace = Trace()
        with one_torch_thread():
            self.window = self._next_window()
            answer = self.window_recognizer.identify_wave(self.window, trace, self._recent_search())
        if trace.presence_searched:
            self.searched = (self.heard_s, self.wave_start, trace.presence_nominees)
        event = ListenEvent(self._decide(answer), answer, self.heard_s, len(self.window) / self.target_rate)
        self.previous = answer
        if event.kind == "final":
            self.done = True
        return event

    def _recent_search(self) -> list[Nominee] | None:
        """The last search's nominees placed on the current window, while it is recent; None: search again."""
        if self.searched is None or self.heard_s - self.searched[0] >= self.policy.search_every_s - 1e-6:
            return None
        _, window_start, found = self.searched
        shift = (self.wave_start - window_start) // self.recognizer.library.landmark_config.hop
        return [replace(n, offset=n.offset + shift) for n in found]

    def _next_window(self) -> np.ndarray:
        """The newest `max_window_s` or less, starting on the query-hop grid of the stream."""
        new = self.resampler.push(np.concatenate(self.incoming)) if self.incoming else np.zeros(0, np.float32)
        self.incoming = []
        wave = np.concatenate([self.wave, new])
        end = self.wave_start + len(wave)
        grid = self.recognizer.library.cfg.query_hop_frames * self.recognizer.features.hop_length
        start = max(0, math.ceil((end - int(self.policy.max_window_s * self.target_rate)) / grid) * grid)
        self.wave = wave[start - self.wave_start :]
        self.wave_start = start
        return self.wave

    def _decide(self, answer: Answer) -> str:
        p = self.policy
        if answer.song is not None:
            if answer.song.score >= p.sure_score:
                return "final"
            prev = self.previous.song if self.previous else None
            if prev is not None and prev.song_id == answer.song.song_id and answer.song.score >= p.confirm_score:
                return "final"
        if self.heard_s >= p.max_window_s:
            return "final"
        return "partial"


def listen_stream(stream: MicrophoneStream, listener: Listener, continuous: bool = False,
                  should_stop: Callable[[], bool] = lambda: False, poll_s: float = 0.1) -> Iterator[ListenEvent]:
    """Pull new audio from the stream's ring and yield events; stops after a final answer unless
    `continuous`, in which case listening starts over (the caller notices when the song changes)."""
    position = stream.ring.written
    while not should_stop():
        time.sleep(poll_s)
        samples, position = stream.ring.since(position)
        if len(samples) == 0:
            continue
        event = listener.push(samples)
        if event is None:
            continue
        yield event
        if event.kind == "final":
            if not continuous:
                return
            listener.reset()
