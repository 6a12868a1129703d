"""Decode audio files (anything libsndfile reads) to mono float32 at the front end's rate.

Files are untrusted input: every failure becomes an `AudioError` with one line a user can act on, and
the decoders' own chatter (libmpg123 writes warnings straight to the C stderr) is kept off the terminal.
"""

from __future__ import annotations

import errno
import io
import math
import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator, Union

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64", ".caf"}
)
# A pipe (`identify <(curl ...)`) is read into memory, since libsndfile must seek; this bounds that memory.
MAX_PIPE_BYTES = 256 * 1024 * 1024
# A file is decoded this many frames at a time (3 s at 44.1 kHz): a 2-hour mix never sits in memory whole.
DECODE_BLOCK_FRAMES = 1 << 17
# The resampler convolves about this many input samples at a time (see `BlockResampler`).
RESAMPLE_CHUNK_SAMPLES = 1 << 18
# libsndfile's "system error" code: its message (e.g. permission denied) is then the one to show
_SF_ERR_SYSTEM = 2

# What libsndfile opens: the path of a regular file, or a pipe's bytes in memory.
Source = Union[str, BinaryIO]


class AudioError(Exception):
    """An audio file that cannot be used; the message is one line for the user."""


def is_audio_file(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith(".")


def to_mono(data: np.ndarray) -> np.ndarray:
    """`(frames, channels)` or `(frames,)` -> `(frames,)` by averaging channels."""
    if data.ndim == 1:
        return data.astype(np.float32, copy=False)
    # channel by channel: numpy's mean over a row of two is 12x slower (a tenth of `library add`'s decoding
    # thread), and this adds in the order it does, so the result is the same to the bit
    mono = data[:, 0].astype(np.float32)
    for c in range(1, data.shape[1]):
        mono += data[:, c]
    mono /= np.float32(data.shape[1])
    return mono


def resample(wave: np.ndarray, orig_rate: int, rate: int) -> np.ndarray:
    """`wave` from `orig_rate` to `rate` Hz: `torchaudio.functional.resample`'s windowed sinc, computed as
    `BlockResampler` computes it, so a file resampled whole and one resampled block by block are equal."""
    if orig_rate == rate or len(wave) == 0:
        return np.asarray(wave, dtype=np.float32)
    rs = BlockResampler(orig_rate, rate)
    head = rs.push(wave)
    return np.concatenate([head, rs.finish()])


def sinc_resample_kernel(orig_rate: int, rate: int, zero_crossings: int = 6, rolloff: float = 0.99) -> tuple[torch.Tensor, int]:
    """torchaudio's `resample` filter ("sinc_interp_hann", its defaults), float32: `(up, 1, span)`, one
    windowed-sinc filter per output phase, and the zero padding `width` it puts before the signal."""
    g = math.gcd(int(orig_rate), int(rate))
    down, up = int(orig_rate) // g, int(rate) // g
    base = min(down, up) * rolloff  # a low-pass under both Nyquist frequencies
    width = math.ceil(zero_crossings * down / base)
    idx = torch.arange(-width, width + down, dtype=torch.float32)[None, None] / down
    t = (torch.arange(0, -up, -1, dtype=torch.float32)[:, None, None] / up + idx) * base
    t = t.clamp_(-zero_crossings, zero_crossings)
    window = torch.cos(t * math.pi / zero_crossings / 2) ** 2
    t *= math.pi
    kernel = torch.where(t == 0, torch.tensor(1.0), t.sin() / t)
    kernel *= window * (base / down)  # in torchaudio's order of operations: the same float32 filter
    return kernel, width


class BlockResampler:
    """Resampling of a stream pushed in blocks of any size, bit for bit the same as resampling it whole.

    torchaudio's kernel and zero padding at both ends, so its output. A convolution's float sums may
    depend on the length it runs over (cut into 1 000-sample blocks, 44.1 kHz differed by 2e-7), so the
    output is computed in chunks of a fixed number of kernel steps counted from the start of the
    stream, whatever the blocks pushed: each chunk is the same computation on the same samples.
    """

    def __init__(self, orig_rate: int, rate: int) -> None:
        g = math.gcd(int(orig_rate), int(rate))
        self.down, self.up = int(orig_rate) // g, int(rate) // g
        self.identity = orig_rate == rate
        # (up, 1, span): one filter per output phase; each step reads span = 2 * width + down samples
        self.kernel, self.width = sinc_resample_kernel(orig_rate, rate) if not self.identity else (torch.ones(1, 1, 1), 0)
        self.span = self.kernel.shape[-1]
        self.chunk_steps = max(1, RESAMPLE_CHUNK_SAMPLES // self.down)
        self.pending = np.zeros(self.width, np.float32)  # input from the next step on (the left padding first)
        self.received = 0
        self.emitted = 0

    def push(self, block: np.ndarray) -> np.ndarray:
        """The output that `block` completes (whole chunks only; the rest waits for more or `finish`)."""
        block = np.asarray(block, np.float32)
        self.received += len(block)
        if self.identity:
            return block
        self.pending = np.concatenate([self.pending, block])
        steps = self._steps_available() // self.chunk_steps * self.chunk_steps
        return self._run(steps)

    def finish(self) -> np.ndarray:
        """The rest of the output, up to torchaudio's length `ceil(len * rate / orig_rate)`."""
        if self.identity:
            return np.zeros(0, np.float32)
        self.pending = np.concatenate([self.pending, np.zeros(self.width + self.down, np.float32)])
        target = -(-self.up * self.received // self.down)
        out = self._run(self._steps_available())
        return out[: max(0, target - self.emitted + len(out))]

    def _steps_available(self) -> int:
        return 0 if len(self.pending) < self.span else (len(self.pending) - self.span) // self.down + 1

    def _run(self, steps: int) -> np.ndarray:
        """`steps` kernel steps over `pending`, `chunk_steps` per convolution (the last may be shorter)."""
        outs = [np.zeros(0, np.float32)]
        for first in range(0, steps, self.chunk_steps):
            n = min(self.chunk_steps, steps - first)
            at = first * self.down
            seg = torch.from_numpy(self.pending[at : at + (n - 1) * self.down + self.span].copy())
            out = F.conv1d(seg[None, None], self.kernel, stride=self.down)  # (1, up, n)
            outs.append(out[0].T.reshape(-1).numpy())
        self.pending = self.pending[steps * self.down :]
        result = np.concatenate(outs)
        self.emitted += len(result)
        return result


def open_source(path: str | Path) -> Source:
    """What to hand libsndfile for `path`: the path of a regular file, or the bytes of a pipe
    (`identify <(cat clip.wav)`), read once into memory because decoding seeks.

    Raises AudioError for an empty path, a missing file, a folder, an empty file or a device.
    """
    text = str(path)
    if not text:
        raise AudioError("empty path: give the name of an audio file")
    p = Path(text)
    try:
        os.stat(p)  # (Path.exists calls a loop of links "no such file")
        if p.is_dir():
            raise AudioError(f"{path}: is a folder, not an audio file")
        if p.is_file():
            if p.stat().st_size == 0:
                raise AudioError(f"{path}: the file is empty")
            open(p, "rb").close()  # (libsndfile calls a file it may not read a "System error")
            return text
        if p.is_fifo():
            return _read_pipe(p, text)
    except FileNotFoundError:
        raise AudioError(f"{path}: no such file") from None
    except PermissionError:
        raise AudioError(f"{path}: permission denied (you may not read this file)") from None
    except OSError as exc:  # a vanished file, a name too long
        why = "a loop of symbolic links" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
        raise AudioError(f"{path}: cannot read ({why})") from None
    raise AudioError(f"{path}: not a regular file (a device or socket); save the audio to a file first")


def _read_pipe(p: Path, name: str) -> io.BytesIO:
    with open(p, "rb") as pipe:
        data = pipe.read(MAX_PIPE_BYTES + 1)
    if len(data) > MAX_PIPE_BYTES:
        raise AudioError(f"{name}: over {MAX_PIPE_BYTES >> 20} MB through a pipe; save the audio to a file first")
    if not data:
        raise AudioError(f"{name}: the pipe gave no data")
    return io.BytesIO(data)


def source_duration(source: Source, name: str) -> float:
    """Duration in seconds of an opened source, from its header alone (cheap), or AudioError."""
    with _decoding(source, name) as f:
        return f.frames / f.samplerate if f.samplerate else 0.0


def decode_source(source: Source, name: str, rate: int, max_seconds: float | None = None,
                  start_seconds: float = 0.0) -> np.ndarray:
    """Mono float32 samples of an opened source at `rate` Hz: all of it, or `max_seconds` from
    `start_seconds` (only that much is decoded, so a long file costs no more than a short one).

    Raises AudioError for a corrupt or empty source, or one that cannot seek to `start_seconds`.
    """
    return np.concatenate(list(decode_blocks(source, name, rate, max_seconds, start_seconds)))


def decode_blocks(source: Source, name: str, rate: int, max_seconds: float | None = None,
                  start_seconds: float = 0.0, block_frames: int = DECODE_BLOCK_FRAMES) -> Iterator[np.ndarray]:
    """`decode_source`'s samples in consecutive blocks, `block_frames` of the file decoded at a time: their
    concatenation is `decode_source`'s output bit for bit, and memory stays that of one block.

    Raises AudioError as `decode_source` does, when the block where a damaged stream fails is reached.
    """
    with _decoding(source, name) as f:
        orig_rate = f.samplerate
        try:
            if start_seconds > 0:
                if not f.seekable():
                    raise AudioError(f"{name}: cannot seek in this file")
                f.seek(min(int(start_seconds * orig_rate), max(f.frames, 0)))
        except AudioError:
            raise
        except Exception as exc:
            raise AudioError(f"{name}: cannot decode audio (damaged {_kind(name)} file: {_short(exc)})") from None
        left = None if max_seconds is None else int(max_seconds * orig_rate)
        resampler = BlockResampler(orig_rate, rate)
        decoded = 0
        while left is None or left > 0:
            want = block_frames if left is None else min(block_frames, left)
            try:
                with _native_stderr_muted(during_read=True):
                    data = f.read(frames=want, dtype="float32", always_2d=True)
            except Exception as exc:  # a damaged stream fails half-way: libsndfile's reason is then useful
                raise AudioError(f"{name}: cannot decode audio (damaged {_kind(name)} file: {_short(exc)})") from None
            if len(data) == 0:
                break
            decoded += len(data)
            left = None if left is None else left - len(data)
            wave = to_mono(data)
            if not np.all(np.isfinite(wave)):
                wave = np.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0)
            out = resampler.push(wave)
            if len(out):
                yield out
    if decoded == 0:
        raise AudioError(f"{name}: the file holds no audio")
    tail = resampler.finish()
    if len(tail):
        yield tail


def load_audio(path: str | Path, rate: int, max_seconds: float | None = None,
               start_seconds: float = 0.0) -> np.ndarray:
    """Mono float32 samples of `path` at `rate` Hz (`max_seconds` from `start_seconds`, or all).

    Raises AudioError for a missing, unreadable, corrupt or empty file.
    """
    return decode_source(open_source(path), str(path), rate, max_seconds, start_seconds)


@contextmanager
def _decoding(source: Source, name: str) -> Iterator[sf.SoundFile]:
    """libsndfile opened on `source`, its failure to open told as one line that says what is wrong
    (its own text is misleading: a corrupt MP3 is "not a regular file (possibly a pipe?)")."""
    if not isinstance(source, str):
        source.seek(0)
    try:
        with _native_stderr_muted(during_read=False):
            # a path as the file system's bytes: soundfile encodes a str strictly, and a name that is not
            # UTF-8 (an old Latin-1 collection: b"Caf\xe9.ogg") would not open
            f = sf.SoundFile(os.fsencode(source) if isinstance(source, str) else source)
    except Exception as exc:  # libsndfile raises several types
        if getattr(exc, "code", None) == _SF_ERR_SYSTEM:
            raise AudioError(f"{name}: cannot read audio ({_short(exc)})") from None
        raise AudioError(f"{name}: cannot decode audio (not a valid {_kind(name)} file, "
                         "or an unsupported or damaged one)") from None
    with f:
        yield f


def _kind(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return suffix[1:].upper() if suffix in AUDIO_EXTENSIONS else "audio"


class _NativeStderrMute:
    """Points file descriptor 2 at /dev/null while libsndfile's decoders run, since libmpg123 prints
    warnings about damaged MP3s there from C, where Python cannot catch them.

    The descriptor is process-wide, so this is reference-counted under a lock (overlapping decodes in
    several threads restore the real stderr exactly once, after the last) and, in threads other than
    the main one, covers only opening a file, where those warnings come from: the importer decodes in
    worker threads for most of an import, and muting its reads would also hide the progress bar the
    main thread draws meanwhile. A damaged MP3 decoded in a worker may still print libmpg123 warnings
    while it is read; anything another thread prints during a muted open is lost.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved_fd: int | None = None

    @contextmanager
    def __call__(self, during_read: bool) -> Iterator[None]:
        entered = (not during_read or threading.current_thread() is threading.main_thread()) and self._enter()
        try:
            yield
        finally:
            if entered:
                self._leave()

    def _enter(self) -> bool:
        with self._lock:
            if self._depth == 0:
                _flush_stderr()
                try:
                    saved = os.dup(2)
                except OSError:  # no stderr to begin with (a daemon): nothing to mute
                    return False
                try:
                    devnull = os.open(os.devnull, os.O_WRONLY)
                except OSError:
                    os.close(saved)
                    return False
                os.dup2(devnull, 2)
                os.close(devnull)
                self._saved_fd = saved
            self._depth += 1
            return True

    def _leave(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._saved_fd is not None:
                _flush_stderr()
                os.dup2(self._saved_fd, 2)
                os.close(self._saved_fd)
                self._saved_fd = None


def _flush_stderr() -> None:
    """What Python already wrote must reach the real stderr, not /dev/null."""
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass


_native_stderr_muted = _NativeStderrMute()


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    msg = text[-1] if text else type(exc).__name__
    msg = msg.removeprefix("Error : ").rstrip(".")  # libsndfile's "Error : flac decoder lost sync."
    return msg.replace(str(Path.cwd()) + "/", "")[:200]
