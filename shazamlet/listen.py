"""The headless listening loop shared by `shazamlet listen` and the window.

`Listener` decides *when* to answer: the first answer after one tile of audio (~3 s), refined as the
window grows to 10 s, final as soon as it is sure (a confident match confirmed by the next window)
or "not in your library" after 10 s. It is fed samples and knows nothing of sounddevice or Qt, so
tests drive it from a file and the GUI drives it from a worker thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from shazamlet.audio.capture import MicrophoneStream
from shazamlet.audio.decode import resample
from shazamlet.recognizer import Answer, Recognizer


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


class Listener:
    """Feed mono samples at `rate`; collect `ListenEvent`s."""

    def __init__(self, recognizer: Recognizer, rate: int, policy: ListenPolicy = ListenPolicy()) -> None:
        self.recognizer = recognizer
        self.rate = rate
        self.policy = policy
        self.target_rate = recognizer.features.sample_rate
        self.reset()

    def reset(self) -> None:
        self.buffer = np.zeros(0, np.float32)
        self.next_at = self.policy.first_after_s
        self.previous: Answer | None = None
        self.done = False

    @property
    def heard_s(self) -> float:
        return len(self.buffer) / self.rate

    def push(self, samples: np.ndarray) -> ListenEvent | None:
        """Add samples; returns an event when it is time to answer."""
        if self.done:
            return None
        keep = int(self.policy.max_window_s * self.rate) + int(self.policy.step_s * self.rate)
        self.buffer = np.concatenate([self.buffer, samples.astype(np.float32)])
        if self.heard_s < self.next_at:
            return None
        self.next_at = self.heard_s + self.policy.step_s
        window = self.buffer[-int(self.policy.max_window_s * self.rate):]
        answer = self.recognizer.identify_wave(resample(window, self.rate, self.target_rate))
        event = ListenEvent(self._decide(answer), answer, self.heard_s, len(window) / self.rate)
        self.previous = answer
        self.buffer = self.buffer[-keep:]
        if event.kind == "final":
            self.done = True
        return event

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
