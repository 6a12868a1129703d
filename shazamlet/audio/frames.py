"""Frames of a signal that arrives in blocks: the STFT framing shared by the log-mel front end and the
spectral peaks, so that a long file is analysed a block at a time exactly as it would be whole."""

from __future__ import annotations

import numpy as np


class FramedStream:
    """Cuts a stream of sample blocks into the samples of `chunk_frames` consecutive STFT frames
    (`center=False`: frame `i` covers samples `[i*hop, i*hop + n_fft)`), counted from the stream's start.

    Frames are handed out in chunks of the same size at the same places whatever the blocks pushed,
    and the last ones as the stream's last `chunk_frames` frames (`finish`), because a spectrogram's
    float sums may depend on how many frames are computed together (one frame alone goes through
    another matrix product than many). So a long file analysed a block at a time gives bit for bit
    what it gives analysed whole, in the memory of one chunk (`shazamlet.library.prepare`).
    """

    def __init__(self, n_fft: int, hop: int, chunk_frames: int) -> None:
        self.n_fft, self.hop, self.chunk = n_fft, hop, chunk_frames
        # samples from frame `buffer_frame` on are `_store[_start:_end]`: a block is written after them, and
        # only a full store is copied (into a new one with room for as much again), so the chunk kept for `finish`
        # is not copied again with every block (1 ms a block, a twentieth of `library add`'s decoding thread).
        # Nothing handed out is ever overwritten: chunks are views of the store.
        self._store = np.zeros(0, np.float32)
        self._start = self._end = 0
        self.buffer_frame = 0
        self.next_frame = 0  # the first frame not handed out yet

    @property
    def buffer(self) -> np.ndarray:
        return self._store[self._start : self._end]

    def push(self, block: np.ndarray) -> list[np.ndarray]:
        """The samples of each chunk of frames that `block` completes, in order."""
        block = np.asarray(block, np.float32)
        if self._end + len(block) > len(self._store):
            held = self.buffer
            # room for as much as is held again (a chunk: many blocks), not for the block again: a whole
            # file pushed at once takes its own size, not twice it
            self._store = np.empty(len(held) + len(block) + max(len(held), 1 << 16), np.float32)
            self._store[: len(held)] = held
            self._start, self._end = 0, len(held)
        self._store[self._end : self._end + len(block)] = block
        self._end += len(block)
        out = []
        while self._frames_in_buffer() >= self.next_frame - self.buffer_frame + self.chunk:
            out.append(self._samples(self.next_frame, self.chunk))
            self.next_frame += self.chunk
        if out:  # keep the last chunk handed out (for `finish`) and what follows it
            keep = self.next_frame - self.chunk
            self._start += (keep - self.buffer_frame) * self.hop
            self.buffer_frame = keep
        return out

    def finish(self) -> tuple[np.ndarray, int]:
        """The samples of the stream's last `chunk_frames` frames (all of them in a shorter stream), and
        how many of those frames earlier chunks already covered: (empty, 0) when none is left."""
        total = self.buffer_frame + self._frames_in_buffer()
        if total <= self.next_frame:
            return self.buffer[:0], 0
        first = max(0, total - self.chunk)
        done = self.next_frame - first
        self.next_frame = total
        return self._samples(first, total - first), done

    def _frames_in_buffer(self) -> int:
        n = len(self.buffer)
        return 0 if n < self.n_fft else (n - self.n_fft) // self.hop + 1

    def _samples(self, first: int, frames: int) -> np.ndarray:
        at = (first - self.buffer_frame) * self.hop
        return self.buffer[at : at + (frames - 1) * self.hop + self.n_fft]
