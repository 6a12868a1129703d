"""Audio inputs for the window: the microphone, and a file played as if it were one.

Every input has the `MicrophoneStream` interface the window relies on: `.ring` (a `RingBuffer`),
`.rate`, `.device_name`, `start()` and `stop()`. `FileInputStream` writes a file's samples into its
ring from a thread at (a multiple of) real time: the same path through the window as a microphone,
for tests and demos without a sound card.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from shazamlet.audio.capture import CaptureError, InputDevice, MicrophoneStream, RingBuffer, list_input_devices

StreamFactory = Callable[[object], object]  # device (index, name or None) -> started stream
DeviceLister = Callable[[], list[InputDevice]]

PREFERRED_RATE = 22_050  # the front end's rate: no resampling when the device (or PulseAudio) offers it


def open_microphone(device: int | str | None) -> MicrophoneStream:
    """Open and start an input at the front end's rate, or at the device's own rate."""
    try:
        return MicrophoneStream(device, seconds=30.0, rate=PREFERRED_RATE).start()
    except CaptureError as first:
        try:
            return MicrophoneStream(device, seconds=30.0).start()
        except CaptureError:
            raise first from None


class FileInputStream:
    """Plays `wave` (mono, at `rate`) into a ring buffer at `speed` x real time, in blocks."""

    def __init__(self, wave: np.ndarray, rate: int, name: str = "file", speed: float = 1.0,
                 block_s: float = 0.05, loop: bool = False, seconds: float = 30.0, delay_s: float = 0.0) -> None:
        self.wave = np.asarray(wave, np.float32)
        self.rate = int(rate)
        self.device_name = name
        self.speed = speed
        self.block = max(1, round(block_s * rate))
        self.loop = loop
        self.delay_s = delay_s  # like a real input, the first samples arrive a little after start()
        self.ring = RingBuffer(int(seconds * rate))
        self.overflows = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_file(cls, path: str | Path, rate: int = PREFERRED_RATE, **kw) -> "FileInputStream":
        from shazamlet.audio.decode import load_audio

        return cls(load_audio(path, rate), rate, name=Path(path).name, **kw)

    @property
    def finished(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def _run(self) -> None:
        if self._stop.wait(self.delay_s):
            return
        pos, started = 0, time.perf_counter()
        while not self._stop.is_set():
            if pos >= len(self.wave):
                if not self.loop:
                    # keep "recording" silence, like a microphone after the music stops
                    self.ring.write(np.zeros(self.block, np.float32))
                else:
                    pos = 0
            else:
                self.ring.write(self.wave[pos : pos + self.block])
                pos += self.block
            due = started + (self.ring.written / self.rate) / self.speed
            self._stop.wait(max(0.0, due - time.perf_counter()))

    def start(self) -> "FileInputStream":
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="file-input", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def __enter__(self) -> "FileInputStream":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass(frozen=True)
class InputChoice:
    """One entry of the input selector."""

    key: str  # what the settings remember
    label: str
    device: int  # sounddevice index, -1 = the system default
    pulse_source: str = ""  # a PulseAudio source opened through the ALSA `pulse` device
    is_monitor: bool = False


def pulse_sources() -> list[tuple[str, str]]:
    """(name, description) of every PulseAudio/PipeWire source, monitors included; [] without pactl.

    PortAudio on Linux sees PulseAudio as one ALSA device ("pulse"), so the monitor of the speakers
    (what lets the app recognise the computer's own playback) is not among sounddevice's inputs;
    it is opened by naming it in PULSE_SOURCE when the "pulse" device is opened.
    """
    if not shutil.which("pactl"):
        return []
    try:
        out = subprocess.run(["pactl", "list", "sources"], capture_output=True, text=True, timeout=2,
                             env={**os.environ, "LC_ALL": "C"}).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found, name = [], None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Name:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("Description:") and name:
            found.append((name, line.split(":", 1)[1].strip()))
            name = None
    return found


def input_choices(devices: list[InputDevice], sources: list[tuple[str, str]]) -> list[InputChoice]:
    """The selector's entries: the system default, sounddevice's inputs, PulseAudio's sources."""
    choices = [InputChoice("", "System default input", -1)]
    for d in devices:
        label = f"{d.name}  (this computer's playback)" if d.is_monitor else d.name
        default = d.is_default and d.name != "default"
        choices.append(InputChoice(d.name, label + ("  · default" if default else ""), d.index, "", d.is_monitor))
    pulse = next((d for d in devices if d.name == "pulse"), None)
    if pulse is not None:
        descriptions = [desc for _, desc in sources]
        for name, description in sources:
            monitor = name.endswith(".monitor")
            if descriptions.count(description) > 1:
                description = f"{description} [{name}]"  # two null sinks both say "Monitor of Null Output"
            label = f"{description}  (this computer's playback)" if monitor else description
            choices.append(InputChoice(f"pulse:{name}", label, pulse.index, name, monitor))
    return choices


def default_devices() -> list[InputDevice]:
    return list_input_devices()
