"""Audio inputs for the window: the microphone, and a file played as if it were one.

Every input has the `MicrophoneStream` interface the window relies on: `.ring` (a `RingBuffer`),
`.rate`, `.device_name`, `start()` and `stop()`. `FileInputStream` writes a file's samples into its
ring from a thread at (a multiple of) real time: the same path through the window as a microphone,
for tests and demos without a sound card.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from shazamlet.audio.capture import CaptureError, InputDevice, MicrophoneStream, RingBuffer, list_input_devices
from shazamlet.config import FeatureConfig

StreamFactory = Callable[[object], object]  # device (index, name or None) -> started stream
DeviceLister = Callable[[bool], list[InputDevice]]  # rescan: PortAudio may restart (no stream open)
SourceLister = Callable[[], list[tuple]]  # PulseAudio sources (`pulse_sources`)

PREFERRED_RATE = FeatureConfig.sample_rate  # the front end's rate: no resampling when the device (or PulseAudio) offers it


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
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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

    key: str  # what the settings remember ("" = the system's default input)
    label: str
    device: int  # sounddevice index, -1 = the system default
    pulse_source: str = ""  # a PulseAudio source opened through the ALSA `pulse` device
    is_monitor: bool = False
    is_default: bool = False  # the system's default input: what the key "" selects


# ALSA plugins that are not a source of their own: each is another name for the default (or a mixer
# of it), so listing them showed one input under three names ("System default input", "pulse", "default")
ALSA_ALIASES = {"default", "sysdefault", "pulse", "pipewire", "dmix", "dsnoop", "jack", "samplerate",
                "speexrate", "lavrate", "upmix", "vdownmix", "front", "surround40", "spdif", "oss"}


def readable(name: str) -> str:
    """A device name without the ALSA address: "HDA Intel PCH: ALC257 Analog (hw:0,0)" -> "HDA Intel PCH: ALC257 Analog"."""
    return re.sub(r"\s*\((?:hw|plughw):[^)]*\)\s*$", "", name).strip() or name


def monitor_label(description: str) -> str:
    """"Monitor of Speakers" -> "This computer's audio (Speakers)": what a monitor source hears."""
    inner = re.sub(r"^monitor of\s+", "", description, flags=re.IGNORECASE).strip()
    return f"This computer's audio ({inner})" if inner else "This computer's audio"


def pulse_sources() -> list[tuple[str, str, bool]]:
    """(name, description, is the default source) of every PulseAudio/PipeWire source, monitors
    included; [] without pactl.

    PortAudio on Linux sees PulseAudio as one ALSA device ("pulse"), so the monitor of the speakers
    (what lets the app recognise the computer's own playback) is not among sounddevice's inputs;
    it is opened by naming it in PULSE_SOURCE when the "pulse" device is opened.
    """
    if not shutil.which("pactl"):
        return []
    env = {**os.environ, "LC_ALL": "C"}
    try:
        out = subprocess.run(["pactl", "list", "sources"], capture_output=True, text=True, timeout=2, env=env).stdout
        info = subprocess.run(["pactl", "info"], capture_output=True, text=True, timeout=2, env=env).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    default = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                    if line.startswith("Default Source:")), "")
    found, name = [], None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Name:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("Description:") and name:
            found.append((name, line.split(":", 1)[1].strip(), name == default))
            name = None
    return found


def input_choices(devices: list[InputDevice], sources: list[tuple]) -> list[InputChoice]:
    """The selector's entries: each real source once, microphones first, then the computer's own audio.

    With PulseAudio (a "pulse" device and its sources from `pulse_sources`), the sources are the inputs
    and the ALSA devices are not listed again (PulseAudio owns them); otherwise sounddevice's inputs
    without the ALSA aliases of the default. The default input is marked; an entry "System default
    input" is only added when no listed input is known to be it.
    """
    pulse = next((d for d in devices if d.name in ("pulse", "pipewire")), None)
    found: list[InputChoice] = []
    if pulse is not None and sources:
        descriptions = [src[1] for src in sources]
        for src in sources:
            name, description = src[0], src[1]
            is_default = bool(src[2]) if len(src) > 2 else False
            monitor = name.endswith(".monitor")
            if descriptions.count(description) > 1:
                description = f"{description} [{name}]"  # two null sinks both say "Monitor of Null Output"
            label = monitor_label(description) if monitor else description
            found.append(InputChoice(f"pulse:{name}", label, pulse.index, name, monitor, is_default))
    else:
        for d in devices:
            if d.name.lower() in ALSA_ALIASES:
                continue
            label = monitor_label(readable(d.name)) if d.is_monitor else readable(d.name)
            found.append(InputChoice(d.name, label, d.index, "", d.is_monitor, d.is_default))
    found.sort(key=lambda c: c.is_monitor)  # microphones first (stable: each group keeps its order)
    choices = [replace(c, label=c.label + "  · default") if c.is_default else c for c in found]
    if not any(c.is_default for c in choices):
        choices.insert(0, InputChoice("", "System default input", -1, is_default=True))
    return choices


def default_devices(rescan: bool = False) -> list[InputDevice]:
    return list_input_devices(rescan)
