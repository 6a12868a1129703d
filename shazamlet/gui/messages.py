"""Every message that travels between the window's threads, in one place (SongRec habit).

Workers send these as the single argument of a Qt signal; nothing here imports Qt, so each message
is a plain value that a test can build and inspect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the window shows before torch is imported: no core imports at run time here
    from shazamlet.audio.capture import InputDevice
    from shazamlet.library import AddReport, Song
    from shazamlet.recognition import Answer


# -- core thread -> window -----------------------------------------------------------------------
@dataclass
class CoreReady:
    """The model and the library are loaded (the recognizer is None while the model mismatches)."""

    folder: str
    model_name: str
    songs: list[Song]
    mismatch: str | None = None  # one line: the library was built with another model
    recognizer: object | None = None  # shazamlet.recognition.Recognizer


@dataclass
class CoreFailed:
    what: str  # "model" | "library"
    message: str  # one line for the user


@dataclass
class IndexProgress:
    phase: str  # "embed" | "index"
    done: int
    total: int
    files_per_s: float
    audio_seconds: float
    path: str = ""
    error: str | None = None
    song: Song | None = None  # the song just stored (embed phase), to show it in the library at once
    eta_s: float | None = None  # seconds left for the files, at the rate so far; None until it can be told


@dataclass
class IndexFinished:
    job: str  # "add" | "reindex" | "remove"
    report: AddReport
    songs: list[Song]
    recognizer: object | None = None  # set after a reindex made the library usable again


@dataclass
class LibraryMap:
    """2-D PCA projection of the library's fingerprints, and how to project new ones."""

    xy: np.ndarray  # (n, 2)
    genre: list[str]  # per point
    song_id: np.ndarray  # (n,)
    mean: np.ndarray  # (d,)
    axes: np.ndarray  # (d, 2)
    titles: dict[int, str] = field(default_factory=dict)
    note: str = ""  # why there is nothing to draw

    @classmethod
    def empty(cls, note: str = "The map appears once the library has songs.") -> "LibraryMap":
        return cls(np.zeros((0, 2), np.float32), [], np.zeros(0, np.int64), np.zeros(0, np.float32),
                   np.zeros((0, 2), np.float32), note=note)

    def project(self, fingerprints: np.ndarray) -> np.ndarray:
        if len(fingerprints) == 0 or fingerprints.shape[1] != len(self.mean):
            return np.zeros((0, 2), np.float32)
        return (fingerprints.astype(np.float32) - self.mean) @ self.axes


# -- listen thread -> window ---------------------------------------------------------------------
@dataclass
class CaptureStarted:
    session: int
    stream: object  # has .ring (RingBuffer), .rate, .device_name
    start_sample: int  # ring position where this listening attempt starts
    mel: object  # spectrogram.StreamingMel for the stream's rate (its filterbank needs torch: made here)


@dataclass
class CaptureFailed:
    session: int
    message: str  # one line: no microphone, device busy, ...


@dataclass
class ListenUpdate:
    session: int
    kind: str  # "partial" | "final"
    answer: Answer
    heard_s: float
    window_s: float
    end_sample: int  # ring position (samples at `rate`) where the analysed window ends
    rate: int


@dataclass
class InputsListed:
    devices: list[InputDevice]
    sources: list[tuple]  # PulseAudio sources (`sources.pulse_sources`)


@dataclass
class ListenStopped:
    """Listening ended (stopped, the answer was final, or it failed: `CaptureFailed` said why first)."""

    session: int


@dataclass
class FileIdentified:
    path: str
    answer: Answer | None
    error: str | None = None
    # the file's log-mel spectrogram (n_mels, frames) over the part identified first, for the window to show
    spectrogram: np.ndarray | None = None
    frame_seconds: float = 0.0
    window_s: float = 0.0  # how many seconds of the file the spectrogram covers
    batch: str = ""  # the folder, when the file is one of a folder of recordings being identified


@dataclass
class FolderIdentified:
    """A folder of recordings was identified into the history; what was not found is listed in a CSV."""

    folder: str
    total: int
    found: int
    csv_path: str = ""  # the list of files not found ("" when every file was found)
    error: str | None = None  # one line: the folder could not be read, or the list not written
