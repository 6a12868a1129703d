"""Microphone capture: the audio callback copies into a ring buffer, nothing more.

Readers (the listening loop, the window's spectrogram and level meter) each keep their own read
position in the one ring (Friture habit) and pull on their own schedule, so a slow reader never
blocks the audio thread and stale audio never queues up: a reader that falls behind simply skips
to the newest samples.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass

import numpy as np


class CaptureError(Exception):
    """No usable input device, or the device refused to open; one line for the user."""


class RingBuffer:
    """Single-writer mono float32 ring with a monotonically increasing write counter."""

    def __init__(self, capacity: int) -> None:
        self.data = np.zeros(capacity, np.float32)
        self.capacity = capacity
        self.written = 0  # total samples ever written
        self._lock = threading.Lock()  # held for a memcpy only

    def write(self, samples: np.ndarray) -> None:
        total = n = len(samples)
        if n >= self.capacity:
            samples, n = samples[-self.capacity:], self.capacity
        with self._lock:
            start = (self.written + total - n) % self.capacity  # overflowing writes keep their tail
            first = min(n, self.capacity - start)
            self.data[start : start + first] = samples[:first]
            self.data[: n - first] = samples[first:]
            self.written += total

    def latest(self, n: int) -> np.ndarray:
        """The newest `n` samples (fewer if fewer were ever written)."""
        with self._lock:
            n = min(n, self.written, self.capacity)
            end = self.written % self.capacity
            if n <= end:
                return self.data[end - n : end].copy()
            return np.concatenate([self.data[self.capacity - (n - end):], self.data[:end]])

    def since(self, position: int, limit: int | None = None) -> tuple[np.ndarray, int]:
        """Samples written after `position` (clipped to what the ring still holds), and the new position."""
        with self._lock:
            written = self.written
        n = min(written - position, self.capacity, limit or self.capacity)
        return (self.latest(n) if n > 0 else np.zeros(0, np.float32)), written


@dataclass
class InputDevice:
    index: int
    name: str
    channels: int
    default_rate: float
    is_default: bool
    is_monitor: bool  # a loopback/monitor source: hears the computer's own playback


def list_input_devices(rescan: bool = False) -> list[InputDevice]:
    """Every device with input channels, monitor/loopback sources included. PortAudio lists devices once,
    when it starts: `rescan` restarts it so that a microphone plugged in since is found (only while no
    stream of this process is open)."""
    try:
        fresh = "sounddevice" not in sys.modules  # importing it starts PortAudio: that is a scan already
        import sounddevice as sd

        if rescan and not fresh:
            sd._terminate()  # python-sounddevice has no public rescan (its issues #47, #125)
            sd._initialize()

        devices = sd.query_devices()
        default_in = sd.default.device[0] if sd.default.device else -1
    except Exception:
        return []
    out = []
    for i, d in enumerate(devices):
        if d.get("max_input_channels", 0) > 0:
            name = str(d["name"])
            out.append(InputDevice(i, name, int(d["max_input_channels"]), float(d["default_samplerate"]),
                                   i == default_in, "monitor" in name.lower() or "loopback" in name.lower()))
    return out


class MicrophoneStream:
    """An open input stream feeding a `RingBuffer` of `seconds` of mono audio at the device's rate."""

    def __init__(self, device: int | str | None = None, seconds: float = 30.0, rate: int | None = None) -> None:
        try:
            import sounddevice as sd
        except OSError as exc:  # PortAudio library missing
            raise CaptureError(f"audio input unavailable: {exc}") from None
        self._sd = sd
        try:
            info = sd.query_devices(device, "input")
        except Exception:
            raise CaptureError("no microphone found" if device is None else f"no input device {device!r}") from None
        self.device = device
        self.device_name = str(info["name"])
        self.rate = int(rate or info["default_samplerate"])
        self.ring = RingBuffer(int(seconds * self.rate))
        self.stream = None

    def _callback(self, indata, frames, time_info, status) -> None:  # audio thread: copy only
        self.ring.write(indata[:, 0] if indata.shape[1] == 1 else indata.mean(axis=1))

    def start(self) -> "MicrophoneStream":
        try:
            self.stream = self._sd.InputStream(device=self.device, channels=1, samplerate=self.rate,
                                               dtype="float32", callback=self._callback)
            self.stream.start()
        except Exception as exc:
            raise CaptureError(f"cannot open {self.device_name}: {str(exc).splitlines()[0]} "
                               "(is another program using it?)") from None
        return self

    def stop(self) -> None:
        if self.stream is not None:
            try:
                self.stream.stop()
                self.stream.close()
            finally:
                self.stream = None

    def __enter__(self) -> "MicrophoneStream":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
